// Original file: controller/api/weft.proto

import type { TunnelPath as _weft_v1_TunnelPath, TunnelPath__Output as _weft_v1_TunnelPath__Output } from '../../weft/v1/TunnelPath';
import type { TunnelPeer as _weft_v1_TunnelPeer, TunnelPeer__Output as _weft_v1_TunnelPeer__Output } from '../../weft/v1/TunnelPeer';
import type { Long } from '@grpc/proto-loader';

/**
 * What an agent says about its tunnels between datacenters. Bounded: at most
 * 64 paths and 1024 peers (a gateway's peers are the other datacenters' gateways).
 */
export interface TunnelReport {
  /**
   * "host" or "gateway"
   */
  'role'?: (string);
  'datacenter'?: (string);
  /**
   * one per remote datacenter
   */
  'paths'?: (_weft_v1_TunnelPath)[];
  /**
   * gateways only: their WireGuard peers
   */
  'peers'?: (_weft_v1_TunnelPeer)[];
  /**
   * weft.wg0 (0 on non-gateway hosts)
   */
  'wg_mtu'?: (number);
  /**
   * weft.xdc
   */
  'xdc_mtu'?: (number);
  /**
   * "configured", "derived", "probed" or "none"
   */
  'mtu_source'?: (string);
  /**
   * since when the device holds its key (0: unknown)
   */
  'key_since_unix_ms'?: (number | string | Long);
}

/**
 * What an agent says about its tunnels between datacenters. Bounded: at most
 * 64 paths and 1024 peers (a gateway's peers are the other datacenters' gateways).
 */
export interface TunnelReport__Output {
  /**
   * "host" or "gateway"
   */
  'role': (string);
  'datacenter': (string);
  /**
   * one per remote datacenter
   */
  'paths': (_weft_v1_TunnelPath__Output)[];
  /**
   * gateways only: their WireGuard peers
   */
  'peers': (_weft_v1_TunnelPeer__Output)[];
  /**
   * weft.wg0 (0 on non-gateway hosts)
   */
  'wg_mtu': (number);
  /**
   * weft.xdc
   */
  'xdc_mtu': (number);
  /**
   * "configured", "derived", "probed" or "none"
   */
  'mtu_source': (string);
  /**
   * since when the device holds its key (0: unknown)
   */
  'key_since_unix_ms': (number);
}

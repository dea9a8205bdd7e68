// Original file: controller/api/weft.proto

import type { TunnelPeer as _weft_v1_TunnelPeer, TunnelPeer__Output as _weft_v1_TunnelPeer__Output } from '../../weft/v1/TunnelPeer';
import type { Long } from '@grpc/proto-loader';

export interface GatewayTunnels {
  'host'?: (string);
  /**
   * "active" or "draining"
   */
  'state'?: (string);
  /**
   * the first 8 characters of its public key; "" without one
   */
  'key_fingerprint'?: (string);
  /**
   * false: its agent has reported no tunnels
   */
  'reported'?: (boolean);
  'reported_at_unix_ms'?: (number | string | Long);
  'key_since_unix_ms'?: (number | string | Long);
  /**
   * handshake ages aged to now_unix_ms
   */
  'peers'?: (_weft_v1_TunnelPeer)[];
}

export interface GatewayTunnels__Output {
  'host': (string);
  /**
   * "active" or "draining"
   */
  'state': (string);
  /**
   * the first 8 characters of its public key; "" without one
   */
  'key_fingerprint': (string);
  /**
   * false: its agent has reported no tunnels
   */
  'reported': (boolean);
  'reported_at_unix_ms': (number);
  'key_since_unix_ms': (number);
  /**
   * handshake ages aged to now_unix_ms
   */
  'peers': (_weft_v1_TunnelPeer__Output)[];
}

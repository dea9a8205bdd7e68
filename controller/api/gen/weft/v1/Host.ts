// Original file: controller/api/weft.proto

import type { HostSubnet as _weft_v1_HostSubnet, HostSubnet__Output as _weft_v1_HostSubnet__Output } from '../../weft/v1/HostSubnet';
import type { Long } from '@grpc/proto-loader';

export interface Host {
  'name'?: (string);
  'underlay_ip'?: (string);
  'vtep_mac'?: (string);
  'rack'?: (string);
  'datacenter'?: (string);
  /**
   * base64 WireGuard public key, may be empty
   */
  'wg_public_key'?: (string);
  'agent_version'?: (string);
  'last_heartbeat_unix_ms'?: (number | string | Long);
  'subnets'?: (_weft_v1_HostSubnet)[];
  /**
   * Raised by an operator (RotateWireGuardKeys) to ask the host to rotate
   * its WireGuard key; the agent rotates when it sees a value it has not
   * acted on. 0: never asked.
   */
  'wg_key_rotation'?: (number | string | Long);
}

export interface Host__Output {
  'name': (string);
  'underlay_ip': (string);
  'vtep_mac': (string);
  'rack': (string);
  'datacenter': (string);
  /**
   * base64 WireGuard public key, may be empty
   */
  'wg_public_key': (string);
  'agent_version': (string);
  'last_heartbeat_unix_ms': (number);
  'subnets': (_weft_v1_HostSubnet__Output)[];
  /**
   * Raised by an operator (RotateWireGuardKeys) to ask the host to rotate
   * its WireGuard key; the agent rotates when it sees a value it has not
   * acted on. 0: never asked.
   */
  'wg_key_rotation': (number);
}

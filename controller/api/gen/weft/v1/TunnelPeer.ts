// Original file: controller/api/weft.proto

import type { Long } from '@grpc/proto-loader';

export interface TunnelPeer {
  'host'?: (string);
  'datacenter'?: (string);
  /**
   * "ip:port"
   */
  'endpoint'?: (string);
  /**
   * -1: none yet
   */
  'handshake_age_seconds'?: (number | string | Long);
  'rx_bytes'?: (number | string | Long);
  'tx_bytes'?: (number | string | Long);
}

export interface TunnelPeer__Output {
  'host': (string);
  'datacenter': (string);
  /**
   * "ip:port"
   */
  'endpoint': (string);
  /**
   * -1: none yet
   */
  'handshake_age_seconds': (number);
  'rx_bytes': (number);
  'tx_bytes': (number);
}

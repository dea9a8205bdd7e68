// Original file: controller/api/weft.proto

import type { Long } from '@grpc/proto-loader';

export interface SetOwnGatewayStateResponse {
  /**
   * whose gateway entry for the caller is now in that state; empty: not a gateway
   */
  'datacenters'?: (string)[];
  'revision'?: (number | string | Long);
}

export interface SetOwnGatewayStateResponse__Output {
  /**
   * whose gateway entry for the caller is now in that state; empty: not a gateway
   */
  'datacenters': (string)[];
  'revision': (number);
}

// Original file: controller/api/weft.proto

import type { Long } from '@grpc/proto-loader';

export interface DeleteDatacenterResponse {
  /**
   * false: there was no such datacenter
   */
  'deleted'?: (boolean);
  'revision'?: (number | string | Long);
}

export interface DeleteDatacenterResponse__Output {
  /**
   * false: there was no such datacenter
   */
  'deleted': (boolean);
  'revision': (number);
}

// Original file: controller/api/weft.proto

import type { Long } from '@grpc/proto-loader';

export interface WatchTopologyRequest {
  /**
   * 0: start with a snapshot
   */
  'from_revision'?: (number | string | Long);
}

export interface WatchTopologyRequest__Output {
  /**
   * 0: start with a snapshot
   */
  'from_revision': (number);
}

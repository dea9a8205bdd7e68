// Original file: controller/api/weft.proto

import type { Long } from '@grpc/proto-loader';

export interface WatchTopologyRequest {
  /**
   * 0: start with a snapshot
   */
  'from_revision'?: (number | string | Long);
  /**
   * also send PROGRESS when the revision moved without a change (resume from it)
   */
  'progress'?: (boolean);
}

export interface WatchTopologyRequest__Output {
  /**
   * 0: start with a snapshot
   */
  'from_revision': (number);
  /**
   * also send PROGRESS when the revision moved without a change (resume from it)
   */
  'progress': (boolean);
}

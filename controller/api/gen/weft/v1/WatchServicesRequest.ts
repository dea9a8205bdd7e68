// Original file: controller/api/weft.proto

import type { Long } from '@grpc/proto-loader';

export interface WatchServicesRequest {
  'from_revision'?: (number | string | Long);
  /**
   * also send PROGRESS when the revision moved without a change (resume from it)
   */
  'progress'?: (boolean);
}

export interface WatchServicesRequest__Output {
  'from_revision': (number);
  /**
   * also send PROGRESS when the revision moved without a change (resume from it)
   */
  'progress': (boolean);
}

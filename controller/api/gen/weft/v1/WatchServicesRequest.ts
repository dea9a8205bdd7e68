// Original file: controller/api/weft.proto

import type { Long } from '@grpc/proto-loader';

export interface WatchServicesRequest {
  'from_revision'?: (number | string | Long);
}

export interface WatchServicesRequest__Output {
  'from_revision': (number);
}

// Original file: controller/api/weft.proto

import type { Long } from '@grpc/proto-loader';

export interface LeaveHostResponse {
  'revision'?: (number | string | Long);
}

export interface LeaveHostResponse__Output {
  'revision': (number);
}

// Original file: controller/api/weft.proto

import type { Long } from '@grpc/proto-loader';

export interface SetWireGuardKeyResponse {
  'revision'?: (number | string | Long);
}

export interface SetWireGuardKeyResponse__Output {
  'revision': (number);
}

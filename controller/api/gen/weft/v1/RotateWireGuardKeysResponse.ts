// Original file: controller/api/weft.proto

import type { RotationAsked as _weft_v1_RotationAsked, RotationAsked__Output as _weft_v1_RotationAsked__Output } from '../../weft/v1/RotationAsked';
import type { Long } from '@grpc/proto-loader';

export interface RotateWireGuardKeysResponse {
  'hosts'?: (_weft_v1_RotationAsked)[];
  'revision'?: (number | string | Long);
}

export interface RotateWireGuardKeysResponse__Output {
  'hosts': (_weft_v1_RotationAsked__Output)[];
  'revision': (number);
}

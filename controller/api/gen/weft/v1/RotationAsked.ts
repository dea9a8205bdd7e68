// Original file: controller/api/weft.proto

import type { Long } from '@grpc/proto-loader';

export interface RotationAsked {
  'host'?: (string);
  /**
   * the host's new generation
   */
  'wg_key_rotation'?: (number | string | Long);
}

export interface RotationAsked__Output {
  'host': (string);
  /**
   * the host's new generation
   */
  'wg_key_rotation': (number);
}

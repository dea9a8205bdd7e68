// Original file: controller/api/weft.proto

import type { Endpoint as _weft_v1_Endpoint, Endpoint__Output as _weft_v1_Endpoint__Output } from '../../weft/v1/Endpoint';
import type { Long } from '@grpc/proto-loader';

export interface ListEndpointsResponse {
  'endpoints'?: (_weft_v1_Endpoint)[];
  'revision'?: (number | string | Long);
}

export interface ListEndpointsResponse__Output {
  'endpoints': (_weft_v1_Endpoint__Output)[];
  'revision': (number);
}

// Original file: controller/api/weft.proto

import type { Service as _weft_v1_Service, Service__Output as _weft_v1_Service__Output } from '../../weft/v1/Service';
import type { Long } from '@grpc/proto-loader';

export interface ListServicesResponse {
  'services'?: (_weft_v1_Service)[];
  'revision'?: (number | string | Long);
}

export interface ListServicesResponse__Output {
  'services': (_weft_v1_Service__Output)[];
  'revision': (number);
}

// Original file: controller/api/weft.proto

import type { Service as _weft_v1_Service, Service__Output as _weft_v1_Service__Output } from '../../weft/v1/Service';

export interface CreateServiceRequest {
  'service'?: (_weft_v1_Service | null);
}

export interface CreateServiceRequest__Output {
  'service': (_weft_v1_Service__Output | null);
}

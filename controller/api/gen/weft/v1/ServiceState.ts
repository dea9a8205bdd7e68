// Original file: controller/api/weft.proto

import type { Service as _weft_v1_Service, Service__Output as _weft_v1_Service__Output } from '../../weft/v1/Service';
import type { Backend as _weft_v1_Backend, Backend__Output as _weft_v1_Backend__Output } from '../../weft/v1/Backend';

export interface ServiceState {
  'service'?: (_weft_v1_Service | null);
  'backends'?: (_weft_v1_Backend)[];
}

export interface ServiceState__Output {
  'service': (_weft_v1_Service__Output | null);
  'backends': (_weft_v1_Backend__Output)[];
}

// Original file: controller/api/weft.proto

import type { Endpoint as _weft_v1_Endpoint, Endpoint__Output as _weft_v1_Endpoint__Output } from '../../weft/v1/Endpoint';

export interface RegisterEndpointRequest {
  /**
   * endpoint.host must be the caller
   */
  'endpoint'?: (_weft_v1_Endpoint | null);
}

export interface RegisterEndpointRequest__Output {
  /**
   * endpoint.host must be the caller
   */
  'endpoint': (_weft_v1_Endpoint__Output | null);
}

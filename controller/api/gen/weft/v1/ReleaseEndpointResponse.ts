// Original file: controller/api/weft.proto


export interface ReleaseEndpointResponse {
  /**
   * false: there was nothing to release (idempotent)
   */
  'released'?: (boolean);
}

export interface ReleaseEndpointResponse__Output {
  /**
   * false: there was nothing to release (idempotent)
   */
  'released': (boolean);
}

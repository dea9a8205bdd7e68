// Original file: controller/api/weft.proto


export interface SetOwnGatewayStateRequest {
  /**
   * the caller
   */
  'name'?: (string);
  /**
   * "active" or "draining"
   */
  'state'?: (string);
}

export interface SetOwnGatewayStateRequest__Output {
  /**
   * the caller
   */
  'name': (string);
  /**
   * "active" or "draining"
   */
  'state': (string);
}

// Original file: controller/api/weft.proto


export interface JoinRequest {
  /**
   * "<id>.<secret>" from `weft token create`
   */
  'token'?: (string);
  /**
   * DNS-label-like, 1-63 chars
   */
  'host_name'?: (string);
  /**
   * SPKI PEM of the host's own key
   */
  'public_key_pem'?: (string);
}

export interface JoinRequest__Output {
  /**
   * "<id>.<secret>" from `weft token create`
   */
  'token': (string);
  /**
   * DNS-label-like, 1-63 chars
   */
  'host_name': (string);
  /**
   * SPKI PEM of the host's own key
   */
  'public_key_pem': (string);
}

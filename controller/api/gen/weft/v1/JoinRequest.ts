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
  /**
   * What the certificate is for: "" or "host" (an agent), "ingress". Must
   * match the role the token was made for, so a host token cannot mint an
   * ingress certificate nor the other way round.
   */
  'role'?: (string);
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
  /**
   * What the certificate is for: "" or "host" (an agent), "ingress". Must
   * match the role the token was made for, so a host token cannot mint an
   * ingress certificate nor the other way round.
   */
  'role': (string);
}

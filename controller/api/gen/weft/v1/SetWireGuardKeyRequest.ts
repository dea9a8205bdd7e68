// Original file: controller/api/weft.proto


export interface SetWireGuardKeyRequest {
  /**
   * the caller
   */
  'name'?: (string);
  /**
   * base64, 32 bytes
   */
  'wg_public_key'?: (string);
}

export interface SetWireGuardKeyRequest__Output {
  /**
   * the caller
   */
  'name': (string);
  /**
   * base64, 32 bytes
   */
  'wg_public_key': (string);
}

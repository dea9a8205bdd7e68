// Original file: controller/api/weft.proto


export interface RotateWireGuardKeysRequest {
  /**
   * registered hosts to rotate (at most 1024)
   */
  'hosts'?: (string)[];
  /**
   * every registered host; hosts must then be empty
   */
  'all'?: (boolean);
}

export interface RotateWireGuardKeysRequest__Output {
  /**
   * registered hosts to rotate (at most 1024)
   */
  'hosts': (string)[];
  /**
   * every registered host; hosts must then be empty
   */
  'all': (boolean);
}

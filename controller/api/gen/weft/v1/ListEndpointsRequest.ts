// Original file: controller/api/weft.proto


export interface ListEndpointsRequest {
  /**
   * empty: all
   */
  'network'?: (string);
  /**
   * empty: all
   */
  'host'?: (string);
}

export interface ListEndpointsRequest__Output {
  /**
   * empty: all
   */
  'network': (string);
  /**
   * empty: all
   */
  'host': (string);
}

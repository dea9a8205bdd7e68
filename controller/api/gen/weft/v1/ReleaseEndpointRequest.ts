// Original file: controller/api/weft.proto


export interface ReleaseEndpointRequest {
  'network'?: (string);
  'ip'?: (string);
  /**
   * must match the registered one, if given
   */
  'container_id'?: (string);
}

export interface ReleaseEndpointRequest__Output {
  'network': (string);
  'ip': (string);
  /**
   * must match the registered one, if given
   */
  'container_id': (string);
}

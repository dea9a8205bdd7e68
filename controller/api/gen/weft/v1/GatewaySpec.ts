// Original file: controller/api/weft.proto


export interface GatewaySpec {
  'host'?: (string);
  /**
   * "": the host's underlay address and the datacenter's listen port
   */
  'wan_endpoint'?: (string);
}

export interface GatewaySpec__Output {
  'host': (string);
  /**
   * "": the host's underlay address and the datacenter's listen port
   */
  'wan_endpoint': (string);
}

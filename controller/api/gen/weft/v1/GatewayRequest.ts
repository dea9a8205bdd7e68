// Original file: controller/api/weft.proto


export interface GatewayRequest {
  'datacenter'?: (string);
  'host'?: (string);
  /**
   * AddGateway only; "": keep the gateway's, or the host's underlay address
   */
  'wan_endpoint'?: (string);
}

export interface GatewayRequest__Output {
  'datacenter': (string);
  'host': (string);
  /**
   * AddGateway only; "": keep the gateway's, or the host's underlay address
   */
  'wan_endpoint': (string);
}

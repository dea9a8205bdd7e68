// Original file: controller/api/weft.proto


export interface RegisterHostRequest {
  /**
   * must equal the caller's certificate identity
   */
  'name'?: (string);
  'underlay_ip'?: (string);
  'vtep_mac'?: (string);
  'rack'?: (string);
  'datacenter'?: (string);
  'wg_public_key'?: (string);
  'agent_version'?: (string);
  /**
   * empty: every network
   */
  'networks'?: (string)[];
}

export interface RegisterHostRequest__Output {
  /**
   * must equal the caller's certificate identity
   */
  'name': (string);
  'underlay_ip': (string);
  'vtep_mac': (string);
  'rack': (string);
  'datacenter': (string);
  'wg_public_key': (string);
  'agent_version': (string);
  /**
   * empty: every network
   */
  'networks': (string)[];
}

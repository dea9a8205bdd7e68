// Original file: controller/api/weft.proto


export interface DatacenterGateway {
  'host'?: (string);
  /**
   * "ip:port" ("[ip]:port" for IPv6) other datacenters send WireGuard to
   */
  'wan_endpoint'?: (string);
  /**
   * "active" or "draining" (takes no new peers)
   */
  'state'?: (string);
  /**
   * from the host's record; "" while the host has none registered
   */
  'wg_public_key'?: (string);
}

export interface DatacenterGateway__Output {
  'host': (string);
  /**
   * "ip:port" ("[ip]:port" for IPv6) other datacenters send WireGuard to
   */
  'wan_endpoint': (string);
  /**
   * "active" or "draining" (takes no new peers)
   */
  'state': (string);
  /**
   * from the host's record; "" while the host has none registered
   */
  'wg_public_key': (string);
}

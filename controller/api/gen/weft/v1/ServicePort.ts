// Original file: controller/api/weft.proto


export interface ServicePort {
  'name'?: (string);
  /**
   * exposed at the ingress
   */
  'port'?: (number);
  /**
   * on the containers
   */
  'target_port'?: (number);
  /**
   * "tcp" (default), "udp" or "http". http and tcp are both TCP: one service
   * may not use a port number twice on one transport. A tcp or udp port
   * number belongs to one service; several services may share an http port,
   * routed by hostnames and path_prefix.
   */
  'protocol'?: (string);
}

export interface ServicePort__Output {
  'name': (string);
  /**
   * exposed at the ingress
   */
  'port': (number);
  /**
   * on the containers
   */
  'target_port': (number);
  /**
   * "tcp" (default), "udp" or "http". http and tcp are both TCP: one service
   * may not use a port number twice on one transport. A tcp or udp port
   * number belongs to one service; several services may share an http port,
   * routed by hostnames and path_prefix.
   */
  'protocol': (string);
}

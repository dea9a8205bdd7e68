// Original file: controller/api/weft.proto

import type { ServicePort as _weft_v1_ServicePort, ServicePort__Output as _weft_v1_ServicePort__Output } from '../../weft/v1/ServicePort';

export interface Service {
  'name'?: (string);
  'ports'?: (_weft_v1_ServicePort)[];
  /**
   * endpoint labels that must all match
   */
  'selector'?: ({[key: string]: string});
  'network'?: (string);
  /**
   * "prefer-local" (default) or "any"
   */
  'rack_policy'?: (string);
  /**
   * L7 routing of the http ports: the Host header must be one of these
   * (lower-case DNS names, at most 16; "*.example.com" matches exactly one
   * label in front of example.com, as in TLS certificates). Empty: any host.
   */
  'hostnames'?: (string)[];
  /**
   * L7 routing of the http ports: the request path must start with this.
   * "" (every path) or starting with "/", printable ASCII, no ".." segment, at most 256.
   */
  'path_prefix'?: (string);
  /**
   * "none" (default) or "client-ip"
   */
  'affinity'?: (string);
  /**
   * Active health check: an HTTP GET of this path (same rules as path_prefix); "": a TCP connect.
   */
  'health_path'?: (string);
  /**
   * send a PROXY protocol v2 header to the backends
   */
  'proxy_protocol'?: (boolean);
}

export interface Service__Output {
  'name': (string);
  'ports': (_weft_v1_ServicePort__Output)[];
  /**
   * endpoint labels that must all match
   */
  'selector': ({[key: string]: string});
  'network': (string);
  /**
   * "prefer-local" (default) or "any"
   */
  'rack_policy': (string);
  /**
   * L7 routing of the http ports: the Host header must be one of these
   * (lower-case DNS names, at most 16; "*.example.com" matches exactly one
   * label in front of example.com, as in TLS certificates). Empty: any host.
   */
  'hostnames': (string)[];
  /**
   * L7 routing of the http ports: the request path must start with this.
   * "" (every path) or starting with "/", printable ASCII, no ".." segment, at most 256.
   */
  'path_prefix': (string);
  /**
   * "none" (default) or "client-ip"
   */
  'affinity': (string);
  /**
   * Active health check: an HTTP GET of this path (same rules as path_prefix); "": a TCP connect.
   */
  'health_path': (string);
  /**
   * send a PROXY protocol v2 header to the backends
   */
  'proxy_protocol': (boolean);
}

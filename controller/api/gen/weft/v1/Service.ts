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
}

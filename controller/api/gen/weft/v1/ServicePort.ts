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
   * "tcp" or "http"
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
   * "tcp" or "http"
   */
  'protocol': (string);
}

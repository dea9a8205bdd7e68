// Original file: controller/api/weft.proto

import type { Long } from '@grpc/proto-loader';

export interface JoinResponse {
  /**
   * client certificate for host_name, in the requested role
   */
  'certificate_pem'?: (string);
  /**
   * the cluster CA, to verify the controller from now on
   */
  'ca_pem'?: (string);
  'expires_at_unix_ms'?: (number | string | Long);
}

export interface JoinResponse__Output {
  /**
   * client certificate for host_name, in the requested role
   */
  'certificate_pem': (string);
  /**
   * the cluster CA, to verify the controller from now on
   */
  'ca_pem': (string);
  'expires_at_unix_ms': (number);
}

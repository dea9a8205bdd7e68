// Original file: controller/api/weft.proto

import type { Long } from '@grpc/proto-loader';

export interface HostSubnet {
  'network'?: (string);
  /**
   * CIDR, e.g. 10.244.3.0/24
   */
  'subnet'?: (string);
  'lease_expires_at_unix_ms'?: (number | string | Long);
}

export interface HostSubnet__Output {
  'network': (string);
  /**
   * CIDR, e.g. 10.244.3.0/24
   */
  'subnet': (string);
  'lease_expires_at_unix_ms': (number);
}

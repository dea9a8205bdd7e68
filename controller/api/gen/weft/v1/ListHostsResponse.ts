// Original file: controller/api/weft.proto

import type { HostStatus as _weft_v1_HostStatus, HostStatus__Output as _weft_v1_HostStatus__Output } from '../../weft/v1/HostStatus';
import type { Long } from '@grpc/proto-loader';

export interface ListHostsResponse {
  /**
   * sorted by name
   */
  'hosts'?: (_weft_v1_HostStatus)[];
  'revision'?: (number | string | Long);
  'lease_ttl_seconds'?: (number);
  /**
   * the answering controller's clock
   */
  'now_unix_ms'?: (number | string | Long);
}

export interface ListHostsResponse__Output {
  /**
   * sorted by name
   */
  'hosts': (_weft_v1_HostStatus__Output)[];
  'revision': (number);
  'lease_ttl_seconds': (number);
  /**
   * the answering controller's clock
   */
  'now_unix_ms': (number);
}

// Original file: controller/api/weft.proto

import type { DatacenterTunnels as _weft_v1_DatacenterTunnels, DatacenterTunnels__Output as _weft_v1_DatacenterTunnels__Output } from '../../weft/v1/DatacenterTunnels';
import type { TunnelPathSummary as _weft_v1_TunnelPathSummary, TunnelPathSummary__Output as _weft_v1_TunnelPathSummary__Output } from '../../weft/v1/TunnelPathSummary';
import type { Long } from '@grpc/proto-loader';

export interface ListTunnelsResponse {
  /**
   * by name
   */
  'datacenters'?: (_weft_v1_DatacenterTunnels)[];
  /**
   * One per ordered pair of datacenters that hosts reported paths for (from, to).
   */
  'paths'?: (_weft_v1_TunnelPathSummary)[];
  'now_unix_ms'?: (number | string | Long);
}

export interface ListTunnelsResponse__Output {
  /**
   * by name
   */
  'datacenters': (_weft_v1_DatacenterTunnels__Output)[];
  /**
   * One per ordered pair of datacenters that hosts reported paths for (from, to).
   */
  'paths': (_weft_v1_TunnelPathSummary__Output)[];
  'now_unix_ms': (number);
}

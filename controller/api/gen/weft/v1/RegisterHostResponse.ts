// Original file: controller/api/weft.proto

import type { Host as _weft_v1_Host, Host__Output as _weft_v1_Host__Output } from '../../weft/v1/Host';
import type { ClusterConfig as _weft_v1_ClusterConfig, ClusterConfig__Output as _weft_v1_ClusterConfig__Output } from '../../weft/v1/ClusterConfig';
import type { Long } from '@grpc/proto-loader';

export interface RegisterHostResponse {
  'host'?: (_weft_v1_Host | null);
  'config'?: (_weft_v1_ClusterConfig | null);
  'revision'?: (number | string | Long);
}

export interface RegisterHostResponse__Output {
  'host': (_weft_v1_Host__Output | null);
  'config': (_weft_v1_ClusterConfig__Output | null);
  'revision': (number);
}

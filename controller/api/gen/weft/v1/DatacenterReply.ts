// Original file: controller/api/weft.proto

import type { Datacenter as _weft_v1_Datacenter, Datacenter__Output as _weft_v1_Datacenter__Output } from '../../weft/v1/Datacenter';
import type { Long } from '@grpc/proto-loader';

export interface DatacenterReply {
  'datacenter'?: (_weft_v1_Datacenter | null);
  'revision'?: (number | string | Long);
}

export interface DatacenterReply__Output {
  'datacenter': (_weft_v1_Datacenter__Output | null);
  'revision': (number);
}

// Original file: controller/api/weft.proto

import type { HostSubnet as _weft_v1_HostSubnet, HostSubnet__Output as _weft_v1_HostSubnet__Output } from '../../weft/v1/HostSubnet';
import type { Long } from '@grpc/proto-loader';

export interface HeartbeatResponse {
  'subnets'?: (_weft_v1_HostSubnet)[];
  'next_heartbeat_seconds'?: (number);
  'revision'?: (number | string | Long);
}

export interface HeartbeatResponse__Output {
  'subnets': (_weft_v1_HostSubnet__Output)[];
  'next_heartbeat_seconds': (number);
  'revision': (number);
}

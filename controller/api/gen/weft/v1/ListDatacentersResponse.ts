// Original file: controller/api/weft.proto

import type { Datacenter as _weft_v1_Datacenter, Datacenter__Output as _weft_v1_Datacenter__Output } from '../../weft/v1/Datacenter';
import type { Long } from '@grpc/proto-loader';

export interface ListDatacentersResponse {
  'datacenters'?: (_weft_v1_Datacenter)[];
  /**
   * Datacenters that registered hosts name but that have no record: name -> hosts.
   */
  'undeclared'?: ({[key: string]: number});
  'revision'?: (number | string | Long);
}

export interface ListDatacentersResponse__Output {
  'datacenters': (_weft_v1_Datacenter__Output)[];
  /**
   * Datacenters that registered hosts name but that have no record: name -> hosts.
   */
  'undeclared': ({[key: string]: number});
  'revision': (number);
}

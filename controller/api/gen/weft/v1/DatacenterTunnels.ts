// Original file: controller/api/weft.proto

import type { GatewayTunnels as _weft_v1_GatewayTunnels, GatewayTunnels__Output as _weft_v1_GatewayTunnels__Output } from '../../weft/v1/GatewayTunnels';

export interface DatacenterTunnels {
  'name'?: (string);
  'gateways'?: (_weft_v1_GatewayTunnels)[];
}

export interface DatacenterTunnels__Output {
  'name': (string);
  'gateways': (_weft_v1_GatewayTunnels__Output)[];
}

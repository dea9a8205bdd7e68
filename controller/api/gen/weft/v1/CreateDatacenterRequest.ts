// Original file: controller/api/weft.proto

import type { GatewaySpec as _weft_v1_GatewaySpec, GatewaySpec__Output as _weft_v1_GatewaySpec__Output } from '../../weft/v1/GatewaySpec';

export interface CreateDatacenterRequest {
  'name'?: (string);
  'gateways'?: (_weft_v1_GatewaySpec)[];
  /**
   * 0: 51820
   */
  'listen_port'?: (number);
  /**
   * 0: derived from the underlay; else 1280-9216
   */
  'mtu'?: (number);
  'mesh'?: (boolean);
  /**
   * default: at least two gateways
   */
  'allow_single_gateway'?: (boolean);
}

export interface CreateDatacenterRequest__Output {
  'name': (string);
  'gateways': (_weft_v1_GatewaySpec__Output)[];
  /**
   * 0: 51820
   */
  'listen_port': (number);
  /**
   * 0: derived from the underlay; else 1280-9216
   */
  'mtu': (number);
  'mesh': (boolean);
  /**
   * default: at least two gateways
   */
  'allow_single_gateway': (boolean);
}

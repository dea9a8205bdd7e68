// Original file: controller/api/weft.proto

import type { Network as _weft_v1_Network, Network__Output as _weft_v1_Network__Output } from '../../weft/v1/Network';

export interface ClusterConfig {
  'networks'?: (_weft_v1_Network)[];
  'vxlan_port'?: (number);
  /**
   * 0: agents derive it from the underlay (minus 50)
   */
  'mtu'?: (number);
  'lease_ttl_seconds'?: (number);
}

export interface ClusterConfig__Output {
  'networks': (_weft_v1_Network__Output)[];
  'vxlan_port': (number);
  /**
   * 0: agents derive it from the underlay (minus 50)
   */
  'mtu': (number);
  'lease_ttl_seconds': (number);
}

// Original file: controller/api/weft.proto

import type { DatacenterGateway as _weft_v1_DatacenterGateway, DatacenterGateway__Output as _weft_v1_DatacenterGateway__Output } from '../../weft/v1/DatacenterGateway';
import type { DatacenterSubnet as _weft_v1_DatacenterSubnet, DatacenterSubnet__Output as _weft_v1_DatacenterSubnet__Output } from '../../weft/v1/DatacenterSubnet';

export interface Datacenter {
  'name'?: (string);
  'gateways'?: (_weft_v1_DatacenterGateway)[];
  /**
   * WireGuard UDP port on the gateways
   */
  'listen_port'?: (number);
  /**
   * 0: derived from the underlay
   */
  'mtu'?: (number);
  /**
   * encrypt host-to-host traffic inside the datacenter too
   */
  'mesh'?: (boolean);
  /**
   * one gateway is enough (no failover)
   */
  'allow_single_gateway'?: (boolean);
  /**
   * Filled by the controller from the hosts, their leases and the cluster config:
   */
  'host_count'?: (number);
  'subnets'?: (_weft_v1_DatacenterSubnet)[];
  /**
   * network -> this datacenter's pool (datacenterPools)
   */
  'pools'?: ({[key: string]: string});
}

export interface Datacenter__Output {
  'name': (string);
  'gateways': (_weft_v1_DatacenterGateway__Output)[];
  /**
   * WireGuard UDP port on the gateways
   */
  'listen_port': (number);
  /**
   * 0: derived from the underlay
   */
  'mtu': (number);
  /**
   * encrypt host-to-host traffic inside the datacenter too
   */
  'mesh': (boolean);
  /**
   * one gateway is enough (no failover)
   */
  'allow_single_gateway': (boolean);
  /**
   * Filled by the controller from the hosts, their leases and the cluster config:
   */
  'host_count': (number);
  'subnets': (_weft_v1_DatacenterSubnet__Output)[];
  /**
   * network -> this datacenter's pool (datacenterPools)
   */
  'pools': ({[key: string]: string});
}

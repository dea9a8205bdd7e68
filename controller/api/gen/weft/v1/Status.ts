// Original file: controller/api/weft.proto

import type { Long } from '@grpc/proto-loader';

export interface Status {
  'controller_id'?: (string);
  'leader'?: (boolean);
  'revision'?: (number | string | Long);
  /**
   * "sqlite" or "etcd"
   */
  'store'?: (string);
  'hosts'?: (number);
  'leases'?: (number);
  'endpoints'?: (number);
  'services'?: (number);
  'version'?: (string);
  /**
   * the controller that leads, as this one last saw it; "": none known
   */
  'leader_id'?: (string);
  /**
   * datacenter records
   */
  'datacenters'?: (number);
}

export interface Status__Output {
  'controller_id': (string);
  'leader': (boolean);
  'revision': (number);
  /**
   * "sqlite" or "etcd"
   */
  'store': (string);
  'hosts': (number);
  'leases': (number);
  'endpoints': (number);
  'services': (number);
  'version': (string);
  /**
   * the controller that leads, as this one last saw it; "": none known
   */
  'leader_id': (string);
  /**
   * datacenter records
   */
  'datacenters': (number);
}

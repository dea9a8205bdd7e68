// Original file: controller/api/weft.proto

import type { Host as _weft_v1_Host, Host__Output as _weft_v1_Host__Output } from '../../weft/v1/Host';
import type { ClusterConfig as _weft_v1_ClusterConfig, ClusterConfig__Output as _weft_v1_ClusterConfig__Output } from '../../weft/v1/ClusterConfig';
import type { Datacenter as _weft_v1_Datacenter, Datacenter__Output as _weft_v1_Datacenter__Output } from '../../weft/v1/Datacenter';
import type { Long } from '@grpc/proto-loader';

// Original file: controller/api/weft.proto

export const _weft_v1_TopologyEvent_Kind = {
  KIND_UNSPECIFIED: 'KIND_UNSPECIFIED',
  /**
   * hosts = every host, config set; replaces all earlier state
   */
  SNAPSHOT: 'SNAPSHOT',
  /**
   * hosts = the hosts created or changed since the last message, each as it is now
   */
  HOST_PUT: 'HOST_PUT',
  /**
   * host_name = the host that left
   */
  HOST_DELETE: 'HOST_DELETE',
  /**
   * config changed
   */
  CONFIG: 'CONFIG',
  /**
   * datacenters = the datacenters created or changed
   */
  DATACENTER_PUT: 'DATACENTER_PUT',
  /**
   * datacenter_name = the datacenter removed
   */
  DATACENTER_DELETE: 'DATACENTER_DELETE',
  /**
   * nothing changed up to revision (asked for with progress)
   */
  PROGRESS: 'PROGRESS',
} as const;

export type _weft_v1_TopologyEvent_Kind =
  | 'KIND_UNSPECIFIED'
  | 0
  /**
   * hosts = every host, config set; replaces all earlier state
   */
  | 'SNAPSHOT'
  | 1
  /**
   * hosts = the hosts created or changed since the last message, each as it is now
   */
  | 'HOST_PUT'
  | 2
  /**
   * host_name = the host that left
   */
  | 'HOST_DELETE'
  | 3
  /**
   * config changed
   */
  | 'CONFIG'
  | 4
  /**
   * datacenters = the datacenters created or changed
   */
  | 'DATACENTER_PUT'
  | 5
  /**
   * datacenter_name = the datacenter removed
   */
  | 'DATACENTER_DELETE'
  | 6
  /**
   * nothing changed up to revision (asked for with progress)
   */
  | 'PROGRESS'
  | 7

export type _weft_v1_TopologyEvent_Kind__Output = typeof _weft_v1_TopologyEvent_Kind[keyof typeof _weft_v1_TopologyEvent_Kind]

export interface TopologyEvent {
  'revision'?: (number | string | Long);
  'kind'?: (_weft_v1_TopologyEvent_Kind);
  'hosts'?: (_weft_v1_Host)[];
  'host_name'?: (string);
  'config'?: (_weft_v1_ClusterConfig | null);
  /**
   * SNAPSHOT: every datacenter. HOST_PUT, HOST_DELETE, CONFIG and
   * DATACENTER_PUT: the datacenters whose view changed since the last
   * message (a gateway host's key, a host's subnet, a pool), often none.
   * A burst of HOST_PUT and DATACENTER_PUT revisions may arrive as one
   * message at the burst's last revision.
   */
  'datacenters'?: (_weft_v1_Datacenter)[];
  'datacenter_name'?: (string);
}

export interface TopologyEvent__Output {
  'revision': (number);
  'kind': (_weft_v1_TopologyEvent_Kind__Output);
  'hosts': (_weft_v1_Host__Output)[];
  'host_name': (string);
  'config': (_weft_v1_ClusterConfig__Output | null);
  /**
   * SNAPSHOT: every datacenter. HOST_PUT, HOST_DELETE, CONFIG and
   * DATACENTER_PUT: the datacenters whose view changed since the last
   * message (a gateway host's key, a host's subnet, a pool), often none.
   * A burst of HOST_PUT and DATACENTER_PUT revisions may arrive as one
   * message at the burst's last revision.
   */
  'datacenters': (_weft_v1_Datacenter__Output)[];
  'datacenter_name': (string);
}

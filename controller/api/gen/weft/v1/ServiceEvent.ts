// Original file: controller/api/weft.proto

import type { ServiceState as _weft_v1_ServiceState, ServiceState__Output as _weft_v1_ServiceState__Output } from '../../weft/v1/ServiceState';
import type { Long } from '@grpc/proto-loader';

// Original file: controller/api/weft.proto

export const _weft_v1_ServiceEvent_Kind = {
  KIND_UNSPECIFIED: 'KIND_UNSPECIFIED',
  /**
   * services = all, with backends; replaces earlier state
   */
  SNAPSHOT: 'SNAPSHOT',
  /**
   * services = the one service, with its current backends
   */
  SERVICE_PUT: 'SERVICE_PUT',
  /**
   * service_name
   */
  SERVICE_DELETE: 'SERVICE_DELETE',
  /**
   * nothing changed up to revision (asked for with progress)
   */
  PROGRESS: 'PROGRESS',
} as const;

export type _weft_v1_ServiceEvent_Kind =
  | 'KIND_UNSPECIFIED'
  | 0
  /**
   * services = all, with backends; replaces earlier state
   */
  | 'SNAPSHOT'
  | 1
  /**
   * services = the one service, with its current backends
   */
  | 'SERVICE_PUT'
  | 2
  /**
   * service_name
   */
  | 'SERVICE_DELETE'
  | 3
  /**
   * nothing changed up to revision (asked for with progress)
   */
  | 'PROGRESS'
  | 4

export type _weft_v1_ServiceEvent_Kind__Output = typeof _weft_v1_ServiceEvent_Kind[keyof typeof _weft_v1_ServiceEvent_Kind]

export interface ServiceEvent {
  'revision'?: (number | string | Long);
  'kind'?: (_weft_v1_ServiceEvent_Kind);
  'services'?: (_weft_v1_ServiceState)[];
  'service_name'?: (string);
}

export interface ServiceEvent__Output {
  'revision': (number);
  'kind': (_weft_v1_ServiceEvent_Kind__Output);
  'services': (_weft_v1_ServiceState__Output)[];
  'service_name': (string);
}

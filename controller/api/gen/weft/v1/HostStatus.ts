// Original file: controller/api/weft.proto

import type { Host as _weft_v1_Host, Host__Output as _weft_v1_Host__Output } from '../../weft/v1/Host';
import type { OverlayReport as _weft_v1_OverlayReport, OverlayReport__Output as _weft_v1_OverlayReport__Output } from '../../weft/v1/OverlayReport';
import type { TunnelReport as _weft_v1_TunnelReport, TunnelReport__Output as _weft_v1_TunnelReport__Output } from '../../weft/v1/TunnelReport';
import type { Long } from '@grpc/proto-loader';

export interface HostStatus {
  /**
   * with its subnets and their lease expiry
   */
  'host'?: (_weft_v1_Host | null);
  /**
   * "alive": heartbeat within two heartbeat intervals (2/3 of the lease TTL);
   * "stale": later, but within the lease TTL (its leases still hold);
   * "expired": silent for longer than the lease TTL (its leases may be reclaimed).
   */
  'health'?: (string);
  /**
   * by the answering controller's clock
   */
  'heartbeat_age_ms'?: (number | string | Long);
  /**
   * null: the agent has reported none
   */
  'overlay'?: (_weft_v1_OverlayReport | null);
  /**
   * from the last heartbeat that carried one
   */
  'reported_agent_version'?: (string);
  /**
   * when that heartbeat arrived
   */
  'reported_at_unix_ms'?: (number | string | Long);
  /**
   * null: the agent has reported none
   */
  'tunnel'?: (_weft_v1_TunnelReport | null);
}

export interface HostStatus__Output {
  /**
   * with its subnets and their lease expiry
   */
  'host': (_weft_v1_Host__Output | null);
  /**
   * "alive": heartbeat within two heartbeat intervals (2/3 of the lease TTL);
   * "stale": later, but within the lease TTL (its leases still hold);
   * "expired": silent for longer than the lease TTL (its leases may be reclaimed).
   */
  'health': (string);
  /**
   * by the answering controller's clock
   */
  'heartbeat_age_ms': (number);
  /**
   * null: the agent has reported none
   */
  'overlay': (_weft_v1_OverlayReport__Output | null);
  /**
   * from the last heartbeat that carried one
   */
  'reported_agent_version': (string);
  /**
   * when that heartbeat arrived
   */
  'reported_at_unix_ms': (number);
  /**
   * null: the agent has reported none
   */
  'tunnel': (_weft_v1_TunnelReport__Output | null);
}

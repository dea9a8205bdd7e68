// Original file: controller/api/weft.proto

import type { OverlayReport as _weft_v1_OverlayReport, OverlayReport__Output as _weft_v1_OverlayReport__Output } from '../../weft/v1/OverlayReport';
import type { TunnelReport as _weft_v1_TunnelReport, TunnelReport__Output as _weft_v1_TunnelReport__Output } from '../../weft/v1/TunnelReport';

export interface HeartbeatRequest {
  'name'?: (string);
  /**
   * What the agent's last overlay reconcile left in the kernel; absent until
   * the first one (and from agents older than this field).
   */
  'overlay'?: (_weft_v1_OverlayReport | null);
  /**
   * "": unchanged since RegisterHost
   */
  'agent_version'?: (string);
  /**
   * The agent's tunnels between datacenters; absent: it has none (a report without it clears the last one).
   */
  'tunnel'?: (_weft_v1_TunnelReport | null);
}

export interface HeartbeatRequest__Output {
  'name': (string);
  /**
   * What the agent's last overlay reconcile left in the kernel; absent until
   * the first one (and from agents older than this field).
   */
  'overlay': (_weft_v1_OverlayReport__Output | null);
  /**
   * "": unchanged since RegisterHost
   */
  'agent_version': (string);
  /**
   * The agent's tunnels between datacenters; absent: it has none (a report without it clears the last one).
   */
  'tunnel': (_weft_v1_TunnelReport__Output | null);
}

// Original file: controller/api/weft.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Towards one remote datacenter: the gateway this host chose and how its probes fare.
 */
export interface TunnelPath {
  'datacenter'?: (string);
  /**
   * "" while no gateway answers
   */
  'chosen'?: (string);
  /**
   * by the agent's clock; 0: never
   */
  'last_ok_unix_ms'?: (number | string | Long);
  'consecutive_misses'?: (number);
  /**
   * since the agent started
   */
  'failovers'?: (number);
  'rtt_ms'?: (number | string);
}

/**
 * Towards one remote datacenter: the gateway this host chose and how its probes fare.
 */
export interface TunnelPath__Output {
  'datacenter': (string);
  /**
   * "" while no gateway answers
   */
  'chosen': (string);
  /**
   * by the agent's clock; 0: never
   */
  'last_ok_unix_ms': (number);
  'consecutive_misses': (number);
  /**
   * since the agent started
   */
  'failovers': (number);
  'rtt_ms': (number);
}

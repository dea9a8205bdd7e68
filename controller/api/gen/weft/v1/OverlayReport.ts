// Original file: controller/api/weft.proto

import type { Long } from '@grpc/proto-loader';

/**
 * One overlay reconcile's outcome on a host, as its agent reported it.
 */
export interface OverlayReport {
  /**
   * entries (routes, neighbours, FDB) the topology asks for
   */
  'desired'?: (number);
  /**
   * desired entries the kernel holds (desired minus failed adds)
   */
  'programmed'?: (number);
  /**
   * entries the kernel refused
   */
  'failed'?: (number);
  /**
   * hosts left out of the overlay (e.g. no VTEP for a network)
   */
  'skipped'?: (number);
  'reconciled_at_unix_ms'?: (number | string | Long);
  /**
   * the topology revision reconciled
   */
  'topology_revision'?: (number | string | Long);
}

/**
 * One overlay reconcile's outcome on a host, as its agent reported it.
 */
export interface OverlayReport__Output {
  /**
   * entries (routes, neighbours, FDB) the topology asks for
   */
  'desired': (number);
  /**
   * desired entries the kernel holds (desired minus failed adds)
   */
  'programmed': (number);
  /**
   * entries the kernel refused
   */
  'failed': (number);
  /**
   * hosts left out of the overlay (e.g. no VTEP for a network)
   */
  'skipped': (number);
  'reconciled_at_unix_ms': (number);
  /**
   * the topology revision reconciled
   */
  'topology_revision': (number);
}

// Rack-aware choice: which set of endpoints a request is picked from.
//
// By health, Envoy's priority/locality rule with its overprovisioning factor
// (1.4): the local rack is the first choice and takes
//   share = min(1, 1.4 × healthy fraction)
// of the requests, so it stays whole while at least 1/1.4 ≈ 72% of it is
// healthy (the 1.4 is headroom: a rack sized with 40% spare serves its
// traffic with 28% of it down) and sheds the deficit to the other racks as it
// degrades further. The other racks take min(deficit, their own share); if
// both are degraded, the shares are normalised to sum to 1. Below 50%
// healthy overall the pool is in panic: health is ignored and every endpoint
// is used, since concentrating all traffic on a few survivors (or none) would
// take them down too, while the "unhealthy" ones may well be serving.
//
// By load, a signal Envoy's rule lacks: the share above assumes every rack's
// endpoints are equally busy. When the local rack's in-flight requests per
// healthy endpoint exceed `loadRatio` × the other racks' (and a floor, so a
// couple of requests on an idle pool do not count as load), a share
//   1 - loadRatio × remoteLoad / localLoad        (capped at maxLoadSpill)
// of what would stay local spills out. It is proportional: the further the
// local rack is over the ratio, the more spills, and as local in-flight falls
// and remote rises the spill shrinks again, without a timer or a memory.
//
// Pure functions of counts the pool keeps up to date; nothing here allocates,
// since it runs on every pick.
import type { RackPolicy } from '../model';

/** One side's counts: endpoints that are up for selection (not draining, not pending), how many are healthy (checked and not ejected), and their requests in flight. */
export type RackCounts = { total: number; healthy: number; inFlight: number };

export type LocalityOptions = {
  /** Envoy's overprovisioning factor: a rack is whole while healthy fraction × this ≥ 1 (default 1.4). */
  overprovisioning: number;
  /** Below this healthy fraction overall, ignore health (default 0.5). */
  panicThreshold: number;
  /** Spill by load when local load > this × remote load (default 2). */
  loadRatio: number;
  /** ...and local in-flight per healthy endpoint is at least this (default 4). */
  loadFloor: number;
  /** The most of the local share that load alone moves out (default 0.8: the local rack keeps some traffic, so its load stays measured). */
  maxLoadSpill: number;
};

export const defaultLocality: LocalityOptions = { overprovisioning: 1.4, panicThreshold: 0.5, loadRatio: 2, loadFloor: 4, maxLoadSpill: 0.8 };

/**
 * Where one pick goes:
 *  - 'local': the local rack's healthy endpoints;
 *  - 'spill-health' / 'spill-load': the other racks' healthy endpoints, because the local rack is degraded / busy;
 *  - 'any': every healthy endpoint (rack policy 'any');
 *  - 'panic': every endpoint, healthy or not;
 *  - 'none': nothing to pick from.
 */
export type Choice = 'local' | 'spill-health' | 'spill-load' | 'any' | 'panic' | 'none';

/** True when health is to be ignored: fewer than panicThreshold of the endpoints are healthy. */
export function inPanic(local: RackCounts, remote: RackCounts, o: LocalityOptions = defaultLocality): boolean {
  const total = local.total + remote.total;
  return total > 0 && (local.healthy + remote.healthy) / total < o.panicThreshold;
}

/** The fraction of requests the local rack takes by health alone (0..1), outside panic. */
export function localHealthShare(local: RackCounts, remote: RackCounts, o: LocalityOptions = defaultLocality): number {
  const l = local.total > 0 ? Math.min(1, (o.overprovisioning * local.healthy) / local.total) : 0;
  if (l >= 1) return 1;
  const r = remote.total > 0 ? Math.min(1 - l, (o.overprovisioning * remote.healthy) / remote.total) : 0;
  // both degraded: normalise, as Envoy does, rather than leave a share unassigned
  return l + r > 0 ? l / (l + r) : 0;
}

/** The fraction of the local share that the load rule moves to the other racks (0..maxLoadSpill). */
export function loadSpill(local: RackCounts, remote: RackCounts, o: LocalityOptions = defaultLocality): number {
  if (local.healthy === 0 || remote.healthy === 0) return 0;
  const l = local.inFlight / local.healthy;
  if (l < o.loadFloor) return 0;
  const r = remote.inFlight / remote.healthy;
  if (l <= o.loadRatio * r) return 0;
  return Math.min(o.maxLoadSpill, 1 - (o.loadRatio * r) / l);
}

/**
 * The set a pick with uniform random `draw` in [0, 1) comes from. Spills are
 * 'spill-health' and 'spill-load'; with policy 'any' or in panic the set spans
 * racks and whether a pick spilled is known only from the endpoint it lands
 * on.
 */
export function choose(local: RackCounts, remote: RackCounts, policy: RackPolicy, draw: number, o: LocalityOptions = defaultLocality): Choice {
  if (local.total + remote.total === 0) return 'none';
  if (inPanic(local, remote, o)) return 'panic';
  if (policy === 'any') return 'any';
  const share = localHealthShare(local, remote, o);
  if (draw >= share) return 'spill-health';
  if (draw >= share * (1 - loadSpill(local, remote, o))) return 'spill-load';
  return 'local';
}

// What an operator sees of the whole cluster (`weft hosts`, `weft status`):
// every host with its subnets, how recently it was heard from, and the
// overlay summary its agent last reported with a heartbeat. Admin only: it
// names every host, address and key in the cluster.
//
// The reports live in the store (/weft/host-status/<name>, registry/hosts.ts),
// written with the heartbeat's own transaction, so whichever controller an
// agent heartbeats to, any controller answers the same; the topology watch
// never carries them, so heartbeats stay quiet for every watching agent.
import type * as grpc from '@grpc/grpc-js';
import { formatCidr } from '../common/cidr';
import type { ClusterConfig } from '../ipam';
import { LEASES_PREFIX, decodeLeaseRecord, parseLeaseKey } from '../ipam/records';
import { type HostReport, type OverlaySummary, listHostReports, listHosts } from '../registry/hosts';
import type { Store } from '../store/types';
import type * as pb from '../api/proto';
import { hostMessage, sortSubnets } from './topology';
import { tunnelReportMessage } from './tunnel-view';

type Unary = <Req, Res>(method: string, auth: 'admin', fn: (req: Req) => Promise<Res>) => grpc.handleUnaryCall<Req, Res>;

export type ClusterViewDeps = {
  store: Store;
  loadConfig: (store: Store) => Promise<ClusterConfig>;
  /** ms since the epoch. */
  now: () => number;
  /** The service's unary wrapper: authorization, then the handler, errors mapped to statuses. */
  unary: Unary;
};

export const HEALTHS = ['alive', 'stale', 'expired'] as const;
export type Health = (typeof HEALTHS)[number];

/**
 * Agents heartbeat every third of the lease TTL. Alive: at most one
 * heartbeat missed (within 2/3 of the TTL). Stale: later, while its leases
 * still hold. Expired: silent past the TTL, its leases may be reclaimed.
 */
export function hostHealth(ageMs: number, leaseTtlSeconds: number): Health {
  const ttlMs = leaseTtlSeconds * 1000;
  if (ageMs <= (ttlMs * 2) / 3) return 'alive';
  return ageMs <= ttlMs ? 'stale' : 'expired';
}

export function overlayReportMessage(o: OverlaySummary): pb.OverlayReport {
  return {
    desired: o.desired, programmed: o.programmed, failed: o.failed, skipped: o.skipped,
    reconciled_at_unix_ms: o.reconciledAt, topology_revision: o.topologyRevision,
  };
}

/** The heartbeat's report as the registry keeps it; null (an agent that has not reconciled yet, or an older one) keeps none. */
export function overlaySummaryOf(o: pb.OverlayReport | null): OverlaySummary | undefined {
  return o
    ? {
      desired: o.desired, programmed: o.programmed, failed: o.failed, skipped: o.skipped,
      reconciledAt: o.reconciled_at_unix_ms, topologyRevision: o.topology_revision,
    }
    : undefined;
}

/** Every host's subnets, from one read of the leases. */
async function subnetsByHost(store: Store): Promise<Map<string, pb.HostSubnet[]>> {
  const out = new Map<string, pb.HostSubnet[]>();
  for (const kv of (await store.range(LEASES_PREFIX)).kvs) {
    try {
      const { network, subnet } = parseLeaseKey(kv.key);
      const l = decodeLeaseRecord(kv.key, kv.value);
      const list = out.get(l.host) ?? [];
      list.push({ network, subnet: formatCidr(subnet), lease_expires_at_unix_ms: l.expiresAt });
      out.set(l.host, list);
    } catch {
      // not a lease any host could hold
    }
  }
  return out;
}

function hostStatus(h: pb.Host, report: HostReport | undefined, now: number, ttlSeconds: number): pb.HostStatus {
  const age = Math.max(0, now - h.last_heartbeat_unix_ms);
  return {
    host: h,
    health: hostHealth(age, ttlSeconds),
    heartbeat_age_ms: age,
    overlay: report?.overlay ? overlayReportMessage(report.overlay) : null,
    tunnel: report?.tunnel ? tunnelReportMessage(report.tunnel) : null,
    reported_agent_version: report?.agentVersion ?? '',
    reported_at_unix_ms: report?.reportedAt ?? 0,
  };
}

/** The whole answer of ListHosts, read now. */
export async function readHostStatuses(deps: Pick<ClusterViewDeps, 'store' | 'loadConfig' | 'now'>): Promise<pb.ListHostsResponse> {
  const { store } = deps;
  const config = await deps.loadConfig(store);
  const revision = await store.revision();
  const [hosts, reports, subnets] = [await listHosts(store), await listHostReports(store), await subnetsByHost(store)];
  const now = deps.now();
  return {
    hosts: hosts
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((h) => hostStatus(hostMessage(h, sortSubnets(subnets.get(h.name) ?? [])), reports.get(h.name), now, config.leaseTtlSeconds)),
    revision,
    lease_ttl_seconds: config.leaseTtlSeconds,
    now_unix_ms: now,
  };
}

export function clusterViewHandlers(deps: ClusterViewDeps): grpc.UntypedServiceImplementation {
  const ListHosts = deps.unary<pb.ListHostsRequest, pb.ListHostsResponse>('ListHosts', 'admin', () => readHostStatuses(deps));
  return { ListHosts } as grpc.UntypedServiceImplementation;
}

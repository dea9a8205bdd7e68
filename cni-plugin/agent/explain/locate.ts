// Who holds an address: a container of this host (the agent's DB), or which
// host of the cluster and which container there (the controller: its
// topology, its endpoints, and with an admin certificate the hosts' health
// and the overlay summary each agent last reported).
import { existsSync, readFileSync } from 'node:fs';
import { connectController, grpcCode } from '../../../controller/api/client/client';
import { channelCredentials } from '../../../controller/api/client/credentials';
import { clientCredentials } from '../../../controller/api/client/trust';
import type { Endpoint, HostStatus, ResponseOf, ServiceState, StreamMethod } from '../../../controller/api/proto';
import { openIpamStore, type Allocation } from '../ipam-store';
import { agentDbPath } from '../state/agent-db';
import type { Topology } from '../state/types';
import { applyTopologyEvent, emptyTopology } from '../sync/topology';
import { readCredentials } from '../doctor/controller';
import type { NetworkFact, Owner, TunnelReportFact } from './facts';
import { inCidr } from './verdicts';

export type ClusterView = {
  topology: Topology;
  endpoints: Endpoint[];
  /** WatchServices' snapshot (services with their backends), when asked for and allowed. */
  services?: ServiceState[];
  /** ListHosts, with an admin certificate only. */
  statuses?: HostStatus[];
  nowMs: number;
};

export type AdminFiles = { cert: string; key: string; ca: string };

/** This host's allocations (agent DB, read only); an absent DB is no allocations. */
export function localAllocations(stateDir: string): Allocation[] {
  if (!existsSync(agentDbPath(stateDir))) return [];
  const ipam = openIpamStore({ path: agentDbPath(stateDir), busyTimeoutMs: 2000 });
  try {
    return ipam.list();
  } finally {
    ipam.close();
  }
}

/** A watch's first message, which for a watch from revision 0 is its snapshot; undefined when none arrives in time (a refused watch sends none). */
function firstEvent<M extends StreamMethod>(client: ReturnType<typeof connectController>, method: M, timeoutMs: number): Promise<ResponseOf<M> | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      w.stop();
      resolve(undefined);
    }, timeoutMs);
    const w = client.watch(method, {
      onEvent: (e) => {
        clearTimeout(timer);
        w.stop();
        resolve(e);
      },
    });
  });
}

async function firstSnapshot(client: ReturnType<typeof connectController>, timeoutMs: number): Promise<Topology> {
  const ev = await firstEvent(client, 'WatchTopology', timeoutMs);
  if (ev?.kind !== 'SNAPSHOT') throw new Error(`no topology snapshot within ${timeoutMs} ms`);
  return applyTopologyEvent(emptyTopology(), ev);
}

/**
 * The cluster as the controller sees it, asked with the admin certificate
 * when one is given, else with this host's own (from the agent's state dir).
 * A host certificate may not list hosts: then health and reports are absent.
 */
export async function askCluster(server: string, stateDir: string, admin: AdminFiles | undefined, timeoutMs = 5000, withServices = false): Promise<{ view: ClusterView; identity: 'admin' | 'host' }> {
  let credentials;
  let identity: 'admin' | 'host';
  if (admin) {
    credentials = clientCredentials({ caPem: readFileSync(admin.ca, 'utf8'), certPem: readFileSync(admin.cert, 'utf8'), keyPem: readFileSync(admin.key, 'utf8') });
    identity = 'admin';
  } else {
    const c = await readCredentials(stateDir);
    if (!('credentials' in c)) throw new Error('missing' in c ? `this host has not joined: no ${c.missing} (or give --cert, --key and --ca of an admin certificate)` : c.error);
    credentials = channelCredentials(c.credentials);
    identity = 'host';
  }
  const client = connectController({ server, credentials, callTimeoutMs: timeoutMs, stateDir });
  try {
    const [topology, eps] = await Promise.all([firstSnapshot(client, timeoutMs), client.call('ListEndpoints', {})]);
    const view: ClusterView = { topology, endpoints: eps.endpoints, nowMs: Date.now() };
    try {
      const hosts = await client.call('ListHosts', {});
      view.statuses = hosts.hosts;
      view.nowMs = Number(hosts.now_unix_ms) || view.nowMs;
    } catch (e) {
      if (grpcCode(e) !== 'PERMISSION_DENIED') throw e;
    }
    if (withServices) {
      const services = await servicesSnapshot(client, Math.min(timeoutMs, 3000));
      if (services) view.services = services;
    }
    return { view, identity };
  } finally {
    client.close();
  }
}

/** WatchServices' snapshot: every service with its backends; undefined when none arrives in time. */
async function servicesSnapshot(client: ReturnType<typeof connectController>, timeoutMs: number): Promise<ServiceState[] | undefined> {
  const ev = await firstEvent(client, 'WatchServices', timeoutMs);
  return ev?.kind === 'SNAPSHOT' ? ev.services : undefined;
}

/** Who owns `ip`: the host whose subnet holds it, and the endpoint there; null when no host's subnet does. */
export function ownerOf(ip: string, v: ClusterView, networks: NetworkFact[]): Owner | null {
  for (const h of v.topology.hosts) {
    for (const [network, subnet] of Object.entries(h.subnets ?? {})) {
      if (!networks.some((n) => n.name === network) || !inCidr(ip, subnet)) continue;
      const o: Owner = { host: h.name, network, subnet, underlayIp: h.underlayIp, vtepMac: h.vtepMac, datacenter: h.datacenter };
      const ep = v.endpoints.find((e) => e.ip === ip && e.network === network);
      if (ep) o.endpoint = { containerId: ep.container_id, ifname: ep.ifname };
      const s = v.statuses?.find((x) => x.host?.name === h.name);
      if (s) {
        o.health = { state: s.health, heartbeatAgeMs: Number(s.heartbeat_age_ms) };
        if (s.overlay) {
          o.report = { desired: s.overlay.desired, programmed: s.overlay.programmed, failed: s.overlay.failed, reportedAtMs: Number(s.reported_at_unix_ms) || Number(s.overlay.reconciled_at_unix_ms) };
        }
      }
      return o;
    }
  }
  return null;
}

/** What each gateway's agent last reported about its tunnels (ListHosts, admin certificate only). */
export function tunnelReportsOf(v: ClusterView): Record<string, TunnelReportFact> {
  const out: Record<string, TunnelReportFact> = {};
  for (const s of v.statuses ?? []) {
    const t = s.tunnel;
    if (!s.host || !t || t.role !== 'gateway') continue;
    out[s.host.name] = {
      reportedAtMs: Number(s.reported_at_unix_ms),
      paths: t.paths.map((p) => ({ datacenter: p.datacenter, chosen: p.chosen })),
      // the age as of now: the report is a heartbeat old
      peers: t.peers.map((p) => {
        const age = Number(p.handshake_age_seconds);
        return { host: p.host, datacenter: p.datacenter, endpoint: p.endpoint, handshakeAgeSeconds: age < 0 ? -1 : age + Math.max(0, (v.nowMs - Number(s.reported_at_unix_ms)) / 1000) };
      }),
    };
  }
  return out;
}

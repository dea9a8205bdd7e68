// What WatchTopology tells an agent: every host with its subnets, and the
// cluster config. Built from the raw keys (host records, IPAM leases,
// /weft/config) and kept up to date one revision at a time.
//
// Heartbeats: every heartbeat rewrites the host's lastHeartbeat and renews
// its leases (new expiry). Sending each of those to every agent would cost
// O(hosts²) messages per heartbeat period for no change in the overlay, so a
// revision whose only effect is on lastHeartbeat or lease expiry sends
// nothing. The values sent are always current, so a HOST_PUT for a real
// change carries the latest heartbeat and expiry too.
import { CONFIG_KEY, LEASES_PREFIX, decodeLeaseRecord, parseLeaseKey } from '../ipam/records';
import { type ClusterConfig, defaultClusterConfig, validateClusterConfig } from '../ipam';
import { formatCidr } from '../common/cidr';
import { type HostRecord, decodeHost } from '../registry/hosts';
import { HOSTS_PREFIX, nameFromKey } from '../registry/keys';
import type { ClusterConfigMsg, Host, HostSubnet, TopologyEvent } from '../api/proto';
import type { KeyChange } from './watch-core';

/** The keys the topology is made of. */
export const TOPOLOGY_KEYS = [HOSTS_PREFIX, LEASES_PREFIX, CONFIG_KEY];

type LeaseInfo = { network: string; subnet: string; host: string; expiresAt: number };

export type TopologyState = {
  hosts: Map<string, HostRecord>;
  leases: Map<string, LeaseInfo>;
  leasesByHost: Map<string, Set<string>>;
  config: ClusterConfigMsg;
  /** What the clients have, per host: the last host message sent (or in the snapshot). The clients always have `config`. */
  sent: Map<string, Host>;
};

export function configMessage(c: ClusterConfig): ClusterConfigMsg {
  return {
    networks: c.networks.map((n) => ({ name: n.name, vni: n.vni, cidr: n.cidr, host_prefix_length: n.hostPrefixLength })),
    vxlan_port: c.vxlanPort,
    mtu: c.mtu ?? 0,
    lease_ttl_seconds: c.leaseTtlSeconds,
  };
}

/** A stored config that does not validate keeps the last good one: agents must not tear down the overlay over a typo. */
function decodeConfig(value: string | undefined, last: ClusterConfigMsg | undefined): ClusterConfigMsg {
  if (value === undefined) return configMessage(defaultClusterConfig());
  try {
    return configMessage(validateClusterConfig(JSON.parse(value)));
  } catch {
    return last ?? configMessage(defaultClusterConfig());
  }
}

function decodeLease(key: string, value: string): LeaseInfo | undefined {
  try {
    const { network, subnet } = parseLeaseKey(key);
    const r = decodeLeaseRecord(key, value);
    return { network, subnet: formatCidr(subnet), host: r.host, expiresAt: r.expiresAt };
  } catch {
    return undefined; // not a lease (or unreadable): IPAM reports those; the overlay cannot use them
  }
}

function tryHost(key: string, value: string): HostRecord | undefined {
  try {
    return decodeHost(key, value);
  } catch {
    return undefined;
  }
}

export function hostMessage(h: HostRecord, subnets: HostSubnet[]): Host {
  return {
    name: h.name, underlay_ip: h.underlayIp, vtep_mac: h.vtepMac, rack: h.rack, datacenter: h.datacenter,
    wg_public_key: h.wgPublicKey, agent_version: h.agentVersion, last_heartbeat_unix_ms: h.lastHeartbeat, subnets,
  };
}

/** One order for a host's subnets everywhere (watch events and call replies), so clients can compare them. */
export function sortSubnets(subnets: HostSubnet[]): HostSubnet[] {
  const k = (x: HostSubnet) => `${x.network}\0${x.subnet}`;
  return subnets.sort((a, b) => (k(a) < k(b) ? -1 : k(a) > k(b) ? 1 : 0));
}

function subnetsOf(s: TopologyState, host: string): HostSubnet[] {
  const leases = [...(s.leasesByHost.get(host) ?? [])].map((k) => s.leases.get(k)!);
  return sortSubnets(leases.map((l) => ({ network: l.network, subnet: l.subnet, lease_expires_at_unix_ms: l.expiresAt })));
}

function project(s: TopologyState, name: string): Host | undefined {
  const h = s.hosts.get(name);
  return h && hostMessage(h, subnetsOf(s, name));
}

/** Equal for the overlay: every field but last_heartbeat_unix_ms, and the subnets but their expiry. */
function hostTopologyMessageEqual(a: Host, b: Host): boolean {
  return a.name === b.name && a.underlay_ip === b.underlay_ip && a.vtep_mac === b.vtep_mac && a.rack === b.rack &&
    a.datacenter === b.datacenter && a.wg_public_key === b.wg_public_key && a.agent_version === b.agent_version &&
    a.subnets.length === b.subnets.length &&
    a.subnets.every((x, i) => x.network === b.subnets[i].network && x.subnet === b.subnets[i].subnet);
}

function setLease(s: TopologyState, key: string, value: string | undefined): string[] {
  const touched: string[] = [];
  const old = s.leases.get(key);
  if (old) {
    s.leases.delete(key);
    s.leasesByHost.get(old.host)?.delete(key);
    touched.push(old.host);
  }
  const next = value === undefined ? undefined : decodeLease(key, value);
  if (next) {
    s.leases.set(key, next);
    let set = s.leasesByHost.get(next.host);
    if (!set) s.leasesByHost.set(next.host, (set = new Set()));
    set.add(key);
    touched.push(next.host);
  }
  return touched;
}

function setHost(s: TopologyState, key: string, value: string | undefined): string[] {
  const name = nameFromKey(HOSTS_PREFIX, key);
  if (!name) return [];
  const rec = value === undefined ? undefined : tryHost(key, value);
  if (rec) s.hosts.set(name, rec);
  else s.hosts.delete(name);
  return [name];
}

/** State at a revision; the client is taken to have exactly this (snapshot sent, or a resume from here). */
export function topologyFromKvs(kvs: Map<string, string>): TopologyState {
  const s: TopologyState = {
    hosts: new Map(), leases: new Map(), leasesByHost: new Map(),
    config: decodeConfig(kvs.get(CONFIG_KEY), undefined), sent: new Map(),
  };
  for (const [key, value] of kvs) {
    if (key.startsWith(HOSTS_PREFIX)) setHost(s, key, value);
    else if (key.startsWith(LEASES_PREFIX)) setLease(s, key, value);
  }
  for (const name of s.hosts.keys()) s.sent.set(name, project(s, name)!);
  return s;
}

/**
 * The whole topology at `revision`. Leaves `sent` alone: it differs from the
 * snapshot at most in heartbeat and expiry, which no comparison looks at, so
 * a client starting from this snapshot and one that followed every event
 * are told the same from here on.
 */
export function topologySnapshot(s: TopologyState, revision: number): TopologyEvent {
  const hosts = [...s.hosts.keys()].sort().map((n) => project(s, n)!);
  return { revision, kind: 'SNAPSHOT', hosts, host_name: '', config: s.config };
}

function resend(s: TopologyState, revision: number): TopologyEvent {
  const snap = topologySnapshot(s, revision);
  s.sent = new Map(snap.hosts.map((h) => [h.name, h]));
  return snap;
}

/**
 * Applies one revision's changes and returns what to send: nothing, one
 * HOST_PUT (every host that changed in this revision), one HOST_DELETE, one
 * CONFIG, or — when one revision did several of those at once — a SNAPSHOT.
 * One message per revision keeps resuming simple: a client that saw
 * revision r has seen all of r.
 */
export function topologyChanges(s: TopologyState, revision: number, changes: KeyChange[]): TopologyEvent[] {
  const touched = new Set<string>();
  // Every call ends with the clients holding s.config, so a config change is judged against the config before this revision.
  let configBefore: string | undefined;
  for (const c of changes) {
    if (c.key === CONFIG_KEY) {
      configBefore ??= JSON.stringify(s.config);
      s.config = decodeConfig(c.after, s.config);
    } else if (c.key.startsWith(HOSTS_PREFIX)) {
      setHost(s, c.key, c.after).forEach((h) => touched.add(h));
    } else if (c.key.startsWith(LEASES_PREFIX)) {
      setLease(s, c.key, c.after).forEach((h) => touched.add(h));
    }
  }
  const puts: Host[] = [];
  const deletes: string[] = [];
  for (const name of [...touched].sort()) {
    const now = project(s, name);
    const had = s.sent.get(name);
    if (!now) {
      if (had) deletes.push(name);
    } else if (!had || !hostTopologyMessageEqual(had, now)) {
      puts.push(now);
    }
  }
  const configChanged = configBefore !== undefined && JSON.stringify(s.config) !== configBefore;
  const kinds = (puts.length > 0 ? 1 : 0) + deletes.length + (configChanged ? 1 : 0);
  if (kinds === 0) return [];
  if (kinds > 1) return [resend(s, revision)];
  for (const h of puts) s.sent.set(h.name, h);
  for (const n of deletes) s.sent.delete(n);
  if (puts.length > 0) return [{ revision, kind: 'HOST_PUT', hosts: puts, host_name: '', config: null }];
  if (deletes.length > 0) return [{ revision, kind: 'HOST_DELETE', hosts: [], host_name: deletes[0], config: null }];
  return [{ revision, kind: 'CONFIG', hosts: [], host_name: '', config: s.config }];
}

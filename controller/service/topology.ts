// What WatchTopology tells an agent: every host with its subnets, the
// cluster config, and the datacenters with their gateways. Built from the raw
// keys (host records, IPAM leases, /weft/config, datacenter records) and kept
// up to date one revision at a time.
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
import { DATACENTERS_PREFIX, HOSTS_PREFIX, nameFromKey } from '../registry/keys';
import { type DatacenterRecord, decodeDatacenter } from '../registry/datacenters';
import type { ClusterConfigMsg, Datacenter, Host, HostSubnet, TopologyEvent } from '../api/proto';
import type { KeyChange } from './watch-core';
import { type PoolsByDatacenter, datacenterMessage, datacenterMessageKey, poolsByDatacenter } from './datacenter-view';

/** The keys the topology is made of. */
export const TOPOLOGY_KEYS = [HOSTS_PREFIX, LEASES_PREFIX, CONFIG_KEY, DATACENTERS_PREFIX];

type LeaseInfo = { network: string; subnet: string; host: string; expiresAt: number };

export type TopologyState = {
  hosts: Map<string, HostRecord>;
  leases: Map<string, LeaseInfo>;
  leasesByHost: Map<string, Set<string>>;
  config: ClusterConfigMsg;
  /** What the clients have, per host: the last host message sent (or in the snapshot). The clients always have `config`. */
  sent: Map<string, Host>;
  datacenters: Map<string, DatacenterRecord>;
  /** Host names by the datacenter their record names, so a datacenter's view is built from its hosts alone. */
  members: Map<string, Set<string>>;
  /** The cluster config's datacenterPools, by datacenter; like `config`, the last good one. */
  pools: PoolsByDatacenter;
  /** What the clients have, per datacenter: datacenterMessageKey of the last message sent. */
  sentDatacenters: Map<string, string>;
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

function decodePools(value: string | undefined, last: PoolsByDatacenter | undefined): PoolsByDatacenter {
  if (value === undefined) return new Map();
  try {
    return poolsByDatacenter(validateClusterConfig(JSON.parse(value)));
  } catch {
    return last ?? new Map();
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
    wg_key_rotation: h.wgKeyRotation ?? 0,
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
    a.wg_key_rotation === b.wg_key_rotation &&
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
  const before = s.hosts.get(name)?.datacenter;
  if (rec) s.hosts.set(name, rec);
  else s.hosts.delete(name);
  if (before !== rec?.datacenter) {
    if (before !== undefined) s.members.get(before)?.delete(name);
    if (rec) {
      let set = s.members.get(rec.datacenter);
      if (!set) s.members.set(rec.datacenter, (set = new Set()));
      set.add(name);
    }
  }
  return [name];
}

function setDatacenter(s: TopologyState, key: string, value: string | undefined): string | undefined {
  const name = nameFromKey(DATACENTERS_PREFIX, key);
  if (!name) return undefined;
  let rec: DatacenterRecord | undefined;
  try {
    rec = value === undefined ? undefined : decodeDatacenter(key, value);
  } catch {
    rec = undefined; // unreadable: no gateways anyone could use
  }
  if (rec) s.datacenters.set(name, rec);
  else s.datacenters.delete(name);
  return name;
}

function projectDatacenter(s: TopologyState, name: string): Datacenter | undefined {
  const dc = s.datacenters.get(name);
  if (!dc) return undefined;
  return datacenterMessage(dc, {
    host: (h) => s.hosts.get(h),
    members: [...(s.members.get(name) ?? [])].sort().map((h) => s.hosts.get(h)!),
    subnetsOf: (h) => subnetsOf(s, h),
    pools: s.pools.get(name),
  });
}

const allDatacenters = (s: TopologyState): Datacenter[] => [...s.datacenters.keys()].sort().map((n) => projectDatacenter(s, n)!);

/** State at a revision; the client is taken to have exactly this (snapshot sent, or a resume from here). */
export function topologyFromKvs(kvs: Map<string, string>): TopologyState {
  const s: TopologyState = {
    hosts: new Map(), leases: new Map(), leasesByHost: new Map(),
    config: decodeConfig(kvs.get(CONFIG_KEY), undefined), sent: new Map(),
    datacenters: new Map(), members: new Map(), pools: decodePools(kvs.get(CONFIG_KEY), undefined), sentDatacenters: new Map(),
  };
  for (const [key, value] of kvs) {
    if (key.startsWith(HOSTS_PREFIX)) setHost(s, key, value);
    else if (key.startsWith(LEASES_PREFIX)) setLease(s, key, value);
    else if (key.startsWith(DATACENTERS_PREFIX)) setDatacenter(s, key, value);
  }
  for (const name of s.hosts.keys()) s.sent.set(name, project(s, name)!);
  for (const d of allDatacenters(s)) s.sentDatacenters.set(d.name, datacenterMessageKey(d));
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
  return { revision, kind: 'SNAPSHOT', hosts, host_name: '', config: s.config, datacenters: allDatacenters(s), datacenter_name: '' };
}

/** Nothing a client is told of changed up to `revision`: where to resume from. */
export function topologyProgress(revision: number): TopologyEvent {
  return { revision, kind: 'PROGRESS', hosts: [], host_name: '', config: null, datacenters: [], datacenter_name: '' };
}

function resend(s: TopologyState, revision: number): TopologyEvent {
  const snap = topologySnapshot(s, revision);
  s.sent = new Map(snap.hosts.map((h) => [h.name, h]));
  s.sentDatacenters = new Map(snap.datacenters.map((d) => [d.name, datacenterMessageKey(d)]));
  return snap;
}

/** The datacenters in `names` whose message differs from what the clients have: changed ones, and deleted ones. */
function datacenterChanges(s: TopologyState, names: Set<string>): { puts: Datacenter[]; deletes: string[] } {
  const puts: Datacenter[] = [];
  const deletes: string[] = [];
  for (const name of [...names].sort()) {
    const now = projectDatacenter(s, name);
    const had = s.sentDatacenters.get(name);
    if (!now) {
      if (had !== undefined) deletes.push(name);
    } else if (had !== datacenterMessageKey(now)) {
      puts.push(now);
    }
  }
  return { puts, deletes };
}

/**
 * Applies one revision's changes and returns what to send: nothing, one
 * HOST_PUT (every host that changed in this revision), one HOST_DELETE, one
 * CONFIG, one DATACENTER_PUT, one DATACENTER_DELETE, or — when one revision
 * did several of those at once — a SNAPSHOT. A datacenter's view changes
 * with its hosts (count, subnets, gateway keys) and the config's pools, so
 * the datacenters a HOST_PUT, HOST_DELETE or CONFIG changed ride along in
 * that message rather than forcing a snapshot on every registration.
 * One message per revision keeps resuming simple: a client that saw
 * revision r has seen all of r.
 */
export function topologyChanges(s: TopologyState, revision: number, changes: KeyChange[]): TopologyEvent[] {
  const touched = new Set<string>();
  const touchedDatacenters = new Set<string>();
  // Every call ends with the clients holding s.config, so a config change is judged against the config before this revision.
  let configBefore: string | undefined;
  for (const c of changes) {
    if (c.key === CONFIG_KEY) {
      configBefore ??= JSON.stringify(s.config);
      s.config = decodeConfig(c.after, s.config);
      s.pools = decodePools(c.after, s.pools);
      for (const name of s.datacenters.keys()) touchedDatacenters.add(name);
    } else if (c.key.startsWith(DATACENTERS_PREFIX)) {
      const name = setDatacenter(s, c.key, c.after);
      if (name) touchedDatacenters.add(name);
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
    // Only a change the clients are told of can change a datacenter's view (its key, subnets, membership).
    if ((!now && had) || (now && (!had || !hostTopologyMessageEqual(had, now)))) {
      if (had?.datacenter) touchedDatacenters.add(had.datacenter);
      if (now?.datacenter) touchedDatacenters.add(now.datacenter);
    }
  }
  const configChanged = configBefore !== undefined && JSON.stringify(s.config) !== configBefore;
  const dcs = datacenterChanges(s, touchedDatacenters);
  const kinds = (puts.length > 0 ? 1 : 0) + deletes.length + (configChanged ? 1 : 0);
  if (kinds === 0 && dcs.puts.length === 0 && dcs.deletes.length === 0) return [];
  // A removed datacenter has its own message kind; alongside anything else the revision is resent whole.
  if (kinds > 1 || dcs.deletes.length > 1 || (dcs.deletes.length > 0 && (kinds > 0 || dcs.puts.length > 0))) return [resend(s, revision)];
  for (const h of puts) s.sent.set(h.name, h);
  for (const n of deletes) s.sent.delete(n);
  for (const d of dcs.puts) s.sentDatacenters.set(d.name, datacenterMessageKey(d));
  for (const n of dcs.deletes) s.sentDatacenters.delete(n);
  const base = { revision, hosts: [] as Host[], host_name: '', config: null, datacenters: dcs.puts, datacenter_name: '' };
  if (puts.length > 0) return [{ ...base, kind: 'HOST_PUT', hosts: puts }];
  if (deletes.length > 0) return [{ ...base, kind: 'HOST_DELETE', host_name: deletes[0] }];
  if (configChanged) return [{ ...base, kind: 'CONFIG', config: s.config }];
  if (dcs.deletes.length > 0) return [{ ...base, kind: 'DATACENTER_DELETE', datacenter_name: dcs.deletes[0] }];
  return [{ ...base, kind: 'DATACENTER_PUT' }];
}

/**
 * HOST_PUT and DATACENTER_PUT carry each host's and datacenter's current
 * message by name, so a run of them tells a client what the last of the run
 * left it with when sent as one (watch-hub.ts pacing). Deletes, config
 * changes and snapshots are sent as they are.
 */
export function topologyMergeable(e: TopologyEvent): boolean {
  return e.kind === 'HOST_PUT' || e.kind === 'DATACENTER_PUT';
}

export function topologyMerge(run: TopologyEvent[]): TopologyEvent {
  const hosts = new Map<string, Host>();
  const datacenters = new Map<string, Datacenter>();
  for (const e of run) {
    if (!topologyMergeable(e)) throw new Error(`a ${e.kind} message does not merge`);
    for (const h of e.hosts) hosts.set(h.name, h);
    for (const d of e.datacenters) datacenters.set(d.name, d);
  }
  const byName = <T>(m: Map<string, T>): T[] => [...m.keys()].sort().map((n) => m.get(n)!);
  return {
    revision: run[run.length - 1].revision,
    kind: hosts.size > 0 ? 'HOST_PUT' : 'DATACENTER_PUT',
    hosts: byName(hosts),
    host_name: '',
    config: null,
    datacenters: byName(datacenters),
    datacenter_name: '',
  };
}

// The cluster config at /weft/config: which overlay networks exist, how they
// are cut into per-host subnets, and the lease timing. Validated in full
// before anything is stored, with messages that name the field.
import type { KeyValue, Store } from '../store/types';
import { ClusterConfigError, LeaseContentionError, OrphanedLeasesError } from './errors';
import { CONFIG_KEY, LEASES_PREFIX, decodeLeaseRecord, isDnsLabel, parseLeaseKey } from './records';
import { type Cidr, CidrError, cidrContains, cidrOverlaps, formatCidr, parseCidr } from '../common/cidr';

export type NetworkConfig = {
  /** DNS label, unique. */
  name: string;
  /** VXLAN network identifier, 1..16777215, unique. */
  vni: number;
  /** The network's whole address range, canonical form. */
  cidr: string;
  /** Every host gets one subnet of this length (e.g. 24 -> a /24 per host). */
  hostPrefixLength: number;
  /** Optional: hosts of datacenter <dc> draw subnets only from this range (inside `cidr`). */
  datacenterPools?: Record<string, string>;
};

export type ClusterConfig = {
  networks: NetworkConfig[];
  /** UDP port of the VXLAN devices. */
  vxlanPort: number;
  /** Overlay MTU; when absent the agent derives it from the underlay (underlay MTU - 50). */
  mtu?: number;
  /** A lease lives this long unless the host's heartbeat renews it. */
  leaseTtlSeconds: number;
  /** An expired lease keeps its subnet this long before the leader reclaims it. */
  reclaimGraceSeconds: number;
};

/**
 * Defaults, and why:
 * - one network "default", 10.244.0.0/16 cut into /24s, VNI 1: the range
 *   flannel and most Kubernetes setups use, room for 256 hosts of 253
 *   containers each;
 * - vxlanPort 4789: the IANA port, what the kernel and switches expect;
 * - leaseTtlSeconds 60: agents renew on every heartbeat (every ~20 s), so a
 *   lease survives two lost heartbeats, and a dead host shows as expired to
 *   watchers within a minute;
 * - reclaimGraceSeconds 600: an expired lease keeps its subnet for 10 more
 *   minutes, long enough for a reboot or a controller failover, so a host
 *   that comes back keeps its subnet and its containers keep their
 *   addresses; after that the subnet returns to the pool.
 */
export const DEFAULT_NETWORK: NetworkConfig = Object.freeze({
  name: 'default',
  vni: 1,
  cidr: '10.244.0.0/16',
  hostPrefixLength: 24,
});

export const DEFAULTS = Object.freeze({
  vxlanPort: 4789,
  leaseTtlSeconds: 60,
  reclaimGraceSeconds: 600,
});

const MAX_VNI = 16_777_215;
// A host subnet needs a network address, the bridge gateway, at least one
// container and (IPv4) a broadcast address: /30 is the smallest that works.
const MAX_HOST_PREFIX: Record<4 | 6, number> = { 4: 30, 6: 126 };

const TOP_FIELDS = new Set(['networks', 'vxlanPort', 'mtu', 'leaseTtlSeconds', 'reclaimGraceSeconds']);
const NETWORK_FIELDS = new Set(['name', 'vni', 'cidr', 'hostPrefixLength', 'datacenterPools']);

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function rejectUnknown(obj: Record<string, unknown>, allowed: Set<string>, at: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.has(k)) throw new ClusterConfigError(at ? `${at}.${k}` : k, `unknown field (allowed: ${[...allowed].join(', ')})`);
  }
}

function integer(x: unknown, field: string, min: number, max: number): number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max) {
    throw new ClusterConfigError(field, `invalid value ${JSON.stringify(x)} (must be an integer between ${min} and ${max})`);
  }
  return x;
}

function cidr(x: unknown, field: string): Cidr {
  try {
    return parseCidr(x as string);
  } catch (err) {
    if (err instanceof CidrError) throw new ClusterConfigError(field, err.message);
    throw err;
  }
}

function validateNetwork(x: unknown, at: string): { net: NetworkConfig; range: Cidr; pools: Array<{ dc: string; range: Cidr }> } {
  if (!isObject(x)) throw new ClusterConfigError(at, 'must be an object with name, vni, cidr, hostPrefixLength');
  rejectUnknown(x, NETWORK_FIELDS, at);
  if (!isDnsLabel(x.name)) {
    throw new ClusterConfigError(`${at}.name`, `invalid name ${JSON.stringify(x.name)} (must be a DNS label: 1-63 of a-z, 0-9, "-", not starting or ending with "-")`);
  }
  const vni = integer(x.vni, `${at}.vni`, 1, MAX_VNI);
  const range = cidr(x.cidr, `${at}.cidr`);
  const maxHost = MAX_HOST_PREFIX[range.family];
  if (typeof x.hostPrefixLength !== 'number' || !Number.isInteger(x.hostPrefixLength)) {
    throw new ClusterConfigError(`${at}.hostPrefixLength`, `invalid value ${JSON.stringify(x.hostPrefixLength)} (must be an integer)`);
  }
  const hostPrefixLength = x.hostPrefixLength;
  if (hostPrefixLength < range.prefixLength) {
    throw new ClusterConfigError(
      `${at}.hostPrefixLength`,
      `/${hostPrefixLength} is shorter than the network ${formatCidr(range)}: a host subnet cannot be larger than its network (must be between ${range.prefixLength} and ${maxHost})`,
    );
  }
  if (hostPrefixLength > maxHost) {
    throw new ClusterConfigError(
      `${at}.hostPrefixLength`,
      `/${hostPrefixLength} leaves no room for a gateway and containers (must be at most ${maxHost} for IPv${range.family})`,
    );
  }
  const net: NetworkConfig = { name: x.name, vni, cidr: formatCidr(range), hostPrefixLength };
  const pools: Array<{ dc: string; range: Cidr }> = [];
  if (x.datacenterPools !== undefined) {
    if (!isObject(x.datacenterPools)) throw new ClusterConfigError(`${at}.datacenterPools`, 'must be an object mapping datacenter name to CIDR');
    for (const [dc, text] of Object.entries(x.datacenterPools)) {
      const field = `${at}.datacenterPools.${dc}`;
      if (!isDnsLabel(dc)) throw new ClusterConfigError(field, `invalid datacenter name "${dc}" (must be a DNS label)`);
      const pool = cidr(text, field);
      if (!cidrContains(range, pool)) {
        throw new ClusterConfigError(field, `pool ${formatCidr(pool)} is not inside the network ${formatCidr(range)}`);
      }
      if (pool.prefixLength > hostPrefixLength) {
        throw new ClusterConfigError(field, `pool ${formatCidr(pool)} is smaller than one /${hostPrefixLength} host subnet`);
      }
      const clash = pools.find((p) => cidrOverlaps(p.range, pool));
      if (clash) {
        throw new ClusterConfigError(field, `pool ${formatCidr(pool)} overlaps the pool of datacenter "${clash.dc}" (${formatCidr(clash.range)})`);
      }
      pools.push({ dc, range: pool });
    }
    // An empty map means "no pools"; store it as absent so there is one spelling.
    if (pools.length > 0) net.datacenterPools = Object.fromEntries(pools.map((p) => [p.dc, formatCidr(p.range)]));
  }
  return { net, range, pools };
}

/** Returns the typed config with defaults filled in and CIDRs canonical, or throws ClusterConfigError. */
export function validateClusterConfig(x: unknown): ClusterConfig {
  if (!isObject(x)) throw new ClusterConfigError('(root)', 'cluster config must be a JSON object');
  rejectUnknown(x, TOP_FIELDS, '');
  const rawNetworks = x.networks === undefined ? [DEFAULT_NETWORK] : x.networks;
  if (!Array.isArray(rawNetworks) || rawNetworks.length === 0) {
    throw new ClusterConfigError('networks', 'must be a non-empty array (omit it for the default network)');
  }
  const seen: Array<{ net: NetworkConfig; range: Cidr }> = [];
  rawNetworks.forEach((raw, i) => {
    const at = `networks[${i}]`;
    const v = validateNetwork(raw, at);
    for (const o of seen) {
      if (o.net.name === v.net.name) throw new ClusterConfigError(`${at}.name`, `duplicate network name "${v.net.name}"`);
      if (o.net.vni === v.net.vni) throw new ClusterConfigError(`${at}.vni`, `VNI ${v.net.vni} is already used by network "${o.net.name}"`);
      if (cidrOverlaps(o.range, v.range)) {
        throw new ClusterConfigError(`${at}.cidr`, `${v.net.cidr} overlaps network "${o.net.name}" (${o.net.cidr})`);
      }
    }
    seen.push(v);
  });
  const config: ClusterConfig = {
    networks: seen.map((s) => s.net),
    vxlanPort: x.vxlanPort === undefined ? DEFAULTS.vxlanPort : integer(x.vxlanPort, 'vxlanPort', 1, 65535),
    leaseTtlSeconds: x.leaseTtlSeconds === undefined ? DEFAULTS.leaseTtlSeconds : integer(x.leaseTtlSeconds, 'leaseTtlSeconds', 5, 7 * 86400),
    reclaimGraceSeconds:
      x.reclaimGraceSeconds === undefined ? DEFAULTS.reclaimGraceSeconds : integer(x.reclaimGraceSeconds, 'reclaimGraceSeconds', 0, 30 * 86400),
  };
  // 1280 is IPv6's minimum link MTU; 9216 the largest jumbo frame switches commonly pass.
  if (x.mtu !== undefined) config.mtu = integer(x.mtu, 'mtu', 1280, 9216);
  return config;
}

export function defaultClusterConfig(): ClusterConfig {
  return validateClusterConfig({});
}

/**
 * Why a lease (subnet + the datacenter it was given for) does not fit a
 * network's config, or undefined when it fits. Shared by the orphan check
 * and the sticky re-acquire, so both agree.
 */
export function leaseMisfit(net: NetworkConfig, subnet: Cidr, datacenter: string | undefined): string | undefined {
  const range = parseCidr(net.cidr);
  if (subnet.prefixLength !== net.hostPrefixLength) return `subnet is /${subnet.prefixLength} but hosts now get /${net.hostPrefixLength}`;
  if (!cidrContains(range, subnet)) return `subnet is outside the network's CIDR ${net.cidr}`;
  if (net.datacenterPools) {
    if (datacenter === undefined) return 'the network has datacenter pools but the lease has no datacenter';
    const pool = net.datacenterPools[datacenter];
    if (pool === undefined) return `the network has no pool for datacenter "${datacenter}"`;
    if (!cidrContains(parseCidr(pool), subnet)) return `subnet is outside datacenter "${datacenter}"'s pool ${pool}`;
  }
  return undefined;
}

/** The config and the modRevision of its key (0 when none is stored and the defaults apply). */
/** The stored config (the default when none is stored); `read` parses a value already read instead of reading again. */
export async function readClusterConfig(store: Store, read?: { kv: KeyValue | undefined }): Promise<{ config: ClusterConfig; modRevision: number }> {
  const kv = read ? read.kv : await store.get(CONFIG_KEY);
  if (!kv) return { config: defaultClusterConfig(), modRevision: 0 };
  let parsed: unknown;
  try {
    parsed = JSON.parse(kv.value);
  } catch (err) {
    throw new ClusterConfigError('(root)', `stored config at ${CONFIG_KEY} is not valid JSON: ${(err as Error).message}`);
  }
  return { config: validateClusterConfig(parsed), modRevision: kv.modRevision };
}

export async function loadClusterConfig(store: Store): Promise<ClusterConfig> {
  return (await readClusterConfig(store)).config;
}

async function findOrphans(store: Store, config: ClusterConfig): Promise<OrphanedLeasesError['leases']> {
  const byName = new Map(config.networks.map((n) => [n.name, n]));
  const { kvs } = await store.range(LEASES_PREFIX);
  const orphans: OrphanedLeasesError['leases'] = [];
  for (const kv of kvs) {
    let network: string;
    let subnet: Cidr;
    let host = '?';
    let datacenter: string | undefined;
    try {
      ({ network, subnet } = parseLeaseKey(kv.key));
    } catch {
      continue; // not ours to judge; the lease manager reports malformed keys
    }
    try {
      ({ host, datacenter } = decodeLeaseRecord(kv.key, kv.value));
    } catch {
      /* a malformed record still occupies its subnet: judge it by its key */
    }
    const net = byName.get(network);
    const subnetText = formatCidr(subnet);
    const reason = net ? leaseMisfit(net, subnet, datacenter) : `network "${network}" would no longer exist`;
    if (reason) orphans.push({ network, subnet: subnetText, host, reason });
  }
  return orphans;
}

/**
 * Validate and store the config. Refuses (OrphanedLeasesError) a change that
 * would leave any live lease — expired but not yet reclaimed counts as live —
 * outside its network, host prefix or datacenter pool.
 *
 * Race with concurrent acquirers: every lease claim compares the config's
 * modRevision, so once the new config is stored no lease can be claimed
 * against the old one. A lease claimed between our scan and our write is
 * caught by a second scan after the write, and the old config is put back.
 */
/**
 * Replaces the whole cluster config with `input`, whatever is stored now.
 * An edit of the stored config must not use this (a concurrent edit would be
 * lost): use updateClusterConfig, which compares against what it read.
 */
export async function saveClusterConfig(store: Store, input: unknown): Promise<{ config: ClusterConfig; revision: number }> {
  const config = validateClusterConfig(input);
  for (let attempt = 0; attempt < 20; attempt++) {
    const current = await store.get(CONFIG_KEY);
    const saved = await saveIfUnchanged(store, config, current);
    if (saved) return saved; // else another writer saved in between: check again against the store as it is now
  }
  throw new LeaseContentionError(`could not save cluster config: ${CONFIG_KEY} kept changing under concurrent writers`);
}

/**
 * Read-modify-write of the cluster config: `edit` gets the stored config and
 * returns the new one, which is saved only if the stored config is still the
 * one `edit` saw (compare-and-swap on its revision). When another writer
 * saved in between, the edit is applied again to what that writer saved, so
 * concurrent edits all land or fail with a clear error, and none is lost
 * behind a reported success.
 */
export async function updateClusterConfig(store: Store, edit: (current: ClusterConfig) => unknown | Promise<unknown>): Promise<{ config: ClusterConfig; revision: number }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const current = await store.get(CONFIG_KEY);
    const { config: before } = await readClusterConfig(store, { kv: current });
    const saved = await saveIfUnchanged(store, validateClusterConfig(await edit(before)), current);
    if (saved) return saved;
  }
  throw new LeaseContentionError(`could not update cluster config: ${CONFIG_KEY} kept changing under concurrent writers`);
}

/** Stores the default config unless a config is stored already (another controller may be starting too); the saved config, or null when one was there. */
export async function initClusterConfig(store: Store): Promise<{ config: ClusterConfig; revision: number } | null> {
  if (await store.get(CONFIG_KEY)) return null;
  return saveIfUnchanged(store, defaultClusterConfig(), undefined);
}

/**
 * Ranges no overlay network may overlap: container addresses there would be
 * the host's own (loopback), never leave a link (link-local), mean "any" or
 * "everyone" (unspecified, broadcast, multicast), or alias IPv4 through IPv6
 * (IPv4-mapped). 0.0.0.0/8 covers the unspecified address and "this network".
 */
const RESERVED_RANGES: Array<{ range: Cidr; what: string }> = [
  ['0.0.0.0/8', 'the unspecified address and "this network" (0.0.0.0/8)'],
  ['127.0.0.0/8', 'loopback (127.0.0.0/8)'],
  ['169.254.0.0/16', 'link-local (169.254.0.0/16)'],
  ['224.0.0.0/4', 'multicast (224.0.0.0/4)'],
  ['255.255.255.255/32', 'the broadcast address (255.255.255.255)'],
  ['::/128', 'the unspecified address (::)'],
  ['::1/128', 'loopback (::1)'],
  ['::ffff:0:0/96', 'IPv4-mapped addresses (::ffff:0:0/96)'],
  ['fe80::/10', 'link-local (fe80::/10)'],
  ['ff00::/8', 'multicast (ff00::/8)'],
].map(([text, what]) => ({ range: parseCidr(text), what }));

/**
 * The widest network allowed: /8 for IPv4 (a class A, already 65536 /24
 * host subnets), /16 for IPv6 (2^48 /64 host subnets). Wider ranges are
 * default routes in all but name (0.0.0.0/0, ::/0): they would capture the
 * hosts' own traffic, and no cluster needs that many subnets.
 */
export const MIN_NETWORK_PREFIX: Record<4 | 6, number> = { 4: 8, 6: 16 };

/** Why `range` cannot be an overlay network's range, or undefined when it can. */
export function networkRangeProblem(range: Cidr): string | undefined {
  const min = MIN_NETWORK_PREFIX[range.family];
  if (range.prefixLength < min) {
    return `${formatCidr(range)} is too wide: an overlay network must be /${min} or narrower for IPv${range.family} (wider is a default route in all but name)`;
  }
  const hit = RESERVED_RANGES.find((r) => cidrOverlaps(r.range, range));
  if (hit) return `${formatCidr(range)} overlaps ${hit.what}, which cannot carry container addresses`;
  return undefined;
}

/**
 * Refuses a network whose range networkRangeProblem rejects. Only ranges
 * being written anew are judged: a network stored with the same range
 * before these rules existed keeps working (the rules are not in
 * validateClusterConfig, which every read of the config runs), and is
 * refused only if it is re-added with a changed range.
 */
function checkNewRanges(config: ClusterConfig, current: KeyValue | undefined): void {
  let stored: ClusterConfig['networks'] = [];
  if (current) {
    try {
      stored = validateClusterConfig(JSON.parse(current.value)).networks;
    } catch {
      stored = []; // an unreadable stored config: judge every network
    }
  }
  config.networks.forEach((n, i) => {
    if (stored.some((o) => o.cidr === n.cidr)) return;
    const problem = networkRangeProblem(parseCidr(n.cidr));
    if (problem) throw new ClusterConfigError(`networks[${i}].cidr`, problem);
  });
}

/** Puts `config` if CONFIG_KEY is still `current` (absent: still absent); null when it changed. Refuses to orphan a lease. */
async function saveIfUnchanged(store: Store, config: ClusterConfig, current: KeyValue | undefined): Promise<{ config: ClusterConfig; revision: number } | null> {
  checkNewRanges(config, current);
  const before = await findOrphans(store, config);
  if (before.length > 0) throw new OrphanedLeasesError(before);
  const res = await store.txn(
    [{ key: CONFIG_KEY, target: 'modRevision', op: '==', modRevision: current?.modRevision ?? 0 }],
    [{ type: 'put', key: CONFIG_KEY, value: JSON.stringify(config) }],
  );
  if (!res.succeeded) return null;
  const after = await findOrphans(store, config);
  if (after.length === 0) return { config, revision: res.revision };
  await store.txn(
    [{ key: CONFIG_KEY, target: 'modRevision', op: '==', modRevision: res.revision }],
    current ? [{ type: 'put', key: CONFIG_KEY, value: current.value }] : [{ type: 'delete', key: CONFIG_KEY }],
  );
  throw new OrphanedLeasesError(after);
}

export function findNetwork(config: ClusterConfig, name: string): NetworkConfig | undefined {
  return config.networks.find((n) => n.name === name);
}

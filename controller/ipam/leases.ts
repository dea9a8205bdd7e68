// The subnet lease manager: which host owns which subnet of a network. A
// narrow, flannel-like interface over Store; every claim is a
// compare-and-swap, so any number of controllers can allocate at once and
// never hand out one subnet twice.
import type { Compare, KeyValue, Store, TxnOp } from '../store/types';
import { type NetworkConfig, findNetwork, leaseMisfit, readClusterConfig } from './cluster-config';
import { LeaseContentionError, LeaseLostError, LeaseRequestError, PoolExhaustedError, UnknownNetworkError } from './errors';
import {
  CONFIG_KEY, LEASES_PREFIX, type LeaseRecord, decodeLeaseRecord, encodeLeaseRecord, isDnsLabel, isHostName,
  leaseHostKey, leaseKey, leasePrefix, parseLeaseKey,
} from './records';
import { type Cidr, CidrError, addressBits, cidrSize, formatCidr, parseCidr } from '../common/cidr';
import { candidateOrder, randomBelow, subnetAt, subnetCount, subnetToKey } from './subnets';

export type Lease = {
  network: string;
  /** e.g. "10.244.3.0/24" */
  subnet: string;
  host: string;
  datacenter?: string;
  /** ms since the epoch */
  acquiredAt: number;
  /** ms since the epoch; after this plus the grace period the leader may reclaim it */
  expiresAt: number;
  /** modRevision of the lease key: the store revision of the last claim or renewal */
  revision: number;
};

export type AcquireRequest = { network: string; host: string; datacenter?: string };
export type LeaseRef = { network: string; subnet: string; host: string };

export type LeaseOptions = {
  /** Clock (ms since the epoch); injectable so tests need not sleep through TTLs. */
  now?: () => number;
  /** Uniform [0, 1); injectable for reproducible candidate orders. */
  random?: () => number;
  /** Failed compare-and-swaps tolerated per call before giving up (default 1000). */
  maxConflicts?: number;
};

export type LeaseEvent = { type: 'added' | 'renewed' | 'removed'; lease: Lease };

function toLease(network: string, subnet: Cidr, rec: LeaseRecord, revision: number): Lease {
  const lease: Lease = { network, subnet: formatCidr(subnet), host: rec.host, acquiredAt: rec.acquiredAt, expiresAt: rec.expiresAt, revision };
  if (rec.datacenter !== undefined) lease.datacenter = rec.datacenter;
  return lease;
}

function checkRequest(r: { network: unknown; host: unknown; datacenter?: unknown }): void {
  if (!isDnsLabel(r.network)) throw new LeaseRequestError(`invalid network name ${JSON.stringify(r.network)} (must be a DNS label)`);
  if (!isHostName(r.host)) {
    throw new LeaseRequestError(`invalid host name ${JSON.stringify(r.host)} (1-253 of A-Z, a-z, 0-9, ".", "_", "-"; starting and ending alphanumeric)`);
  }
  if (r.datacenter !== undefined && !isDnsLabel(r.datacenter)) {
    throw new LeaseRequestError(`invalid datacenter name ${JSON.stringify(r.datacenter)} (must be a DNS label)`);
  }
}

function parseSubnetArg(network: string, subnet: unknown): Cidr {
  try {
    return parseCidr(subnet as string);
  } catch (err) {
    if (err instanceof CidrError) throw new LeaseRequestError(`invalid subnet for network "${network}": ${err.message}`);
    throw err;
  }
}

/** The range a host draws from: its datacenter's pool when the network has pools, else the whole network. */
function poolFor(net: NetworkConfig, datacenter: string | undefined): { range: Cidr; datacenter?: string } {
  if (!net.datacenterPools) return { range: parseCidr(net.cidr) };
  const dcs = Object.keys(net.datacenterPools);
  if (datacenter === undefined) {
    throw new LeaseRequestError(`network "${net.name}" allocates per datacenter (${dcs.join(', ')}): the request must name the host's datacenter`);
  }
  const pool = net.datacenterPools[datacenter];
  if (pool === undefined) throw new LeaseRequestError(`network "${net.name}" has no pool for datacenter "${datacenter}" (pools: ${dcs.join(', ')})`);
  return { range: parseCidr(pool), datacenter };
}

/** Indices of the pool's host subnets that a stored lease occupies (normally exactly one). */
function occupiedIndices(pool: Cidr, hostPrefixLength: number, s: Cidr): bigint[] {
  if (s.family !== pool.family) return [];
  const size = 1n << BigInt(addressBits(pool.family) - hostPrefixLength);
  const poolEnd = pool.base + cidrSize(pool);
  const sEnd = s.base + cidrSize(s);
  const lo = s.base > pool.base ? s.base : pool.base;
  const hi = sEnd < poolEnd ? sEnd : poolEnd;
  if (lo >= hi) return [];
  const out: bigint[] = [];
  // A lease of another length (left by an older config) blocks every subnet it touches.
  for (let i = (lo - pool.base) / size; i * size + pool.base < hi; i++) out.push(i);
  return out;
}

/** Random claims tried before listing the pool's leases. */
const BLIND_CLAIMS = 2;

const cmpModRev = (key: string, modRevision: number): Compare => ({ key, target: 'modRevision', op: '==', modRevision });

/** What one acquireLease call works with, across its attempts. */
type AcquireContext = {
  store: Store;
  req: AcquireRequest;
  now: () => number;
  random: () => number;
  /** Counts one failed compare-and-swap; throws LeaseContentionError once the call has had too many. */
  conflict: () => void;
};

/** What one attempt read from the store: every write it makes compares against these revisions. */
type Attempt = {
  net: NetworkConfig;
  pool: { range: Cidr; datacenter?: string };
  hostKey: string;
  /** modRevision of the host index; 0 when the host has none */
  hostRev: number;
  configRev: number;
  ttlMs: number;
  acquiredAt: number;
};

/** The attempt's view of the store is stale (another controller leased for this host, or the config changed): read it again. */
type Reread = 'reread';

/** A claim's outcome: the lease if it won, 'taken' if another host has the subnet, 'reread' if the attempt's view is stale. */
type ClaimOutcome = Lease | 'taken' | Reread;

/** The host's own lease, found through the host index. */
type HeldLease = { kv: KeyValue; rec: LeaseRecord; subnet: Cidr };

function contentionBudget(req: AcquireRequest, maxConflicts: number): () => void {
  let conflicts = 0;
  return () => {
    if (++conflicts > maxConflicts) {
      throw new LeaseContentionError(`gave up leasing a subnet of network "${req.network}" for host "${req.host}" after ${conflicts} conflicting writes`);
    }
  };
}

/**
 * Lease a subnet of `network` for `host`. Sticky: a host that holds a lease
 * there (even expired, until reclaimed) gets the same subnet back, renewed.
 * Otherwise a free subnet of the host's pool is claimed by compare-and-swap,
 * trying candidates in a random order so concurrent controllers rarely
 * collide, and re-reading the store when the config or the host's own
 * lease changed underneath.
 */
export async function acquireLease(store: Store, req: AcquireRequest, opts: LeaseOptions = {}): Promise<Lease> {
  checkRequest(req);
  const ctx: AcquireContext = {
    store,
    req,
    now: opts.now ?? Date.now,
    random: opts.random ?? Math.random,
    conflict: contentionBudget(req, opts.maxConflicts ?? 1000),
  };
  // Unbounded here: every reread follows a failed compare-and-swap, which
  // spends the call's budget, so contention ends in LeaseContentionError.
  for (;;) {
    const lease = await tryAcquireLease(ctx);
    if (lease !== 'reread') return lease;
  }
}

/** One attempt from a fresh read of the store: renew the host's own lease if it still fits, else claim a free subnet. */
async function tryAcquireLease(ctx: AcquireContext): Promise<Lease | Reread> {
  const { store, req } = ctx;
  const hostKey = leaseHostKey(req.network, req.host);
  const [{ config, modRevision: configRev }, index] = await Promise.all([readClusterConfig(store), store.get(hostKey)]);
  const net = findNetwork(config, req.network);
  if (!net) throw new UnknownNetworkError(req.network, config.networks.map((n) => n.name));
  const attempt: Attempt = {
    net,
    pool: poolFor(net, req.datacenter),
    hostKey,
    hostRev: index?.modRevision ?? 0,
    configRev,
    ttlMs: config.leaseTtlSeconds * 1000,
    acquiredAt: ctx.now(),
  };

  // Sticky path: the index names the host's subnet; renew it if it still fits.
  const held = index ? await heldLease(store, net.name, index.value, req.host) : undefined;
  if (held && leaseMisfit(net, held.subnet, req.datacenter) === undefined) return renewHeld(ctx, attempt, held);
  // No lease, or one outside the host's pool now (it moved datacenter): the
  // claim gives up the old subnet in the same write that takes the new one.
  return allocateSubnet(ctx, attempt, (i) => claimSubnet(ctx, attempt, i, held?.kv));
}

/** Extend the held lease by the TTL, provided neither it nor the host index changed since the attempt read them. */
async function renewHeld(ctx: AcquireContext, a: Attempt, held: HeldLease): Promise<Lease | Reread> {
  const renewed: LeaseRecord = { host: ctx.req.host, datacenter: ctx.req.datacenter, acquiredAt: held.rec.acquiredAt, expiresAt: ctx.now() + a.ttlMs };
  const res = await ctx.store.txn(
    [cmpModRev(held.kv.key, held.kv.modRevision), cmpModRev(a.hostKey, a.hostRev)],
    [{ type: 'put', key: held.kv.key, value: encodeLeaseRecord(renewed) }],
  );
  if (res.succeeded) return toLease(a.net.name, held.subnet, renewed, res.revision);
  ctx.conflict();
  return 'reread';
}

/**
 * One compare-and-swap on subnet i of the attempt's pool, writing the lease
 * and the host index together (and deleting `replace`, the host's old lease,
 * if given).
 */
async function claimSubnet(ctx: AcquireContext, a: Attempt, i: bigint, replace: KeyValue | undefined): Promise<ClaimOutcome> {
  const { store, req } = ctx;
  const subnet = subnetAt(a.pool.range, a.net.hostPrefixLength, i);
  const key = leaseKey(a.net.name, subnet);
  const rec: LeaseRecord = { host: req.host, datacenter: req.datacenter, acquiredAt: a.acquiredAt, expiresAt: ctx.now() + a.ttlMs };
  const compares: Compare[] = [
    { key, target: 'version', op: '==', version: 0 },
    cmpModRev(a.hostKey, a.hostRev),
    cmpModRev(CONFIG_KEY, a.configRev),
  ];
  const ops: TxnOp[] = [
    { type: 'put', key, value: encodeLeaseRecord(rec) },
    { type: 'put', key: a.hostKey, value: subnetToKey(subnet) },
  ];
  const failure: TxnOp[] = [{ type: 'get', key: a.hostKey }, { type: 'get', key: CONFIG_KEY }];
  if (replace) {
    compares.push(cmpModRev(replace.key, replace.modRevision));
    ops.push({ type: 'delete', key: replace.key });
    failure.push({ type: 'get', key: replace.key });
  }
  const res = await store.txn(compares, ops, failure);
  if (res.succeeded) return toLease(a.net.name, subnet, rec, res.revision);
  ctx.conflict();
  const [hostNow, configNow, replaceNow] = res.results;
  const stale =
    (hostNow?.modRevision ?? 0) !== a.hostRev ||
    (configNow?.modRevision ?? 0) !== a.configRev ||
    (replace !== undefined && (replaceNow?.modRevision ?? 0) !== replace.modRevision);
  // Stale: another controller leased for this host, or the config changed; start over from the store.
  return stale ? 'reread' : 'taken';
}

/**
 * Pick free subnets of the attempt's pool and claim them until one claim
 * wins. Blind tries first: in a pool that is mostly free a random subnet is
 * almost always free, and claiming it costs one write instead of listing
 * every lease (which grows with the cluster). Listing starts only once the
 * pool looks crowded. (A blind claim checks only its own key, so it relies
 * on every stored lease having the configured length, which
 * saveClusterConfig guarantees.)
 */
async function allocateSubnet(ctx: AcquireContext, a: Attempt, claim: (i: bigint) => Promise<ClaimOutcome>): Promise<Lease | Reread> {
  const count = subnetCount(a.pool.range, a.net.hostPrefixLength);
  for (let b = 0; b < BLIND_CLAIMS; b++) {
    const outcome = await claim(randomBelow(count, ctx.random));
    if (outcome !== 'taken') return outcome;
  }

  const used = await occupiedSubnets(ctx.store, a.net, a.pool.range);
  for (const i of used.size >= count ? [] : candidateOrder(count, ctx.random)) {
    if (used.has(i)) continue;
    const outcome = await claim(i);
    if (outcome !== 'taken') return outcome;
    used.add(i); // someone else won this subnet; try the next candidate
  }
  throw new PoolExhaustedError({
    network: a.net.name,
    pool: formatCidr(a.pool.range),
    datacenter: a.pool.datacenter,
    hostPrefixLength: a.net.hostPrefixLength,
    inUse: used.size,
  });
}

/** The lease the host index points at, if it is readable and names this host. */
async function heldLease(store: Store, network: string, segment: string, host: string): Promise<HeldLease | undefined> {
  const kv = await store.get(leasePrefix(network) + segment);
  if (!kv) return undefined;
  let rec: LeaseRecord;
  try {
    rec = decodeLeaseRecord(kv.key, kv.value);
  } catch {
    return undefined; // unreadable: not provably ours, leave it for the operator and lease anew
  }
  if (rec.host !== host) return undefined;
  return { kv, rec, subnet: parseLeaseKey(kv.key).subnet };
}

/** Indices of the pool's host subnets that the network's stored leases occupy, from one listing. */
async function occupiedSubnets(store: Store, net: NetworkConfig, range: Cidr): Promise<Set<bigint>> {
  const { kvs } = await store.range(leasePrefix(net.name));
  const used = new Set<bigint>();
  for (const kv of kvs) {
    let s: Cidr;
    try {
      s = parseLeaseKey(kv.key).subnet;
    } catch {
      continue; // a foreign key under the prefix occupies no subnet we could name
    }
    for (const i of occupiedIndices(range, net.hostPrefixLength, s)) used.add(i);
  }
  return used;
}

async function readOwned(store: Store, ref: LeaseRef): Promise<{ kv: KeyValue; rec: LeaseRecord; subnet: Cidr } | { lost: string }> {
  const subnet = parseSubnetArg(ref.network, ref.subnet);
  const kv = await store.get(leaseKey(ref.network, subnet));
  if (!kv) return { lost: 'it was released or reclaimed' };
  const rec = decodeLeaseRecord(kv.key, kv.value);
  if (rec.host !== ref.host) return { lost: `it now belongs to host "${rec.host}"` };
  return { kv, rec, subnet };
}

/**
 * Extend the host's lease by the TTL (the heartbeat path). Compare-and-swap
 * on the key's modRevision, so a renewal racing a reclaim either lands
 * before it (and the reclaim backs off) or fails with LeaseLostError.
 */
export async function renewLease(store: Store, ref: LeaseRef, opts: LeaseOptions = {}): Promise<Lease> {
  checkRequest(ref);
  const now = opts.now ?? Date.now;
  const { config } = await readClusterConfig(store);
  if (!findNetwork(config, ref.network)) throw new UnknownNetworkError(ref.network, config.networks.map((n) => n.name));
  for (let attempt = 0; attempt < (opts.maxConflicts ?? 1000); attempt++) {
    const owned = await readOwned(store, ref);
    if ('lost' in owned) throw new LeaseLostError(ref.network, ref.subnet, ref.host, owned.lost);
    const rec: LeaseRecord = { ...owned.rec, expiresAt: now() + config.leaseTtlSeconds * 1000 };
    const res = await store.txn([cmpModRev(owned.kv.key, owned.kv.modRevision)], [{ type: 'put', key: owned.kv.key, value: encodeLeaseRecord(rec) }]);
    if (res.succeeded) return toLease(ref.network, owned.subnet, rec, res.revision);
  }
  throw new LeaseContentionError(`gave up renewing ${ref.subnet} in network "${ref.network}": the lease kept changing`);
}

/** Delete the lease key and, when it still points here, the host's index entry, in one write. */
async function deleteLease(store: Store, network: string, kv: KeyValue, host: string): Promise<boolean> {
  const hostKey = leaseHostKey(network, host);
  const index = await store.get(hostKey);
  const segment = kv.key.slice(leasePrefix(network).length);
  const compares = [cmpModRev(kv.key, kv.modRevision)];
  const ops: TxnOp[] = [{ type: 'delete', key: kv.key }];
  if (index && index.value === segment) {
    compares.push(cmpModRev(hostKey, index.modRevision));
    ops.push({ type: 'delete', key: hostKey });
  }
  return (await store.txn(compares, ops)).succeeded;
}

/** Give the subnet back. Idempotent: false when the host holds no such lease (already released, reclaimed, or another host's). */
export async function releaseLease(store: Store, ref: LeaseRef, opts: Pick<LeaseOptions, 'maxConflicts'> = {}): Promise<boolean> {
  checkRequest(ref);
  for (let attempt = 0; attempt < (opts.maxConflicts ?? 1000); attempt++) {
    const owned = await readOwned(store, ref);
    if ('lost' in owned) return false;
    if (await deleteLease(store, ref.network, owned.kv, ref.host)) return true;
  }
  throw new LeaseContentionError(`gave up releasing ${ref.subnet} in network "${ref.network}": the lease kept changing`);
}

/** Leases of one network (or all), sorted by key, with the revision to start a watch from (revision + 1). */
export async function listLeases(store: Store, network?: string): Promise<{ leases: Lease[]; revision: number }> {
  if (network !== undefined && !isDnsLabel(network)) throw new LeaseRequestError(`invalid network name ${JSON.stringify(network)} (must be a DNS label)`);
  const { kvs, revision } = await store.range(network === undefined ? LEASES_PREFIX : leasePrefix(network));
  const leases: Lease[] = [];
  for (const kv of kvs) {
    const l = tryDecode(kv);
    if (l) leases.push(l);
  }
  return { leases, revision };
}

/**
 * The host's lease in each of `networks`, found through the host index
 * (/weft/lease-hosts/<net>/<host>): two reads per network however many
 * leases the cluster holds, where listing them costs a read and a decode per
 * lease. A lease that no longer names the host (reclaimed and re-leased
 * since the index was read) is left out.
 */
export async function hostLeases(store: Store, host: string, networks: string[]): Promise<Lease[]> {
  if (!isHostName(host)) throw new LeaseRequestError(`invalid host name ${JSON.stringify(host)}`);
  const found = await Promise.all(networks.map(async (network) => {
    if (!isDnsLabel(network)) throw new LeaseRequestError(`invalid network name ${JSON.stringify(network)} (must be a DNS label)`);
    const index = await store.get(leaseHostKey(network, host));
    const kv = index && (await store.get(leasePrefix(network) + index.value));
    const lease = kv && tryDecode(kv);
    return lease && lease.host === host ? lease : undefined;
  }));
  return found.filter((l): l is Lease => l !== undefined);
}

/** The lease stored at `kv`; throws when the key or the record is malformed. */
function decodeLease(kv: KeyValue): Lease {
  const { network, subnet } = parseLeaseKey(kv.key);
  return toLease(network, subnet, decodeLeaseRecord(kv.key, kv.value), kv.modRevision);
}

function tryDecode(kv: KeyValue): Lease | undefined {
  try {
    return decodeLease(kv);
  } catch {
    return undefined;
  }
}

export type ReclaimResult = {
  /** Leases deleted because they expired more than the grace period ago. */
  reclaimed: Lease[];
  /** Keys under /weft/leases/ that could not be read; left alone (they keep their subnet) for an operator to inspect. */
  malformed: Array<{ key: string; error: Error }>;
};

/**
 * Delete every lease whose expiry lies more than reclaimGraceSeconds before
 * `now`. Run by the elected leader only. A lease renewed while we decide
 * survives: each delete compares the modRevision we judged. A host whose
 * lease was reclaimed simply acquires again (maybe a different subnet).
 *
 * The leader should wait at least one TTL after winning the election before
 * the first run: leases may have lapsed only because no controller was
 * there to take heartbeats.
 */
export async function reclaimExpired(store: Store, now: number = Date.now()): Promise<ReclaimResult> {
  const { config } = await readClusterConfig(store);
  const graceMs = config.reclaimGraceSeconds * 1000;
  const { kvs } = await store.range(LEASES_PREFIX);
  const result: ReclaimResult = { reclaimed: [], malformed: [] };
  for (const kv of kvs) {
    let lease: Lease;
    try {
      lease = decodeLease(kv);
    } catch (err) {
      result.malformed.push({ key: kv.key, error: err as Error });
      continue;
    }
    if (lease.expiresAt + graceMs > now) continue;
    if (await deleteLease(store, lease.network, kv, lease.host)) result.reclaimed.push(lease);
  }
  return result;
}

/**
 * Lease changes as they happen: 'added' for a new claim, 'renewed' for a
 * renewal or sticky re-acquire, 'removed' for a release or reclaim. Start
 * from listLeases()'s revision + 1 to miss nothing.
 */
export async function* watchLeases(
  store: Store,
  opts: { network?: string; fromRevision?: number; signal?: AbortSignal } = {},
): AsyncGenerator<{ events: LeaseEvent[]; revision: number }> {
  if (opts.network !== undefined && !isDnsLabel(opts.network)) {
    throw new LeaseRequestError(`invalid network name ${JSON.stringify(opts.network)} (must be a DNS label)`);
  }
  const prefix = opts.network === undefined ? LEASES_PREFIX : leasePrefix(opts.network);
  for await (const batch of store.watch(prefix, { fromRevision: opts.fromRevision, prevKv: true, signal: opts.signal })) {
    const events: LeaseEvent[] = [];
    for (const ev of batch.events) {
      if (ev.type === 'put') {
        const lease = tryDecode(ev.kv);
        // version 1 is the first write since the key (re)appeared: a new claim.
        if (lease) events.push({ type: ev.kv.version === 1 ? 'added' : 'renewed', lease });
      } else {
        const before = ev.prevKv ? tryDecode(ev.prevKv) : undefined;
        if (before) {
          events.push({ type: 'removed', lease: { ...before, revision: ev.kv.modRevision } });
          continue;
        }
        try {
          const { network, subnet } = parseLeaseKey(ev.kv.key);
          events.push({ type: 'removed', lease: { network, subnet: formatCidr(subnet), host: '', acquiredAt: 0, expiresAt: 0, revision: ev.kv.modRevision } });
        } catch {
          /* not a lease key */
        }
      }
    }
    if (events.length > 0) yield { events, revision: batch.revision };
  }
}

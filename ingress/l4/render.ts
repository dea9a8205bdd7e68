// What the L4 kernel path wants in its nf_tables table, as data: chains with
// their rules (nft text, each tagged with a hash of itself), maps with their
// declarations and elements. Pure: the programmer lists the kernel, diffs
// against this and sends only the difference.
//
// Layout of the table (family ip):
//   prerouting / output (nat, dstnat): `ip daddr . tcp dport vmap @tcp_svc`
//     and `fib daddr type local tcp dport vmap @tcp_any` (same for udp);
//     a service port is one element of tcp_svc per listen address, or one of
//     tcp_any when the ingress listens on every local address, and it jumps
//     to the chain of the service's class;
//   lb_<proto>_<M>_<flow|ip>_<P>: one chain per class (protocol, table size
//     M, affinity) and range of 64 ports from P, shared by the class's
//     service ports in that range: marks the flow and DNATs it to
//     `tcp dport . jhash ip saddr [. tcp sport] mod M seed S map @be_<same suffix>`;
//   be_<...>: the class's backend map, keyed `port . bucket`: M elements per
//     service port, bucket -> backend `ipv4_addr . inet_service`, filled from
//     the Maglev table (ingress/balance/maglev.ts);
//   postrouting (nat, srcnat): takes the mark off, and masquerades when
//     sourceNat is 'masquerade'.
// The number of chains and sets depends on the classes and port ranges in
// use (at most 1024 per class), not on the number of services: the kernel finds a set by name by walking the table's
// set list for every element message, and walks every chain at each commit,
// so a layout of one chain and one map per service made one endpoint change
// cost in proportion to the services programmed. A service's elements in its
// class map are its "group" (`<map>:<port>`). Changing its size or affinity
// fills its group in the new class's map, switches its vmap element and
// deletes its old group in one transaction (make before break).
//
// The layout before this one (a chain svc_<proto>_<port>_<M>_<a> and a map
// be_<proto>_<port>_<M>_<a> per service port) is read as "legacy": its
// buckets are what the new groups are rebalanced from (so an upgrade moves no
// flow), and its chains and maps are deleted once the vmaps point at the new
// chains.
import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { InvalidArgumentError } from '../../controller/common/errors';
import { maglevRebalance, maglevSize, maglevTable } from '../balance/maglev';
import { endpointKey, type Endpoint } from '../model';
import { addrPortHex, decodeAddrPort, portHex, portKeyHex } from '../../dataplane/nftables/keys';

/**
 * One service port as sync() wants it. Immutable once handed to sync():
 * the programmer remembers the object (and its endpoints array) it last
 * programmed, and a later sync given the same reference skips that service
 * without looking inside, which is what keeps an update of 10,000 services
 * as cheap as one of a hundred. To change a service, pass a new object (or
 * at least a new endpoints array); mutating one in place goes unnoticed.
 */
export type L4Service = {
  readonly name: string;
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
  readonly affinity: 'none' | 'client-ip';
  readonly endpoints: readonly Endpoint[];
};
export type SourceNat = 'masquerade' | 'none';

/** Element key (hex) -> data (`v:<hex>` or `goto:<chain>`), as dataplane/nftables/wire.ts compares them. */
export type Elements = Map<string, string>;

export type DesiredChain = { decl: string; rules: string[]; comments: string[] };
/**
 * A backend map held compactly: bucket i maps to values[table[i]] (-1: no
 * element), plus keys found outside 0..M-1. Ten thousand services hold ten
 * million buckets; as Map entries they would make every garbage collection
 * walk them all, as typed arrays the collector skips them.
 */
export type Buckets = { values: string[]; table: Int32Array; extra: string[] };
export type DesiredMap = { decl: string; buckets: Buckets };

/** The bit of the packet mark that tells postrouting a flow was DNATed here (kube-proxy uses 0x4000/0x8000, Calico the top 16 bits). */
export const MASQ_MARK = 0x00200000;
const MARK = `0x${MASQ_MARK.toString(16).padStart(8, '0')}`;
/** jhash seed: fixed, so a restarted ingress hashes flows to the same buckets. */
export const HASH_SEED = 0x77656674;

const PROTOCOLS = ['tcp', 'udp'] as const;
const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

export function ruleComment(rule: string): string {
  return `w:${createHash('sha1').update(rule).digest('hex').slice(0, 16)}`;
}

function chain(decl: string, rules: string[]): DesiredChain {
  return { decl, rules, comments: rules.map(ruleComment) };
}

// One string per bucket number, shared by every map: 10,000 services of
// 1009 buckets then hold 10 million references, not 10 million strings.
const bucketKeys: string[] = [];

/** A jhash result as the map key: a 32-bit integer in host byte order (little-endian here). */
export function bucketHex(i: number): string {
  let k = bucketKeys[i];
  if (k === undefined) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(i);
    k = bucketKeys[i] = b.toString('hex');
  }
  return k;
}

/**
 * Service ports per class map (and chain): a class's ports are spread over
 * maps of this many consecutive ports. Few enough sets and chains that the
 * kernel's walks over them cost next to nothing (at most 1024 per class, 157
 * for 10,000 consecutive ports), and no map so big that reading it again (the
 * audit, after someone else's transaction) blocks the thread for long, nor
 * that its fixed-size hash table (see the map's declaration) weighs much
 * while few of its ports are in use.
 */
export const PORTS_PER_MAP = 64;

/**
 * chain and map: the service's class (shared with every service port of the
 * same protocol, size and affinity in the same range of PORTS_PER_MAP ports,
 * named by its first port); group: its elements in that map, as
 * `<map>:<port>`; prefix: the hex of the port half of their keys.
 */
export type ServiceNames = { chain: string; map: string; group: string; prefix: string };

export function serviceNames(protocol: string, port: number, size: number, affinity: 'none' | 'client-ip'): ServiceNames {
  const first = port - (port % PORTS_PER_MAP);
  const suffix = `${protocol}_${size}_${affinity === 'client-ip' ? 'ip' : 'flow'}_${first}`;
  return { chain: `lb_${suffix}`, map: `be_${suffix}`, group: `be_${suffix}:${port}`, prefix: portKeyHex(port) };
}

/** A class map's name: `be_<proto>_<M>_<ip|flow>_<first port>`. */
export const CLASS_MAP_RE = /^be_(tcp|udp)_(\d+)_(ip|flow)_(\d+)$/;
/** A per-service backend map of the legacy layout: `be_<proto>_<port>_<M>_<ip|flow>`. */
export const LEGACY_MAP_RE = /^be_(tcp|udp)_(\d+)_(\d+)_(ip|flow)$/;
const GROUP_RE = /^be_(tcp|udp)_(\d+)_(?:ip|flow)_\d+:(\d+)$/;

/** The table size each group says, per `<proto>:<port>` (the largest, should a port have two). */
export function programmedSizes(groups: Iterable<string>): Map<string, number> {
  const out = new Map<string, number>();
  for (const n of groups) {
    const m = GROUP_RE.exec(n);
    if (m) out.set(`${m[1]}:${m[3]}`, Math.max(out.get(`${m[1]}:${m[3]}`) ?? 0, Number(m[2])));
  }
  return out;
}

/** The group a legacy map becomes in the class layout. */
export function legacyGroup(mapName: string): { group: string; size: number } | undefined {
  const m = LEGACY_MAP_RE.exec(mapName);
  return m ? { group: serviceNames(m[1], Number(m[2]), Number(m[3]), m[4] === 'ip' ? 'client-ip' : 'none').group, size: Number(m[3]) } : undefined;
}

/** The port half of the keys of a group's elements. */
export function groupPrefix(group: string): string {
  return portKeyHex(Number(group.slice(group.indexOf(':') + 1)));
}

/** The map a group is held in. */
export function groupMap(group: string): string {
  return group.slice(0, group.indexOf(':'));
}

/**
 * The table size for n backends given the one programmed: kept while it
 * still gives each backend at least 50 slots and is not more than 8 times
 * what n needs, because a new size remaps nearly every new flow.
 */
export function chooseSize(current: number | undefined, n: number): number {
  const want = maglevSize(n);
  if (current && current >= want / 2 && current <= want * 8) return current;
  return want;
}

export function validateAddresses(addresses: readonly string[]): void {
  for (const a of addresses) {
    if (typeof a !== 'string' || !isIPv4(a)) throw new InvalidArgumentError(`L4 ingress: listen address "${String(a)}" is not an IPv4 address (IPv6 is not supported yet)`, { field: 'addresses' });
  }
}

export function validateTableName(name: string): void {
  if (!NAME_RE.test(name)) throw new InvalidArgumentError(`L4 ingress: table name "${name}" must be 1-64 letters, digits, "_", "." or "-"`, { field: 'table' });
}

function checkPort(what: string, p: unknown): void {
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) throw new InvalidArgumentError(`L4 ingress: ${what} ${String(p)} is not a port (1-65535)`, { field: 'port' });
}

/** A service port's identity as a number (no string to build per service per sync): the port, plus 65536 for UDP. */
export function serviceId(s: Pick<L4Service, 'protocol' | 'port'>): number {
  return s.protocol === 'udp' ? 65536 + s.port : s.port;
}

/** The checks of one service's own fields (not its endpoints, nor whether its port is taken twice). */
export function validateService(s: L4Service): void {
  if (!s || typeof s.name !== 'string' || s.name === '') throw new InvalidArgumentError('L4 ingress: a service has no name', { field: 'name' });
  if (!PROTOCOLS.includes(s.protocol)) throw new InvalidArgumentError(`L4 ingress: service ${s.name}: protocol "${String(s.protocol)}" is not tcp or udp`, { field: 'protocol' });
  if (s.affinity !== 'none' && s.affinity !== 'client-ip') throw new InvalidArgumentError(`L4 ingress: service ${s.name}: affinity "${String(s.affinity)}" is not none or client-ip`, { field: 'affinity' });
  checkPort(`service ${s.name}: port`, s.port);
  if (!Array.isArray(s.endpoints)) throw new InvalidArgumentError(`L4 ingress: service ${s.name}: endpoints is not a list`, { field: 'endpoints' });
}

export function portTaken(other: string, s: L4Service): InvalidArgumentError {
  return new InvalidArgumentError(`L4 ingress: services ${other} and ${s.name} both listen on ${s.protocol} port ${s.port}`, { field: 'port' });
}

/** The checks of a service's endpoints: run when they differ from the ones last programmed. */
export function validateEndpoints(s: L4Service): void {
  for (const e of s.endpoints) {
    if (!e || typeof e.ip !== 'string' || !isIPv4(e.ip)) throw new InvalidArgumentError(`L4 ingress: service ${s.name}: endpoint address "${String(e?.ip)}" is not IPv4`, { field: 'endpoints.ip' });
    checkPort(`service ${s.name}: endpoint ${e.ip} port`, e.port);
  }
}

/** Every input check, before anything is rendered or sent: a bad service fails the whole sync and the kernel keeps what it had. */
export function validateServices(services: readonly L4Service[]): void {
  const seen = new Map<number, string>();
  for (const s of services) {
    validateService(s);
    const other = seen.get(serviceId(s));
    if (other !== undefined) throw portTaken(other, s);
    seen.set(serviceId(s), s.name);
    validateEndpoints(s);
  }
}

export function baseChains(sourceNat: SourceNat): Map<string, DesiredChain> {
  const dnat = PROTOCOLS.flatMap((p) => [`ip daddr . ${p} dport vmap @${p}_svc`, `fib daddr type local ${p} dport vmap @${p}_any`]);
  const unmark = `meta mark & ${MARK} == ${MARK} meta mark set meta mark ^ ${MARK}`;
  return new Map([
    ['prerouting', chain('{ type nat hook prerouting priority dstnat; policy accept; }', dnat)],
    ['output', chain('{ type nat hook output priority -100; policy accept; }', dnat)],
    ['postrouting', chain('{ type nat hook postrouting priority srcnat; policy accept; }', [sourceNat === 'masquerade' ? `${unmark} masquerade` : unmark])],
  ]);
}

/** One service port's chain and backend map, memoised by the caller on `cacheKey`. */
export type RenderedService = {
  cacheKey: string;
  protocol: string;
  port: number;
  affinity: string;
  size: number;
  /** Sorted endpoint keys it was rendered from. */
  keys: string[];
  /** keys[i] split: compared in place of building `ip:port` strings again. */
  ips: string[];
  ports: number[];
  keyIndex?: Map<string, number>;
  /** The input last seen to render as this (sync() is handed immutable services): the same object next time is skipped unread. */
  input?: L4Service;
  /** Its elements in the vmaps: [map, key hex]. */
  vmapKeys: Array<[string, string]>;
  names: ServiceNames;
  chain: DesiredChain;
  map: DesiredMap;
};

export function serviceCacheKey(s: L4Service, size: number, keys: string[]): string {
  return `${s.protocol}|${s.port}|${s.affinity}|${size}|${keys.join(',')}`;
}

/**
 * True when `s` renders exactly as `r` did at `size`: compares the endpoints'
 * keys in place, allocating nothing, because a sync of 10,000 services must
 * skip the 9,999 that did not change for next to nothing.
 */
export function unchanged(r: RenderedService | undefined, s: L4Service, size: number): boolean {
  if (!r || r.size !== size || r.port !== s.port || r.protocol !== s.protocol || r.affinity !== s.affinity) return false;
  const eps = s.endpoints;
  if (eps.length !== r.keys.length) return false;
  let inOrder = true;
  for (let i = 0; i < eps.length && inOrder; i++) {
    const e = eps[i];
    if (!e || e.ip !== r.ips[i] || e.port !== r.ports[i]) inOrder = false;
  }
  if (inOrder) return true;
  // the same endpoints in another order: each key once, each one known
  r.keyIndex ??= new Map(r.keys.map((k, i) => [k, i]));
  if (seenStamp.length < eps.length) seenStamp = new Uint32Array(eps.length * 2);
  stamp = (stamp + 1) >>> 0 || 1;
  for (const e of eps) {
    const i = e ? r.keyIndex.get(e.key) : undefined;
    if (i === undefined || seenStamp[i] === stamp || e.ip !== r.ips[i] || e.port !== r.ports[i]) return false;
    seenStamp[i] = stamp;
  }
  return true;
}

let seenStamp = new Uint32Array(64);
let stamp = 0;

/** Sorted, distinct endpoint keys (ip:port) of a service; one pass when they come sorted (endpointsOf sorts them). */
export function endpointKeys(s: L4Service): string[] {
  const keys = new Array<string>(s.endpoints.length);
  let ordered = true;
  for (let i = 0; i < keys.length; i++) {
    const e = s.endpoints[i];
    keys[i] = endpointKey(e?.ip, e?.port);
    if (i > 0 && !(keys[i - 1] < keys[i])) ordered = false;
  }
  return ordered ? keys : [...new Set(keys)].sort();
}

function isPrime(m: number): boolean {
  if (m < 2) return false;
  if (m % 2 === 0) return m === 2;
  for (let d = 3; d * d <= m; d += 2) if (m % d === 0) return false;
  return true;
}

/** Slot -> endpoint key (`ip:port`) of programmed buckets; undefined for an empty slot or a value that is not an address . port. */
export function slotKeys(b: Buckets): Array<string | undefined> {
  const keyOf = b.values.map((v) => {
    const ap = decodeAddrPort(v);
    return ap && endpointKey(ap.ip, ap.port);
  });
  const out = new Array<string | undefined>(b.table.length);
  for (let i = 0; i < out.length; i++) out[i] = b.table[i] >= 0 ? keyOf[b.table[i]] : undefined;
  return out;
}

/**
 * The slot -> keys[i] table of a service. `programmed` is what its map (of the
 * same name, so the same size) holds now, in the kernel: the new table is
 * rebalanced from it, so surviving backends keep every slot they had and only
 * the slots that must move do (a fresh Maglev table would move ~2% more at
 * M ≈ 100·N). The kernel's map is the state: a restarted ingress continues
 * from it. Without one, or at a size that is not prime (not one weft
 * chooses), the plain Maglev table.
 */
export function serviceTable(keys: readonly string[], size: number, programmed?: Buckets): Int32Array {
  if (programmed && programmed.table.length === size && isPrime(size)) return maglevRebalance(slotKeys(programmed), keys);
  return maglevTable(keys, size);
}

export function renderService(s: L4Service, size: number, keys: string[], addresses: readonly string[] = [], programmed?: Buckets): RenderedService {
  const names = serviceNames(s.protocol, s.port, size, s.affinity);
  const hashed = s.affinity === 'client-ip' ? 'ip saddr' : `ip saddr . ${s.protocol} sport`;
  const seed = `0x${HASH_SEED.toString(16)}`;
  // the class's one rule: the destination port picks the service's group, the hash its bucket
  const rule = `meta l4proto ${s.protocol} meta mark set meta mark | ${MARK} dnat ip to ${s.protocol} dport . jhash ${hashed} mod ${size} seed ${seed} map @${names.map}`;
  const table = serviceTable(keys, size, programmed);
  const data = keys.map((k) => {
    const i = k.lastIndexOf(':');
    return `v:${addrPortHex(k.slice(0, i), Number(k.slice(i + 1)))}`;
  });
  return {
    cacheKey: serviceCacheKey(s, size, keys),
    protocol: s.protocol,
    port: s.port,
    affinity: s.affinity,
    size,
    keys,
    input: s,
    ips: keys.map((k) => k.slice(0, k.lastIndexOf(':'))),
    ports: keys.map((k) => Number(k.slice(k.lastIndexOf(':') + 1))),
    vmapKeys: addresses.length === 0 ? [[`${s.protocol}_any`, portHex(s.port)]] : addresses.map((a) => [`${s.protocol}_svc`, addrPortHex(a, s.port)]),
    names,
    chain: chain('', [rule]),
    map: {
      // the key is the port . a jhash result (a 32-bit integer; `typeof numgen` is how nft spells that type).
      // The size (M buckets for each port of the range, all it can hold) makes the kernel choose its
      // fixed-size hash: without one it takes the resizable rhashtable, whose dump, while a resize
      // runs after a big load, repeats some elements and skips others — a listing must be exact.
      decl: `{ typeof ${s.protocol} dport . numgen inc mod 2 : ip daddr . ${s.protocol} dport; size ${PORTS_PER_MAP * size}; }`,
      buckets: { values: data, table, extra: [] },
    },
  };
}

/** A bucket number from the last 8 hex digits of a key (a host-order u32), or -1. */
function bucketOfKey(k: string): number {
  if (k.length !== 8 && k.length !== 16) return -1;
  const o = k.length - 8;
  // little-endian: the last byte is the most significant
  return parseInt(k.slice(o + 6, o + 8) + k.slice(o + 4, o + 6) + k.slice(o + 2, o + 4) + k.slice(o, o + 2), 16);
}

type BucketsBuilder = { add(key: string, data: string): void; buckets: Buckets };

function bucketsBuilder(size: number): BucketsBuilder {
  const buckets: Buckets = { values: [], table: new Int32Array(size).fill(-1), extra: [] };
  const index = new Map<string, number>();
  return {
    buckets,
    add(k, v) {
      const i = bucketOfKey(k);
      if (!(i >= 0 && i < size)) {
        buckets.extra.push(k);
        return;
      }
      let x = index.get(v);
      if (x === undefined) {
        x = buckets.values.length;
        buckets.values.push(v);
        index.set(v, x);
      }
      buckets.table[i] = x;
    },
  };
}

/**
 * Elements listed from the kernel, as Buckets of a group of `size` buckets:
 * keys of a legacy map (a bucket, 8 hex digits) or of a class map (port .
 * bucket, 16). A key of neither form, or a bucket out of range, is `extra`.
 */
export function toBuckets(els: Iterable<[string, string]>, size: number): Buckets {
  const b = bucketsBuilder(size);
  for (const [k, v] of els) b.add(k, v);
  return b.buckets;
}

/**
 * Files the elements of a class map into its groups as they are read,
 * `<map>:<port>` -> buckets, each compact from the start: a class map can
 * hold ten million elements, which must never sit in one Map. Keys of
 * another length go to the group of port 0, which no service has, so they
 * are deleted.
 */
export function groupCollector(map: string, size: number): { add(key: string, data: string): void; groups: Map<string, Buckets> } {
  const byPort = new Map<number, BucketsBuilder>();
  const groups = new Map<string, Buckets>();
  return {
    groups,
    add(k, v) {
      const port = k.length === 16 ? parseInt(k.slice(0, 4), 16) : 0;
      let b = byPort.get(port);
      if (!b) {
        byPort.set(port, (b = bucketsBuilder(size)));
        groups.set(`${map}:${port}`, b.buckets);
      }
      b.add(k, v);
    },
  };
}

/** The elements of a class map, grouped by service port (groupCollector over a listing already in hand). */
export function splitGroups(map: string, els: Elements, size: number): Map<string, Buckets> {
  const c = groupCollector(map, size);
  for (const [k, v] of els) c.add(k, v);
  return c.groups;
}

export const NO_BUCKETS: Buckets = { values: [], table: new Int32Array(0), extra: [] };

/**
 * The bucket changes from `cur` (undefined: a new group) to `want`: keys to
 * delete, elements to add. `prefix` goes before each bucket's key (the
 * port's, in a class map); `extra` keys are whole keys already.
 */
export function diffBuckets(cur: Buckets | undefined, want: Buckets, prefix = ''): { del: Array<[string]>; add: Array<[string, string]> } {
  const del: Array<[string]> = [];
  const add: Array<[string, string]> = [];
  if (cur === want) return { del, add };
  if (cur) for (const k of cur.extra) del.push([k]);
  for (let i = 0; i < want.table.length; i++) {
    const w = want.values[want.table[i]];
    const ci = cur && i < cur.table.length ? cur.table[i] : -1;
    const c = ci >= 0 ? cur!.values[ci] : undefined;
    if (c === w) continue;
    if (c !== undefined) del.push([prefix + bucketHex(i)]);
    add.push([prefix + bucketHex(i), w]);
  }
  if (cur) for (let i = want.table.length; i < cur.table.length; i++) if (cur.table[i] >= 0) del.push([prefix + bucketHex(i)]);
  return { del, add };
}

export function vmapDecls(): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of PROTOCOLS) {
    out.set(`${p}_svc`, '{ type ipv4_addr . inet_service : verdict; }');
    out.set(`${p}_any`, '{ type inet_service : verdict; }');
  }
  return out;
}

/** The vmap elements that make a service port reachable: one per listen address, or one in the any-address map. */
export function vmapElements(r: RenderedService, into: Map<string, Elements>): void {
  const verdict = `goto:${r.names.chain}`;
  for (const [map, key] of r.vmapKeys) into.get(map)!.set(key, verdict);
}

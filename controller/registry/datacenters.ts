// Datacenter records at /weft/datacenters/<dc>: which hosts are the
// datacenter's WireGuard gateways, where the other datacenters reach them
// (WAN endpoints), and the options the operator set for the datacenter.
//
// WireGuard public keys are not here: each host registers its own (the
// private key never leaves it), and the host record is the one place it is
// kept; readers join the two (service/datacenter-view.ts).
//
// The rules a change must keep, checked when it is written:
// - a gateway is a registered host whose own record names this datacenter
//   and carries a WireGuard public key;
// - WAN endpoints are valid (api/validate checkWanEndpoint), outside every
//   weft network, and no two gateways share one, in any datacenter;
// - at least two gateways, so one can fail or be drained while the other
//   carries the traffic, unless the operator allowed a single gateway
//   (allowSingleGateway: a small site that accepts having no failover);
// - at least one gateway is active: draining the last one would leave the
//   datacenter unreachable, so it is refused (add another first).
// A gateway host that later leaves or moves to another datacenter is not
// removed behind the operator's back: it stays listed (with no key while it
// is gone) until `weft datacenter gateway remove`.
//
// Every change is a compare-and-swap on the datacenter record's revision and
// on the cluster config's (the WAN endpoint check read the networks), so two
// operators editing one datacenter at once both land or one is retried on
// top of the other, and none is lost behind a reported success. A change
// that gives a gateway a WAN endpoint also compares and moves one guard key
// (DATACENTERS_GUARD_KEY), so no two datacenters take one endpoint at once.
import { WeftError } from '../common/errors';
import { canonicalWanEndpoint, checkWanEndpoint } from '../api/validate';
import { loadClusterConfig } from '../ipam/cluster-config';
import { CONFIG_KEY } from '../ipam/records';
import type { Compare, Store, TxnOp } from '../store/types';
import { type HostRecord, decodeHost } from './hosts';
import { CAS_ATTEMPTS, listNamed, num, parseNamedRecord, str, strList } from './json';
import { RecordNotFoundError, RegistryContentionError } from './errors';
import { DATACENTERS_PREFIX, HOSTS_PREFIX, datacenterKey, hostKey, nameFromKey } from './keys';

export const GATEWAY_STATES = ['active', 'draining'] as const;
export type GatewayState = (typeof GATEWAY_STATES)[number];

export type GatewayRecord = {
  host: string;
  /** Canonical "ip:port" ("[ip]:port" for IPv6). */
  wanEndpoint: string;
  /** draining: keeps its tunnels for now but takes no new peers; the datacenter's other gateways carry its traffic. */
  state: GatewayState;
};

export type DatacenterRecord = {
  name: string;
  gateways: GatewayRecord[];
  /** WireGuard UDP port the gateways listen on. */
  listenPort: number;
  /** Tunnel MTU override; 0: derived from the underlay. */
  mtu: number;
  /** Encrypt host-to-host traffic inside the datacenter too (full mesh), not only between datacenters. */
  mesh: boolean;
  /** One gateway is enough; default: at least two. */
  allowSingleGateway: boolean;
};

/** WireGuard's customary port. */
export const DEFAULT_WG_LISTEN_PORT = 51820;
/** More gateways than this buys no failover, only peers on every other gateway. */
export const MAX_GATEWAYS = 16;

/** A datacenter of that name already exists (ALREADY_EXISTS). */
export class DatacenterExistsError extends WeftError {
  constructor(name: string) {
    super('WEFT_DATACENTER_EXISTS', `datacenter "${name}" already exists (change its gateways with weft datacenter gateway add|remove|drain, or delete it first)`);
    this.name = 'DatacenterExistsError';
  }
}

/** A change would break one of the gateway rules above (FAILED_PRECONDITION); `field` is the request field. */
export class GatewayRuleError extends WeftError {
  constructor(readonly field: string, message: string, code: 'WEFT_DATACENTER_GATEWAY' | 'WEFT_GATEWAY_LAST_ACTIVE' = 'WEFT_DATACENTER_GATEWAY') {
    super(code, `${field}: ${message}`);
    this.name = 'GatewayRuleError';
  }
}

/**
 * The change would leave a datacenter without an active gateway
 * (FAILED_PRECONDITION, weft-code WEFT_GATEWAY_LAST_ACTIVE). Its own code, so
 * a gateway rotating its key can tell "rotate without draining" from any
 * other refusal without reading the message.
 */
export class LastActiveGatewayError extends GatewayRuleError {
  constructor(field: string, message: string) {
    super(field, message, 'WEFT_GATEWAY_LAST_ACTIVE');
    this.name = 'LastActiveGatewayError';
  }
}

/** Hosts still name the datacenter and the delete was not forced (FAILED_PRECONDITION). */
export class DatacenterInUseError extends WeftError {
  constructor(name: string, readonly hosts: string[]) {
    const shown = hosts.slice(0, 5).join(', ') + (hosts.length > 5 ? `, and ${hosts.length - 5} more` : '');
    super(
      'WEFT_DATACENTER_IN_USE',
      `datacenter "${name}" still has ${hosts.length} registered host${hosts.length === 1 ? '' : 's'} (${shown}); ` +
        'their traffic to other datacenters would lose its gateways. Move or remove them first, or delete with force',
    );
    this.name = 'DatacenterInUseError';
  }
}

export function encodeDatacenter(d: DatacenterRecord): string {
  return JSON.stringify({
    name: d.name,
    gateways: d.gateways.map((g) => ({ host: g.host, wanEndpoint: g.wanEndpoint, state: g.state })),
    listenPort: d.listenPort,
    mtu: d.mtu,
    mesh: d.mesh,
    allowSingleGateway: d.allowSingleGateway,
  });
}

/**
 * Records written before a field existed read as its default. The first
 * form (gateways as host names beside a parallel wanEndpoints list, and a
 * copied wgPublicKeys list, now ignored: keys come from the host records)
 * reads as active gateways.
 */
export function decodeDatacenter(key: string, value: string): DatacenterRecord {
  const { name, r } = parseNamedRecord(DATACENTERS_PREFIX, key, value);
  const raw = Array.isArray(r.gateways) ? r.gateways : [];
  const legacyEndpoints = strList(r.wanEndpoints);
  const gateways: GatewayRecord[] = raw.flatMap((g: unknown, i: number): GatewayRecord[] => {
    if (typeof g === 'string') return [{ host: g, wanEndpoint: legacyEndpoints[i] ?? '', state: 'active' }];
    if (g === null || typeof g !== 'object') return [];
    const o = g as Record<string, unknown>;
    return [{ host: str(o.host), wanEndpoint: str(o.wanEndpoint), state: o.state === 'draining' ? 'draining' : 'active' }];
  });
  const listenPort = num(r.listenPort);
  return {
    name,
    gateways,
    listenPort: listenPort >= 1 && listenPort <= 65535 ? listenPort : DEFAULT_WG_LISTEN_PORT,
    mtu: num(r.mtu),
    mesh: r.mesh === true,
    allowSingleGateway: r.allowSingleGateway === true,
  };
}

export async function getDatacenter(store: Store, name: string): Promise<(DatacenterRecord & { modRevision: number }) | undefined> {
  const kv = await store.get(datacenterKey(name));
  return kv && { ...decodeDatacenter(kv.key, kv.value), modRevision: kv.modRevision };
}

export async function listDatacenters(store: Store): Promise<{ datacenters: DatacenterRecord[]; revision: number }> {
  const { records, revision } = await listNamed(store, DATACENTERS_PREFIX, decodeDatacenter);
  return { datacenters: records, revision };
}

// ---- the rules ----------------------------------------------------------------

/**
 * Every write that gives a gateway a WAN endpoint moves this key, and
 * compares it with what it read before looking at the other datacenters'
 * endpoints: two datacenters cannot both take one endpoint at once. Outside
 * DATACENTERS_PREFIX, so watchers of datacenters never see it.
 */
export const DATACENTERS_GUARD_KEY = '/weft/datacenter-endpoints-guard';

/** What the rules are checked against, read from the store just before the write. */
type Context = {
  networks: Array<{ name: string; cidr: string }>;
  configRevision: number;
  guardRevision: number;
  /** WAN endpoint -> the datacenter and gateway that have it, in every datacenter. */
  endpoints: Map<string, { dc: string; host: string }>;
};

async function readContext(store: Store): Promise<Context> {
  const kv = await store.get(CONFIG_KEY);
  const guard = await store.get(DATACENTERS_GUARD_KEY);
  // loadClusterConfig validates; the compare on the key's revision makes the write fail if the networks change meanwhile.
  const config = await loadClusterConfig(store);
  const endpoints = new Map<string, { dc: string; host: string }>();
  for (const d of (await listDatacenters(store)).datacenters) for (const g of d.gateways) endpoints.set(g.wanEndpoint, { dc: d.name, host: g.host });
  return {
    networks: config.networks.map((n) => ({ name: n.name, cidr: n.cidr })),
    configRevision: kv?.modRevision ?? 0,
    guardRevision: guard?.modRevision ?? 0,
    endpoints,
  };
}

async function readHost(store: Store, name: string): Promise<HostRecord | undefined> {
  const kv = await store.get(hostKey(name));
  if (!kv) return undefined;
  try {
    return decodeHost(kv.key, kv.value);
  } catch {
    return undefined; // unreadable: not a host anyone can tunnel to
  }
}

/**
 * The gateway `spec` would be in `dc`: its host must be registered in this
 * datacenter with a WireGuard key; its WAN endpoint is the one given, else
 * the one it has, else the host's underlay address and the listen port.
 */
async function resolveGateway(
  store: Store, dc: DatacenterRecord, spec: { host: string; wanEndpoint: string }, at: { host: string; wan: string }, ctx: Context, current?: GatewayRecord,
): Promise<GatewayRecord> {
  const host = await readHost(store, spec.host);
  if (!host) throw new GatewayRuleError(at.host, `host "${spec.host}" is not registered (a gateway must be a host that runs weft agent)`);
  if (host.datacenter !== dc.name) {
    throw new GatewayRuleError(
      at.host,
      `host "${spec.host}" is in datacenter ${host.datacenter ? `"${host.datacenter}"` : '"" (none)'}, not "${dc.name}" (its agent's --datacenter says where it is)`,
    );
  }
  if (host.wgPublicKey === '') throw new GatewayRuleError(at.host, `host "${spec.host}" registered no WireGuard public key; its agent must run with WireGuard keys`);
  let wan = spec.wanEndpoint || current?.wanEndpoint || '';
  let field = at.wan;
  if (wan === '') {
    const ip = host.underlayIp;
    wan = ip.includes(':') ? `[${ip}]:${dc.listenPort}` : `${ip}:${dc.listenPort}`;
    field = `${at.wan} (none given: the host's underlay address ${ip} and port ${dc.listenPort})`;
  }
  const problem = checkWanEndpoint(wan, field, ctx.networks);
  if (problem) throw new GatewayRuleError(field, problem.slice(field.length + 2));
  const wanEndpoint = canonicalWanEndpoint(wan);
  const holder = ctx.endpoints.get(wanEndpoint);
  if (holder && holder.dc !== dc.name) {
    throw new GatewayRuleError(field, `WAN endpoint ${wanEndpoint} is already gateway "${holder.host}"'s in datacenter "${holder.dc}"; every gateway needs its own`);
  }
  return { host: spec.host, wanEndpoint, state: 'active' };
}

/** The rules about the set of gateways as a whole; `field` is what the refused change came in by. */
function checkGatewaySet(dc: DatacenterRecord, field: string): void {
  const min = dc.allowSingleGateway ? 1 : 2;
  if (dc.gateways.length < min) {
    throw new GatewayRuleError(
      field,
      `datacenter "${dc.name}" would have ${dc.gateways.length} gateway${dc.gateways.length === 1 ? '' : 's'}; it needs at least ${min}` +
        (min === 2 ? ' so one can fail or be drained (add another first, or allow a single gateway)' : ''),
    );
  }
  if (dc.gateways.length > MAX_GATEWAYS) throw new GatewayRuleError(field, `datacenter "${dc.name}" would have ${dc.gateways.length} gateways (at most ${MAX_GATEWAYS})`);
  if (!dc.gateways.some((g) => g.state === 'active')) {
    throw new LastActiveGatewayError(field, `datacenter "${dc.name}" would have no active gateway and be unreachable from the others; add or activate another first`);
  }
  const seen = new Map<string, string>();
  for (const g of dc.gateways) {
    const other = seen.get(g.wanEndpoint);
    if (other !== undefined) throw new GatewayRuleError(field, `WAN endpoint ${g.wanEndpoint} is already gateway "${other}"'s`);
    seen.set(g.wanEndpoint, g.host);
  }
}

/** Puts `dc` if every compare holds; `claims`: it may take a WAN endpoint, so it is ordered against every other such write by the guard. */
async function commit(store: Store, dc: DatacenterRecord, compares: Compare[], claims?: Context): Promise<number | undefined> {
  const ops: TxnOp[] = [{ type: 'put', key: datacenterKey(dc.name), value: encodeDatacenter(dc) }];
  if (claims) ops.push({ type: 'put', key: DATACENTERS_GUARD_KEY, value: dc.name });
  const res = await store.txn(claims ? [...compares, cmpGuard(claims)] : compares, ops);
  return res.succeeded ? res.revision : undefined;
}

const cmpConfig = (ctx: Context): Compare => ({ key: CONFIG_KEY, target: 'modRevision', op: '==', modRevision: ctx.configRevision });
const cmpGuard = (ctx: Context): Compare => ({ key: DATACENTERS_GUARD_KEY, target: 'modRevision', op: '==', modRevision: ctx.guardRevision });

// ---- writes ------------------------------------------------------------------

export type DatacenterInput = Omit<DatacenterRecord, 'gateways'> & { gateways: Array<{ host: string; wanEndpoint: string }> };

/** Creates the datacenter; DatacenterExistsError when one of that name exists. */
export async function createDatacenter(store: Store, input: DatacenterInput): Promise<{ datacenter: DatacenterRecord; revision: number }> {
  const key = datacenterKey(input.name);
  for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
    if (await store.get(key)) throw new DatacenterExistsError(input.name);
    const ctx = await readContext(store);
    const dc: DatacenterRecord = { ...input, gateways: [] };
    for (const [i, spec] of input.gateways.entries()) {
      const at = `gateways[${i}]`;
      if (dc.gateways.some((g) => g.host === spec.host)) throw new GatewayRuleError(`${at}.host`, `host "${spec.host}" is listed twice`);
      dc.gateways.push(await resolveGateway(store, dc, spec, { host: `${at}.host`, wan: `${at}.wan_endpoint` }, ctx));
    }
    checkGatewaySet(dc, 'gateways');
    const revision = await commit(store, dc, [{ key, target: 'createRevision', op: '==', createRevision: 0 }, cmpConfig(ctx)], ctx);
    if (revision !== undefined) return { datacenter: dc, revision };
  }
  throw new RegistryContentionError(`datacenter "${input.name}": other writers kept winning after ${CAS_ATTEMPTS} attempts; retry`);
}

/**
 * Read-modify-write of one datacenter: `edit` gets the stored record (and
 * the context to check against) and returns the new one, which is saved only
 * if neither the record nor the cluster config changed since they were read;
 * otherwise the edit runs again on what the other writer saved.
 */
async function updateDatacenter(
  store: Store, name: string, edit: (dc: DatacenterRecord, ctx: Context) => Promise<DatacenterRecord>, opts: { claims: boolean },
): Promise<{ datacenter: DatacenterRecord; revision: number }> {
  const key = datacenterKey(name);
  for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
    const kv = await store.get(key);
    if (!kv) throw new RecordNotFoundError(`datacenter: no datacenter "${name}" (weft datacenter list shows them)`);
    const ctx = await readContext(store);
    const next = await edit(decodeDatacenter(kv.key, kv.value), ctx);
    const revision = await commit(store, next, [{ key, target: 'modRevision', op: '==', modRevision: kv.modRevision }, cmpConfig(ctx)], opts.claims ? ctx : undefined);
    if (revision !== undefined) return { datacenter: next, revision };
  }
  throw new RegistryContentionError(`datacenter "${name}": other writers kept winning after ${CAS_ATTEMPTS} attempts; retry`);
}

function gatewayIndex(dc: DatacenterRecord, host: string): number {
  const i = dc.gateways.findIndex((g) => g.host === host);
  if (i < 0) {
    throw new RecordNotFoundError(`host: "${host}" is not a gateway of datacenter "${dc.name}" (its gateways: ${dc.gateways.map((g) => g.host).join(', ') || 'none'})`);
  }
  return i;
}

/**
 * Adds `host` as an active gateway, or updates the gateway it already is:
 * the WAN endpoint given (empty keeps its own), and active again if it was draining.
 */
export function addGateway(store: Store, dc: string, spec: { host: string; wanEndpoint: string }) {
  return updateDatacenter(store, dc, async (cur, ctx) => {
    const i = cur.gateways.findIndex((g) => g.host === spec.host);
    const gw = await resolveGateway(store, cur, spec, { host: 'host', wan: 'wan_endpoint' }, ctx, i >= 0 ? cur.gateways[i] : undefined);
    const gateways = i >= 0 ? cur.gateways.map((g, j) => (j === i ? gw : g)) : [...cur.gateways, gw];
    const next = { ...cur, gateways };
    checkGatewaySet(next, spec.wanEndpoint ? 'wan_endpoint' : 'host');
    return next;
  }, { claims: true });
}

export function removeGateway(store: Store, dc: string, host: string) {
  return updateDatacenter(store, dc, async (cur) => {
    const i = gatewayIndex(cur, host);
    const next = { ...cur, gateways: cur.gateways.filter((_, j) => j !== i) };
    checkGatewaySet(next, 'host');
    return next;
  }, { claims: false });
}

/** Draining an already draining gateway changes nothing and is not an error. */
export function drainGateway(store: Store, dc: string, host: string) {
  return updateDatacenter(store, dc, async (cur) => {
    const i = gatewayIndex(cur, host);
    const next: DatacenterRecord = { ...cur, gateways: cur.gateways.map((g, j) => (j === i ? { ...g, state: 'draining' } : g)) };
    checkGatewaySet(next, 'host');
    return next;
  }, { claims: false });
}

/**
 * A gateway host sets its own entries (in every datacenter that lists it;
 * normally the one its record names) to `state`, under the same rules as an
 * operator's drain and add: the last active gateway cannot be drained
 * (LastActiveGatewayError, nothing written). Key rotation drains before the
 * key changes and activates after. Returns the datacenters whose entry is now
 * in that state (none: the host is no gateway), and the store revision.
 */
export async function setOwnGatewayState(
  store: Store, host: string, state: GatewayState,
): Promise<{ datacenters: string[]; revision: number }> {
  const listing = (await listDatacenters(store)).datacenters.filter((d) => d.gateways.some((g) => g.host === host));
  const withState = (cur: DatacenterRecord): DatacenterRecord => {
    const i = gatewayIndex(cur, host);
    if (cur.gateways[i].state === state) return cur;
    const next: DatacenterRecord = { ...cur, gateways: cur.gateways.map((g, j) => (j === i ? { ...g, state } : g)) };
    checkGatewaySet(next, 'state');
    return next;
  };
  // Every datacenter is checked before any is written, so a refusal writes nothing (each write checks again).
  for (const d of listing) withState(d);
  const done: string[] = [];
  let revision = await store.revision();
  for (const d of listing) {
    if (withState(d) === d) {
      done.push(d.name); // already so: no write, no revision for watchers
      continue;
    }
    try {
      const r = await updateDatacenter(store, d.name, async (cur) => withState(cur), { claims: false });
      revision = r.revision;
    } catch (err) {
      // Removed from that datacenter since the listing: nothing to set there.
      if (err instanceof RecordNotFoundError) continue;
      throw err;
    }
    done.push(d.name);
  }
  return { datacenters: done, revision };
}

/** Registered hosts whose record names each datacenter: name -> host names, sorted. */
export async function hostsByDatacenter(store: Store): Promise<Map<string, string[]>> {
  const { kvs } = await store.range(HOSTS_PREFIX);
  const out = new Map<string, string[]>();
  for (const kv of kvs) {
    if (!nameFromKey(HOSTS_PREFIX, kv.key)) continue;
    let h: HostRecord;
    try {
      h = decodeHost(kv.key, kv.value);
    } catch {
      continue;
    }
    if (h.datacenter === '') continue;
    const list = out.get(h.datacenter) ?? [];
    list.push(h.name);
    out.set(h.datacenter, list);
  }
  for (const l of out.values()) l.sort();
  return out;
}

/**
 * Deletes the datacenter record. Refused (DatacenterInUseError) while
 * registered hosts name it, unless `force`. A host registering into the
 * datacenter at the same moment is not ordered against this (hosts name
 * their datacenter themselves); it then sits in a datacenter without a
 * record, which `weft datacenter list` shows as undeclared.
 */
export async function deleteDatacenter(store: Store, name: string, opts: { force?: boolean } = {}): Promise<{ deleted: boolean; revision: number }> {
  const key = datacenterKey(name);
  for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
    const kv = await store.get(key);
    if (!kv) return { deleted: false, revision: await store.revision() };
    if (!opts.force) {
      const hosts = (await hostsByDatacenter(store)).get(name) ?? [];
      if (hosts.length > 0) throw new DatacenterInUseError(name, hosts);
    }
    const res = await store.txn([{ key, target: 'modRevision', op: '==', modRevision: kv.modRevision }], [{ type: 'delete', key }]);
    if (res.succeeded) return { deleted: true, revision: res.revision };
  }
  throw new RegistryContentionError(`datacenter "${name}": other writers kept winning after ${CAS_ATTEMPTS} attempts; retry`);
}

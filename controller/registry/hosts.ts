// Host records at /weft/hosts/<name>: what other hosts need to reach this
// one over the overlay. Subnets are not here; they live in the IPAM leases.
import type { Compare, KeyValue, Store, TxnOp } from '../store/types';
import { HostConflictError, RecordNotFoundError, RegistryContentionError } from './errors';
import { CAS_ATTEMPTS, num, parseNamedRecord, str } from './json';
import { HOST_STATUS_PREFIX, HOSTS_PREFIX, hostIndexKey, hostKey, hostStatusKey, nameFromKey } from './keys';
import { type TunnelReportRecord, decodeTunnelReport } from './tunnel-reports';

export type HostRecord = {
  name: string;
  underlayIp: string;
  vtepMac: string;
  rack: string;
  datacenter: string;
  wgPublicKey: string;
  agentVersion: string;
  /** ms since the epoch. */
  lastHeartbeat: number;
  /**
   * Raised by an operator to ask the host to rotate its WireGuard key
   * (requestKeyRotation); absent or 0: never asked. Kept across
   * re-registration, so a re-registering agent is not asked again.
   */
  wgKeyRotation?: number;
};

export function encodeHost(h: HostRecord): string {
  return JSON.stringify({
    name: h.name, underlayIp: h.underlayIp, vtepMac: h.vtepMac, rack: h.rack, datacenter: h.datacenter,
    wgPublicKey: h.wgPublicKey, agentVersion: h.agentVersion, lastHeartbeat: h.lastHeartbeat,
    ...(h.wgKeyRotation ? { wgKeyRotation: h.wgKeyRotation } : {}),
  });
}

export function decodeHost(key: string, value: string): HostRecord {
  const { name, r } = parseNamedRecord(HOSTS_PREFIX, key, value);
  return {
    name, underlayIp: str(r.underlayIp), vtepMac: str(r.vtepMac), rack: str(r.rack), datacenter: str(r.datacenter),
    wgPublicKey: str(r.wgPublicKey), agentVersion: str(r.agentVersion), lastHeartbeat: num(r.lastHeartbeat),
    ...(num(r.wgKeyRotation) > 0 ? { wgKeyRotation: num(r.wgKeyRotation) } : {}),
  };
}

/**
 * Writes the record as it is, without the uniqueness index: for fixtures and
 * tools that arrange a store. Hosts register through registerHost.
 */
export async function putHost(store: Store, h: HostRecord): Promise<{ revision: number }> {
  const { revision } = await store.put(hostKey(h.name), encodeHost(h));
  return { revision };
}

export async function getHost(store: Store, name: string): Promise<(HostRecord & { modRevision: number }) | undefined> {
  const kv = await store.get(hostKey(name));
  return kv && { ...decodeHost(kv.key, kv.value), modRevision: kv.modRevision };
}

/** One overlay reconcile's outcome on a host, as its agent reported it. */
export type OverlaySummary = {
  desired: number;
  programmed: number;
  failed: number;
  skipped: number;
  /** ms since the epoch, by the agent's clock. */
  reconciledAt: number;
  topologyRevision: number;
};

/**
 * What a host's agent last said about itself with a heartbeat, kept at
 * /weft/host-status/<name> (keys.ts HOST_STATUS_PREFIX): for operators, never
 * for the overlay.
 */
export type HostReport = {
  name: string;
  agentVersion: string;
  /** Absent until the agent has reconciled once. */
  overlay?: OverlaySummary;
  /** Its tunnels between datacenters; absent from agents that have none. */
  tunnel?: TunnelReportRecord;
  /** ms since the epoch, by the controller's clock: when the heartbeat arrived. */
  reportedAt: number;
};

export function encodeHostReport(r: HostReport): string {
  return JSON.stringify({ name: r.name, agentVersion: r.agentVersion, overlay: r.overlay, tunnel: r.tunnel, reportedAt: r.reportedAt });
}

export function decodeHostReport(key: string, value: string): HostReport {
  const { name, r } = parseNamedRecord(HOST_STATUS_PREFIX, key, value);
  const o = r.overlay !== null && typeof r.overlay === 'object' && !Array.isArray(r.overlay) ? (r.overlay as Record<string, unknown>) : undefined;
  const tunnel = decodeTunnelReport(r.tunnel);
  return {
    name, agentVersion: str(r.agentVersion), reportedAt: num(r.reportedAt),
    ...(tunnel && { tunnel }),
    ...(o && {
      overlay: {
        desired: num(o.desired), programmed: num(o.programmed), failed: num(o.failed), skipped: num(o.skipped),
        reconciledAt: num(o.reconciledAt), topologyRevision: num(o.topologyRevision),
      },
    }),
  };
}

/** Every readable host report by host name; an unreadable one is left out (the host shows as having reported nothing). */
export async function listHostReports(store: Store): Promise<Map<string, HostReport>> {
  const out = new Map<string, HostReport>();
  for (const kv of (await store.range(HOST_STATUS_PREFIX)).kvs) {
    if (nameFromKey(HOST_STATUS_PREFIX, kv.key) === undefined) continue;
    try {
      const r = decodeHostReport(kv.key, kv.value);
      out.set(r.name, r);
    } catch {
      // a hand-edited record: as if the agent had reported nothing
    }
  }
  return out;
}

/**
 * Records a heartbeat. A compare-and-swap, so a heartbeat racing a LeaveHost
 * cannot bring the host record back after it was deleted. A `report` is
 * written in the same transaction (one revision per heartbeat, as without).
 */
export async function touchHost(
  store: Store, name: string, now: number, report?: Omit<HostReport, 'name' | 'reportedAt'>,
): Promise<{ host: HostRecord; revision: number }> {
  const key = hostKey(name);
  for (let i = 0; i < CAS_ATTEMPTS; i++) {
    const kv = await store.get(key);
    if (!kv) throw new RecordNotFoundError(`host "${name}" is not registered (call RegisterHost first)`);
    const host = { ...decodeHost(key, kv.value), lastHeartbeat: now };
    const ops: TxnOp[] = [{ type: 'put', key, value: encodeHost(host) }];
    if (report) ops.push({ type: 'put', key: hostStatusKey(name), value: encodeHostReport({ ...report, name, reportedAt: now }) });
    const res = await store.txn([{ key, target: 'modRevision', op: '==', modRevision: kv.modRevision }], ops);
    if (res.succeeded) return { host, revision: res.revision };
  }
  throw new RegistryContentionError(`host record of "${name}" kept changing under concurrent writers`);
}

// ---- values unique among hosts ---------------------------------------------
//
// Every agent drops one of two hosts that claim the same VTEP MAC (or
// underlay address), so a host that registered another's would cut that host
// off the overlay. Each such value has an index key naming its holder
// (keys.ts hostIndexKey), created with compare-and-swap in the transaction
// that writes the host record, so of two hosts claiming a value at once
// exactly one commits. An index entry blocks only while it is true: if the
// host it names is gone, no longer has the value, or has been silent past
// `goneAfterMs` (the cluster has given it up: its leases are reclaimable),
// the value can be claimed, comparing that host's record too, so a holder
// that re-registers meanwhile wins.

/** The fields that must be unique, with their request (proto) names for messages and their index segment. */
const UNIQUE_HOST_FIELDS = [
  { field: 'vtepMac', wire: 'vtep_mac', index: 'vtep-mac' },
  { field: 'underlayIp', wire: 'underlay_ip', index: 'underlay-ip' },
  { field: 'wgPublicKey', wire: 'wg_public_key', index: 'wg-public-key' },
] as const;

type UniqueField = (typeof UNIQUE_HOST_FIELDS)[number];
type Claim = { f: UniqueField; value: string; key: string };

/**
 * The transaction that registers a host, with a compare on every key it was
 * planned from, so it commits only if the store still is as it was read.
 */
export type RegistrationPlan = { readonly compares: Compare[]; readonly ops: TxnOp[] };

export type RegisterHostOptions = {
  /** ms since the epoch. */
  now: number;
  /** A holder without a heartbeat for longer than this (ms) no longer blocks its values; absent: only a gone or changed holder frees them. */
  goneAfterMs?: number;
};

/** The unique values a record claims; an empty one (a host without WireGuard) claims nothing. */
function claimsOf(h: Pick<HostRecord, UniqueField['field']>): Claim[] {
  return UNIQUE_HOST_FIELDS.filter((f) => h[f.field] !== '').map((f) => ({ f, value: h[f.field], key: hostIndexKey(f.index, h[f.field]) }));
}

function tryDecodeHost(kv: KeyValue | undefined): HostRecord | undefined {
  if (!kv) return undefined;
  try {
    return decodeHost(kv.key, kv.value);
  } catch {
    return undefined; // an unreadable record is dropped by every watcher: it holds nothing
  }
}

const cmpModRev = (key: string, modRevision: number): Compare => ({ key, target: 'modRevision', op: '==', modRevision });

/** Whether `holder` (a record other than the registering host's) still keeps `claim`'s value from being taken. */
function blocks(holder: HostRecord | undefined, claim: Claim, opts: RegisterHostOptions): boolean {
  if (!holder || holder[claim.f.field] !== claim.value) return false;
  return opts.goneAfterMs === undefined || opts.now - holder.lastHeartbeat <= opts.goneAfterMs;
}

/**
 * The compares and writes that register `h`, read from the store as it is
 * now; throws HostConflictError when another host holds one of its values.
 * `read`: the host record `given` was derived from (a read-modify-write):
 * the write then commits only if the record is still that one, so a change
 * made after that read is not overwritten with the older values.
 */
async function planRegistration(store: Store, given: HostRecord, opts: RegisterHostOptions, read?: { kv: KeyValue }): Promise<RegistrationPlan> {
  const key = hostKey(given.name);
  const current = read ? read.kv : await store.get(key);
  // A registration says nothing of key rotation requests: the stored one stays.
  const kept = tryDecodeHost(current)?.wgKeyRotation;
  const h: HostRecord = given.wgKeyRotation === undefined && kept ? { ...given, wgKeyRotation: kept } : given;
  const compares: Compare[] = [cmpModRev(key, current?.modRevision ?? 0)];
  const ops: TxnOp[] = [{ type: 'put', key, value: encodeHost(h) }];
  const wanted = claimsOf(h);
  let others: HostRecord[] | undefined;
  for (const c of wanted) {
    const idx = await store.get(c.key);
    if (idx?.value === h.name) {
      compares.push(cmpModRev(c.key, idx.modRevision));
      continue;
    }
    if (idx) {
      const holderKv = await store.get(hostKey(idx.value));
      if (blocks(tryDecodeHost(holderKv), c, opts)) throw new HostConflictError(c.f.wire, c.value, idx.value);
      // A stale entry: taken over only if neither it nor the host it names changes before we commit.
      compares.push(cmpModRev(c.key, idx.modRevision), cmpModRev(hostKey(idx.value), holderKv?.modRevision ?? 0));
    } else {
      // No entry: hosts registered before the index existed hold values without one, so look at the records.
      others ??= (await store.range(HOSTS_PREFIX)).kvs
        .filter((kv) => nameFromKey(HOSTS_PREFIX, kv.key) !== undefined && kv.key !== key)
        .map(tryDecodeHost)
        .filter((r): r is HostRecord => r !== undefined);
      const holder = others.find((o) => blocks(o, c, opts));
      if (holder) throw new HostConflictError(c.f.wire, c.value, holder.name);
      compares.push(cmpModRev(c.key, 0));
    }
    ops.push({ type: 'put', key: c.key, value: h.name });
  }
  // Values this host gives up are freed with the same write.
  const old = tryDecodeHost(current);
  for (const c of old ? claimsOf(old) : []) {
    if (wanted.some((w) => w.key === c.key)) continue;
    const idx = await store.get(c.key);
    if (idx?.value !== h.name) continue;
    compares.push(cmpModRev(c.key, idx.modRevision));
    ops.push({ type: 'delete', key: c.key });
  }
  return { compares, ops };
}

/**
 * Throws HostConflictError if registering `h` now would be refused; writes
 * nothing (a cheap early refusal, registerHost decides). The plan it returns
 * is registerHost's first attempt, so the store is not read twice for it.
 */
export function checkHostClaims(store: Store, h: HostRecord, opts: RegisterHostOptions): Promise<RegistrationPlan> {
  return planRegistration(store, h, opts);
}

/**
 * Creates or replaces the host record, claiming its VTEP MAC, underlay
 * address and WireGuard key in the same transaction (HostConflictError when
 * another host holds one) and freeing the values it no longer has.
 */
export async function registerHost(
  store: Store, h: HostRecord, opts: RegisterHostOptions, first?: RegistrationPlan,
): Promise<{ revision: number }> {
  for (let i = 0; i < CAS_ATTEMPTS; i++) {
    // `first` (checkHostClaims' plan for this same record) commits on the
    // same terms as a fresh plan: its compares fail if the record or an index
    // entry it read has changed since, and then the next attempt reads again.
    const { compares, ops } = (i === 0 && first) || (await planRegistration(store, h, opts));
    const res = await store.txn(compares, ops);
    if (res.succeeded) return { revision: res.revision };
  }
  throw new RegistryContentionError(`host record of "${h.name}" or the hosts holding its values kept changing under concurrent writers`);
}

/** Deletes the host record and, in the same write, the index entries that name it. */
export async function deleteHost(store: Store, name: string): Promise<{ deleted: boolean; revision: number }> {
  const key = hostKey(name);
  for (let i = 0; i < CAS_ATTEMPTS; i++) {
    const kv = await store.get(key);
    if (!kv) return { deleted: false, revision: await store.revision() };
    const compares: Compare[] = [cmpModRev(key, kv.modRevision)];
    // the agent's last report goes with the record: a host joining again under the name starts without one
    const ops: TxnOp[] = [{ type: 'delete', key }, { type: 'delete', key: hostStatusKey(name) }];
    const rec = tryDecodeHost(kv);
    // An unreadable record's entries stay behind; they name a host that no longer exists, so they block nobody.
    for (const c of rec ? claimsOf(rec) : []) {
      const idx = await store.get(c.key);
      if (idx?.value !== name) continue;
      compares.push(cmpModRev(c.key, idx.modRevision));
      ops.push({ type: 'delete', key: c.key });
    }
    const res = await store.txn(compares, ops);
    if (res.succeeded) return { deleted: true, revision: res.revision };
  }
  throw new RegistryContentionError(`host record of "${name}" kept changing under concurrent writers`);
}

/** Every readable host record, sorted by name. */
export async function listHosts(store: Store): Promise<HostRecord[]> {
  const { kvs } = await store.range(HOSTS_PREFIX);
  return kvs.filter((kv) => nameFromKey(HOSTS_PREFIX, kv.key) !== undefined).map(tryDecodeHost).filter((r): r is HostRecord => r !== undefined);
}

// ---- WireGuard key rotation -------------------------------------------------

/**
 * The host's new WireGuard public key, claimed like in registration (unique
 * among hosts, HostConflictError otherwise) and the old one freed in the
 * same write. A read-modify-write of the stored record, so a heartbeat or a
 * rotation request landing meanwhile is kept.
 */
export async function setHostWireGuardKey(
  store: Store, name: string, wgPublicKey: string, opts: RegisterHostOptions,
): Promise<{ host: HostRecord; revision: number }> {
  for (let i = 0; i < CAS_ATTEMPTS; i++) {
    const kv = await store.get(hostKey(name));
    const cur = tryDecodeHost(kv);
    if (!kv || !cur) throw new RecordNotFoundError(`host "${name}" is not registered (call RegisterHost first)`);
    const host = { ...cur, wgPublicKey };
    // compared against the record read here: a rotation request or heartbeat since then fails the write, and the next attempt keeps it
    const { compares, ops } = await planRegistration(store, host, opts, { kv });
    const res = await store.txn(compares, ops);
    if (res.succeeded) return { host, revision: res.revision };
  }
  throw new RegistryContentionError(`host record of "${name}" kept changing under concurrent writers`);
}

/**
 * Asks each named host to rotate its WireGuard key: raises its
 * wgKeyRotation by one, which its agent sees in the topology watch. One
 * compare-and-swap per host; a name with no record is RecordNotFoundError
 * before anything is written.
 */
export async function requestKeyRotation(
  store: Store, names: string[],
): Promise<{ hosts: Array<{ host: string; generation: number }>; revision: number }> {
  for (const n of names) {
    if (!(await store.get(hostKey(n)))) throw new RecordNotFoundError(`host: "${n}" is not registered (weft hosts lists them)`);
  }
  const out: Array<{ host: string; generation: number }> = [];
  let revision = await store.revision();
  for (const n of names) {
    let done = false;
    for (let i = 0; i < CAS_ATTEMPTS && !done; i++) {
      const kv = await store.get(hostKey(n));
      const cur = tryDecodeHost(kv);
      if (!kv || !cur) break; // left meanwhile: nothing to ask
      const generation = (cur.wgKeyRotation ?? 0) + 1;
      const res = await store.txn([cmpModRev(kv.key, kv.modRevision)], [{ type: 'put', key: kv.key, value: encodeHost({ ...cur, wgKeyRotation: generation }) }]);
      if (res.succeeded) {
        out.push({ host: n, generation });
        revision = res.revision;
        done = true;
      }
    }
    if (!done && (await store.get(hostKey(n)))) {
      throw new RegistryContentionError(`host record of "${n}" kept changing under concurrent writers`);
    }
  }
  return { hosts: out, revision };
}

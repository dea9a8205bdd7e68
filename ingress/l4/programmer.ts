// The L4 kernel fast path: TCP and UDP service ports DNATed in the kernel by
// nf_tables, balanced with a Maglev table per service port, held as that
// port's group in its class's shared map (render.ts has the layout). sync()
// renders what the table should hold, diffs it against a cached view of what
// it holds, and sends only the difference:
//   A  nft (libnftables): new class maps, chains and rules; base chains
//      re-ruled. Nothing new is reachable yet.
//   B  own batches: the buckets of new groups (a big first load is cut into
//      several transactions; still unreachable: no vmap element sends their
//      port to their class's chain yet).
//   C  one own batch: every change traffic can see — buckets of live groups
//      (delete + add of the moved ones), vmap elements that switch service
//      ports on, over or off, and the groups they leave. One transaction: a
//      flow sees before or after.
//   D  nft: chains and maps nothing points to any more (among them those of
//      the legacy layout, after an upgrade).
// Element changes never go through libnftables: it refetches its cache from
// the kernel after every generation change, which would make one endpoint
// change cost as much as the whole table.
//
// The view is listed from the kernel in full (every element) only at start
// and after a failed apply; a restarted ingress lists, finds nothing to
// change and sends nothing. When the generation moved because of someone
// else (any iptables-nft or nft command on the host moves it), only the
// table's structure is listed again — chains, rules' comments, sets with
// their handles — and the cached elements of every set whose handle (and the
// table's) is unchanged are trusted for now; elements are listed at once only
// for sets that are new or were made again. Listing ten million elements
// would block this thread (which also serves L7) for seconds on every
// foreign change. The trusted sets are then read again by the audit, a slice
// every 10 s, each within `auditPeriodMs` (5 minutes) of the foreign change,
// and what someone edited in them by hand (nft add/delete element, flush map)
// is repaired. While the generation is the one our own last transaction left,
// nothing can have changed, and the audit reads nothing.
//
// A service's buckets are rebalanced from what its group holds (render.ts,
// serviceTable): the kernel's map is the balancer's state, so a restarted
// ingress continues from it rather than from a fresh Maglev table.
//
// sync() treats its input as immutable and keeps the last list it was given
// (its own copy of the references). The next sync compares references
// position by position and reads only the services that differ; when they
// are the same service ports as before, with their endpoints changed, it
// renders and diffs those alone, touching nothing that grows with the rest of
// the table: a change costs what changed, not what is programmed. A port that
// comes, goes or switches chain (a new table size), a listing, or a list of
// another length makes it a full pass, which skips unread every service given
// as the same object as last time.
import { decodeAddrPort } from '../../dataplane/nftables/keys';
import { InvalidArgumentError } from '../../controller/common/errors';
import type { Logger } from '../../controller/common/log';
import { IPPROTO_UDP, NETLINK_NETFILTER, flushConntrackByReplySource } from '../../dataplane/netlink/conntrack';
import { openHandle, type Handle } from '../../dataplane/netlink/handle';
import { NFPROTO_IPV4, setElemMessages, type BatchMsg } from '../../dataplane/nftables/wire';
import { openNftTable, type NftTable } from '../../dataplane/nftables/table';
import {
  baseChains, chooseSize, CLASS_MAP_RE, diffBuckets, groupCollector, groupMap, groupPrefix, legacyGroup, NO_BUCKETS, toBuckets, type Buckets, endpointKeys, portTaken, programmedSizes,
  renderService, serviceCacheKey, serviceNames, unchanged, serviceId, validateAddresses, validateEndpoints, validateService,
  validateTableName, vmapDecls, vmapElements, type Elements, type L4Service, type RenderedService, type SourceNat,
} from './render';

export type { L4Service } from './render';

export type L4ProgrammerOptions = {
  table?: string;
  addresses: string[];
  sourceNat: SourceNat;
  logger: Logger;
  /** Network namespace (name under /run/netns, or a path) to program; default the process's own. */
  netns?: string;
  /**
   * After someone else's transaction, every element of weft's maps is read
   * again within this many milliseconds (a slice every 10 s), and drift is
   * repaired. Default 5 minutes; 0: never (only a restart or a failed sync
   * reads them).
   */
  auditPeriodMs?: number;
};

/**
 * `changed`: elements, chains and maps written; `elements`: programmed after
 * it; `listed`: elements read from the kernel by this sync (0 unless it had
 * to list the table); `transactions`: nf_tables transactions sent.
 */
export type SyncResult = { changed: number; elements: number; ms: number; listed: number; transactions: number };

export interface L4Programmer {
  /** Program exactly these service ports. The services are not copied: do not change them afterwards (L4Service). */
  sync(desired: readonly L4Service[]): Promise<SyncResult>;
  /** One audit step now (the timer runs them every 10 s): undefined when nothing needed reading. */
  audit(): Promise<SyncResult | undefined>;
  remove(): Promise<void>;
  close(): void;
}

type View = {
  /** The generation the view is of; NaN when our changes went in but someone else's too (list the structure next time). */
  gen: number;
  exists: boolean;
  /** The table's handle, undefined when not known (its sets' elements are then not trusted at the next listing). */
  tableHandle?: bigint;
  chains: Map<string, string[]>;
  /** Every set of the table, ours or not. */
  sets: Set<string>;
  vmaps: Map<string, Elements>;
  /** Groups of the class maps: `<map>:<port>` -> buckets. */
  backends: Map<string, Buckets>;
  /** Maps of the legacy layout, by the group each becomes: read once, to rebalance from, and then deleted. */
  legacy: Map<string, Buckets>;
  /** Handles of the sets whose cached elements are known to be what the kernel holds (read at a listing, or right after we made them). */
  handles: Map<string, bigint>;
};

const DEFAULT_AUDIT_PERIOD_MS = 5 * 60_000;
/** How often an audit step runs (or the period, if shorter). */
const AUDIT_STEP_MS = 10_000;

/** Bytes of element messages per transaction while filling new (unreachable) maps. */
const FILL_BATCH_BYTES = 8 << 20;

function sameList(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return !!a && a.length === b.length && a.every((x, i) => x === b[i]);
}

function diffElements(cur: Elements | undefined, want: Elements): { del: Array<[string]>; add: Array<[string, string]> } {
  const del: Array<[string]> = [];
  const add: Array<[string, string]> = [];
  if (cur === want) return { del, add };
  if (cur) for (const [k, v] of cur) if (want.get(k) !== v) del.push([k]);
  for (const [k, v] of want) if (cur?.get(k) !== v) add.push([k, v]);
  return { del, add };
}

export function createL4Programmer(opts: L4ProgrammerOptions): L4Programmer {
  const tableName = opts.table ?? 'weft_ingress';
  validateTableName(tableName);
  validateAddresses(opts.addresses);
  if (opts.sourceNat !== 'masquerade' && opts.sourceNat !== 'none') {
    throw new InvalidArgumentError(`L4 ingress: sourceNat "${String(opts.sourceNat)}" is not masquerade or none`, { field: 'sourceNat' });
  }
  const auditPeriodMs = opts.auditPeriodMs ?? DEFAULT_AUDIT_PERIOD_MS;
  if (!Number.isInteger(auditPeriodMs) || auditPeriodMs < 0) {
    throw new InvalidArgumentError(`L4 ingress: auditPeriodMs ${String(auditPeriodMs)} is not a whole number of milliseconds (0: no audit)`, { field: 'auditPeriodMs' });
  }
  const addresses = [...new Set(opts.addresses)].sort();
  const log = opts.logger.child({ component: 'l4', table: tableName });
  const tbl: NftTable = openNftTable({ name: tableName, family: NFPROTO_IPV4, netns: opts.netns });
  let ct: Handle | undefined;
  let view: View | undefined;
  // rendered service ports by serviceId: an unchanged one is neither rendered nor diffed again
  let rendered = new Map<number, RenderedService>();
  let queue: Promise<unknown> = Promise.resolve();
  const base = baseChains(opts.sourceNat);
  const vmapDecl = vmapDecls();
  // the view's vmaps are what the rendered services say (false after a listing: compare once)
  let vmapsOk = false;
  // The inputs of the last sync that went through, by position (our own array,
  // reused): the next sync compares references and looks only at the
  // positions that differ. Valid only while `rendered` is what they render to.
  const lastInputs: L4Service[] = [];
  let lastInputsValid = false;
  /** Buckets and vmap elements programmed, as the last full pass counted them (a change of buckets only keeps it). */
  let lastElements = 0;
  /** Rendered UDP services per endpoint key: a removed endpoint's flows are forgotten only when no UDP service keeps it. */
  const udpRefs = new Map<string, number>();
  /** Sets whose elements a listing took from the cache across someone else's transaction: read again by the audit. */
  const unverified = new Set<string>();

  /**
   * The table as the kernel holds it. With `prev` (a view that was right until
   * someone else's transaction), the elements of sets whose handle did not
   * change are taken from it (and noted as unverified); the rest are listed.
   */
  function refresh(prev: View | undefined): { view: View; listed: number } {
    const t = performance.now();
    let listedSets = 0;
    const r = tbl.consistent((gen) => {
      const v = tbl.structure();
      const trusted = prev && prev.tableHandle !== undefined && v.handle === prev.tableHandle ? prev : undefined;
      const nv: View = { gen, exists: v.exists, tableHandle: v.handle, chains: v.chains, sets: new Set(v.sets.keys()), vmaps: new Map(), backends: new Map(), legacy: new Map(), handles: new Map() };
      let listed = 0;
      listedSets = 0;
      const cachedSets = new Set<string>();
      // the cached groups of each class map
      const trustedGroups = new Map<string, Array<[string, Buckets]>>();
      if (trusted) {
        for (const [g, b] of trusted.backends) {
          const m = groupMap(g);
          let l = trustedGroups.get(m);
          if (!l) trustedGroups.set(m, (l = []));
          l.push([g, b]);
        }
      }
      // one map at a time, each turned compact before the next is read
      for (const [name, info] of v.sets) {
        const m = CLASS_MAP_RE.exec(name);
        nv.handles.set(name, info.handle);
        if (trusted && trusted.handles.get(name) === info.handle) {
          const groups = m ? trustedGroups.get(name) : undefined;
          const els = m ? undefined : trusted.vmaps.get(name);
          if (groups || els) {
            for (const [g, b] of groups ?? []) nv.backends.set(g, b);
            if (els) nv.vmaps.set(name, els);
            cachedSets.add(name);
            continue;
          }
        }
        listedSets++;
        const old = m ? undefined : legacyGroup(name);
        if (m) {
          // a class map: filed into its groups as it is read
          const c = groupCollector(name, Number(m[2]));
          listed += tbl.eachElement(name, c.add);
          for (const [g, b] of c.groups) nv.backends.set(g, b);
          continue;
        }
        const els = tbl.elements(name);
        listed += els.size;
        if (old) nv.legacy.set(old.group, toBuckets(els, old.size));
        else nv.vmaps.set(name, els);
      }
      return { view: nv, listed, cachedSets };
    }, `${tableName}: list`);
    // the generation moved by someone else's hand: what was cached may have been edited.
    // A set already waiting keeps its place, one newly suspect joins the end, so
    // each is read in turn however often others write.
    for (const name of unverified) if (!r.view.handles.has(name) || !r.cachedSets.has(name)) unverified.delete(name);
    for (const name of r.cachedSets) unverified.add(name);
    log.debug({ ms: Math.round(performance.now() - t), chains: r.view.chains.size, maps: r.view.handles.size, listedMaps: listedSets, listedElements: r.listed, structureOnly: !!prev }, 'listed the table');
    return { view: r.view, listed: r.listed };
  }

  function countUdp(r: RenderedService | undefined, by: number): void {
    if (r?.protocol !== 'udp') return;
    for (const k of r.keys) {
      const n = (udpRefs.get(k) ?? 0) + by;
      if (n > 0) udpRefs.set(k, n);
      else udpRefs.delete(k);
    }
  }

  /**
   * The positions of `services` that differ from the last sync's inputs, when
   * the sync can look at those alone: same length, and each one that differs
   * is the same service port (so no port came, went or was taken twice).
   * Undefined: compare them all. Allocates only for the positions that differ.
   */
  function changedPositions(services: readonly L4Service[]): number[] | undefined {
    if (!lastInputsValid || services.length !== lastInputs.length) return undefined;
    const out: number[] = [];
    for (let i = 0; i < services.length; i++) {
      const s = services[i];
      if (s === lastInputs[i]) continue;
      validateService(s);
      if (serviceId(s) !== serviceId(lastInputs[i])) return undefined;
      out.push(i);
    }
    return out;
  }

  function remember(services: readonly L4Service[], positions: number[] | undefined): void {
    if (positions) for (const i of positions) lastInputs[i] = services[i];
    else {
      lastInputs.length = services.length;
      for (let i = 0; i < services.length; i++) lastInputs[i] = services[i];
    }
    lastInputsValid = true;
  }

  // which service ports this sync has seen, by serviceId: stamped rather than collected, so checking 10,000 allocates nothing
  const portSeen = new Uint32Array(2 * 65536);
  let portStamp = 0;

  function syncNow(services: readonly L4Service[]): SyncResult {
    const t0 = performance.now();
    const gen = tbl.gen();
    let listed = 0;
    let refreshed = false;
    if (!view || view.gen !== gen) {
      const prev = view;
      const r = refresh(prev);
      view = r.view;
      listed = r.listed;
      refreshed = true;
      if (prev) {
        // a rendering stays valid while its group is the very object the new view holds (trusted, not listed again)
        for (const [id, rs] of rendered) if (view.backends.get(rs.names.group) !== rs.map.buckets) rendered.delete(id);
      } else rendered = new Map(); // elements of a fresh view are new objects: compare them once
      vmapsOk = false;
    }
    const tListed = performance.now();
    const v = view;
    let sizes: Map<string, number> | undefined; // read from the group names only for services not rendered yet

    // ---- render ----
    // A change of some services' endpoints looks at those alone; a listing, a
    // port that comes or goes, or a service that switches chain makes it a
    // full pass over every service port.
    let positions = refreshed || !vmapsOk ? undefined : changedPositions(services);
    let structural = false;
    let count = 0;
    let elements = 0;
    let touched = new Map<number, RenderedService>();
    const consider = (s: L4Service, full: boolean): void => {
      // every check runs before anything is sent; a service seen (as this very object) before was checked then
      if (!s || typeof s !== 'object') validateService(s);
      const id = serviceId(s);
      const prev = rendered.get(id);
      if (prev === undefined || prev.input !== s) validateService(s);
      if (full) {
        if (portSeen[id] === portStamp) throw portTaken(services.find((o) => o !== s && o && serviceId(o) === id)?.name ?? '?', s);
        portSeen[id] = portStamp;
      }
      if (prev !== undefined && prev.input === s) {
        // the same object as last time: unchanged by contract, nothing to read
        count++;
        elements += prev.map.buckets.table.length;
        return;
      }
      const n = s.endpoints.length;
      if (n === 0) {
        // nothing to send to: the port is left to the host
        if (prev) structural = true;
        return;
      }
      count++;
      if (!prev) structural = true;
      let r: RenderedService;
      const same = prev !== undefined && prev.port === s.port && prev.protocol === s.protocol && prev.affinity === s.affinity && prev.input?.endpoints === s.endpoints;
      if (prev && (same || unchanged(prev, s, chooseSize(prev.size, n)))) {
        r = prev;
        prev.input = s;
      } else {
        validateEndpoints(s);
        const keys = endpointKeys(s);
        const size = chooseSize(prev ? prev.size : (sizes ??= programmedSizes([...v.backends.keys(), ...v.legacy.keys()])).get(`${s.protocol}:${s.port}`), keys.length);
        if (prev && prev.cacheKey === serviceCacheKey(s, size, keys)) {
          r = prev;
          prev.input = s;
        } else {
          // the group of the same class (so the same size) as programmed is what the new buckets are rebalanced from
          const group = serviceNames(s.protocol, s.port, size, s.affinity).group;
          r = renderService(s, size, keys, addresses, v.backends.get(group) ?? v.legacy.get(group));
        }
        if (r.names.chain !== prev?.names.chain) structural = true;
        if (r !== prev) touched.set(id, r);
      }
      elements += r.map.buckets.table.length;
    };
    if (positions) {
      for (const i of positions) consider(services[i], false);
      // a port came, went or switched chain: the vmaps and chains are compared as a whole
      if (structural) positions = undefined;
      else elements = lastElements;
    }
    if (!positions) {
      structural = !vmapsOk;
      count = 0;
      elements = 0;
      touched = new Map();
      portStamp = (portStamp + 1) >>> 0;
      if (portStamp === 0) {
        portSeen.fill(0);
        portStamp = 1;
      }
      for (const s of services) consider(s, true);
      // same count and no new port: the same ports as last time
      if (count !== rendered.size) structural = true;
    }
    const udpHad = new Set<string>();
    const noteUdp = (b: Buckets | undefined) => {
      for (const val of b?.values ?? []) {
        const ap = decodeAddrPort(val);
        if (ap) udpHad.add(`${ap.ip}:${ap.port}`);
      }
    };
    const current = (s: L4Service) => touched.get(serviceId(s)) ?? rendered.get(serviceId(s))!;
    // every service port programmed after this sync: listed only when the structure changes
    const entries: Array<[number, RenderedService, boolean]> = [];
    if (structural) for (const s of services) if (s.endpoints.length > 0) entries.push([serviceId(s), current(s), s.protocol === 'udp']);
    const chains = new Map(base);
    // groups: `<map>:<port>` -> buckets, and the class maps they are in
    const backends = new Map<string, { map: string; prefix: string; buckets: Buckets; udp: boolean }>();
    const classMaps = new Map<string, string>();
    let vmaps = v.vmaps;
    if (structural) {
      for (const [, r, udp] of entries) {
        chains.set(r.names.chain, r.chain);
        classMaps.set(r.names.map, r.map.decl);
        backends.set(r.names.group, { map: r.names.map, prefix: r.names.prefix, buckets: r.map.buckets, udp });
      }
      vmaps = new Map();
      for (const name of vmapDecl.keys()) vmaps.set(name, new Map());
      for (const [, r] of entries) vmapElements(r, vmaps);
    } else {
      // only the services that changed: their groups exist, their chains are the same
      for (const r of touched.values()) backends.set(r.names.group, { map: r.names.map, prefix: r.names.prefix, buckets: r.map.buckets, udp: r.protocol === 'udp' });
    }
    if (!positions) {
      for (const e of vmaps.values()) elements += e.size;
      lastElements = elements;
    }

    const tRendered = performance.now();
    // ---- diff ----
    const T = `ip ${tableName}`;
    const a: string[] = [];
    const d: string[] = [];
    // new groups: encoded only when sent, a chunk at a time (a first load can be millions of elements)
    // (the elements of each are built as it is sent, so ten million of them are never held at once)
    const fill: Array<[map: string, prefix: string, buckets: Buckets]> = [];
    const live: BatchMsg[] = [];
    let changed = 0;
    // sets this sync makes: their handles are read after, so a later listing can trust what we filled them with
    const made: string[] = [];
    if (structural) {
      if (!v.exists) a.push(`add table ${T}`);
      for (const [name, decl] of vmapDecl) if (!v.sets.has(name)) made.push(name), a.push(`add map ${T} ${name} ${decl}`);
      for (const [name, decl] of classMaps) if (!v.sets.has(name)) made.push(name), a.push(`add map ${T} ${name} ${decl}`);
      for (const [name, c] of chains) {
        const have = v.chains.get(name);
        if (sameList(have, c.comments)) continue;
        a.push(have ? `flush chain ${T} ${name}` : `add chain ${T} ${name} ${c.decl}`);
        c.rules.forEach((r, i) => a.push(`add rule ${T} ${name} ${r} comment "${c.comments[i]}"`));
      }
    }
    let moved = 0;
    const queueElements = (name: string, del: Array<[string]>, add: Array<[string, string]>) => {
      if (del.length) live.push(...setElemMessages('delete', NFPROTO_IPV4, tableName, name, del));
      if (add.length) live.push(...setElemMessages('add', NFPROTO_IPV4, tableName, name, add));
      changed += del.length + add.length;
    };
    for (const [group, m] of backends) {
      const cur = v.backends.get(group);
      if (cur === m.buckets) continue; // the same rendering as last time: nothing to compare
      if (!cur) {
        // a new group is reachable only once the vmap element of phase C sends its port to its class's chain
        fill.push([m.map, m.prefix, m.buckets]);
        for (const x of m.buckets.table) if (x >= 0) changed++;
        continue;
      }
      const { del, add } = diffBuckets(cur, m.buckets, m.prefix);
      if (del.length === 0 && add.length === 0) continue;
      if (m.udp) noteUdp(cur);
      moved += add.length;
      queueElements(m.map, del, add);
    }
    const goneChains = structural ? [...v.chains.keys()].filter((c) => !chains.has(c)) : [];
    const goneMaps = structural ? [...v.sets].filter((m) => !classMaps.has(m) && !vmaps.has(m)) : [];
    if (structural) {
      for (const [name, want] of vmaps) {
        const { del, add } = diffElements(v.vmaps.get(name), want);
        queueElements(name, del, add);
      }
      // groups no service has any more (a port gone, or moved to another class): deleted in the
      // transaction that takes the port off them; a map that goes as a whole is deleted in phase D
      for (const [group, cur] of v.backends) {
        if (backends.has(group)) continue;
        if (group.startsWith('be_udp_')) noteUdp(cur);
        const map = groupMap(group);
        if (!classMaps.has(map)) continue;
        const { del } = diffBuckets(cur, NO_BUCKETS, groupPrefix(group));
        queueElements(map, del, []);
      }
      for (const [group, cur] of v.legacy) if (group.startsWith('be_udp_')) noteUdp(cur);
    }
    for (const c of goneChains) d.push(`flush chain ${T} ${c}`);
    for (const c of goneChains) d.push(`delete chain ${T} ${c}`);
    for (const m of goneMaps) d.push(`delete map ${T} ${m}`);
    changed += a.length + d.length;

    const commitRendered = () => {
      if (structural) {
        rendered = new Map(entries.map(([id, r]) => [id, r]));
        udpRefs.clear();
        for (const r of rendered.values()) countUdp(r, 1);
      } else {
        for (const [id, r] of touched) {
          countUdp(rendered.get(id), -1);
          countUdp(r, 1);
          rendered.set(id, r);
        }
      }
      remember(services, positions);
    };
    if (changed === 0) {
      commitRendered();
      if (structural) {
        v.vmaps = vmaps;
        for (const [group, m] of backends) v.backends.set(group, m.buckets);
      }
      vmapsOk = true;
      return { changed: 0, elements, ms: performance.now() - t0, listed, transactions: 0 };
    }

    const tDiffed = performance.now();
    // ---- apply ----
    let txns = 0;
    try {
      if (a.length) {
        tbl.run(a.join('\n'), `${tableName}: add chains and maps`);
        txns++;
      }
      let chunk: BatchMsg[] = [];
      let bytes = 0;
      const send = () => {
        tbl.commit(chunk, `${tableName}: fill new groups`);
        txns++;
        chunk = [];
        bytes = 0;
      };
      for (const [name, prefix, buckets] of fill) {
        for (const m of setElemMessages('add', NFPROTO_IPV4, tableName, name, diffBuckets(undefined, buckets, prefix).add)) {
          chunk.push(m);
          bytes += m.body.length;
        }
        if (bytes >= FILL_BATCH_BYTES) send();
      }
      if (chunk.length) send();
      if (live.length) {
        tbl.commit(live, `${tableName}: switch`);
        txns++;
      }
      if (d.length) {
        tbl.run(d.join('\n'), `${tableName}: delete unused chains and maps`);
        txns++;
      }
    } catch (e) {
      // part may have been applied: list it all again next time
      view = undefined;
      rendered = new Map();
      udpRefs.clear();
      lastInputsValid = false;
      throw e;
    }
    const tApplied = performance.now();
    // read before the generation: if it then shows only our transactions, these handles are of the sets we made
    const made0 = made.length > 0 || !v.exists ? tbl.handles(made) : undefined;
    const after = tbl.gen();
    const ours = after === ((gen + txns) >>> 0);
    if (structural) {
      const sets = new Set([...classMaps.keys(), ...vmaps.keys()]);
      const nv: View = { gen: after, exists: true, tableHandle: v.tableHandle, chains: new Map(), sets, vmaps, backends: new Map(), legacy: new Map(), handles: new Map() };
      for (const [name, c] of chains) nv.chains.set(name, c.comments);
      for (const [group, m] of backends) nv.backends.set(group, m.buckets);
      for (const name of sets) {
        const h = v.handles.get(name);
        if (h !== undefined) nv.handles.set(name, h);
      }
      if (made0 && ours) {
        if (!v.exists) nv.tableHandle = made0.table;
        for (const [name, h] of made0.sets) nv.handles.set(name, h);
      }
      view = nv;
    } else {
      for (const [group, m] of backends) v.backends.set(group, m.buckets);
      v.gen = after;
    }
    commitRendered();
    vmapsOk = true;
    if (!ours) {
      // someone else committed in between: ours went in all the same, but the next sync lists the structure again
      // (and the elements of the sets made here, whose handles we could not be sure of)
      view.gen = NaN;
    }
    // UDP has no end: flows of a backend that is gone would follow it forever
    // (only maps that changed were looked at, so this costs what the change costs)
    for (const ep of udpHad) {
      if (udpRefs.has(ep)) continue;
      const i = ep.lastIndexOf(':');
      try {
        const n = flushConntrackByReplySource({ proto: IPPROTO_UDP, ip: ep.slice(0, i), port: Number(ep.slice(i + 1)), onlyDnat: true }, (ct ??= openHandle({ netns: opts.netns, protocol: NETLINK_NETFILTER })));
        if (n) log.info({ endpoint: ep, entries: n }, 'forgot the UDP flows of a removed endpoint');
      } catch (err) {
        log.warn({ err, endpoint: ep }, 'could not delete the UDP conntrack entries of a removed endpoint');
      }
    }
    const ms = performance.now() - t0;
    const r1 = (x: number) => Math.round(x * 10) / 10;
    log.info({
      changed, moved, transactions: txns, elements, listed, ms: r1(ms), services: positions ? positions.length : services.length,
      phases: { list: r1(tListed - t0), render: r1(tRendered - tListed), diff: r1(tDiffed - tRendered), apply: r1(tApplied - tDiffed) },
    }, 'L4 table updated');
    return { changed, elements, ms, listed, transactions: txns };
  }

  // ---- audit: drift someone else made in weft's own maps ----
  // Nothing can have changed while the generation stays ours. After someone
  // else's transaction the structure is listed again at once (the next sync,
  // or the next audit step), but the elements of the sets whose handles did
  // not change are trusted from the cache: reading ten million of them would
  // block this thread for seconds. The audit reads those sets again a slice
  // at a time, so each is read within `auditPeriodMs` of the change, and
  // repairs what differs: a map found edited is rebalanced from what it
  // holds, as after a restart.
  const auditStepMs = Math.min(AUDIT_STEP_MS, auditPeriodMs);
  let auditPending = false;
  function auditStep(): SyncResult | undefined {
    auditPending = false;
    if (!view || !lastInputsValid) return undefined;
    if (unverified.size === 0 && tbl.gen() === view.gen) return undefined;
    const slice = Math.max(1, Math.ceil((view.handles.size * auditStepMs) / auditPeriodMs));
    let n = 0;
    for (const name of unverified) {
      if (n++ === slice) break;
      view.handles.delete(name); // not trusted: listed by the refresh below
      unverified.delete(name);
    }
    view.gen = NaN;
    const r = syncNow(lastInputs);
    if (r.changed > 0) log.warn({ changed: r.changed, listed: r.listed }, 'repaired the L4 table: someone else had changed it');
    else log.debug({ listed: r.listed, unverifiedMaps: unverified.size }, 'audited the L4 table');
    return r;
  }
  const auditTimer = auditPeriodMs > 0 ? setInterval(() => {
    if (auditPending) return;
    auditPending = true;
    serial(auditStep).catch((err: unknown) => log.warn({ err }, 'L4 table audit failed; the next sync or audit lists it again'));
  }, auditStepMs) : undefined;
  auditTimer?.unref();

  // one sync at a time: each diffs against the view the previous one left
  function serial<T>(fn: () => T): Promise<T> {
    const p = queue.then(fn);
    queue = p.catch(() => undefined);
    return p;
  }

  return {
    sync: (desired) => serial(() => syncNow(desired)),
    audit: () => serial(auditStep),
    remove: () => serial(() => {
      if (tbl.drop()) log.info('removed the L4 table');
      view = undefined;
      rendered = new Map();
      udpRefs.clear();
      unverified.clear();
      lastInputsValid = false;
      lastInputs.length = 0;
    }),
    close() {
      if (auditTimer) clearInterval(auditTimer);
      tbl.close();
      ct?.close();
      ct = undefined;
    },
  };
}

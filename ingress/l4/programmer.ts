// The L4 kernel fast path: TCP and UDP service ports DNATed in the kernel by
// nf_tables, balanced with a Maglev table per service port. sync() renders
// what the table should hold (render.ts), diffs it against a cached view of
// what it holds, and sends only the difference:
//   A  nft (libnftables): new maps, chains and rules; base chains re-ruled.
//      Nothing new is reachable yet.
//   B  own batches: the buckets of new backend maps (a big first load is cut
//      into several transactions; still unreachable).
//   C  one own batch: every change traffic can see — buckets of live maps
//      (delete + add of the moved ones), vmap elements that switch service
//      ports on, over or off. One transaction: a flow sees before or after.
//   D  nft: chains and maps nothing points to any more.
// Element changes never go through libnftables: it refetches its cache from
// the kernel after every generation change, which would make one endpoint
// change cost as much as the whole table. The view is listed from the kernel
// only at start and when the generation moved because of someone else; a
// restarted ingress lists, finds nothing to change and sends nothing.
import { InvalidArgumentError } from '../../controller/common/errors';
import type { Logger } from '../../controller/common/log';
import { IPPROTO_UDP, NETLINK_NETFILTER, flushConntrackByReplySource } from '../../dataplane/netlink/conntrack';
import { openHandle, type Handle } from '../../dataplane/netlink/handle';
import { NFPROTO_IPV4, setElemMessages, type BatchMsg } from '../../dataplane/nftables/wire';
import { openNftTable, type NftTable } from '../../dataplane/nftables/table';
import {
  baseChains, chooseSize, decodeAddrPort, endpointKeys, programmedSizes, renderService, serviceCacheKey, validateAddresses, validateServices,
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
};

export type SyncResult = { changed: number; elements: number; ms: number };

export interface L4Programmer {
  sync(desired: L4Service[]): Promise<SyncResult>;
  remove(): Promise<void>;
  close(): void;
}

type View = { gen: number; exists: boolean; chains: Map<string, string[]>; maps: Map<string, Elements> };

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
  const addresses = [...new Set(opts.addresses)].sort();
  const log = opts.logger.child({ component: 'l4', table: tableName });
  const tbl: NftTable = openNftTable({ name: tableName, family: NFPROTO_IPV4, netns: opts.netns });
  let ct: Handle | undefined;
  let view: View | undefined;
  // rendered service ports by `<proto>:<port>`: an unchanged one is neither rendered nor diffed again
  let rendered = new Map<string, RenderedService>();
  let queue: Promise<unknown> = Promise.resolve();

  function refresh(): View {
    const t = Date.now();
    const v = tbl.list(() => true);
    log.debug({ ms: Date.now() - t, chains: v.chains.size, maps: v.elements.size }, 'listed the table');
    return { gen: v.gen, exists: v.exists, chains: v.chains, maps: v.elements };
  }

  function syncNow(services: L4Service[]): SyncResult {
    const t0 = performance.now();
    validateServices(services);
    const gen = tbl.gen();
    if (!view || view.gen !== gen) {
      view = refresh();
      rendered = new Map(); // elements of the fresh view are new objects: compare them once
    }
    const v = view;
    const sizes = programmedSizes(v.chains.keys());

    // ---- render ----
    const chains = baseChains(opts.sourceNat);
    const maps = new Map<string, { decl: string; elements: Elements; backend: boolean; udp: boolean }>();
    const vmaps = new Map<string, Elements>();
    for (const [name, decl] of vmapDecls()) {
      vmaps.set(name, new Map());
      maps.set(name, { decl, elements: vmaps.get(name)!, backend: false, udp: false });
    }
    const nextRendered = new Map<string, RenderedService>();
    let elements = 0;
    const udpWanted = new Set<string>();
    const udpHad = new Set<string>();
    const noteUdp = (els: Elements | undefined) => {
      for (const val of new Set(els?.values() ?? [])) {
        const ap = decodeAddrPort(val);
        if (ap) udpHad.add(`${ap.ip}:${ap.port}`);
      }
    };
    for (const s of services) {
      const keys = endpointKeys(s);
      if (keys.length === 0) continue; // nothing to send to: the port is left to the host
      const id = `${s.protocol}:${s.port}`;
      const size = chooseSize(sizes.get(id), keys.length);
      const prev = rendered.get(id);
      const r = prev && prev.cacheKey === serviceCacheKey(s, size, keys) ? prev : renderService(s, size, keys);
      nextRendered.set(id, r);
      chains.set(r.names.chain, r.chain);
      maps.set(r.names.map, { decl: r.map.decl, elements: r.map.elements, backend: true, udp: s.protocol === 'udp' });
      vmapElements(s, r.names.chain, addresses, vmaps);
      elements += r.map.elements.size;
      if (s.protocol === 'udp') for (const k of keys) udpWanted.add(k);
    }
    for (const e of vmaps.values()) elements += e.size;

    // ---- diff ----
    const T = `ip ${tableName}`;
    const a: string[] = [];
    const d: string[] = [];
    // new backend maps: encoded only when sent, a chunk at a time (a first load can be millions of elements)
    const fill: Array<[name: string, add: Array<[string, string]>]> = [];
    const live: BatchMsg[] = [];
    let changed = 0;
    if (!v.exists) a.push(`add table ${T}`);
    for (const [name, m] of maps) if (!v.maps.has(name)) a.push(`add map ${T} ${name} ${m.decl}`);
    for (const [name, c] of chains) {
      const have = v.chains.get(name);
      if (sameList(have, c.comments)) continue;
      a.push(have ? `flush chain ${T} ${name}` : `add chain ${T} ${name} ${c.decl}`);
      c.rules.forEach((r, i) => a.push(`add rule ${T} ${name} ${r} comment "${c.comments[i]}"`));
    }
    let moved = 0;
    for (const [name, m] of maps) {
      const cur = v.maps.get(name);
      const { del, add } = diffElements(cur, m.elements);
      if (del.length === 0 && add.length === 0) continue;
      if (m.udp) noteUdp(cur);
      changed += del.length + add.length;
      // a new backend map is reachable only once the vmap element of phase C points at its chain
      if (m.backend && !cur) {
        fill.push([name, add]);
        continue;
      }
      if (del.length) live.push(...setElemMessages('delete', NFPROTO_IPV4, tableName, name, del));
      if (add.length) live.push(...setElemMessages('add', NFPROTO_IPV4, tableName, name, add));
      if (cur && m.backend) moved += add.length;
    }
    const goneChains = [...v.chains.keys()].filter((c) => !chains.has(c));
    const goneMaps = [...v.maps.keys()].filter((m) => !maps.has(m));
    for (const c of goneChains) d.push(`flush chain ${T} ${c}`);
    for (const c of goneChains) d.push(`delete chain ${T} ${c}`);
    for (const m of goneMaps) d.push(`delete map ${T} ${m}`);
    for (const m of goneMaps) if (m.startsWith('be_udp_')) noteUdp(v.maps.get(m));
    changed += a.length + d.length;

    // UDP has no end: flows of a backend that is gone would follow it forever
    // (only maps that changed are looked at, so this costs what the change costs)
    const udpGone = [...udpHad].filter((ep) => !udpWanted.has(ep));

    if (changed === 0) {
      rendered = nextRendered;
      return { changed: 0, elements, ms: performance.now() - t0 };
    }

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
        tbl.commit(chunk, `${tableName}: fill new backend maps`);
        txns++;
        chunk = [];
        bytes = 0;
      };
      for (const [name, add] of fill) {
        for (const m of setElemMessages('add', NFPROTO_IPV4, tableName, name, add)) {
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
      view = undefined; // part may have been applied: list again next time
      rendered = new Map();
      throw e;
    }
    const after = tbl.gen();
    if (after === ((gen + txns) >>> 0)) {
      const nv: View = { gen: after, exists: true, chains: new Map(), maps: new Map() };
      for (const [name, c] of chains) nv.chains.set(name, c.comments);
      for (const [name, m] of maps) nv.maps.set(name, m.elements);
      view = nv;
      rendered = nextRendered;
    } else {
      view = undefined; // someone else committed in between: the next sync lists again
      rendered = new Map();
    }
    for (const ep of udpGone) {
      const i = ep.lastIndexOf(':');
      try {
        const n = flushConntrackByReplySource({ proto: IPPROTO_UDP, ip: ep.slice(0, i), port: Number(ep.slice(i + 1)), onlyDnat: true }, (ct ??= openHandle({ netns: opts.netns, protocol: NETLINK_NETFILTER })));
        if (n) log.info({ endpoint: ep, entries: n }, 'forgot the UDP flows of a removed endpoint');
      } catch (err) {
        log.warn({ err, endpoint: ep }, 'could not delete the UDP conntrack entries of a removed endpoint');
      }
    }
    const ms = performance.now() - t0;
    log.info({ changed, moved, transactions: txns, elements, ms: Math.round(ms * 10) / 10 }, 'L4 table updated');
    return { changed, elements, ms };
  }

  // one sync at a time: each diffs against the view the previous one left
  function serial<T>(fn: () => T): Promise<T> {
    const p = queue.then(fn);
    queue = p.catch(() => undefined);
    return p;
  }

  return {
    sync: (desired) => serial(() => syncNow(desired)),
    remove: () => serial(() => {
      if (tbl.drop()) log.info('removed the L4 table');
      view = undefined;
      rendered = new Map();
    }),
    close() {
      tbl.close();
      ct?.close();
      ct = undefined;
    },
  };
}

// The overlay reconcile: for every remote host and every network both are in,
// a route to its subnet via its VTEP address, a neighbour entry giving that
// address the host's VTEP MAC, and an FDB entry sending that MAC to the
// host's underlay address (in a mesh datacenter: to its tunnel address,
// inside WireGuard).
//
//   desired = renderOverlay(topology, self, attachments)   pure
//   actual  = listOverlay(h, attachments)                   kernel, weft's entries only
//   plan    = diffOverlay(desired, actual)                  pure
//   applyOverlay(h, plan)                                   kernel, one batch
//
// Entries name their device, not its ifindex, so render and diff need no
// kernel; only list and apply translate between names and indexes.
import { isErrno, NetlinkError } from '../../../dataplane/netlink/errors';
import type { Handle, Request } from '../../../dataplane/netlink/handle';
import { canonicalIp, formatCidr, ipFamily, networkOf, parseCidr, type Cidr } from '../../../dataplane/netlink/ip';
import { AF_BRIDGE } from '../../../dataplane/netlink/libc';
import { linkByName, validateMac } from '../../../dataplane/netlink/link';
import {
  fdbDelRequest, fdbList, fdbReplaceRequest, neighDelRequest, neighList, neighSetRequest,
  NUD_PERMANENT, NTF_SELF, type Neigh,
} from '../../../dataplane/netlink/neigh';
import {
  routeAddRequest, routeDelRequest, routeList, routeReplaceRequest, RT_TABLE_MAIN, RTN_UNICAST, RTPROT_WEFT, type Route,
} from '../../../dataplane/netlink/route';
import type { NetworkAttachment, RemoteHost, Topology } from '../state/types';
import { type Logger, silentLogger } from '../../../controller/common/log';
import type { GatewayChoices, TunnelRole } from '../state/tunnel';
import { cidrContains, vtepIpOf } from './naming';

/** `<dst> via <gw> dev <dev> onlink proto weft` in the main table. */
export type OverlayRoute = { dev: string; dst: string; gw: string };
/** `<ip> lladdr <mac> dev <dev> permanent`. */
export type OverlayNeigh = { dev: string; ip: string; mac: string };
/**
 * `<mac> dst <dst> dev <dev> self permanent`. In a plan's replace list,
 * `replaces` names the MAC of the entry it takes over from (a host that came
 * back with a new VTEP MAC): the kernel keys FDB entries by MAC, so that is
 * an add of the new entry and a delete of the old one.
 */
export type OverlayFdb = { dev: string; mac: string; dst: string; replaces?: string };

/**
 * What the overlay needs to know about datacenters. Hosts of another
 * datacenter get no neighbour or FDB entry here, ever: on a gateway their
 * subnets are weft.xdc's (tunnel/gateway.ts), elsewhere they are routed to
 * the local gateway chosen for their datacenter, and with no choice (no
 * gateway) not at all, which the fail-closed table turns into a drop.
 * Without it (or with every host in this datacenter) the overlay is as it
 * was before datacenters: every host directly.
 */
export type OverlayDatacenters = {
  datacenter: string;
  role: TunnelRole;
  choices: GatewayChoices;
  /**
   * A mesh datacenter's other hosts -> their tunnel addresses: their FDB
   * entries send VXLAN there, inside weft.wg0, instead of to their underlay
   * addresses.
   */
  mesh?: ReadonlyMap<string, string>;
};

export type Overlay = { routes: OverlayRoute[]; neighs: OverlayNeigh[]; fdbs: OverlayFdb[] };
export type Skipped = { host: string; network: string; reason: string };
export type RenderedOverlay = Overlay & { skipped: Skipped[] };
export type OverlayPlan = { add: Overlay; replace: Overlay; delete: Overlay };

const ENODEV = 19;

export type Kind = 'route' | 'neigh' | 'fdb';
export type Action = 'add' | 'replace' | 'delete';
export type EntryError = { action: Action; kind: Kind; entry: OverlayRoute | OverlayNeigh | OverlayFdb; error: Error };

export function emptyOverlay(): Overlay {
  return { routes: [], neighs: [], fdbs: [] };
}

// ---- identity: what the kernel would consider the same object ----

export const routeKeyOf = (r: OverlayRoute) => r.dst;
export const neighKeyOf = (n: OverlayNeigh) => `${n.dev}|${n.ip}`;
export const fdbKeyOf = (f: OverlayFdb) => `${f.dev}|${f.mac}`;

const sameRoute = (a: OverlayRoute, b: OverlayRoute) => a.dev === b.dev && a.gw === b.gw;
const sameNeigh = (a: OverlayNeigh, b: OverlayNeigh) => a.mac === b.mac;
const sameFdb = (a: OverlayFdb, b: OverlayFdb) => a.dst === b.dst;

const canonCidr = (c: string) => formatCidr(parseCidr(c));

// ---- render (pure) ----

function checkHost(underlayIp: string, vtepMac: string): string | undefined {
  try {
    ipFamily(underlayIp);
  } catch {
    return `underlay IP ${JSON.stringify(underlayIp)} is not an IP address`;
  }
  try {
    validateMac(vtepMac, 'VTEP MAC');
  } catch (e) {
    return (e as Error).message;
  }
  return undefined;
}

type ParsedAttachment = { att: NetworkAttachment; network: Cidr; own: Cidr };

function checkSubnet(subnet: string, p: ParsedAttachment): string | undefined {
  let c: Cidr;
  try {
    c = parseCidr(subnet);
  } catch {
    return `subnet ${JSON.stringify(subnet)} is not a CIDR`;
  }
  if (networkOf(c).ip !== c.ip) return `subnet ${subnet} has host bits set`;
  if (!cidrContains(p.network, c)) return `subnet ${subnet} is not inside network ${p.att.network}'s ${p.att.networkCidr}`;
  if (cidrContains(p.own, c) || cidrContains(c, p.own)) return `subnet ${subnet} overlaps this host's ${p.att.subnet}`;
  return undefined;
}

/**
 * What the kernel should hold for the other hosts. A host record that cannot
 * be programmed (bad address, subnet outside the network, a subnet or MAC
 * another host already claims) is skipped with the reason, never allowed to
 * break the others: hosts are taken in name order, so which of two claimants
 * wins does not depend on the order the controller sent them in.
 */
export function renderOverlay(topology: Topology, selfName: string, attachments: NetworkAttachment[], xdc?: OverlayDatacenters): RenderedOverlay {
  const routes = new Map<string, OverlayRoute>();
  const neighs = new Map<string, OverlayNeigh>();
  const fdbs = new Map<string, OverlayFdb>();
  const skipped: Skipped[] = [];
  const hosts = [...topology.hosts].filter((h) => h.name !== selfName).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const parsed: ParsedAttachment[] = attachments.map((att) => ({ att, network: parseCidr(att.networkCidr), own: parseCidr(att.subnet) }));
  const byName = new Map(topology.hosts.map((h) => [h.name, h]));
  const remote = (h: { datacenter: string }) => xdc !== undefined && h.datacenter !== '' && h.datacenter !== xdc.datacenter;
  // local hosts first: a remote subnet routed via a local gateway never takes a route a local host holds
  hosts.sort((a, b) => Number(remote(a)) - Number(remote(b)));
  for (const host of hosts) {
    if (remote(host)) {
      if (xdc!.role === 'gateway') continue;
      renderRemote(host, xdc!.choices.get(host.datacenter));
      continue;
    }
    const bad = checkHost(host.underlayIp, host.vtepMac);
    for (const p of parsed) {
      const att = p.att;
      const subnet = host.subnets?.[att.network];
      if (subnet === undefined) continue;
      const skip = (reason: string) => skipped.push({ host: host.name, network: att.network, reason });
      const why = bad ?? checkSubnet(subnet, p);
      if (why) {
        skip(why);
        continue;
      }
      const vtep = vtepIpOf(subnet);
      const r: OverlayRoute = { dev: att.vxlanDevice, dst: canonCidr(subnet), gw: vtep };
      const n: OverlayNeigh = { dev: att.vxlanDevice, ip: vtep, mac: host.vtepMac.toLowerCase() };
      const f: OverlayFdb = { dev: att.vxlanDevice, mac: n.mac, dst: canonicalIp(xdc?.mesh?.get(host.name) ?? host.underlayIp) };
      const routeTaken = routes.get(routeKeyOf(r));
      const fdbTaken = fdbs.get(fdbKeyOf(f));
      if (routeTaken) {
        skip(`subnet ${r.dst} is already another host's`);
        continue;
      }
      if (fdbTaken && !sameFdb(fdbTaken, f)) {
        skip(`VTEP MAC ${f.mac} is already another host's (at ${fdbTaken.dst})`);
        continue;
      }
      routes.set(routeKeyOf(r), r);
      neighs.set(neighKeyOf(n), n);
      fdbs.set(fdbKeyOf(f), f);
    }
  }
  /** A host of another datacenter: each subnet via the chosen local gateway's VTEP address in that network. */
  function renderRemote(host: RemoteHost, gateway: string | undefined): void {
    const gw = gateway === undefined ? undefined : byName.get(gateway);
    if (gw === undefined || remote(gw)) return;
    for (const p of parsed) {
      const subnet = host.subnets?.[p.att.network];
      const via = gw.subnets?.[p.att.network];
      if (subnet === undefined || via === undefined) continue;
      const skip = (reason: string) => skipped.push({ host: host.name, network: p.att.network, reason });
      const why = checkSubnet(subnet, p) ?? checkSubnet(via, p);
      if (why) {
        skip(why);
        continue;
      }
      const r: OverlayRoute = { dev: p.att.vxlanDevice, dst: canonCidr(subnet), gw: vtepIpOf(via) };
      if (routes.has(routeKeyOf(r))) {
        skip(`subnet ${r.dst} is already another host's`);
        continue;
      }
      routes.set(routeKeyOf(r), r);
    }
  }
  const sorted = <T>(m: Map<string, T>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
  return { routes: sorted(routes), neighs: sorted(neighs), fdbs: sorted(fdbs), skipped };
}

// ---- select (pure): which listed kernel entries are weft's overlay ----

export type KernelEntries = { routes: Route[]; neighs: Neigh[]; fdbs: Neigh[] };

const ZERO_MAC = '00:00:00:00:00:00';

/**
 * weft's overlay entries among what the kernel listed: routes stamped with
 * weft's protocol on weft's VXLAN devices (other weft parts may stamp routes
 * elsewhere, and those are not the overlay's), permanent neighbours on those
 * devices, and their own (self) permanent FDB entries that have a remote.
 */
export function selectOverlay(k: KernelEntries, devices: ReadonlyMap<number, string>): Overlay {
  const out = emptyOverlay();
  for (const r of k.routes) {
    const dev = r.linkIndex !== undefined ? devices.get(r.linkIndex) : undefined;
    if (!dev || r.protocol !== RTPROT_WEFT || (r.table ?? RT_TABLE_MAIN) !== RT_TABLE_MAIN || (r.type ?? RTN_UNICAST) !== RTN_UNICAST || !r.gw) continue;
    out.routes.push({ dev, dst: canonCidr(r.dst), gw: canonicalIp(r.gw) });
  }
  for (const n of k.neighs) {
    const dev = devices.get(n.linkIndex);
    if (!dev || n.family === AF_BRIDGE || !(n.state & NUD_PERMANENT) || !n.ip || !n.mac) continue;
    out.neighs.push({ dev, ip: canonicalIp(n.ip), mac: n.mac.toLowerCase() });
  }
  for (const f of k.fdbs) {
    const dev = devices.get(f.linkIndex);
    if (!dev || f.family !== AF_BRIDGE || !(f.state & NUD_PERMANENT) || f.masterIndex !== undefined || !f.mac || !f.dst) continue;
    if (f.mac.toLowerCase() === ZERO_MAC) continue;
    // an entry with its own VNI or port is not one weft wrote; keeping it out of
    // the listing makes diff add weft's over it rather than believe it is right
    if (f.vni !== undefined || f.port !== undefined) continue;
    out.fdbs.push({ dev, mac: f.mac.toLowerCase(), dst: canonicalIp(f.dst) });
  }
  return out;
}

// ---- diff (pure) ----

function diffKind<T>(desired: T[], actual: T[], key: (x: T) => string, same: (a: T, b: T) => boolean) {
  const have = new Map(actual.map((x) => [key(x), x]));
  const want = new Map(desired.map((x) => [key(x), x]));
  const add: T[] = [];
  const replace: T[] = [];
  const del: T[] = [];
  for (const [k, d] of want) {
    const a = have.get(k);
    if (a === undefined) add.push(d);
    else if (!same(d, a)) replace.push(d);
  }
  for (const [k, a] of have) if (!want.has(k)) del.push(a);
  return { add, replace, del };
}

/**
 * The changes that turn `actual` into `desired`; empty when they agree, so a
 * restart with nothing changed sends the kernel nothing and nothing flaps.
 * An FDB entry that only changed MAC (same device, same remote) is paired
 * into a replace of the old one.
 */
export function diffOverlay(desired: Overlay, actual: Overlay): OverlayPlan {
  const r = diffKind(desired.routes, actual.routes, routeKeyOf, sameRoute);
  const n = diffKind(desired.neighs, actual.neighs, neighKeyOf, sameNeigh);
  const f = diffKind(desired.fdbs, actual.fdbs, fdbKeyOf, sameFdb);
  const byRemote = (xs: OverlayFdb[]) => {
    const m = new Map<string, OverlayFdb[]>();
    for (const x of xs) m.set(`${x.dev}|${x.dst}`, [...(m.get(`${x.dev}|${x.dst}`) ?? []), x]);
    return m;
  };
  const adds = byRemote(f.add);
  const dels = byRemote(f.del);
  const fdbAdd: OverlayFdb[] = [];
  const fdbReplace: OverlayFdb[] = [...f.replace];
  const paired = new Set<OverlayFdb>();
  for (const x of f.add) {
    const k = `${x.dev}|${x.dst}`;
    const [a, d] = [adds.get(k)!, dels.get(k)];
    // only an unambiguous one-for-one swap is a replace
    if (a.length === 1 && d?.length === 1) {
      fdbReplace.push({ ...x, replaces: d[0].mac });
      paired.add(d[0]);
    } else fdbAdd.push(x);
  }
  return {
    add: { routes: r.add, neighs: n.add, fdbs: fdbAdd },
    replace: { routes: r.replace, neighs: n.replace, fdbs: fdbReplace },
    delete: { routes: r.del, neighs: n.del, fdbs: f.del.filter((x) => !paired.has(x)) },
  };
}

export function planSize(p: OverlayPlan): number {
  const n = (o: Overlay) => o.routes.length + o.neighs.length + o.fdbs.length;
  return n(p.add) + n(p.replace) + n(p.delete);
}

// ---- list (kernel) ----

/** Index of each attachment's VXLAN device that exists (and is a VXLAN device). */
export function overlayDevices(h: Handle, attachments: NetworkAttachment[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const a of attachments) {
    try {
      const l = linkByName(h, a.vxlanDevice);
      if (l.kind === 'vxlan') out.set(a.vxlanDevice, l.index);
    } catch (e) {
      if (!isErrno(e, 'ENODEV')) throw e;
    }
  }
  return out;
}

/** weft's overlay entries as the kernel holds them now. */
export function listOverlay(h: Handle, attachments: NetworkAttachment[], devices = overlayDevices(h, attachments)): Overlay {
  const byIndex = new Map([...devices].map(([name, index]) => [index, name]));
  if (byIndex.size === 0) return emptyOverlay();
  const k: KernelEntries = { routes: routeList(h, { protocol: RTPROT_WEFT }), neighs: [], fdbs: [] };
  for (const index of byIndex.keys()) {
    k.neighs.push(...neighList(h, { linkIndex: index }));
    k.fdbs.push(...fdbList(h, { linkIndex: index }));
  }
  return selectOverlay(k, byIndex);
}

// ---- apply (kernel, one batch) ----

const routeOf = (r: OverlayRoute, linkIndex: number): Route => ({
  dst: r.dst, gw: r.gw, linkIndex, onlink: true, protocol: RTPROT_WEFT, table: RT_TABLE_MAIN,
});
const neighOf = (n: OverlayNeigh, linkIndex: number): Neigh => ({
  linkIndex, family: ipFamily(n.ip), ip: n.ip, mac: n.mac, state: NUD_PERMANENT, flags: 0,
});
const fdbOf = (f: { mac: string; dst: string }, linkIndex: number): Neigh => ({
  linkIndex, family: AF_BRIDGE, mac: f.mac, dst: f.dst, state: NUD_PERMANENT, flags: NTF_SELF,
});

export type ApplyResult = { requests: number; errors: EntryError[] };

/**
 * Send the plan as one batch, in an order that keeps every path whole: new
 * and changed entries first, FDB before neighbour before route, so a route
 * never points at a next hop that cannot be resolved yet; then stale ones,
 * route before neighbour before FDB, so nothing steers traffic into a
 * half-removed path. Adding before deleting also means a host that moves
 * from one record to another is never unreachable in between.
 *
 * New routes are added exclusively: a route someone else installed for the
 * same destination is reported (EEXIST), never overwritten. Deletes of what
 * is already gone count as done.
 */
export function applyOverlay(h: Handle, plan: OverlayPlan, devices: ReadonlyMap<string, number>): ApplyResult {
  const reqs: Request[] = [];
  const owners: Array<{ action: Action; kind: Kind; entry: EntryError['entry'] }> = [];
  const errors: EntryError[] = [];
  const push = (action: Action, kind: Kind, entry: EntryError['entry'], build: (index: number) => Request) => {
    const index = devices.get(entry.dev);
    if (index === undefined) {
      errors.push({ action, kind, entry, error: new NetlinkError(ENODEV, `${kind} ${action} on ${entry.dev}: no such VXLAN device`) });
      return;
    }
    reqs.push(build(index));
    owners.push({ action, kind, entry });
  };
  for (const f of plan.add.fdbs) push('add', 'fdb', f, (i) => fdbReplaceRequest(fdbOf(f, i)));
  for (const f of plan.replace.fdbs) push('replace', 'fdb', f, (i) => fdbReplaceRequest(fdbOf(f, i)));
  for (const n of plan.add.neighs) push('add', 'neigh', n, (i) => neighSetRequest(neighOf(n, i)));
  for (const n of plan.replace.neighs) push('replace', 'neigh', n, (i) => neighSetRequest(neighOf(n, i)));
  for (const r of plan.add.routes) push('add', 'route', r, (i) => routeAddRequest(routeOf(r, i)));
  for (const r of plan.replace.routes) push('replace', 'route', r, (i) => routeReplaceRequest(routeOf(r, i)));
  for (const r of plan.delete.routes) push('delete', 'route', r, (i) => routeDelRequest(routeOf(r, i)));
  for (const n of plan.delete.neighs) push('delete', 'neigh', n, (i) => neighDelRequest(neighOf(n, i)));
  for (const f of plan.replace.fdbs) if (f.replaces) push('replace', 'fdb', f, (i) => fdbDelRequest(fdbOf({ mac: f.replaces!, dst: f.dst }, i)));
  for (const f of plan.delete.fdbs) push('delete', 'fdb', f, (i) => fdbDelRequest(fdbOf(f, i)));
  if (reqs.length === 0) return { requests: 0, errors };
  const results = h.batch(reqs);
  const seen = new Set<EntryError['entry']>();
  results.forEach((e, i) => {
    if (!e) return;
    const o = owners[i];
    const gone = o.action === 'delete' || (o.kind === 'fdb' && o.action === 'replace' && reqs[i].op.startsWith('fdb del'));
    if (gone && isErrno(e, 'ENOENT', 'ESRCH')) return;
    if (seen.has(o.entry)) return;
    seen.add(o.entry);
    const error = o.kind === 'route' && o.action === 'add' && isErrno(e, 'EEXIST')
      ? new NetlinkError(e.errno, `${e.op}: a route to ${(o.entry as OverlayRoute).dst} that is not weft's is in the way`, e.detail)
      : e;
    errors.push({ action: o.action, kind: o.kind, entry: o.entry, error });
  });
  return { requests: reqs.length, errors };
}

// ---- reconcile ----

export type ReconcileResult = {
  desired: number;
  added: number;
  replaced: number;
  deleted: number;
  failed: number;
  /** Netlink write requests sent (zero when the kernel already agreed). */
  requests: number;
  durationMs: number;
  errors: EntryError[];
  skipped: Skipped[];
};

export type ReconcileOptions = { log?: Logger; datacenters?: OverlayDatacenters };

/** render, list, diff, apply: make the kernel's overlay entries what the topology says. */
export function reconcileOverlay(
  h: Handle, topology: Topology, self: string, attachments: NetworkAttachment[], opts: ReconcileOptions = {},
): ReconcileResult {
  const log = opts.log ?? silentLogger;
  const t0 = performance.now();
  const desired = renderOverlay(topology, self, attachments, opts.datacenters);
  const devices = overlayDevices(h, attachments);
  const actual = listOverlay(h, attachments, devices);
  const plan = diffOverlay(desired, actual);
  const { requests, errors } = applyOverlay(h, plan, devices);
  const failedOf = (action: Action) => errors.filter((e) => e.action === action).length;
  const count = (o: Overlay) => o.routes.length + o.neighs.length + o.fdbs.length;
  const result: ReconcileResult = {
    desired: count(desired),
    added: count(plan.add) - failedOf('add'),
    replaced: count(plan.replace) - failedOf('replace'),
    deleted: count(plan.delete) - failedOf('delete'),
    failed: errors.length,
    requests,
    durationMs: performance.now() - t0,
    errors,
    skipped: desired.skipped,
  };
  for (const s of desired.skipped) log.warn({ peer: s.host, network: s.network }, `not programming host ${s.host} in ${s.network}: ${s.reason}`);
  // entries waiting for a missing device are one line per device, not one per entry: the host
  // network repair says why the device is missing, and recreates it as soon as it can
  const missing = new Map<string, number>();
  for (const e of errors) {
    if (e.error instanceof NetlinkError && e.error.errno === ENODEV && !devices.has(e.entry.dev)) missing.set(e.entry.dev, (missing.get(e.entry.dev) ?? 0) + 1);
    else log.warn({ kind: e.kind, action: e.action, device: e.entry.dev }, e.error.message);
  }
  for (const [dev, n] of missing) log.warn({ device: dev, entries: n }, `${n} overlay entries wait for ${dev}, which does not exist`);
  if (requests > 0) {
    log.info(
      { revision: topology.revision, added: result.added, replaced: result.replaced, deleted: result.deleted, failed: result.failed },
      `overlay reconciled at revision ${topology.revision}: ${result.added} added, ${result.replaced} replaced, ${result.deleted} deleted, ${result.failed} failed`,
    );
  }
  return result;
}

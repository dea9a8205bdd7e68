// The pure half of the overlay reconcile: render, select and diff, checked
// with generated topologies and kernel states against a plain model of what
// applying a plan does.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  diffOverlay, fdbKeyOf, neighKeyOf, planSize, renderOverlay, routeKeyOf, selectOverlay,
  type KernelEntries, type Overlay, type OverlayPlan,
} from '../../cni-plugin/agent/host/overlay';
import type { NetworkAttachment, RemoteHost, Topology } from '../../cni-plugin/agent/state/types';
import { AF_BRIDGE, AF_INET } from '../../dataplane/netlink/libc';
import { NUD_PERMANENT, NUD_REACHABLE, NUD_STALE, NTF_MASTER, NTF_SELF } from '../../dataplane/netlink/neigh';
import { RTPROT_BOOT, RTPROT_STATIC, RTPROT_WEFT } from '../../dataplane/netlink/route';

const NETS = [0, 1, 2].map((i) => ({ name: `n${i}`, vni: 100 + i, cidr: `10.${i}.0.0/16` }));

function attachment(i: number): NetworkAttachment {
  return {
    network: `n${i}`, vni: 100 + i, networkCidr: `10.${i}.0.0/16`, subnet: `10.${i}.0.0/24`, gateway: `10.${i}.0.1`,
    vxlanDevice: `weft.vx${100 + i}`, bridge: `weft.br${100 + i}`, mtu: 1450,
  };
}
const ATTS = [0, 1, 2].map(attachment);
const DEVICES = new Map(ATTS.map((a, i) => [10 + i, a.vxlanDevice]));

function host(name: string, underlayIp: string, vtepMac: string, subnets: Record<string, string>): RemoteHost {
  return { name, underlayIp, vtepMac, rack: 'r1', datacenter: 'dc1', subnets };
}

function topo(hosts: RemoteHost[]): Topology {
  return { revision: 1, hosts, networks: NETS, vxlanPort: 4789 };
}

// Small pools on purpose: collisions of subnets and MACs between hosts are what render must survive.
const hostArb = (k: number) =>
  fc.record({
    underlay: fc.integer({ min: 1, max: 40 }),
    mac: fc.integer({ min: 1, max: 40 }),
    subnets: fc.array(fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }), { minLength: 3, maxLength: 3 }),
  }).map(({ underlay, mac, subnets }) => {
    const s: Record<string, string> = {};
    subnets.forEach((third, i) => {
      if (third !== undefined) s[`n${i}`] = `10.${i}.${third}.0/24`;
    });
    return host(`h${k}`, `192.168.1.${underlay}`, `02:00:00:00:00:${mac.toString(16).padStart(2, '0')}`, s);
  });

const topologyArb = fc.integer({ min: 0, max: 25 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, k) => hostArb(k)))).map((hs) => topo(hs));
const attsArb = fc.subarray(ATTS, { minLength: 1 });

function overlayOf(t: Topology, atts: NetworkAttachment[]): Overlay {
  const { routes, neighs, fdbs } = renderOverlay(t, 'self', atts);
  return { routes, neighs, fdbs };
}

/** What applying a plan does to a kernel holding exactly `actual`, as plain maps. */
function applyModel(actual: Overlay, plan: OverlayPlan): Overlay {
  const routes = new Map(actual.routes.map((x) => [routeKeyOf(x), x]));
  const neighs = new Map(actual.neighs.map((x) => [neighKeyOf(x), x]));
  const fdbs = new Map(actual.fdbs.map((x) => [fdbKeyOf(x), x]));
  for (const x of [...plan.add.routes, ...plan.replace.routes]) routes.set(routeKeyOf(x), x);
  for (const x of [...plan.add.neighs, ...plan.replace.neighs]) neighs.set(neighKeyOf(x), x);
  for (const { replaces, ...x } of [...plan.add.fdbs, ...plan.replace.fdbs]) {
    fdbs.set(fdbKeyOf(x), x);
    if (replaces) fdbs.delete(fdbKeyOf({ ...x, mac: replaces }));
  }
  for (const x of plan.delete.routes) routes.delete(routeKeyOf(x));
  for (const x of plan.delete.neighs) neighs.delete(neighKeyOf(x));
  for (const x of plan.delete.fdbs) fdbs.delete(fdbKeyOf(x));
  return canon({ routes: [...routes.values()], neighs: [...neighs.values()], fdbs: [...fdbs.values()] });
}

function canon(o: Overlay): Overlay {
  const by = <T>(key: (x: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
  return {
    routes: [...o.routes].sort(by(routeKeyOf)),
    neighs: [...o.neighs].sort(by(neighKeyOf)),
    fdbs: o.fdbs.map(({ replaces: _r, ...x }) => x).sort(by(fdbKeyOf)),
  };
}

/** A plausible kernel state: some of what is wanted, some of another topology's (stale or changed), keys unique as the kernel keeps them. */
const actualArb = (desired: Overlay) =>
  fc.tuple(topologyArb, fc.subarray(desired.routes), fc.subarray(desired.neighs), fc.subarray(desired.fdbs)).map(([other, r, n, f]) => {
    const o = overlayOf(other, ATTS);
    const routes = new Map([...o.routes, ...r].map((x) => [routeKeyOf(x), x]));
    const neighs = new Map([...o.neighs, ...n].map((x) => [neighKeyOf(x), x]));
    const fdbs = new Map([...o.fdbs, ...f].map((x) => [fdbKeyOf(x), x]));
    return { routes: [...routes.values()], neighs: [...neighs.values()], fdbs: [...fdbs.values()] };
  });

describe('renderOverlay', () => {
  const atts = [ATTS[0], ATTS[1]];

  it('gives every remote host one route, neighbour and FDB entry per shared network', () => {
    const t = topo([
      host('self', '192.168.1.1', '02:00:00:00:00:01', { n0: '10.0.0.0/24', n1: '10.1.0.0/24' }),
      host('b', '192.168.1.2', '02:00:00:00:00:02', { n0: '10.0.2.0/24', n1: '10.1.2.0/24' }),
      host('c', '192.168.1.3', '02:00:00:00:00:0A', { n0: '10.0.3.0/24', n2: '10.2.3.0/24' }),
    ]);
    expect(renderOverlay(t, 'self', atts)).toEqual({
      routes: [
        { dev: 'weft.vx100', dst: '10.0.2.0/24', gw: '10.0.2.0' },
        { dev: 'weft.vx100', dst: '10.0.3.0/24', gw: '10.0.3.0' },
        { dev: 'weft.vx101', dst: '10.1.2.0/24', gw: '10.1.2.0' },
      ],
      neighs: [
        { dev: 'weft.vx100', ip: '10.0.2.0', mac: '02:00:00:00:00:02' },
        { dev: 'weft.vx100', ip: '10.0.3.0', mac: '02:00:00:00:00:0a' },
        { dev: 'weft.vx101', ip: '10.1.2.0', mac: '02:00:00:00:00:02' },
      ],
      fdbs: [
        { dev: 'weft.vx100', mac: '02:00:00:00:00:02', dst: '192.168.1.2' },
        { dev: 'weft.vx100', mac: '02:00:00:00:00:0a', dst: '192.168.1.3' },
        { dev: 'weft.vx101', mac: '02:00:00:00:00:02', dst: '192.168.1.2' },
      ],
      skipped: [],
    });
  });

  it('skips a host it cannot program, with the reason, and keeps the others', () => {
    const t = topo([
      host('a', '192.168.1.2', '02:00:00:00:00:02', { n0: '10.0.2.0/24' }),
      host('b', '192.168.1.3', '02:00:00:00:00:03', { n0: '10.0.2.0/24' }),
      host('c', '192.168.1.4', '02:00:00:00:00:02', { n0: '10.0.4.0/24' }),
      host('d', 'nope', '02:00:00:00:00:05', { n0: '10.0.5.0/24' }),
      host('e', '192.168.1.6', '01:00:00:00:00:06', { n0: '10.0.6.0/24' }),
      host('f', '192.168.1.7', '02:00:00:00:00:07', { n0: '10.9.0.0/24' }),
      host('g', '192.168.1.8', '02:00:00:00:00:08', { n0: '10.0.0.0/24' }),
      host('h', '192.168.1.9', '02:00:00:00:00:09', { n0: '10.0.9.1/24' }),
    ]);
    const r = renderOverlay(t, 'self', atts);
    expect(r.routes.map((x) => x.dst)).toEqual(['10.0.2.0/24']);
    expect(r.skipped).toEqual([
      { host: 'b', network: 'n0', reason: 'subnet 10.0.2.0/24 is already another host\'s' },
      { host: 'c', network: 'n0', reason: 'VTEP MAC 02:00:00:00:00:02 is already another host\'s (at 192.168.1.2)' },
      { host: 'd', network: 'n0', reason: 'underlay IP "nope" is not an IP address' },
      { host: 'e', network: 'n0', reason: 'invalid VTEP MAC 01:00:00:00:00:06 (must be a unicast address, not all zero)' },
      { host: 'f', network: 'n0', reason: "subnet 10.9.0.0/24 is not inside network n0's 10.0.0.0/16" },
      { host: 'g', network: 'n0', reason: "subnet 10.0.0.0/24 overlaps this host's 10.0.0.0/24" },
      { host: 'h', network: 'n0', reason: 'subnet 10.0.9.1/24 has host bits set' },
    ]);
  });

  it('is a function of the set of hosts, not of their order, and never renders self or a collision', () => {
    const permuted = topologyArb.chain((t) => fc.tuple(fc.constant(t), fc.shuffledSubarray(t.hosts, { minLength: t.hosts.length, maxLength: t.hosts.length })));
    fc.assert(
      fc.property(permuted, attsArb, ([t, hosts], atts) => {
        const r = renderOverlay(t, 'h0', atts);
        expect(renderOverlay({ ...t, hosts }, 'h0', atts)).toEqual(r);
        expect(renderOverlay({ ...t, hosts: t.hosts.filter((x) => x.name !== 'h0') }, 'nobody', atts)).toEqual(r);
        for (const kind of [r.routes.map(routeKeyOf), r.neighs.map(neighKeyOf), r.fdbs.map(fdbKeyOf)]) expect(new Set(kind).size).toBe(kind.length);
        // every route's next hop is resolvable: a neighbour for its gateway, an FDB entry for that MAC
        for (const route of r.routes) {
          const n = r.neighs.find((x) => x.dev === route.dev && x.ip === route.gw);
          expect(n).toBeDefined();
          expect(r.fdbs.some((f) => f.dev === route.dev && f.mac === n!.mac)).toBe(true);
        }
      }),
    );
  });
});

describe('diffOverlay', () => {
  it('of the desired state against itself is empty', () => {
    fc.assert(
      fc.property(topologyArb, attsArb, (t, atts) => {
        const d = overlayOf(t, atts);
        expect(planSize(diffOverlay(d, d))).toBe(0);
        // listing order must not matter either
        const reversed = { routes: [...d.routes].reverse(), neighs: [...d.neighs].reverse(), fdbs: [...d.fdbs].reverse() };
        expect(planSize(diffOverlay(d, reversed))).toBe(0);
      }),
    );
  });

  it('applied to the actual state yields the desired state, and deletes only what was listed', () => {
    fc.assert(
      fc.property(
        topologyArb.chain((t) => {
          const d = overlayOf(t, ATTS);
          return fc.tuple(fc.constant(d), actualArb(d));
        }),
        ([desired, actual]) => {
          const plan = diffOverlay(desired, actual);
          expect(applyModel(actual, plan)).toEqual(canon(desired));
          const listed = new Set([...actual.routes.map((x) => JSON.stringify(x)), ...actual.neighs.map((x) => JSON.stringify(x)), ...actual.fdbs.map((x) => JSON.stringify(x))]);
          for (const x of [...plan.delete.routes, ...plan.delete.neighs, ...plan.delete.fdbs]) expect(listed.has(JSON.stringify(x))).toBe(true);
          for (const f of plan.replace.fdbs.filter((x) => x.replaces)) expect(actual.fdbs.some((a) => a.dev === f.dev && a.mac === f.replaces)).toBe(true);
          // a second pass over the result has nothing left to do
          expect(planSize(diffOverlay(desired, applyModel(actual, plan)))).toBe(0);
        },
      ),
    );
  });

  it('replaces neighbour and FDB entry of a host back with a new VTEP MAC, and nothing else', () => {
    const before = topo([host('b', '192.168.1.2', '02:00:00:00:00:02', { n0: '10.0.2.0/24' }), host('c', '192.168.1.3', '02:00:00:00:00:03', { n0: '10.0.3.0/24' })]);
    const after = topo([host('b', '192.168.1.2', '02:00:00:00:00:22', { n0: '10.0.2.0/24' }), host('c', '192.168.1.3', '02:00:00:00:00:03', { n0: '10.0.3.0/24' })]);
    const plan = diffOverlay(overlayOf(after, ATTS), overlayOf(before, ATTS));
    expect(plan).toEqual({
      add: { routes: [], neighs: [], fdbs: [] },
      replace: {
        routes: [],
        neighs: [{ dev: 'weft.vx100', ip: '10.0.2.0', mac: '02:00:00:00:00:22' }],
        fdbs: [{ dev: 'weft.vx100', mac: '02:00:00:00:00:22', dst: '192.168.1.2', replaces: '02:00:00:00:00:02' }],
      },
      delete: { routes: [], neighs: [], fdbs: [] },
    });
  });

  it('deletes all three entries of a host that left', () => {
    const both = topo([host('b', '192.168.1.2', '02:00:00:00:00:02', { n0: '10.0.2.0/24' }), host('c', '192.168.1.3', '02:00:00:00:00:03', { n0: '10.0.3.0/24' })]);
    const plan = diffOverlay(overlayOf(topo([both.hosts[1]]), ATTS), overlayOf(both, ATTS));
    expect(planSize(plan)).toBe(3);
    expect(plan.delete).toEqual({
      routes: [{ dev: 'weft.vx100', dst: '10.0.2.0/24', gw: '10.0.2.0' }],
      neighs: [{ dev: 'weft.vx100', ip: '10.0.2.0', mac: '02:00:00:00:00:02' }],
      fdbs: [{ dev: 'weft.vx100', mac: '02:00:00:00:00:02', dst: '192.168.1.2' }],
    });
  });
});

describe('selectOverlay: only weft entries are ever listed, so only they can be deleted', () => {
  const weftRoute = (third: number, dev: number) => ({ dst: `10.0.${third}.0/24`, gw: `10.0.${third}.0`, linkIndex: dev, protocol: RTPROT_WEFT, table: 254, type: 1, onlink: true });
  const weftNeigh = (third: number, dev: number) => ({ linkIndex: dev, family: AF_INET, ip: `10.0.${third}.0`, mac: '02:00:00:00:00:02', state: NUD_PERMANENT, flags: 0 });
  const weftFdb = (m: number, dev: number) => ({ linkIndex: dev, family: AF_BRIDGE, mac: `02:00:00:00:00:${m.toString(16).padStart(2, '0')}`, dst: '192.168.1.2', state: NUD_PERMANENT, flags: NTF_SELF });

  // everything here sits where weft's entries sit, but is someone else's
  const foreign: KernelEntries = {
    routes: [
      { ...weftRoute(50, 10), protocol: RTPROT_BOOT },
      { ...weftRoute(51, 10), protocol: RTPROT_STATIC },
      { ...weftRoute(52, 99) },
      { ...weftRoute(53, 10), table: 100 },
      { dst: '10.0.54.0/24', linkIndex: 10, protocol: RTPROT_WEFT, table: 254, type: 1 },
    ],
    neighs: [
      { ...weftNeigh(60, 10), state: NUD_REACHABLE },
      { ...weftNeigh(61, 10), state: NUD_STALE },
      { ...weftNeigh(62, 99) },
    ],
    fdbs: [
      { ...weftFdb(0x70, 99) },
      { ...weftFdb(0x71, 10), masterIndex: 5, flags: NTF_MASTER },
      { ...weftFdb(0x72, 10), state: NUD_REACHABLE },
      { ...weftFdb(0, 10), mac: '00:00:00:00:00:00' },
      { ...weftFdb(0x73, 10), vni: 7 },
      { linkIndex: 10, family: AF_BRIDGE, mac: '02:00:00:00:00:74', state: NUD_PERMANENT, flags: NTF_SELF },
    ],
  };

  it('leaves every foreign entry out, whatever weft entries surround it, and diff never touches them', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 40 }), { maxLength: 20 }),
        fc.subarray([...DEVICES.keys()], { minLength: 1 }),
        fc.subarray(foreign.routes),
        fc.subarray(foreign.neighs),
        fc.subarray(foreign.fdbs),
        (thirds, devs, fr, fn, ff) => {
          const weft: KernelEntries = {
            routes: thirds.map((t, i) => weftRoute(t, devs[i % devs.length])),
            neighs: thirds.map((t, i) => weftNeigh(t, devs[i % devs.length])),
            fdbs: thirds.map((t, i) => weftFdb(t, devs[i % devs.length])),
          };
          const mixed: KernelEntries = { routes: [...fr, ...weft.routes], neighs: [...weft.neighs, ...fn], fdbs: [...ff, ...weft.fdbs] };
          const listed = selectOverlay(mixed, DEVICES);
          expect(listed).toEqual(selectOverlay(weft, DEVICES));
          expect(listed.routes).toHaveLength(thirds.length);
          // with nothing desired, the plan deletes exactly the weft entries
          const plan = diffOverlay({ routes: [], neighs: [], fdbs: [] }, listed);
          expect(plan.delete).toEqual(listed);
        },
      ),
    );
  });
});

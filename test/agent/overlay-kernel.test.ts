// reconcileOverlay against the kernel, in a test namespace whose underlay is
// a veth: 50 remote hosts programmed, then changed, removed, tampered with.
// Kernel state is read back with `ip -j` and `bridge -j`.
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { openHandle, type Handle, type Request } from '../../dataplane/netlink/handle';
import { ensureHostNetwork } from '../../cni-plugin/agent/host/host-network';
import { listOverlay, reconcileOverlay } from '../../cni-plugin/agent/host/overlay';
import type { NetworkAttachment, RemoteHost, Topology } from '../../cni-plugin/agent/state/types';
import { ipJson, useTestNetns } from '../helpers/netns';
import { ip, recordingLog, underlay } from './fixtures';

const SELF_MAC = '02:77:00:00:00:01';
const DEV = 'weft.vx101';

function remote(i: number, mac = `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`): RemoteHost {
  return {
    name: `r${String(i).padStart(4, '0')}`,
    underlayIp: `192.168.${90 + (i >> 8)}.${(i & 255) + (i < 245 ? 10 : 0)}`,
    vtepMac: mac,
    rack: 'r1',
    datacenter: 'dc1',
    subnets: { a: `10.${96 + (i >> 8)}.${i & 255}.0/24` },
  };
}

function topology(hosts: RemoteHost[], revision = 1): Topology {
  const self: RemoteHost = { name: 'self', underlayIp: '192.168.90.1', vtepMac: SELF_MAC, rack: 'r1', datacenter: 'dc1', subnets: { a: '10.111.0.0/24' } };
  return { revision, hosts: [self, ...hosts], networks: [{ name: 'a', vni: 101, cidr: '10.96.0.0/12' }], vxlanPort: 4789 };
}

type IpRoute = { dst: string; gateway?: string; dev: string; protocol: string; flags: string[] };
type IpNeigh = { dst: string; lladdr?: string; state: string[] };
type Fdb = { mac: string; dst?: string; flags: string[]; state: string };

const routes = (ns: string) => ipJson<IpRoute[]>(ns, ['route', 'show', 'dev', DEV]).filter((r) => r.protocol === '119' || r.protocol === 'weft');
const neighs = (ns: string, dev = DEV) => ipJson<IpNeigh[]>(ns, ['neigh', 'show', 'dev', dev]).filter((n) => n.state.includes('PERMANENT'));
const fdbs = (ns: string): Fdb[] => {
  const out = execFileSync('bridge', ['-n', ns, '-j', 'fdb', 'show', 'dev', DEV], { encoding: 'utf8' }).trim();
  return (out ? JSON.parse(out) : []).filter((f: Fdb) => f.dst !== undefined);
};

/** Everything the overlay put in the kernel, as sorted lines: for "exactly this changed" comparisons. */
function kernelState(ns: string): string[] {
  return [
    ...routes(ns).map((r) => `route ${r.dst} via ${r.gateway} ${r.flags.join(',')}`),
    ...neighs(ns).map((n) => `neigh ${n.dst} ${n.lladdr}`),
    ...fdbs(ns).map((f) => `fdb ${f.mac} ${f.dst} ${f.flags.join(',')} ${f.state}`),
  ].sort();
}

/** A handle that counts the write requests passing through it; reads (GET and dumps) are not counted. */
function counting(h: Handle): { h: Handle; writes: () => number } {
  let writes = 0;
  // rtnetlink types come in fours from 16: NEW, DEL, GET, SET
  const isWrite = (r: Request) => (r.type - 16) % 4 !== 2;
  return {
    writes: () => writes,
    h: {
      netns: h.netns,
      exec: (r) => {
        if (isWrite(r)) writes++;
        return h.exec(r);
      },
      dump: (r) => h.dump(r),
      batch: (rs) => {
        writes += rs.filter(isWrite).length;
        return h.batch(rs);
      },
      close: () => h.close(),
    },
  };
}

describe('reconcileOverlay in a namespace', () => {
  const nss = useTestNetns('h', 1);
  let h: Handle | undefined;
  afterEach(() => {
    h?.close();
    h = undefined;
  });

  function setup(underlayCidr = '192.168.90.1/24'): { ns: string; h: Handle; atts: NetworkAttachment[]; udev: string } {
    const [ns] = nss();
    const { dev } = underlay(ns, underlayCidr);
    h = openHandle({ netns: ns });
    const atts = ensureHostNetwork(h, {
      self: { underlayIp: '192.168.90.1', vtepMac: SELF_MAC },
      attachments: [{ network: 'a', vni: 101, networkCidr: '10.96.0.0/12', subnet: '10.111.0.0/24' }],
      vxlanPort: 4789,
    });
    return { ns, h, atts, udev: dev };
  }

  const fifty = () => Array.from({ length: 50 }, (_, i) => remote(i + 1));

  it('programs 50 remote hosts, and a second reconcile sends nothing', () => {
    const { ns, h, atts } = setup();
    const c = counting(h);
    const first = reconcileOverlay(c.h, topology(fifty()), 'self', atts);
    expect(first).toMatchObject({ desired: 150, added: 150, replaced: 0, deleted: 0, failed: 0, requests: 150, errors: [], skipped: [] });
    expect(c.writes()).toBe(150);
    expect(routes(ns)).toHaveLength(50);
    expect(neighs(ns)).toHaveLength(50);
    expect(fdbs(ns)).toHaveLength(50);
    expect(routes(ns).find((r) => r.dst === '10.96.7.0/24')).toMatchObject({ gateway: '10.96.7.0', flags: ['onlink'] });
    expect(neighs(ns).find((n) => n.dst === '10.96.7.0')).toMatchObject({ lladdr: '02:00:00:00:00:07' });
    expect(fdbs(ns).find((f) => f.mac === '02:00:00:00:00:07')).toMatchObject({ dst: '192.168.90.17', flags: ['self'], state: 'permanent' });
    // the listing reads back exactly what was rendered
    expect(listOverlay(h, atts).routes).toHaveLength(50);

    const before = kernelState(ns);
    const second = reconcileOverlay(c.h, topology(fifty(), 2), 'self', atts);
    expect(second).toMatchObject({ desired: 150, added: 0, replaced: 0, deleted: 0, failed: 0, requests: 0 });
    expect(c.writes()).toBe(150);
    expect(kernelState(ns)).toEqual(before);
  });

  it('a deleted VXLAN device: every entry on it fails with ENODEV, logged as one line for the device, and sends nothing', () => {
    const { ns, h, atts } = setup();
    ip(['-n', ns, 'link', 'del', DEV]);
    const c = counting(h);
    const log = recordingLog();
    const r = reconcileOverlay(c.h, topology(fifty().slice(0, 5)), 'self', atts, { log });
    expect(r).toMatchObject({ desired: 15, failed: 15, requests: 0 });
    expect(r.errors.every((e) => e.error.message.includes('no such VXLAN device'))).toBe(true);
    expect(c.writes()).toBe(0);
    expect(log.lines.map((l) => l.msg)).toEqual([`15 overlay entries wait for ${DEV}, which does not exist`]);
  });

  it("replaces only the neighbour and FDB entry of a host whose VTEP MAC changed", () => {
    const { ns, h, atts } = setup();
    reconcileOverlay(h, topology(fifty()), 'self', atts);
    const before = kernelState(ns);
    const hosts = fifty();
    hosts[6] = { ...hosts[6], vtepMac: '02:00:00:00:aa:07' };
    const c = counting(h);
    const r = reconcileOverlay(c.h, topology(hosts), 'self', atts);
    expect(r).toMatchObject({ desired: 150, added: 0, replaced: 2, deleted: 0, failed: 0 });
    // neighbour replace, new FDB entry, old FDB entry removed
    expect(c.writes()).toBe(3);
    const after = kernelState(ns);
    expect(before.filter((l) => !after.includes(l))).toEqual(['fdb 02:00:00:00:00:07 192.168.90.17 self permanent', 'neigh 10.96.7.0 02:00:00:00:00:07']);
    expect(after.filter((l) => !before.includes(l))).toEqual(['fdb 02:00:00:00:aa:07 192.168.90.17 self permanent', 'neigh 10.96.7.0 02:00:00:00:aa:07']);
  });

  it('removes the three entries of a host that left, and only those', () => {
    const { ns, h, atts } = setup();
    reconcileOverlay(h, topology(fifty()), 'self', atts);
    const before = kernelState(ns);
    const r = reconcileOverlay(h, topology(fifty().filter((x) => x.name !== 'r0009')), 'self', atts);
    expect(r).toMatchObject({ desired: 147, added: 0, replaced: 0, deleted: 3, failed: 0, requests: 3 });
    const after = kernelState(ns);
    expect(before.filter((l) => !after.includes(l))).toEqual([
      'fdb 02:00:00:00:00:09 192.168.90.19 self permanent',
      'neigh 10.96.9.0 02:00:00:00:00:09',
      'route 10.96.9.0/24 via 10.96.9.0 onlink',
    ]);
    expect(after.filter((l) => !before.includes(l))).toEqual([]);
  });

  it("leaves entries that are not weft's alone, even when every weft entry goes", () => {
    const { ns, h, atts, udev } = setup();
    reconcileOverlay(h, topology(fifty()), 'self', atts);
    // a route on weft's device with another protocol, one on another device, a neighbour elsewhere
    ip(['-n', ns, 'route', 'add', '10.120.0.0/24', 'via', '10.96.3.0', 'dev', DEV, 'onlink', 'proto', 'static']);
    ip(['-n', ns, 'route', 'add', '10.121.0.0/24', 'via', '192.168.90.254', 'dev', udev]);
    ip(['-n', ns, 'neigh', 'add', '192.168.90.254', 'lladdr', '02:99:00:00:00:01', 'dev', udev, 'nud', 'permanent']);
    const foreignRoutes = () => ipJson<IpRoute[]>(ns, ['route', 'show']).filter((r) => r.dst.startsWith('10.12')).map((r) => `${r.dst} ${r.gateway} ${r.dev} ${r.protocol ?? 'boot'}`);
    expect(foreignRoutes()).toEqual(['10.120.0.0/24 10.96.3.0 weft.vx101 static', `10.121.0.0/24 192.168.90.254 ${udev} boot`]);

    const r = reconcileOverlay(h, topology([]), 'self', atts);
    expect(r).toMatchObject({ desired: 0, added: 0, replaced: 0, deleted: 150, failed: 0 });
    expect(kernelState(ns)).toEqual([]);
    expect(foreignRoutes()).toEqual(['10.120.0.0/24 10.96.3.0 weft.vx101 static', `10.121.0.0/24 192.168.90.254 ${udev} boot`]);
    expect(neighs(ns, udev).map((n) => `${n.dst} ${n.lladdr}`)).toEqual(['192.168.90.254 02:99:00:00:00:01']);
  });

  it('reports a route someone else holds for a remote subnet, and never overwrites it', () => {
    const { ns, h, atts, udev } = setup();
    ip(['-n', ns, 'route', 'add', '10.96.5.0/24', 'via', '192.168.90.254', 'dev', udev]);
    const r = reconcileOverlay(h, topology(fifty()), 'self', atts);
    expect(r).toMatchObject({ desired: 150, added: 149, failed: 1 });
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatchObject({ action: 'add', kind: 'route', entry: { dst: '10.96.5.0/24' } });
    expect(r.errors[0].error.message).toMatch(/^EEXIST: .*a route to 10\.96\.5\.0\/24 that is not weft's is in the way/);
    expect(ipJson<IpRoute[]>(ns, ['route', 'show', '10.96.5.0/24'])).toMatchObject([{ gateway: '192.168.90.254', dev: udev }]);
  });

  it('restores exactly a weft route deleted by hand', () => {
    const { ns, h, atts } = setup();
    reconcileOverlay(h, topology(fifty()), 'self', atts);
    const before = kernelState(ns);
    ip(['-n', ns, 'route', 'del', '10.96.33.0/24']);
    expect(kernelState(ns)).toHaveLength(149);
    const c = counting(h);
    const r = reconcileOverlay(c.h, topology(fifty()), 'self', atts);
    expect(r).toMatchObject({ added: 1, replaced: 0, deleted: 0, failed: 0, requests: 1 });
    expect(c.writes()).toBe(1);
    expect(kernelState(ns)).toEqual(before);
  });

  it('scales: 1,000 hosts programmed in one batch, and the no-change reconcile is cheap', () => {
    const { ns, h, atts } = setup('192.168.90.1/16');
    const hosts = Array.from({ length: 1000 }, (_, i) => remote(i + 1));
    const first = reconcileOverlay(h, topology(hosts), 'self', atts);
    expect(first).toMatchObject({ desired: 3000, added: 3000, failed: 0 });
    const noop = reconcileOverlay(h, topology(hosts), 'self', atts);
    expect(noop).toMatchObject({ desired: 3000, requests: 0 });
    expect(routes(ns)).toHaveLength(1000);
    console.log(`overlay reconcile, 1000 hosts: program ${first.durationMs.toFixed(1)} ms, no-change ${noop.durationMs.toFixed(1)} ms`);
  });
});

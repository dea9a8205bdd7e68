import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openHandle, throwIfAny, type Handle } from '../../dataplane/netlink/handle';
import { InvalidArgumentError, NetlinkError } from '../../dataplane/netlink/errors';
import { AF_BRIDGE, AF_INET, AF_INET6 } from '../../dataplane/netlink/libc';
import {
  neighSet, neighAdd, neighDel, neighList, neighEqual, neighKey, neighString,
  neighSetRequest, neighAddRequest, neighDelRequest,
  fdbAppend, fdbReplace, fdbAdd, fdbDel, fdbList,
  fdbAppendRequest, fdbReplaceRequest, fdbDelRequest,
  NUD_PERMANENT, NUD_REACHABLE, NUD_STALE, NTF_SELF, NTF_MASTER,
  type Neigh,
} from '../../dataplane/netlink/neigh';
import { useTestNetns, ipJson } from '../helpers/netns';

const VX = 'wtnvx';
const LOCAL = '192.168.77.1';

type Fixture = { ns: string; h: Handle; vx: number; veth: number };

/** A namespace with the shape of a weft host: an underlay veth and a VXLAN device on it. */
function makeVxlanHost(ns: string): Fixture {
  const ip = (...a: string[]) => execFileSync('ip', ['-n', ns, ...a]);
  ip('link', 'add', 'wtnv0', 'type', 'veth', 'peer', 'name', 'wtnv1');
  ip('addr', 'add', `${LOCAL}/24`, 'dev', 'wtnv0');
  ip('link', 'set', 'wtnv0', 'up');
  ip('link', 'add', VX, 'type', 'vxlan', 'id', '42', 'dstport', '4789', 'nolearning', 'local', LOCAL, 'dev', 'wtnv0');
  ip('link', 'set', VX, 'up');
  const index = (name: string) => ipJson<{ ifindex: number }[]>(ns, ['link', 'show', name])[0].ifindex;
  return { ns, h: openHandle({ netns: ns }), vx: index(VX), veth: index('wtnv0') };
}

type IpNeigh = { dst: string; dev?: string; lladdr?: string; state: string[] };
type BridgeFdb = { mac: string; dst?: string; vni?: number; port?: number; flags?: string[]; state?: string; master?: string };

const ipNeighs = (ns: string, dev = VX) => ipJson<IpNeigh[]>(ns, ['neigh', 'show', 'dev', dev]);
function bridgeFdb(ns: string, dev = VX): BridgeFdb[] {
  const out = execFileSync('bridge', ['-n', ns, '-j', 'fdb', 'show', 'dev', dev], { encoding: 'utf8' });
  return out.trim() ? JSON.parse(out) : [];
}

function neighOf(f: Fixture, ip: string, mac?: string): Neigh {
  return { linkIndex: f.vx, family: ip.includes(':') ? AF_INET6 : AF_INET, ip, mac, state: NUD_PERMANENT, flags: 0 };
}

function fdbOf(f: Fixture, mac: string, dst?: string): Neigh {
  return { linkIndex: f.vx, family: AF_BRIDGE, mac, dst, state: NUD_PERMANENT, flags: NTF_SELF };
}

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error, got none');
}

describe('neighbours on a VXLAN device', () => {
  const namespaces = useTestNetns('n');
  let f: Fixture;
  beforeEach(() => {
    f = makeVxlanHost(namespaces()[0]);
  });
  afterEach(() => f?.h.close());

  it('sets a permanent neighbour the way `ip neigh replace` does, and lists it', () => {
    neighSet(f.h, neighOf(f, '10.244.1.0', 'aa:bb:cc:00:00:01'));
    expect(ipNeighs(f.ns)).toEqual([{ dst: '10.244.1.0', lladdr: 'aa:bb:cc:00:00:01', state: ['PERMANENT'] }]);
    // IPv4 only: the kernel may add its own IPv6 multicast (NOARP) neighbours to any link
    const listed = neighList(f.h, { linkIndex: f.vx, family: AF_INET });
    expect(listed).toHaveLength(1);
    expect(neighEqual(listed[0], neighOf(f, '10.244.1.0', 'aa:bb:cc:00:00:01'))).toBe(true);
  });

  it('is idempotent and replaces a changed MAC in place', () => {
    const n = neighOf(f, '10.244.2.0', 'aa:bb:cc:00:00:02');
    neighSet(f.h, n);
    neighSet(f.h, n);
    expect(ipNeighs(f.ns)).toHaveLength(1);
    neighSet(f.h, { ...n, mac: 'AA:BB:CC:00:00:99' });
    expect(ipNeighs(f.ns)).toEqual([{ dst: '10.244.2.0', lladdr: 'aa:bb:cc:00:00:99', state: ['PERMANENT'] }]);
  });

  it('handles IPv6 neighbours and filters the listing by family', () => {
    neighSet(f.h, neighOf(f, 'fd00:0:0::7', 'aa:bb:cc:00:00:07'));
    neighSet(f.h, neighOf(f, '10.244.7.0', 'aa:bb:cc:00:00:08'));
    const v6 = neighList(f.h, { linkIndex: f.vx, family: AF_INET6 }).filter((n) => n.state === NUD_PERMANENT);
    expect(v6.map((n) => [n.ip, n.mac])).toEqual([['fd00::7', 'aa:bb:cc:00:00:07']]);
    const v4 = neighList(f.h, { linkIndex: f.vx, family: AF_INET });
    expect(v4.map((n) => n.ip)).toEqual(['10.244.7.0']);
    expect(ipNeighs(f.ns).map((n) => n.dst).sort()).toEqual(['10.244.7.0', 'fd00::7']);
  });

  it('filters the listing by link', () => {
    neighSet(f.h, neighOf(f, '10.244.3.0', 'aa:bb:cc:00:00:03'));
    neighSet(f.h, { ...neighOf(f, '192.168.77.9', 'aa:bb:cc:00:00:09'), linkIndex: f.veth });
    const permanentIps = (l: Neigh[]) => l.filter((n) => n.state === NUD_PERMANENT).map((n) => n.ip);
    expect(permanentIps(neighList(f.h, { linkIndex: f.vx }))).toEqual(['10.244.3.0']);
    expect(permanentIps(neighList(f.h, { linkIndex: f.veth }))).toEqual(['192.168.77.9']);
    expect(neighList(f.h, { linkIndex: f.veth }).every((n) => n.linkIndex === f.veth)).toBe(true);
    expect(permanentIps(neighList(f.h)).sort()).toEqual(['10.244.3.0', '192.168.77.9']);
  });

  it('add refuses an existing entry (EEXIST) and leaves it unchanged', () => {
    neighAdd(f.h, neighOf(f, '10.244.4.0', 'aa:bb:cc:00:00:04'));
    const err = errorOf(() => neighAdd(f.h, neighOf(f, '10.244.4.0', 'aa:bb:cc:00:00:05')));
    expect(err).toBeInstanceOf(NetlinkError);
    expect((err as NetlinkError).code).toBe('EEXIST');
    expect((err as NetlinkError).op).toMatch(/^neigh add 10\.244\.4\.0 lladdr aa:bb:cc:00:00:05/);
    expect(ipNeighs(f.ns)[0].lladdr).toBe('aa:bb:cc:00:00:04');
  });

  it('deletes, and deleting a missing neighbour is ENOENT', () => {
    const n = neighOf(f, '10.244.5.0', 'aa:bb:cc:00:00:05');
    neighSet(f.h, n);
    neighDel(f.h, n);
    expect(ipNeighs(f.ns)).toEqual([]);
    const err = errorOf(() => neighDel(f.h, n));
    expect(err).toBeInstanceOf(NetlinkError);
    expect((err as NetlinkError).code).toBe('ENOENT');
  });

  it('an unknown link is ENODEV', () => {
    const err = errorOf(() => neighSet(f.h, { ...neighOf(f, '10.244.6.0', 'aa:bb:cc:00:00:06'), linkIndex: 9999 }));
    expect(err).toBeInstanceOf(NetlinkError);
    expect((err as NetlinkError).code).toBe('ENODEV');
  });

  it('lists a kernel-learned (non-permanent) neighbour with its state', () => {
    execFileSync('ip', ['-n', f.ns, 'neigh', 'add', '192.168.77.20', 'lladdr', 'aa:bb:cc:00:00:20', 'nud', 'reachable', 'dev', 'wtnv0']);
    const [n] = neighList(f.h, { linkIndex: f.veth });
    expect(n).toMatchObject({ ip: '192.168.77.20', mac: 'aa:bb:cc:00:00:20', family: AF_INET });
    // reachable, or already aged to stale: either way a kernel state, not permanent
    expect(n.state & (NUD_REACHABLE | NUD_STALE)).not.toBe(0);
    expect(n.state & NUD_PERMANENT).toBe(0);
  });
});

describe('FDB of a VXLAN device', () => {
  const namespaces = useTestNetns('n');
  let f: Fixture;
  beforeEach(() => {
    f = makeVxlanHost(namespaces()[0]);
  });
  afterEach(() => f?.h.close());

  it('replaces an entry with a remote dst, like `bridge fdb replace ... dst ... self permanent`', () => {
    fdbReplace(f.h, fdbOf(f, 'aa:bb:cc:00:01:01', '192.168.77.2'));
    expect(bridgeFdb(f.ns)).toEqual([{ mac: 'aa:bb:cc:00:01:01', dst: '192.168.77.2', flags: ['self'], state: 'permanent' }]);
    const listed = fdbList(f.h, { linkIndex: f.vx });
    expect(listed).toHaveLength(1);
    expect(neighEqual(listed[0], fdbOf(f, 'aa:bb:cc:00:01:01', '192.168.77.2'))).toBe(true);
  });

  it('is idempotent and moves an entry to a new dst', () => {
    const e = fdbOf(f, 'aa:bb:cc:00:01:02', '192.168.77.2');
    fdbReplace(f.h, e);
    fdbReplace(f.h, e);
    fdbReplace(f.h, { ...e, dst: '192.168.77.3' });
    expect(bridgeFdb(f.ns).map((x) => [x.mac, x.dst])).toEqual([['aa:bb:cc:00:01:02', '192.168.77.3']]);
  });

  it('an IPv6 dst on an IPv4 VXLAN device is the kernel\'s EAFNOSUPPORT, not a half-made entry', () => {
    const err = errorOf(() => fdbReplace(f.h, fdbOf(f, 'aa:bb:cc:00:01:06', 'fd00::2')));
    expect((err as NetlinkError).code).toBe('EAFNOSUPPORT');
    expect(bridgeFdb(f.ns)).toEqual([]);
  });

  it('decodes vni and port that differ from the device defaults', () => {
    fdbReplace(f.h, { ...fdbOf(f, 'aa:bb:cc:00:01:03', '192.168.77.6'), vni: 4242, port: 8472 });
    expect(bridgeFdb(f.ns)).toMatchObject([{ mac: 'aa:bb:cc:00:01:03', dst: '192.168.77.6', vni: 4242, port: 8472 }]);
    expect(fdbList(f.h, { linkIndex: f.vx })).toEqual([
      { linkIndex: f.vx, family: AF_BRIDGE, mac: 'aa:bb:cc:00:01:03', dst: '192.168.77.6', vni: 4242, port: 8472, state: NUD_PERMANENT, flags: NTF_SELF },
    ]);
  });

  it('appends several remotes to the all-zero MAC and deletes one of them', () => {
    const zero = '00:00:00:00:00:00';
    fdbAppend(f.h, fdbOf(f, zero, '192.168.77.4'));
    fdbAppend(f.h, fdbOf(f, zero, '192.168.77.5'));
    expect(bridgeFdb(f.ns).map((x) => x.dst).sort()).toEqual(['192.168.77.4', '192.168.77.5']);
    const listed = fdbList(f.h, { linkIndex: f.vx });
    expect(new Set(listed.map(neighKey)).size).toBe(2);
    fdbDel(f.h, fdbOf(f, zero, '192.168.77.4'));
    expect(bridgeFdb(f.ns).map((x) => x.dst)).toEqual(['192.168.77.5']);
  });

  it('add refuses an existing entry; delete removes; a missing entry is ENOENT', () => {
    const e = fdbOf(f, 'aa:bb:cc:00:01:04', '192.168.77.2');
    fdbAdd(f.h, e);
    expect((errorOf(() => fdbAdd(f.h, e)) as NetlinkError).code).toBe('EEXIST');
    fdbDel(f.h, e);
    expect(bridgeFdb(f.ns)).toEqual([]);
    const err = errorOf(() => fdbDel(f.h, e));
    expect(err).toBeInstanceOf(NetlinkError);
    expect((err as NetlinkError).code).toBe('ENOENT');
  });

  it('an unknown link is ENODEV', () => {
    const err = errorOf(() => fdbReplace(f.h, { ...fdbOf(f, 'aa:bb:cc:00:01:05', '192.168.77.2'), linkIndex: 9999 }));
    expect((err as NetlinkError).code).toBe('ENODEV');
  });

  it('lists a bridge port\'s entries by master', () => {
    const ip = (...a: string[]) => execFileSync('ip', ['-n', f.ns, ...a]);
    ip('link', 'add', 'wtnbr', 'type', 'bridge');
    ip('link', 'set', 'wtnv1', 'master', 'wtnbr');
    const br = ipJson<{ ifindex: number }[]>(f.ns, ['link', 'show', 'wtnbr'])[0].ifindex;
    const port = ipJson<{ ifindex: number }[]>(f.ns, ['link', 'show', 'wtnv1'])[0].ifindex;
    fdbAdd(f.h, { linkIndex: port, family: AF_BRIDGE, mac: 'aa:bb:cc:00:02:01', state: NUD_PERMANENT, flags: NTF_MASTER });
    const entries = fdbList(f.h, { masterIndex: br });
    const ours = entries.filter((e) => e.mac === 'aa:bb:cc:00:02:01');
    expect(ours).toHaveLength(1);
    expect(ours[0]).toMatchObject({ linkIndex: port, masterIndex: br, state: NUD_PERMANENT });
    expect(entries.every((e) => e.masterIndex === br || e.linkIndex === br)).toBe(true);
    expect(fdbList(f.h, { linkIndex: f.vx })).toEqual([]);
  });
});

describe('batches', () => {
  const namespaces = useTestNetns('n');
  let f: Fixture;
  beforeEach(() => {
    f = makeVxlanHost(namespaces()[0]);
  });
  afterEach(() => f?.h.close());

  const mac = (i: number) => `aa:bb:cc:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
  const vtep = (i: number) => `10.250.${i >> 8}.${i & 0xff}`;
  const underlay = (i: number) => `192.168.${100 + (i >> 8)}.${i & 0xff}`;

  it('lands 1,000 neighbours and 1,000 FDB entries in one batch, all of them', () => {
    const reqs = [];
    for (let i = 0; i < 1000; i++) {
      reqs.push(neighSetRequest(neighOf(f, vtep(i), mac(i))));
      reqs.push(fdbReplaceRequest(fdbOf(f, mac(i), underlay(i))));
    }
    const errs = f.h.batch(reqs);
    expect(errs.filter(Boolean)).toEqual([]);
    const neighs = ipNeighs(f.ns);
    expect(neighs).toHaveLength(1000);
    expect(new Set(neighs.map((n) => `${n.dst} ${n.lladdr}`))).toEqual(new Set(Array.from({ length: 1000 }, (_, i) => `${vtep(i)} ${mac(i)}`)));
    const fdb = bridgeFdb(f.ns);
    expect(new Set(fdb.map((e) => `${e.mac} ${e.dst}`))).toEqual(new Set(Array.from({ length: 1000 }, (_, i) => `${mac(i)} ${underlay(i)}`)));
    expect(neighList(f.h, { linkIndex: f.vx, family: AF_INET })).toHaveLength(1000);
    expect(fdbList(f.h, { linkIndex: f.vx })).toHaveLength(1000);

    // deleting them in a batch leaves nothing behind
    const dels = [];
    for (let i = 0; i < 1000; i++) {
      dels.push(neighDelRequest(neighOf(f, vtep(i))));
      dels.push(fdbDelRequest(fdbOf(f, mac(i))));
    }
    expect(f.h.batch(dels).filter(Boolean)).toEqual([]);
    expect(ipNeighs(f.ns)).toEqual([]);
    expect(bridgeFdb(f.ns)).toEqual([]);
  });

  it('reports each failing entry of a batch and applies the others', () => {
    const reqs = [
      neighAddRequest(neighOf(f, '10.250.0.1', 'aa:bb:cc:00:00:01')),
      neighAddRequest(neighOf(f, '10.250.0.1', 'aa:bb:cc:00:00:02')),
      fdbAppendRequest(fdbOf(f, '00:00:00:00:00:00', '192.168.77.8')),
      neighDelRequest(neighOf(f, '10.250.0.99')),
    ];
    const errs = f.h.batch(reqs);
    expect(errs.map((e) => e?.code)).toEqual([undefined, 'EEXIST', undefined, 'ENOENT']);
    expect(() => throwIfAny(errs)).toThrow(/EEXIST: neigh add 10\.250\.0\.1 .*and 1 more of 4 failed/);
    expect(ipNeighs(f.ns).map((n) => n.lladdr)).toEqual(['aa:bb:cc:00:00:01']);
    expect(bridgeFdb(f.ns).map((e) => e.dst)).toEqual(['192.168.77.8']);
  });
});

describe('validation before the kernel', () => {
  const namespaces = useTestNetns('n');
  let f: Fixture;
  beforeEach(() => {
    f = makeVxlanHost(namespaces()[0]);
  });
  afterEach(() => f?.h.close());

  const good = (): Neigh => ({ linkIndex: 5, family: AF_INET, ip: '10.0.0.1', mac: 'aa:bb:cc:dd:ee:ff', state: NUD_PERMANENT, flags: 0 });
  const goodFdb = (): Neigh => ({ linkIndex: 5, family: AF_BRIDGE, mac: 'aa:bb:cc:dd:ee:ff', dst: '192.168.1.1', state: NUD_PERMANENT, flags: NTF_SELF });

  it.each<[string, () => Neigh, RegExp]>([
    ['bad MAC', () => ({ ...good(), mac: 'aa:bb:cc:dd:ee' }), /neigh mac "aa:bb:cc:dd:ee"/],
    ['bad IP', () => ({ ...good(), ip: '10.0.0.300' }), /neigh ip "10\.0\.0\.300"/],
    ['missing linkIndex', () => ({ ...good(), linkIndex: undefined as unknown as number }), /neigh linkIndex .*required/],
    ['zero linkIndex', () => ({ ...good(), linkIndex: 0 }), /neigh linkIndex 0/],
    ['fractional linkIndex', () => ({ ...good(), linkIndex: 1.5 }), /neigh linkIndex 1\.5/],
    ['family mismatch', () => ({ ...good(), family: AF_INET6 }), /neigh ip "10\.0\.0\.1": family mismatch/],
    ['unknown family', () => ({ ...good(), family: 99 }), /neigh family 99/],
    ['missing ip', () => ({ ...good(), ip: undefined }), /neigh ip .*required/],
    ['dst on a neighbour', () => ({ ...good(), dst: '192.168.1.1' }), /neigh dst .*only FDB/],
    ['state out of range', () => ({ ...good(), state: 0x10000 }), /neigh state 65536/],
    ['flags missing', () => ({ ...good(), flags: undefined as unknown as number }), /neigh flags/],
  ])('neighSet rejects %s naming the field', (_name, make, msg) => {
    const err = errorOf(() => neighSetRequest(make()));
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(msg);
  });

  it.each<[string, () => Neigh, RegExp]>([
    ['missing MAC', () => ({ ...goodFdb(), mac: undefined }), /neigh mac .*required/],
    ['bad dst', () => ({ ...goodFdb(), dst: 'host.example' }), /neigh dst "host\.example"/],
    ['ip instead of dst', () => ({ ...goodFdb(), ip: '10.0.0.1' }), /neigh ip .*dst/],
    ['VNI beyond 24 bits', () => ({ ...goodFdb(), vni: 1 << 24 }), /neigh vni 16777216/],
    ['port 0', () => ({ ...goodFdb(), port: 0 }), /neigh port 0/],
    ['neighbour family', () => ({ ...goodFdb(), family: AF_INET }), /neigh family 2: an FDB entry must be AF_BRIDGE/],
  ])('fdbReplace rejects %s naming the field', (_name, make, msg) => {
    const err = errorOf(() => fdbReplaceRequest(make()));
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(msg);
  });

  it('rejects bad filters', () => {
    expect(() => neighList(f.h, { family: AF_BRIDGE })).toThrow(InvalidArgumentError);
    expect(() => neighList(f.h, { linkIndex: -1 })).toThrow(/linkIndex -1/);
    expect(() => fdbList(f.h, { masterIndex: 0 })).toThrow(/masterIndex 0/);
  });

  it('touches nothing in the kernel when any entry of a batch is invalid', () => {
    const build = () => [
      neighSetRequest(neighOf(f, '10.250.0.1', 'aa:bb:cc:00:00:01')),
      fdbReplaceRequest(fdbOf(f, 'aa:bb:cc:00:00:01', '192.168.77.2')),
      neighSetRequest(neighOf(f, '10.250.0.2', 'not-a-mac')),
    ];
    expect(() => f.h.batch(build())).toThrow(InvalidArgumentError);
    expect(() => neighSet(f.h, { ...neighOf(f, '10.250.0.3'), mac: 'zz:bb:cc:00:00:01' })).toThrow(InvalidArgumentError);
    expect(ipNeighs(f.ns)).toEqual([]);
    expect(bridgeFdb(f.ns)).toEqual([]);
  });
});

describe('neighKey and neighEqual', () => {
  const n: Neigh = { linkIndex: 3, family: AF_INET6, ip: 'fd00:0::1', mac: 'AA:bb:cc:00:00:01', state: NUD_PERMANENT, flags: 0 };

  it('compares addresses in canonical form', () => {
    expect(neighEqual(n, { ...n, ip: 'fd00::1', mac: 'aa:bb:cc:00:00:01' })).toBe(true);
    expect(neighKey(n)).toBe(neighKey({ ...n, ip: 'fd00::0:1', mac: 'aa:bb:cc:00:00:02' }));
  });

  it('tells apart entries that differ in content but share a key', () => {
    const m = { ...n, mac: 'aa:bb:cc:00:00:02' };
    expect(neighKey(m)).toBe(neighKey(n));
    expect(neighEqual(m, n)).toBe(false);
    expect(neighEqual({ ...n, state: NUD_REACHABLE }, n)).toBe(false);
  });

  it('keys an FDB entry by link and MAC, but each flood-list remote on its own', () => {
    const e: Neigh = { linkIndex: 3, family: AF_BRIDGE, mac: 'aa:bb:cc:00:00:01', dst: '192.168.1.1', state: NUD_PERMANENT, flags: NTF_SELF };
    expect(neighKey(e)).toBe(neighKey({ ...e, dst: '192.168.1.2' }));
    expect(neighEqual(e, { ...e, dst: '192.168.1.2' })).toBe(false);
    const z = { ...e, mac: '00:00:00:00:00:00' };
    expect(neighKey(z)).not.toBe(neighKey({ ...z, dst: '192.168.1.2' }));
    expect(neighKey(e)).not.toBe(neighKey({ ...e, linkIndex: 4 }));
  });

  it('describes an entry in ip/bridge words', () => {
    expect(neighString({ linkIndex: 3, family: AF_BRIDGE, mac: 'aa:bb:cc:00:00:01', dst: '192.168.1.1', state: NUD_PERMANENT, flags: NTF_SELF }))
      .toBe('aa:bb:cc:00:00:01 dst 192.168.1.1 dev #3 self permanent');
  });
});

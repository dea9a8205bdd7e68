import { readdirSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openHandle, throwIfAny, type Handle } from '../../dataplane/netlink/handle';
import { InvalidArgumentError, NetlinkError } from '../../dataplane/netlink/errors';
import {
  bridge, veth, vxlan, macvlan, linkAdd, linkAddRequest, linkByIndex, linkByName, linkDel, linkDelRequest, linkEqual,
  linkList, linkSetDown, linkSetMac, linkSetMaster, linkSetMtu, linkSetMtuRequest, linkSetNetns, linkSetNoMaster,
  linkSetUp, linkSetUpRequest, linkSetMasterRequest, linkString, withNetnsFd, linkSetNetnsFdRequest, linkSpecDiff,
  type LinkSpec,
} from '../../dataplane/netlink/link';
import { useTestNetns, ipJson } from '../helpers/netns';
import { uniqueName } from '../helpers/names';
import { caught } from '../helpers/process';

type IpLink = {
  ifindex: number;
  ifname: string;
  mtu: number;
  address: string;
  flags: string[];
  master?: string;
  link?: string;
  link_index?: number;
  link_netnsid?: number;
  linkinfo?: { info_kind: string; info_data?: Record<string, unknown> };
};

function ipLinks(ns: string): IpLink[] {
  return ipJson<IpLink[]>(ns, ['-d', 'link', 'show']);
}

function ipLink(ns: string, name: string): IpLink {
  return ipJson<IpLink[]>(ns, ['-d', 'link', 'show', 'dev', name])[0];
}

function ipNames(ns: string): string[] {
  return ipLinks(ns).map((l) => l.ifname).sort();
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

const name = () => uniqueName('l');

describe('link specs: validation before the kernel', () => {
  it.each([
    [() => vxlan({ name: 'wtlv', vni: 16777216 }), 'invalid VNI 16777216 (must be between 0 and 16777215)'],
    [() => vxlan({ name: 'wtlv', vni: -1 }), 'invalid VNI -1 (must be between 0 and 16777215)'],
    [() => vxlan({ name: 'wtlv', vni: 1.5 }), 'invalid VNI 1.5 (must be between 0 and 16777215)'],
    [() => vxlan({ name: 'wtlv', vni: 1, port: 0 }), 'invalid port 0 (must be between 1 and 65535)'],
    [() => vxlan({ name: 'wtlv', vni: 1, port: 65536 }), 'invalid port 65536 (must be between 1 and 65535)'],
    [() => vxlan({ name: 'wtlv', vni: 1, ttl: 256 }), 'invalid TTL 256 (must be between 0 and 255)'],
    [() => vxlan({ name: 'wtlv', vni: 1, local: '10.0.0' }), 'invalid local address "10.0.0"'],
    [() => vxlan({ name: 'wtlv', vni: 1, dev: 0 }), 'invalid underlay device index 0 (must be between 1 and 2147483647)'],
    [() => bridge({ name: 'wtlb', mtu: 67 }), 'invalid MTU 67 (must be between 68 and 65535)'],
    [() => bridge({ name: 'wtlb', mtu: 65536 }), 'invalid MTU 65536 (must be between 68 and 65535)'],
    [() => bridge({ name: '' }), 'invalid link name ""'],
    [() => bridge({ name: 'a'.repeat(16) }), 'must be 1 to 15 bytes'],
    [() => bridge({ name: 'é'.repeat(8) }), 'must be 1 to 15 bytes'],
    [() => bridge({ name: 'a/b' }), 'invalid link name "a/b"'],
    [() => bridge({ name: 'a b' }), 'invalid link name "a b"'],
    [() => bridge({ name: 'a:1' }), 'invalid link name "a:1"'],
    [() => bridge({ name: '..' }), 'invalid link name ".."'],
    [() => bridge({ name: 'wtlb', mac: '02:00:00:00:00' }), 'invalid MAC address "02:00:00:00:00"'],
    [() => bridge({ name: 'wtlb', mac: '01:00:5e:00:00:01' }), 'must be a unicast address'],
    [() => bridge({ name: 'wtlb', mac: '00:00:00:00:00:00' }), 'must be a unicast address'],
    [() => veth({ name: 'wtlv', peer: { name: 'x'.repeat(16) } }), 'invalid peer name'],
    [() => veth({ name: 'wtlv', peer: { name: 'wtlv' } }), 'invalid peer name "wtlv" (must differ'],
    [() => veth({ name: 'wtlv', peer: { name: 'wtlp', mac: 'zz' } }), 'invalid peer MAC address "zz"'],
    [() => veth({ name: 'wtlv', peer: { name: 'wtlp', netns: 'bad name' } }), 'invalid netns name'],
    [() => macvlan({ name: 'wtlm', parentIndex: 0, mode: 'bridge' }), 'invalid parent index 0'],
    [() => macvlan({ name: 'wtlm', parentIndex: 2, mode: 'nope' as 'bridge' }), 'invalid macvlan mode "nope" (must be one of private, vepa, bridge, passthru, source)'],
  ])('rejects bad input %#', (fn, message) => {
    const err = caught(fn);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err.message).toContain(message);
  });

  it('builds plain data with the VXLAN default port', () => {
    expect(vxlan({ name: 'wtlv', vni: 7 })).toEqual({ kind: 'vxlan', name: 'wtlv', vni: 7, port: 4789 });
    expect(veth({ name: 'a', peer: { name: 'b', netns: 'x' } })).toEqual({ kind: 'veth', name: 'a', peer: { name: 'b', netns: 'x' } });
  });

  it('validates request builders too, so a batch cannot carry bad input', () => {
    expect(caught(() => linkSetMtuRequest('wtlx', 10))).toBeInstanceOf(InvalidArgumentError);
    expect(caught(() => linkSetUpRequest('bad name'))).toBeInstanceOf(InvalidArgumentError);
    expect(caught(() => linkSetUpRequest(0))).toBeInstanceOf(InvalidArgumentError);
    expect(caught(() => linkSetMasterRequest(3, -1))).toBeInstanceOf(InvalidArgumentError);
    expect(caught(() => linkDelRequest({ index: 1.5 }))).toBeInstanceOf(InvalidArgumentError);
    // a peer namespace needs an open fd: refusing is better than creating the peer here
    expect(caught(() => linkAddRequest(veth({ name: 'a', peer: { name: 'b', netns: 'x' } }))).message).toMatch(/no fd/);
  });
});

describe('links against the kernel', () => {
  const nss = useTestNetns('l', 2);
  let h: Handle;
  let h2: Handle;
  beforeEach(() => {
    h = openHandle({ netns: nss()[0] });
    h2 = openHandle({ netns: nss()[1] });
  });
  afterEach(() => {
    h.close();
    h2.close();
  });

  it('creates, reads, changes and deletes a bridge', () => {
    const ns = nss()[0];
    const br = name();
    const made = linkAdd(h, bridge({ name: br, mtu: 1400, mac: '02:00:00:00:01:01' }));
    expect(made).toMatchObject({ name: br, kind: 'bridge', mtu: 1400, mac: '02:00:00:00:01:01', up: false, operState: 'down' });
    expect(made.index).toBeGreaterThan(1);
    expect(ipLink(ns, br)).toMatchObject({ ifindex: made.index, mtu: 1400, address: '02:00:00:00:01:01', linkinfo: { info_kind: 'bridge' } });

    const listed = linkList(h);
    expect(listed.map((l) => l.name).sort()).toEqual(['lo', br].sort());
    const lo = listed.find((l) => l.name === 'lo')!;
    expect(lo.kind).toBeUndefined();
    expect(lo).toMatchObject({ index: 1, mtu: 65536, up: true });
    expect(linkEqual(linkByIndex(h, made.index), made)).toBe(true);

    linkSetUp(h, br);
    expect(ipLink(ns, br).flags).toContain('UP');
    expect(linkByName(h, br).up).toBe(true);
    linkSetMtu(h, made, 1300);
    linkSetMac(h, made.index, '02:00:00:00:01:02');
    const changed = linkByName(h, br);
    expect(changed).toMatchObject({ mtu: 1300, mac: '02:00:00:00:01:02', up: true });
    expect(linkEqual(changed, made)).toBe(false);
    expect(ipLink(ns, br)).toMatchObject({ mtu: 1300, address: '02:00:00:00:01:02' });
    linkSetDown(h, br);
    expect(ipLink(ns, br).flags).not.toContain('UP');

    linkDel(h, br);
    expect(ipNames(ns)).toEqual(['lo']);
    expect((caught(() => linkByName(h, br)) as NetlinkError).code).toBe('ENODEV');
  });

  it('reports EEXIST on a repeated add and leaves the first link alone', () => {
    const br = name();
    const first = linkAdd(h, bridge({ name: br, mtu: 1400 }));
    const err = caught(() => linkAdd(h, bridge({ name: br, mtu: 1300 })));
    expect(err).toBeInstanceOf(NetlinkError);
    expect((err as NetlinkError).code).toBe('EEXIST');
    expect(err.message).toContain(`link add bridge ${br}`);
    expect(linkEqual(linkByName(h, br), first)).toBe(true);
    // a different kind under the same name is refused the same way
    expect((caught(() => linkAdd(h, vxlan({ name: br, vni: 5 }))) as NetlinkError).code).toBe('EEXIST');
  });

  it('gives typed ENODEV errors naming the missing link', () => {
    const missing = name();
    const byName = caught(() => linkByName(h, missing)) as NetlinkError;
    expect(byName).toBeInstanceOf(NetlinkError);
    expect(byName.code).toBe('ENODEV');
    expect(byName.op).toBe(`link get ${missing}`);
    const byIndex = caught(() => linkByIndex(h, 9999)) as NetlinkError;
    expect(byIndex.code).toBe('ENODEV');
    expect(byIndex.op).toBe('link get index 9999');
    expect((caught(() => linkDel(h, missing)) as NetlinkError).code).toBe('ENODEV');
    expect((caught(() => linkSetUp(h, missing)) as NetlinkError).op).toBe(`link set ${missing} up`);
    expect((caught(() => linkSetMtu(h, 9999, 1400)) as NetlinkError).code).toBe('ENODEV');
  });

  it('refuses bad specs without creating anything', () => {
    const ns = nss()[0];
    // hand-built specs skip the factories; linkAdd checks them again
    const bad: LinkSpec[] = [
      { kind: 'vxlan', name: name(), vni: 16777216, port: 4789 },
      { kind: 'bridge', name: 'bad name' },
      { kind: 'bridge', name: name(), mtu: 70000 },
      { kind: 'veth', name: name(), peer: { name: 'x'.repeat(20) } },
      { kind: 'macvlan', name: name(), parentIndex: 1, mode: 'bogus' as 'bridge' },
      { kind: 'dummy', name: name() } as unknown as LinkSpec,
    ];
    for (const spec of bad) expect(caught(() => linkAdd(h, spec))).toBeInstanceOf(InvalidArgumentError);
    expect(ipNames(ns)).toEqual(['lo']);
  });

  it('creates a veth pair in one namespace', () => {
    const ns = nss()[0];
    const a = name();
    const b = name();
    const va = linkAdd(h, veth({ name: a, peer: { name: b, mac: '02:00:00:00:02:02' }, mtu: 1450, mac: '02:00:00:00:02:01' }));
    const vb = linkByName(h, b);
    expect(va).toMatchObject({ kind: 'veth', mtu: 1450, mac: '02:00:00:00:02:01', parentIndex: vb.index });
    expect(vb).toMatchObject({ kind: 'veth', mtu: 1450, mac: '02:00:00:00:02:02', parentIndex: va.index });
    expect(ipLink(ns, b)).toMatchObject({ mtu: 1450, address: '02:00:00:00:02:02', link: a });
    linkSetUp(h, a);
    linkSetUp(h, b);
    expect(linkByName(h, a).operState).toBe('up');
    // deleting one end takes the other with it
    linkDel(h, va);
    expect(ipNames(ns)).toEqual(['lo']);
  });

  it('creates the veth peer directly in another namespace and closes the namespace fd', () => {
    const [ns1, ns2] = nss();
    const a = name();
    const b = name();
    const before = openFds();
    const va = linkAdd(h, veth({ name: a, peer: { name: b, netns: ns2, mac: '02:00:00:00:03:02' }, mtu: 1400 }));
    expect(openFds()).toBe(before);
    expect(ipNames(ns1)).toEqual(['lo', a].sort());
    expect(ipNames(ns2)).toEqual(['lo', b].sort());
    const vb = linkByName(h2, b);
    expect(vb).toMatchObject({ kind: 'veth', mtu: 1400, mac: '02:00:00:00:03:02', parentIndex: va.index });
    expect(va.parentIndex).toBe(vb.index);
    expect(va.netnsId).toBeTypeOf('number');
    expect(ipLink(ns1, a).link_netnsid).toBe(va.netnsId);
    // works with a path as well as a name
    const c = name();
    linkAdd(h, veth({ name: c, peer: { name: name(), netns: `/run/netns/${ns2}` } }));
    expect(ipNames(ns2)).toHaveLength(3);
  });

  it('leaves nothing behind when the peer namespace is missing or the peer name is taken', () => {
    const [ns1, ns2] = nss();
    const a = name();
    const before = openFds();
    const missing = caught(() => linkAdd(h, veth({ name: a, peer: { name: name(), netns: 'wtl-no-such-ns' } }))) as NetlinkError;
    expect(missing).toBeInstanceOf(NetlinkError);
    expect(missing.code).toBe('ENOENT');
    expect(missing.op).toContain(`link add veth ${a}`);
    expect(ipNames(ns1)).toEqual(['lo']);

    const taken = name();
    linkAdd(h2, bridge({ name: taken }));
    const clash = caught(() => linkAdd(h, veth({ name: a, peer: { name: taken, netns: ns2 } }))) as NetlinkError;
    expect(clash.code).toBe('EEXIST');
    expect(ipNames(ns1)).toEqual(['lo']);
    expect(ipNames(ns2)).toEqual(['lo', taken].sort());

    // the other way round: this side's name is taken, so no peer appears over there
    const here = name();
    linkAdd(h, bridge({ name: here }));
    const peer = name();
    expect((caught(() => linkAdd(h, veth({ name: here, peer: { name: peer, netns: ns2 } }))) as NetlinkError).code).toBe('EEXIST');
    expect(ipNames(ns2)).not.toContain(peer);
    expect(openFds()).toBe(before);
  });

  it('creates a vxlan device with the attributes asked for', () => {
    const ns = nss()[0];
    const under = name();
    const underPeer = name();
    const u = linkAdd(h, veth({ name: under, peer: { name: underPeer } }));
    const vx = name();
    const made = linkAdd(h, vxlan({ name: vx, vni: 4242, port: 4789, local: '10.99.0.1', dev: u.index, learning: false, ttl: 64, mtu: 1450, mac: '02:00:00:00:04:01' }));
    expect(made).toMatchObject({ kind: 'vxlan', mtu: 1450, mac: '02:00:00:00:04:01' });
    expect(made.vxlan).toMatchObject({ vni: 4242, port: 4789, local: '10.99.0.1', dev: u.index, learning: false, ttl: 64 });
    expect(typeof made.vxlan!.udpCsum).toBe('boolean');
    const data = ipLink(ns, vx).linkinfo!.info_data!;
    expect(data).toMatchObject({ id: 4242, port: 4789, local: '10.99.0.1', link: under, learning: false, ttl: 64 });
    expect(linkString(made)).toContain(`vni 4242 port 4789 local 10.99.0.1 dev ${u.index} nolearning ttl 64`);

    // defaults: port 4789, and an IPv6 source
    const vx6 = name();
    const six = linkAdd(h, vxlan({ name: vx6, vni: 0, local: 'fd00::1' }));
    expect(six.vxlan).toMatchObject({ vni: 0, port: 4789, local: 'fd00::1' });
    expect(ipLink(ns, vx6).linkinfo!.info_data).toMatchObject({ id: 0, port: 4789, local6: 'fd00::1' });
    expect(six.vxlan!.dev).toBeUndefined();
  });

  it('creates a macvlan on a veth parent', () => {
    const ns = nss()[0];
    const parent = linkAdd(h, veth({ name: name(), peer: { name: name() } }));
    const mv = name();
    const made = linkAdd(h, macvlan({ name: mv, parentIndex: parent.index, mode: 'bridge' }));
    expect(made).toMatchObject({ kind: 'macvlan', parentIndex: parent.index, macvlan: { mode: 'bridge' } });
    expect(ipLink(ns, mv)).toMatchObject({ link: parent.name, linkinfo: { info_kind: 'macvlan', info_data: { mode: 'bridge' } } });
    const priv = linkAdd(h, macvlan({ name: name(), parentIndex: parent.index, mode: 'private' }));
    expect(priv.macvlan).toEqual({ mode: 'private' });
    // a parent that does not exist is the kernel's to refuse; nothing is created
    const orphan = name();
    expect(caught(() => linkAdd(h, macvlan({ name: orphan, parentIndex: 9999, mode: 'bridge' })))).toBeInstanceOf(NetlinkError);
    expect(ipNames(ns)).not.toContain(orphan);
  });

  it('moves a link to another namespace', () => {
    const [ns1, ns2] = nss();
    const br = name();
    const peer = name();
    const made = linkAdd(h, veth({ name: br, peer: { name: peer }, mtu: 1400 }));
    linkSetNetns(h, made, ns2);
    expect(ipNames(ns1)).toEqual(['lo', peer].sort());
    const moved = linkByName(h2, br);
    expect(moved).toMatchObject({ kind: 'veth', mtu: 1400, parentIndex: linkByName(h, peer).index });
    expect(moved.netnsId).toBeTypeOf('number');
    // and back, by path this time
    linkSetNetns(h2, br, `/run/netns/${ns1}`);
    expect(ipNames(ns1)).toEqual(['lo', br, peer].sort());
    // a bridge is pinned to its namespace: the kernel refuses, typed, and it stays
    const pinned = linkAdd(h, bridge({ name: name() }));
    const refused = caught(() => linkSetNetns(h, pinned, ns2)) as NetlinkError;
    expect(refused.code).toBe('EINVAL');
    expect(ipNames(ns1)).toContain(pinned.name);

    const before = openFds();
    const err = caught(() => linkSetNetns(h, br, 'wtl-no-such-ns')) as NetlinkError;
    expect(err.code).toBe('ENOENT');
    expect(err.op).toContain(`link set ${br} netns wtl-no-such-ns`);
    expect(ipNames(ns1)).toContain(br);
    expect(openFds()).toBe(before);
  });

  it('attaches ports to a bridge and detaches them', () => {
    const ns = nss()[0];
    const br = linkAdd(h, bridge({ name: name() }));
    const port = linkAdd(h, veth({ name: name(), peer: { name: name() } }));
    linkSetMaster(h, port, br.index);
    expect(linkByName(h, port.name).masterIndex).toBe(br.index);
    expect(ipLink(ns, port.name).master).toBe(br.name);
    linkSetNoMaster(h, port.name);
    expect(linkByName(h, port.name).masterIndex).toBeUndefined();
    expect(ipLink(ns, port.name).master).toBeUndefined();
    // a master that is not a bridge is refused by the kernel, typed
    expect((caught(() => linkSetMaster(h, port, port.parentIndex!)) as NetlinkError).code).toBe('EOPNOTSUPP');
    expect(ipLink(ns, port.name).master).toBeUndefined();
  });

  it('applies write requests in one batch, each with its own result', () => {
    const ns = nss()[0];
    const br = name();
    const a = name();
    const b = name();
    const errs = h.batch([
      linkAddRequest(bridge({ name: br })),
      linkAddRequest(veth({ name: a, peer: { name: b } })),
      linkSetMasterRequest(a, 1), // lo is no bridge: this one fails, the rest go on
      linkSetUpRequest(br),
      linkSetUpRequest(a),
      linkSetMtuRequest(b, 1280),
      linkSetUpRequest(name()),
    ]);
    expect(errs.map((e) => e?.code)).toEqual([undefined, undefined, 'EOPNOTSUPP', undefined, undefined, undefined, 'ENODEV']);
    expect(errs[2]!.op).toBe(`link set ${a} master 1`);
    expect(() => throwIfAny(errs)).toThrow(NetlinkError);
    expect(ipLink(ns, br).flags).toContain('UP');
    expect(ipLink(ns, a).flags).toContain('UP');
    expect(ipLink(ns, b).mtu).toBe(1280);

    // a move in a batch: the caller holds the namespace fd across the send
    const [, ns2] = nss();
    withNetnsFd(ns2, 'test move', (fd) => throwIfAny(h.batch([linkSetNetnsFdRequest(a, fd, ns2), linkDelRequest(br)])));
    expect(ipNames(ns)).toEqual(['lo', b].sort());
    expect(ipNames(ns2)).toEqual(['lo', a].sort());
  });

  it('says how an existing link differs from a spec', () => {
    const under = linkAdd(h, veth({ name: name(), peer: { name: name() } }));
    const spec = vxlan({ name: name(), vni: 10, local: 'fd00:0::2', dev: under.index, learning: false, mtu: 1430 }); // an IPv6 underlay of 1500 leaves 1430
    const vx = linkAdd(h, spec);
    expect(linkSpecDiff(spec, vx)).toEqual([]);
    expect(linkSpecDiff({ ...spec, vni: 11, port: 8472, mtu: 1400 }, vx)).toEqual(['mtu 1430, want 1400', 'vni 10, want 11', 'port 4789, want 8472']);
    expect(linkSpecDiff(bridge({ name: vx.name }), vx)).toEqual(['kind vxlan, want bridge']);
    const mv = linkAdd(h, macvlan({ name: name(), parentIndex: under.index, mode: 'vepa' }));
    expect(linkSpecDiff(macvlan({ name: mv.name, parentIndex: under.index, mode: 'vepa' }), mv)).toEqual([]);
    expect(linkSpecDiff(macvlan({ name: mv.name, parentIndex: under.index, mode: 'bridge' }), mv)).toEqual(['mode vepa, want bridge']);
  });

  it('compares and prints links', () => {
    const br = linkAdd(h, bridge({ name: name(), mtu: 1400 }));
    const again = linkByName(h, br.name);
    expect(linkEqual(br, again)).toBe(true);
    expect(linkEqual(br, { ...again, flags: again.flags | 0x40 /* RUNNING */, operState: 'up' })).toBe(true);
    expect(linkEqual(br, { ...again, up: true })).toBe(false);
    expect(linkEqual(br, { ...again, masterIndex: 3 })).toBe(false);
    expect(linkEqual({ ...br, vxlan: { vni: 1 } }, { ...br, vxlan: { vni: 2 } })).toBe(false);
    expect(linkEqual({ ...br, vxlan: { vni: 1, port: 4789 } }, { ...br, vxlan: { vni: 1, port: 4789 } })).toBe(true);
    expect(linkString(br)).toBe(`${br.index}: ${br.name} bridge down state down mtu 1400 mac ${br.mac}`);
  });
});

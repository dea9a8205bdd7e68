// weft explain's verdicts over plain facts: a healthy path between two hosts
// is complete with its hops in order, and each way a packet is dropped is the
// first break, with its reason and fix, and nothing is listed after it.
import { describe, expect, it } from 'vitest';
import type { ExplainFacts, LocalContainer, Owner } from '../../cni-plugin/agent/explain/facts';
import { isolationRule } from '../../cni-plugin/agent/explain/hops';
import { splitExplainArgs } from '../../cni-plugin/agent/explain/command';
import { exitCodeOf, renderJson, renderText } from '../../cni-plugin/agent/explain/render';
import { explainPath, inCidr } from '../../cni-plugin/agent/explain/verdicts';

const container = (over: Partial<LocalContainer> = {}): LocalContainer => ({
  network: 'default', vni: 1, ip: '10.244.1.2', containerId: 'c0ffee'.repeat(10), ifname: 'eth0', netns: '/run/netns/c1',
  iface: { name: 'eth0', exists: true, up: true, mtu: 1450, addrs: ['10.244.1.2'] },
  route: { ok: true, dev: 'eth0', gw: '10.244.1.1', src: '10.244.1.2', type: 'unicast' },
  veth: { name: 'wv0123456789ab', exists: true, up: true, mtu: 1450, master: 'weft.br1' },
  bridge: { name: 'weft.br1', exists: true, up: true, mtu: 1450, addrs: ['10.244.1.1'] },
  ...over,
});

const owner = (over: Partial<Owner> = {}): Owner => ({
  host: 'h2', network: 'default', subnet: '10.244.2.0/24', underlayIp: '192.168.10.12', vtepMac: '02:aa:bb:cc:dd:02', datacenter: 'dc1',
  endpoint: { containerId: 'beef'.repeat(16), ifname: 'eth0' },
  health: { state: 'alive', heartbeatAgeMs: 3000 }, report: { desired: 3, programmed: 3, failed: 0, reportedAtMs: Date.UTC(2026, 11, 7, 13, 0) },
  ...over,
});

function facts(over: Partial<ExplainFacts> = {}): ExplainFacts {
  return {
    src: '10.244.1.2', dst: '10.244.2.5', self: { name: 'h1', datacenter: 'dc1' },
    controller: { ok: true, server: 'ctl:7443', identity: 'admin' },
    networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/16' }, { name: 'blue', vni: 2, cidr: '10.245.0.0/16' }],
    srcLocal: container(), srcOwner: owner({ host: 'h1', subnet: '10.244.1.0/24' }), dstOwner: owner(),
    hostRoute: { ok: true, dev: 'weft.vx1', gw: '10.244.2.0', type: 'unicast' },
    devices: { 'weft.vx1': { name: 'weft.vx1', exists: true, up: true, mtu: 1450 } },
    isolation: {},
    neigh: { ip: '10.244.2.0', mac: '02:aa:bb:cc:dd:02', state: 'permanent' },
    fdb: { mac: '02:aa:bb:cc:dd:02', dst: '192.168.10.12' },
    nextHopHost: { name: 'h2', underlayIp: '192.168.10.12', vtepMac: '02:aa:bb:cc:dd:02' },
    underlay: { dst: '192.168.10.12', route: { ok: true, dev: 'eth0', src: '192.168.10.11', type: 'unicast' }, mtu: 1500 },
    ...over,
  };
}

const kinds = (f: ExplainFacts) => explainPath(f).hops.map((h) => h.kind);

describe('weft explain verdicts', () => {
  it('a healthy path is complete: container, veth, bridge, route, vxlan, underlay, host, container', () => {
    const e = explainPath(facts({ size: 1400 }));
    expect(e.complete).toBe(true);
    expect(exitCodeOf(e)).toBe(0);
    expect(e.hops.map((h) => `${h.kind}@${h.host}`)).toEqual([
      'container@h1', 'veth@h1', 'bridge@h1', 'route@h1', 'vxlan@h1', 'underlay@h1', 'host@h2', 'container@h2',
    ]);
    expect(e.hops.every((h) => h.verdict === 'ok')).toBe(true);
    expect(e.hops[6].source).toBe("controller; from h2's report at 2026-12-07T13:00:00.000Z");
    expect(e.hops[5].mtu).toBe(1500);
    const text = renderText(e);
    expect(text).toContain('path complete: 8 hops');
    expect(text).toMatch(/^5\. ok {3}vxlan {5}h1: weft\.vx1: neighbour 10\.244\.2\.0 lladdr 02:aa:bb:cc:dd:02, FDB dst 192\.168\.10\.12 \(h2\) \[mtu 1450\]$/m);
    expect(JSON.parse(renderJson(e)).break).toBeNull();
  });

  it('a missing FDB entry breaks at the VXLAN hop, and nothing after it is listed', () => {
    const e = explainPath(facts({ fdb: { mac: '02:aa:bb:cc:dd:02' } }));
    expect(e.complete).toBe(false);
    expect(exitCodeOf(e)).toBe(1);
    expect(e.hops.at(-1)).toBe(e.break);
    expect(e.break).toMatchObject({ kind: 'vxlan', verdict: 'drop' });
    expect(e.break!.why).toContain('no FDB entry for 02:aa:bb:cc:dd:02 on weft.vx1');
    expect(e.break!.fix).toContain('bridge fdb append 02:aa:bb:cc:dd:02 dev weft.vx1 dst 192.168.10.12 self permanent');
    expect(JSON.parse(renderJson(e)).break.hop).toBe(5);
  });

  it('a missing neighbour, or an FDB entry to the wrong underlay address, breaks at the VXLAN hop', () => {
    expect(explainPath(facts({ neigh: { ip: '10.244.2.0' } })).break!.why).toContain('no neighbour entry for 10.244.2.0 on weft.vx1');
    expect(explainPath(facts({ fdb: { mac: '02:aa:bb:cc:dd:02', dst: '192.168.10.99' } })).break!.why).toContain('sends 02:aa:bb:cc:dd:02 to 192.168.10.99, but h2 is at 192.168.10.12');
  });

  it('no route, and a route via the wrong device, break at the route hop', () => {
    const none = explainPath(facts({ hostRoute: { ok: false, errno: 'ENETUNREACH', message: 'x' } }));
    expect(none.break).toMatchObject({ kind: 'route', what: 'ip route get 10.244.2.5 from 10.244.1.2 iif weft.br1' });
    expect(none.break!.why).toContain('no route');
    const fwd = explainPath(facts({ hostRoute: { ok: false, errno: 'EHOSTUNREACH', message: 'x' } }));
    expect(fwd.break!.fix).toContain('net.ipv4.ip_forward=1');
    const wrong = explainPath(facts({ hostRoute: { ok: true, dev: 'eth0', gw: '192.168.10.1', type: 'unicast' } }));
    expect(wrong.break!.why).toContain("the route goes via eth0, not weft's weft.vx1: the packet would leave unencapsulated");
    expect(kinds(facts({ hostRoute: { ok: true, dev: 'eth0', type: 'unicast' } }))).toEqual(['container', 'veth', 'bridge', 'route']);
    expect(explainPath(facts({ hostRoute: { ok: true, dev: 'lo', type: 'blackhole' } })).break!.why).toContain('a blackhole route takes it');
  });

  it('a packet larger than an MTU on the way breaks where the MTU is smaller, VXLAN headers counted on the underlay', () => {
    const big = explainPath(facts({ size: 1451 }));
    expect(big.break).toMatchObject({ kind: 'container', mtu: 1450 });
    expect(big.break!.why).toContain('a 1451-byte packet is larger than the MTU 1450 of eth0 in the container');
    const devs = { 'weft.vx1': { name: 'weft.vx1', exists: true, up: true, mtu: 1500 } };
    const under = explainPath(facts({
      size: 1451, devices: devs,
      srcLocal: container({ iface: { name: 'eth0', exists: true, up: true, mtu: 1500, addrs: ['10.244.1.2'] }, veth: { ...container().veth, mtu: 1500 }, bridge: { ...container().bridge, mtu: 1500 } }),
    }));
    expect(under.break).toMatchObject({ kind: 'underlay', mtu: 1500 });
    expect(under.break!.why).toContain('(1451 + 50 bytes of VXLAN headers) is larger than the MTU 1500 of eth0');
    expect(under.break!.fix).toContain('send at most 1450 bytes');
  });

  it('an address nobody has breaks at locating it; an owner without that container breaks at the last hop', () => {
    const nobody = explainPath(facts({ dst: '10.244.99.9', dstOwner: null }));
    expect(nobody.break).toMatchObject({ kind: 'locate' });
    expect(nobody.break!.why).toBe("10.244.99.9 is in network default, but in no host's subnet: no host has it");
    const outside = explainPath(facts({ dst: '172.16.0.1', dstOwner: null }));
    expect(outside.break!.why).toContain('in no weft network');
    const empty = explainPath(facts({ dstOwner: owner({ endpoint: undefined }) }));
    expect(empty.break).toMatchObject({ kind: 'container', host: 'h2' });
    expect(empty.break!.why).toContain('no container holds 10.244.2.5');
    const noCtl = explainPath(facts({ dstOwner: undefined, controller: { ok: false, server: 'ctl:7443', error: 'UNAVAILABLE' } }));
    expect(noCtl.break!.why).toContain('the controller at ctl:7443 could not be asked: UNAVAILABLE');
  });

  it('an isolated pair of networks breaks at the route hop with the rule that drops it', () => {
    const e = explainPath(facts({
      dst: '10.245.2.5', dstOwner: owner({ network: 'blue', subnet: '10.245.2.0/24' }),
      isolation: { rule: '-s 10.244.0.0/16 -d 10.245.0.0/16 -j DROP' },
    }));
    expect(e.break).toMatchObject({ kind: 'route' });
    expect(e.break!.why).toBe('weft isolates networks default and blue: rule "-s 10.244.0.0/16 -d 10.245.0.0/16 -j DROP" drops it');
    expect(isolationRule([
      { chain: 'WEFT-NETWORKS', spec: '-j WEFT-ISOLATION' },
      { chain: 'WEFT-ISOLATION', spec: '-s 10.245.0.0/16 -d 10.244.0.0/16 -j DROP' },
      { chain: 'WEFT-ISOLATION', spec: '-s 10.244.0.0/16 -d 10.245.0.0/16 -j DROP' },
    ], '10.244.1.2', '10.245.2.5')).toBe('-s 10.244.0.0/16 -d 10.245.0.0/16 -j DROP');
    expect(isolationRule([{ chain: 'WEFT-ISOLATION', spec: '-s 10.245.0.0/16 -d 10.244.0.0/16 -j DROP' }], '10.244.1.2', '10.245.2.5')).toBeUndefined();
  });

  it('an expired host breaks; a stale one or a report with failed entries warns and the path stays complete', () => {
    expect(explainPath(facts({ dstOwner: owner({ health: { state: 'expired', heartbeatAgeMs: 900_000 } }) })).break).toMatchObject({ kind: 'host', host: 'h2' });
    const stale = explainPath(facts({ dstOwner: owner({ health: { state: 'stale', heartbeatAgeMs: 50_000 } }) }));
    expect(stale.complete).toBe(true);
    expect(stale.hops[6].verdict).toBe('warn');
    const failed = explainPath(facts({ dstOwner: owner({ report: { desired: 3, programmed: 2, failed: 1, reportedAtMs: 0 } }) }));
    expect(failed.hops[6]).toMatchObject({ verdict: 'warn' });
    // a host certificate sees no health: said so, not guessed
    const hostCert = explainPath(facts({ dstOwner: owner({ health: undefined, report: undefined }) }));
    expect(hostCert.hops[6]).toMatchObject({ verdict: 'ok', source: 'controller' });
    expect(hostCert.hops[6].why).toContain('need an admin certificate');
  });

  it('another datacenter: a route outside the tunnel path is dropped by the fail-closed table', () => {
    const e = explainPath(facts({ dstOwner: owner({ datacenter: 'dc2' }), hostRoute: { ok: true, dev: 'eth0', gw: '192.168.10.1', type: 'unicast' }, failClosed: { exists: true } }));
    expect(e.break!.why).toContain('the fail-closed table inet weft_xdc drops it');
    // the table's own tunnel_ifs set decides which devices such a packet may leave by
    const stale = explainPath(facts({ dstOwner: owner({ datacenter: 'dc2' }), hostRoute: { ok: true, dev: 'weft.vx1', gw: '10.244.2.0', type: 'unicast' }, failClosed: { exists: true, tunnelIfs: ['weft.vx2'] } }));
    expect(stale.break).toMatchObject({ kind: 'route', source: 'kernel (route, nftables inet weft_xdc)' });
    expect(stale.break!.why).toContain('lets such a packet leave only by weft.vx2, and this route takes weft.vx1: dropped and counted');
    // an overlay entry straight to a host of another datacenter: VXLAN across the WAN, which the table drops
    const direct = explainPath(facts({ dstOwner: owner({ datacenter: 'dc2' }), failClosed: { exists: true, tunnelIfs: ['weft.vx1'] }, nextHopHost: { name: 'h2', underlayIp: '192.168.10.12', vtepMac: '02:aa:bb:cc:dd:02', datacenter: 'dc2' } }));
    expect(direct.break).toMatchObject({ kind: 'vxlan' });
    expect(direct.break!.why).toContain('inet weft_xdc drops VXLAN to a host of another datacenter');
    const via = explainPath(facts({ dstOwner: owner({ datacenter: 'dc2' }), failClosed: { exists: true, tunnelIfs: ['weft.vx1'] }, nextHopHost: { name: 'gw1', underlayIp: '192.168.10.12', vtepMac: '02:aa:bb:cc:dd:02', datacenter: 'dc1' } }));
    expect(via.complete).toBe(true);
    expect(via.hops.map((h) => h.kind)).toEqual(['container', 'veth', 'bridge', 'route', 'vxlan', 'underlay', 'tunnel', 'host', 'container']);
  });

  it('the container end: a missing interface, a lost address, no route inside, a veth off the bridge', () => {
    expect(explainPath(facts({ srcLocal: container({ iface: { error: 'ENOENT: /run/netns/c1' } }) })).break!.why).toContain("namespace cannot be entered");
    expect(explainPath(facts({ srcLocal: container({ iface: { name: 'eth0', exists: true, up: true, mtu: 1450, addrs: [] } }) })).break!.why).toContain('does not hold 10.244.1.2');
    expect(explainPath(facts({ srcLocal: container({ route: { ok: false, errno: 'ENETUNREACH', message: 'x' } }) })).break!.why).toContain('inside the container');
    expect(explainPath(facts({ srcLocal: container({ veth: { name: 'wv0123456789ab', exists: true, up: true, mtu: 1450 } }) })).break!.fix).toBe('ip link set dev wv0123456789ab master weft.br1');
  });

  it('on the host holding dst it explains the receiving side from its kernel', () => {
    const d = container({ ip: '10.244.2.5', route: undefined, iface: { name: 'eth0', exists: true, up: true, mtu: 1450, addrs: ['10.244.2.5'] }, bridge: { name: 'weft.br1', exists: true, up: true, mtu: 1450 } });
    const e = explainPath(facts({ self: { name: 'h2', datacenter: 'dc1' }, srcLocal: undefined, dstLocal: d, srcOwner: owner({ host: 'h1', subnet: '10.244.1.0/24' }), inboundRoute: { ok: true, dev: 'weft.br1', type: 'unicast' } }));
    expect(e.complete).toBe(true);
    expect(e.hops.map((h) => `${h.kind}@${h.host}`)).toEqual(['container@h1', 'host@h1', 'vxlan@h2', 'route@h2', 'bridge@h2', 'veth@h2', 'container@h2']);
    const none = explainPath(facts({ srcLocal: undefined }));
    expect(none.break!.fix).toBe('run weft explain on the host that holds 10.244.1.2 (h1 holds 10.244.1.2)');
  });

  it('two containers on one subnet of this host: the bridge carries it', () => {
    const d = container({ ip: '10.244.1.3', containerId: 'd'.repeat(64), veth: { ...container().veth, name: 'wvaaaaaaaaaaaa' }, iface: { name: 'eth0', exists: true, up: true, mtu: 1450, addrs: ['10.244.1.3'] } });
    const e = explainPath(facts({ dst: '10.244.1.3', dstLocal: d, srcLocal: container({ route: { ok: true, dev: 'eth0', type: 'unicast' } }) }));
    expect(e.complete).toBe(true);
    expect(kinds(facts({ dst: '10.244.1.3', dstLocal: d, srcLocal: container({ route: { ok: true, dev: 'eth0', type: 'unicast' } }) }))).toEqual(['container', 'veth', 'bridge', 'veth', 'container']);
  });

  it('flags: two addresses, --size, the admin certificate as three files, the rest is the agent\'s', () => {
    const a = splitExplainArgs(['10.244.1.2', '10.244.2.5', '--size', '1400', '--json', '--server', 'c:7443', '--cert=a', '--key', 'b', '--ca', 'c']);
    expect(a).toMatchObject({ src: '10.244.1.2', dst: '10.244.2.5', size: 1400, json: true, admin: { cert: 'a', key: 'b', ca: 'c' }, agentArgv: ['--server', 'c:7443'] });
    expect(a.error).toBeUndefined();
    expect(splitExplainArgs(['10.244.1.2']).error).toContain('two container addresses');
    expect(splitExplainArgs(['10.0.0.1', '10.0.0.2', '--size', 'big']).error).toContain('--size');
    expect(splitExplainArgs(['10.0.0.1', '10.0.0.2', '--cert', 'x']).error).toContain('go together');
    expect(inCidr('10.244.2.5', '10.244.0.0/16')).toBe(true);
    expect(inCidr('10.245.2.5', '10.244.0.0/16')).toBe(false);
    expect(inCidr('fd00::5', 'fd00::/64')).toBe(true);
  });
});

// weft explain's tunnel verdicts over plain facts: the leg through a
// gateway's weft.xdc and weft.wg0 (src on the gateway, and a gateway holding
// neither end, both directions), the WireGuard session (none ever, or none in
// 180 s, is the break), the fail-closed table's drop with its rule named, the
// local gateway's side from its report, and an overlay that goes into
// weft.wg0 (a datacenter that encrypts its hosts' traffic).
import { describe, expect, it } from 'vitest';
import type { EncapFact, ExplainFacts, LocalContainer, Owner, WireGuardFact } from '../../cni-plugin/agent/explain/facts';
import { renderText } from '../../cni-plugin/agent/explain/render';
import { explainPath } from '../../cni-plugin/agent/explain/verdicts';

const NOW = Date.UTC(2026, 11, 7, 15, 0);
const KEY_G2A = 'A'.repeat(42) + 'E=';

const container = (over: Partial<LocalContainer> = {}): LocalContainer => ({
  network: 'default', vni: 1, ip: '10.244.1.2', containerId: 'c0ffee'.repeat(10), ifname: 'eth0', netns: '/run/netns/c1',
  iface: { name: 'eth0', exists: true, up: true, mtu: 1390, addrs: ['10.244.1.2'] },
  route: { ok: true, dev: 'eth0', gw: '10.244.1.1', src: '10.244.1.2', type: 'unicast' },
  veth: { name: 'wv0123456789ab', exists: true, up: true, mtu: 1390, master: 'weft.br1' },
  bridge: { name: 'weft.br1', exists: true, up: true, mtu: 1390, addrs: ['10.244.1.1'] },
  ...over,
});

const owner = (over: Partial<Owner> = {}): Owner => ({
  host: 'h2', network: 'default', subnet: '10.244.2.0/24', underlayIp: '172.31.2.13', vtepMac: '02:aa:bb:cc:dd:02', datacenter: 'dc2',
  endpoint: { containerId: 'beef'.repeat(16), ifname: 'eth0' },
  ...over,
});

const wg = (over: Partial<Extract<WireGuardFact, { ok: true }>['peer']> | null = {}, nowMs = NOW): WireGuardFact => ({
  ok: true, device: { name: 'weft.wg0', exists: true, up: true, mtu: 1440 }, nowMs,
  ...(over === null ? {} : {
    peer: { publicKey: KEY_G2A, endpoint: '172.31.2.11:51820', allowedIps: ['10.244.62.0/32'], lastHandshakeMs: NOW - 15_000, host: 'g2a', datacenter: 'dc2', ...over },
  }),
  endpointRoute: { dst: '172.31.2.11', route: { ok: true, dev: 'eth0', src: '172.31.1.11', type: 'unicast' }, mtu: 1500 },
});

/** g1a's weft.xdc leg to g2a: neighbour and FDB entry at g2a's tunnel address, routed into weft.wg0. */
const xdcLeg = (over: Partial<EncapFact> = {}, w: WireGuardFact | undefined = wg()): EncapFact => ({
  device: { name: 'weft.xdc', exists: true, up: true, mtu: 1390 }, gw: '10.244.62.0',
  neigh: { ip: '10.244.62.0', mac: '02:00:00:00:62:00', state: 'permanent' },
  fdb: { mac: '02:00:00:00:62:00', dst: '10.244.62.0' },
  peer: { host: 'g2a', datacenter: 'dc2', mac: '02:00:00:00:62:00', tunnelAddress: '10.244.62.0' },
  outer: { dst: '10.244.62.0', route: { ok: true, dev: 'weft.wg0', src: '172.31.1.11', type: 'unicast' }, mtu: 1440, ...(w ? { wireguard: w } : {}) },
  ...over,
});

const base = (over: Partial<ExplainFacts>): ExplainFacts => ({
  src: '10.244.1.2', dst: '10.244.2.5', self: { name: 'g1a', datacenter: 'dc1', gateway: true },
  controller: { ok: true, server: 'ctl:7443', identity: 'admin' },
  networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/16' }],
  srcOwner: owner({ host: 'g1a', subnet: '10.244.1.0/24', datacenter: 'dc1', underlayIp: '172.31.1.11' }), dstOwner: owner(),
  devices: { 'weft.vx1': { name: 'weft.vx1', exists: true, up: true, mtu: 1390 }, 'weft.xdc': { name: 'weft.xdc', exists: true, up: true, mtu: 1390 } },
  isolation: {},
  failClosed: { exists: true, tunnelIfs: ['weft.wg0', 'weft.xdc'] },
  gateways: [
    { host: 'g1a', datacenter: 'dc1', tunnelAddress: '10.244.1.0', wanEndpoint: '172.31.1.11:51820', state: 'active' },
    { host: 'g2a', datacenter: 'dc2', tunnelAddress: '10.244.62.0', wanEndpoint: '172.31.2.11:51820', state: 'active' },
  ],
  ...over,
});

/** src on gateway g1a: its route goes straight into weft.xdc. */
const onGateway = (leg: EncapFact = xdcLeg(), over: Partial<ExplainFacts> = {}) => base({
  srcLocal: container(), hostRoute: { ok: true, dev: 'weft.xdc', gw: '10.244.62.0', type: 'unicast' }, gatewayLeg: leg, ...over,
});

/** g1a holds neither end: h1's packet passes through it. */
const transitOut = (over: Partial<ExplainFacts> = {}) => base({
  srcOwner: owner({ host: 'h1', subnet: '10.244.1.0/24', datacenter: 'dc1', underlayIp: '172.31.1.13' }),
  transit: { direction: 'out', inDev: 'weft.vx1', route: { ok: true, dev: 'weft.xdc', gw: '10.244.62.0', type: 'unicast' }, encap: xdcLeg() },
  ...over,
});

const where = (f: ExplainFacts) => explainPath(f).hops.map((h) => `${h.kind}@${h.host}`);

describe('weft explain: the tunnel between datacenters', () => {
  it('src on a gateway: weft.xdc, the /32 into weft.wg0, the peer, its endpoint, the remote gateway, the host', () => {
    const e = explainPath({ ...onGateway(), size: 1300 });
    expect(e.complete, renderText(e)).toBe(true);
    expect(e.hops.map((h) => `${h.kind}@${h.host}`)).toEqual([
      'container@g1a', 'veth@g1a', 'bridge@g1a', 'route@g1a', 'vxlan@g1a', 'route@g1a', 'wireguard@g1a', 'underlay@g1a', 'gateway@g2a', 'host@h2', 'container@h2',
    ]);
    expect(e.hops[4].what).toBe("weft.xdc: neighbour 10.244.62.0 lladdr 02:00:00:00:62:00, FDB dst 10.244.62.0 (g2a's tunnel address)");
    expect(e.hops[5].what).toBe('ip route get 10.244.62.0: dev weft.wg0 src 172.31.1.11 (VXLAN UDP port 4790 to 10.244.62.0 (g2a), inside WireGuard)');
    expect(e.hops[6].what).toBe(`weft.wg0: peer g2a (key ${KEY_G2A.slice(0, 8)}…), endpoint 172.31.2.11:51820, allowed IPs 10.244.62.0/32, last handshake 15 s ago`);
    expect(e.hops[7].what).toContain('(WireGuard UDP to 172.31.2.11:51820)');
    expect(e.hops[8].what).toContain('gateway g2a of dc2 (tunnel address 10.244.62.0, WAN 172.31.2.11:51820)');
    expect(e.hops[8].source).toContain('read only by weft explain on g2a');
  });

  it('the packet plus VXLAN and WireGuard headers must fit each device on the way', () => {
    // 1390 fits weft.xdc; +50 VXLAN = 1440 fits weft.wg0; +60 WireGuard = 1500 fits eth0
    expect(explainPath({ ...onGateway(), size: 1390 }).complete).toBe(true);
    const e = explainPath({ ...onGateway(), size: 1391 });
    expect(e.break).toMatchObject({ kind: 'container', verdict: 'drop' });
    const small = explainPath({ ...onGateway(xdcLeg({ device: { name: 'weft.xdc', exists: true, up: true, mtu: 1500 } })), size: 1391, srcLocal: container({ iface: { name: 'eth0', exists: true, up: true, mtu: 1500, addrs: ['10.244.1.2'] }, veth: { name: 'wv0123456789ab', exists: true, up: true, mtu: 1500, master: 'weft.br1' }, bridge: { name: 'weft.br1', exists: true, up: true, mtu: 1500 } }) });
    expect(small.break).toMatchObject({ kind: 'route', host: 'g1a' });
    expect(small.break!.why).toContain('1391-byte packet (1391 + 50 bytes of VXLAN headers) is larger than the MTU 1440 of weft.wg0');
  });

  it('no WireGuard session: no handshake ever, or none in 180 s, is the break naming the gateway', () => {
    const never = explainPath(onGateway(xdcLeg({}, wg({ lastHandshakeMs: 0 }))));
    expect(never.break).toMatchObject({ kind: 'wireguard', host: 'g1a', verdict: 'drop' });
    expect(never.break!.why).toBe('no WireGuard session with g2a: no handshake has ever completed');
    const old = explainPath(onGateway(xdcLeg({}, wg({ lastHandshakeMs: NOW - 200_000 }))));
    expect(old.break!.why).toBe('no WireGuard session with g2a: the last handshake was 200 s ago, over 180 s');
    expect(old.break!.fix).toContain('172.31.2.11:51820');
    expect(explainPath(onGateway(xdcLeg({}, wg({ lastHandshakeMs: NOW - 179_000 })))).complete).toBe(true);
  });

  it('no peer holds the tunnel address, the device cannot be read, or it is down: the break at the WireGuard hop', () => {
    const none = explainPath(onGateway(xdcLeg({}, wg(null))));
    expect(none.break!.why).toBe("no WireGuard peer of weft.wg0 has 10.244.62.0 (g2a's tunnel address) in its allowed IPs: WireGuard drops the packet (no session with g2a)");
    const unread = explainPath(onGateway(xdcLeg({}, { ok: false, device: { name: 'weft.wg0', exists: true, up: true }, error: 'connect ECONNREFUSED' })));
    expect(unread.break!.why).toBe("weft.wg0's peers cannot be read: connect ECONNREFUSED");
    const down = explainPath(onGateway(xdcLeg({}, { ...wg(), device: { name: 'weft.wg0', exists: true, up: false } } as WireGuardFact)));
    expect(down.break!.why).toBe('the WireGuard device weft.wg0 is down');
    // the peer holding the address is another gateway than the FDB entry's
    const other = explainPath(onGateway(xdcLeg({}, wg({ host: 'g2b' }))));
    expect(other.break!.why).toContain("10.244.62.0 is g2a's tunnel address, but the peer holding it in its allowed IPs is g2b");
  });

  it("weft.xdc's FDB entry missing or elsewhere, or its address routed out of the underlay: the break, the fail-closed rule named", () => {
    const nofdb = explainPath(onGateway(xdcLeg({ fdb: { mac: '02:00:00:00:62:00' } })));
    expect(nofdb.break).toMatchObject({ kind: 'vxlan', host: 'g1a' });
    expect(nofdb.break!.fix).toContain('bridge fdb append 02:00:00:00:62:00 dev weft.xdc dst 10.244.62.0 self permanent');
    const elsewhere = explainPath(onGateway(xdcLeg({ fdb: { mac: '02:00:00:00:62:00', dst: '172.31.2.11' } })));
    expect(elsewhere.break!.why).toBe('the FDB entry sends 02:00:00:00:62:00 to 172.31.2.11, but g2a is at 10.244.62.0');
    const clear = explainPath(onGateway(xdcLeg({ outer: { dst: '10.244.62.0', route: { ok: true, dev: 'eth0', gw: '172.31.1.1', type: 'unicast' } } })));
    expect(clear.break).toMatchObject({ kind: 'underlay', host: 'g1a' });
    expect(clear.break!.why).toContain('not into weft.wg0: the tunnel\'s VXLAN would cross the WAN in cleartext');
    expect(clear.break!.why).toContain('rule "weft: an IPv4 address of another datacenter leaves only through the tunnel"');
    expect(clear.break!.fix).toContain('`10.244.62.0/32 dev weft.wg0`');
  });

  it('through a gateway holding neither end: from the overlay into weft.xdc and WireGuard, then the remote gateway', () => {
    const e = explainPath(transitOut());
    expect(e.complete, renderText(e)).toBe(true);
    expect(where(transitOut())).toEqual([
      'container@h1', 'gateway@g1a', 'route@g1a', 'vxlan@g1a', 'route@g1a', 'wireguard@g1a', 'underlay@g1a', 'gateway@g2a', 'host@h2', 'container@h2',
    ]);
    expect(e.hops[1].what).toBe('gateway g1a of dc1: the packet arrives from h1 over the overlay on weft.vx1');
    expect(e.hops[2].what).toBe('ip route get 10.244.2.5 from 10.244.1.2 iif weft.vx1: via 10.244.62.0 dev weft.xdc');
  });

  it('through a gateway, a route that does not take the tunnel is the fail-closed drop with its rule, or no route', () => {
    const eth = explainPath(transitOut({ transit: { direction: 'out', inDev: 'weft.vx1', route: { ok: true, dev: 'eth0', gw: '172.31.1.1', type: 'unicast' } } }));
    expect(eth.break).toMatchObject({ kind: 'route', host: 'g1a' });
    expect(eth.break!.why).toBe('10.244.2.5 is in datacenter dc2; the fail-closed table inet weft_xdc lets it leave only by weft.wg0, weft.xdc, and this route takes eth0: dropped and counted by rule "weft: an IPv4 address of another datacenter leaves only through the tunnel"');
    const none = explainPath(transitOut({ transit: { direction: 'out', inDev: 'weft.vx1', route: { ok: false, errno: 'ENETUNREACH', message: 'x' } } }));
    expect(none.break!.why).toContain('no route');
  });

  it('on the remote gateway: from weft.xdc into its overlay, to the host', () => {
    const f = base({
      self: { name: 'g2a', datacenter: 'dc2', gateway: true },
      srcOwner: owner({ host: 'h1', subnet: '10.244.1.0/24', datacenter: 'dc1', underlayIp: '172.31.1.13' }),
      transit: {
        direction: 'in', inDev: 'weft.xdc', route: { ok: true, dev: 'weft.vx1', gw: '10.244.2.0', type: 'unicast' },
        encap: {
          device: { name: 'weft.vx1', exists: true, up: true, mtu: 1390 }, gw: '10.244.2.0',
          neigh: { ip: '10.244.2.0', mac: '02:aa:bb:cc:dd:02' }, fdb: { mac: '02:aa:bb:cc:dd:02', dst: '172.31.2.13' },
          peer: { host: 'h2', datacenter: 'dc2', mac: '02:aa:bb:cc:dd:02', underlayIp: '172.31.2.13', tunnelAddress: '10.244.2.0' },
          outer: { dst: '172.31.2.13', route: { ok: true, dev: 'eth0', type: 'unicast' }, mtu: 1500 },
        },
      },
    });
    const e = explainPath(f);
    expect(e.complete, renderText(e)).toBe(true);
    expect(where(f)).toEqual(['container@h1', 'gateway@g2a', 'route@g2a', 'vxlan@g2a', 'underlay@g2a', 'host@h2', 'container@h2']);
    expect(e.hops[1].what).toBe('gateway g2a of dc2: the packet arrives from a gateway of dc1 through WireGuard on weft.xdc');
    expect(e.hops[3].what).toBe('weft.vx1: neighbour 10.244.2.0 lladdr 02:aa:bb:cc:dd:02, FDB dst 172.31.2.13 (h2)');
    const wrong = explainPath({ ...f, transit: { ...f.transit!, route: { ok: true, dev: 'eth0', type: 'unicast' } } });
    expect(wrong.break!.why).toBe("the route goes via eth0, not the overlay's weft.vx1: it would not reach h2");
  });

  it('where dst lives, a packet from another datacenter arrives through a gateway: by weft.xdc on a gateway, over the overlay elsewhere', () => {
    const recv = (self: ExplainFacts['self'], inboundDev: string): ExplainFacts => base({
      self, dstLocal: container({ ip: '10.244.2.5', iface: { name: 'eth0', exists: true, up: true, mtu: 1390, addrs: ['10.244.2.5'] } }),
      srcOwner: owner({ host: 'h1', subnet: '10.244.1.0/24', datacenter: 'dc1' }), dstOwner: owner(), src: '10.244.1.2', dst: '10.244.2.5',
      inboundDev, inboundRoute: { ok: true, dev: 'weft.br1', type: 'unicast' },
      gateways: [...base({}).gateways!, { host: 'g2b', datacenter: 'dc2', wanEndpoint: '172.31.2.12:51820', state: 'active' }],
    });
    const onHost = explainPath(recv({ name: 'h2', datacenter: 'dc2' }, 'weft.vx1'));
    expect(onHost.complete, renderText(onHost)).toBe(true);
    expect(onHost.hops.map((h) => `${h.kind}@${h.host}`)).toEqual(['container@h1', 'host@h1', 'gateway@h2', 'vxlan@h2', 'route@h2', 'bridge@h2', 'veth@h2', 'container@h2']);
    expect(onHost.hops[2].what).toBe('from datacenter dc1 through WireGuard to a gateway of dc2 (g2a, g2b), then over the overlay to h2');
    const onGw = explainPath(recv({ name: 'g2a', datacenter: 'dc2', gateway: true }, 'weft.xdc'));
    expect(onGw.complete, renderText(onGw)).toBe(true);
    expect(onGw.hops[2].what).toBe('from datacenter dc1 through WireGuard, from one of its gateways (g1a), to this gateway');
    expect(onGw.hops[3].what).toBe('weft.xdc: decapsulated here');
  });

  describe('from a host that is not a gateway', () => {
    const fromH1 = (over: Partial<ExplainFacts> = {}): ExplainFacts => base({
      self: { name: 'h1', datacenter: 'dc1' },
      srcLocal: container(), srcOwner: owner({ host: 'h1', subnet: '10.244.1.0/24', datacenter: 'dc1' }),
      hostRoute: { ok: true, dev: 'weft.vx1', gw: '10.244.3.0', type: 'unicast' },
      failClosed: { exists: true, tunnelIfs: ['weft.vx1'] },
      neigh: { ip: '10.244.3.0', mac: '02:aa:bb:cc:dd:03' }, fdb: { mac: '02:aa:bb:cc:dd:03', dst: '172.31.1.11' },
      nextHopHost: { name: 'g1a', underlayIp: '172.31.1.11', vtepMac: '02:aa:bb:cc:dd:03', datacenter: 'dc1' },
      underlay: { dst: '172.31.1.11', route: { ok: true, dev: 'eth0', type: 'unicast' }, mtu: 1500 },
      tunnelReports: {
        g1a: { reportedAtMs: NOW, paths: [{ datacenter: 'dc2', chosen: 'g2a' }], peers: [{ host: 'g2a', datacenter: 'dc2', endpoint: '172.31.2.11:51820', handshakeAgeSeconds: 20 }] },
      },
      ...over,
    });

    it("the local gateway's side from its report: its choice and its session, then the remote gateway", () => {
      const e = explainPath(fromH1());
      expect(e.complete, renderText(e)).toBe(true);
      expect(where(fromH1())).toEqual(['container@h1', 'veth@h1', 'bridge@h1', 'route@h1', 'vxlan@h1', 'underlay@h1', 'wireguard@g1a', 'gateway@g2a', 'host@h2', 'container@h2']);
      expect(e.hops[6].what).toBe('g1a: weft.xdc via g2a (its choice for dc2), weft.wg0 peer g2a endpoint 172.31.2.11:51820, last handshake 20 s ago');
      expect(e.hops[6].source).toBe("controller; from g1a's report at 2026-12-07T15:00:00.000Z; its kernel is read only by weft explain on g1a");
    });

    it('a reported session over 180 s old, or no choice, is the break; no report is a warning that says where to look', () => {
      const stale = fromH1({ tunnelReports: { g1a: { reportedAtMs: NOW, paths: [{ datacenter: 'dc2', chosen: 'g2a' }], peers: [{ host: 'g2a', datacenter: 'dc2', endpoint: '172.31.2.11:51820', handshakeAgeSeconds: 300 }] } } });
      expect(explainPath(stale).break).toMatchObject({ kind: 'wireguard', host: 'g1a', why: 'no WireGuard session with g2a: the last handshake was 300 s ago, over 180 s' });
      const unchosen = fromH1({ tunnelReports: { g1a: { reportedAtMs: NOW, paths: [{ datacenter: 'dc2', chosen: '' }], peers: [] } } });
      expect(explainPath(unchosen).break!.why).toBe('g1a has no gateway of dc2 answering its probes: it routes nothing there');
      const unknown = explainPath(fromH1({ tunnelReports: undefined, controller: { ok: true, server: 'ctl:7443', identity: 'host' } }));
      expect(unknown.complete).toBe(true);
      const warn = unknown.hops.find((h) => h.verdict === 'warn')!;
      expect(warn).toMatchObject({ kind: 'tunnel', host: 'g1a' });
      expect(warn.fix).toBe('run weft explain 10.244.1.2 10.244.2.5 on g1a: it reads weft.xdc, weft.wg0 and the WireGuard peer there');
    });

    it('a route out of any other device than the overlay is the fail-closed drop, its rule named', () => {
      const e = explainPath(fromH1({ hostRoute: { ok: true, dev: 'eth0', gw: '172.31.1.1', type: 'unicast' } }));
      expect(e.break).toMatchObject({ kind: 'route', host: 'h1' });
      expect(e.break!.why).toContain('lets such a packet leave only by weft.vx1, and this route takes eth0: dropped and counted by rule "weft: an IPv4 address of another datacenter leaves only through the tunnel"');
    });

    it("an overlay FDB entry at a host's tunnel address routed into weft.wg0: the WireGuard peer is a hop too", () => {
      const mesh = fromH1({
        self: { name: 'h1', datacenter: 'dc1' }, dstOwner: owner({ host: 'h3', datacenter: 'dc1', subnet: '10.244.3.0/24', underlayIp: '172.31.1.14', vtepMac: '02:aa:bb:cc:dd:03' }), dst: '10.244.3.5',
        fdb: { mac: '02:aa:bb:cc:dd:03', dst: '10.244.3.0' },
        nextHopHost: { name: 'h3', underlayIp: '172.31.1.14', vtepMac: '02:aa:bb:cc:dd:03', datacenter: 'dc1', tunnelAddress: '10.244.3.0' },
        underlay: { dst: '10.244.3.0', route: { ok: true, dev: 'weft.wg0', type: 'unicast' } },
        underlayWireGuard: wg({ host: 'h3', datacenter: 'dc1', allowedIps: ['10.244.3.0/32'], endpoint: '172.31.1.14:51820' }),
      });
      const e = explainPath(mesh);
      expect(e.complete, renderText(e)).toBe(true);
      expect(where(mesh)).toEqual(['container@h1', 'veth@h1', 'bridge@h1', 'route@h1', 'vxlan@h1', 'route@h1', 'wireguard@h1', 'underlay@h1', 'host@h3', 'container@h3']);
      expect(e.hops[5].what).toBe('ip route get 10.244.3.0: dev weft.wg0 (VXLAN UDP to 10.244.3.0 (h3), inside WireGuard)');
      expect(e.hops[6].what).toContain('weft.wg0: peer h3');
      const gone = explainPath({ ...mesh, underlayWireGuard: wg({ host: 'h3', lastHandshakeMs: 0, allowedIps: ['10.244.3.0/32'] }) });
      expect(gone.break!.why).toBe('no WireGuard session with h3: no handshake has ever completed');
    });
  });
});

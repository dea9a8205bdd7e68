// The pure plan of traffic between datacenters: role, fail-closed policy,
// tunnel addresses, probe paths and a gateway's peers and routes, from a
// two-datacenter topology; and the overlay's view of other datacenters.
import { describe, expect, it } from 'vitest';
import { renderOverlay } from '../../cni-plugin/agent/host/overlay';
import type { DatacenterInfo, NetworkAttachment, RemoteHost, Topology } from '../../cni-plugin/agent/state/types';
import { coverCidrs, planTunnel, tunnelAddressOf, tunnelDevices, xdcMacFor } from '../../cni-plugin/agent/tunnel/policy';

const KEY = (c: string) => Buffer.alloc(32, c.charCodeAt(0)).toString('base64');

function host(name: string, dc: string, third: number, underlay: string): RemoteHost {
  return { name, underlayIp: underlay, vtepMac: `02:00:00:00:00:${third.toString(16).padStart(2, '0')}`, rack: 'r', datacenter: dc, subnets: { a: `10.244.${third}.0/24`, b: `10.245.${third}.0/24` } };
}

const HOSTS = [
  host('g1a', 'dc1', 1, '192.168.1.1'), host('g1b', 'dc1', 2, '192.168.1.2'), host('h1', 'dc1', 3, '192.168.1.3'),
  host('g2a', 'dc2', 11, '192.168.2.1'), host('g2b', 'dc2', 12, '192.168.2.2'), host('h2', 'dc2', 13, '192.168.2.3'), host('h3', 'dc2', 14, '192.168.2.4'),
];

function dc(name: string, gws: Array<[string, 'active' | 'draining', string]>, hosts: RemoteHost[]): DatacenterInfo {
  return {
    name, listenPort: 51820, mtu: 0, mesh: false, pools: {},
    gateways: gws.map(([h, state, key]) => ({ host: h, state, wgPublicKey: key, wanEndpoint: `203.0.113.${hosts.find((x) => x.name === h)!.subnets.a.split('.')[2]}:51820` })),
    subnets: hosts.flatMap((h) => Object.entries(h.subnets).map(([network, subnet]) => ({ network, subnet, host: h.name }))),
  };
}

function topo(o: { dc1Gateways?: Array<[string, 'active' | 'draining', string]> } = {}): Topology {
  const dc1 = HOSTS.filter((h) => h.datacenter === 'dc1');
  const dc2 = HOSTS.filter((h) => h.datacenter === 'dc2');
  return {
    revision: 7, hosts: HOSTS, vxlanPort: 4789,
    networks: [{ name: 'b', vni: 2, cidr: '10.245.0.0/16' }, { name: 'a', vni: 1, cidr: '10.244.0.0/16' }],
    datacenters: [
      dc('dc1', o.dc1Gateways ?? [['g1a', 'active', KEY('a')], ['g1b', 'active', KEY('b')]], dc1),
      dc('dc2', [['g2a', 'draining', KEY('c')], ['g2b', 'active', KEY('d')]], dc2),
    ],
  };
}

function att(name: string, network: 'a' | 'b'): NetworkAttachment {
  const h = HOSTS.find((x) => x.name === name)!;
  const vni = network === 'a' ? 1 : 2;
  const subnet = h.subnets[network];
  return { network, vni, networkCidr: network === 'a' ? '10.244.0.0/16' : '10.245.0.0/16', subnet, gateway: subnet.replace(/0\/24$/, '1'), vxlanDevice: `weft.vx${vni}`, bridge: `weft.br${vni}`, mtu: 1450 };
}
const atts = (name: string) => [att(name, 'a'), att(name, 'b')];

describe('planTunnel', () => {
  it('a tunnel address is the VTEP address in the first network by name', () => {
    expect(tunnelAddressOf('g2b', topo())).toBe('10.244.12.0');
  });

  it('a plain host: fail-closed policy over its datacenter, local gateways as candidates, remote gateways as targets', () => {
    const p = planTunnel({ topology: topo(), self: 'h1', datacenter: 'dc1', attachments: atts('h1') });
    expect(p.role).toBe('host');
    expect(p.multiDatacenter).toBe(true);
    expect(p.wireguard).toBeUndefined();
    expect(p.policy).toEqual({
      role: 'host', pools: ['10.244.0.0/16', '10.245.0.0/16'],
      local: ['10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24', '10.245.1.0/24', '10.245.2.0/24', '10.245.3.0/24'],
      remoteUnderlays: ['192.168.2.1', '192.168.2.2', '192.168.2.3', '192.168.2.4'], vxlanPort: 4789, overlayDevices: ['weft.vx1', 'weft.vx2'],
    });
    expect(tunnelDevices(p.policy)).toEqual(['weft.vx1', 'weft.vx2']);
    expect(p.paths).toEqual([{ datacenter: 'dc2', candidates: [{ host: 'g1a', draining: false }, { host: 'g1b', draining: false }], targets: ['10.244.11.1', '10.244.12.1'] }]);
  });

  it('draining gateways are candidates of last resort', () => {
    const p = planTunnel({ topology: topo({ dc1Gateways: [['g1a', 'draining', KEY('a')], ['g1b', 'active', KEY('b')]] }), self: 'h1', datacenter: 'dc1', attachments: atts('h1') });
    expect(p.paths[0].candidates).toEqual([{ host: 'g1b', draining: false }, { host: 'g1a', draining: true }]);
  });

  it('a gateway (active or draining): peers for every remote gateway, routes via the chosen one, probes to remote plain hosts', () => {
    for (const state of ['active', 'draining'] as const) {
      const t = topo({ dc1Gateways: [['g1a', state, KEY('a')], ['g1b', 'active', KEY('b')]] });
      const p = planTunnel({ topology: t, self: 'g1a', datacenter: 'dc1', attachments: atts('g1a'), choices: new Map([['dc2', 'g2b']]) });
      expect(p.role).toBe('gateway');
      expect(tunnelDevices(p.policy)).toEqual(['weft.wg0', 'weft.xdc']);
      expect(p.paths).toEqual([{ datacenter: 'dc2', candidates: [{ host: 'g2b', draining: false }, { host: 'g2a', draining: true }], targets: ['10.244.13.1', '10.244.14.1'] }]);
      const g = p.wireguard!;
      expect(g.tunnelAddress).toBe('10.244.1.0');
      expect(g.mac).toBe(xdcMacFor('g1a'));
      expect(g.peers).toEqual([
        { host: 'g2a', datacenter: 'dc2', publicKey: KEY('c'), endpoint: '203.0.113.11:51820', allowedIps: ['10.244.11.0/32'], persistentKeepalive: 25 },
        { host: 'g2b', datacenter: 'dc2', publicKey: KEY('d'), endpoint: '203.0.113.12:51820', allowedIps: ['10.244.12.0/32'], persistentKeepalive: 25 },
      ]);
      expect(g.wgRoutes).toEqual(['10.244.11.0/32', '10.244.12.0/32']);
      expect(g.xdcPeers).toEqual([{ host: 'g2a', ip: '10.244.11.0', mac: xdcMacFor('g2a') }, { host: 'g2b', ip: '10.244.12.0', mac: xdcMacFor('g2b') }]);
      expect(g.xdcRoutes.map((r) => r.dst)).toEqual(['10.244.11.0/24', '10.244.12.0/24', '10.244.13.0/24', '10.244.14.0/24', '10.245.11.0/24', '10.245.12.0/24', '10.245.13.0/24', '10.245.14.0/24']);
      expect(new Set(g.xdcRoutes.map((r) => r.gw))).toEqual(new Set(['10.244.12.0']));
    }
  });

  it('a gateway with no choice yet routes nothing into weft.xdc; a remote gateway without a key is no peer', () => {
    const t = topo();
    t.datacenters![1].gateways[0].wgPublicKey = '';
    const p = planTunnel({ topology: t, self: 'g1b', datacenter: 'dc1', attachments: atts('g1b') });
    expect(p.wireguard!.xdcRoutes).toEqual([]);
    expect(p.wireguard!.peers.map((x) => x.host)).toEqual(['g2b']);
    expect(p.paths[0].candidates).toEqual([{ host: 'g2b', draining: false }]);
  });

  it('datacenter pools stand for their networks; one datacenter speaks for no address', () => {
    const t = topo();
    t.datacenters![0].pools = { a: '10.244.0.0/20' };
    const p = planTunnel({ topology: t, self: 'h1', datacenter: 'dc1', attachments: atts('h1') });
    expect(p.policy.local).toEqual(['10.244.0.0/20', '10.245.1.0/24', '10.245.2.0/24', '10.245.3.0/24']);
    const single: Topology = { revision: 1, hosts: HOSTS.filter((h) => h.datacenter === 'dc1'), vxlanPort: 4789, networks: t.networks };
    const s = planTunnel({ topology: single, self: 'h1', datacenter: 'dc1', attachments: atts('h1') });
    expect(s.multiDatacenter).toBe(false);
    expect(s.policy.pools).toEqual([]);
    expect(s.paths).toEqual([]);
  });

  it('coverCidrs drops what another element holds', () => {
    expect(coverCidrs(['10.0.1.0/24', '10.0.0.0/16', '10.1.0.0/24', '10.0.0.0/16', 'fd00::/64', 'fd00::/48'])).toEqual(['10.0.0.0/16', '10.1.0.0/24', 'fd00::/48']);
  });
});

describe('renderOverlay with datacenters', () => {
  const t = topo();
  const choices = new Map([['dc2', 'g1b']]);

  it('a plain host routes remote subnets via the chosen local gateway and programs no remote host', () => {
    const r = renderOverlay(t, 'h1', atts('h1'), { datacenter: 'dc1', role: 'host', choices });
    const remote = r.routes.filter((x) => /^10\.24[45]\.1[1-4]\./.test(x.dst));
    expect(remote).toEqual([
      { dev: 'weft.vx1', dst: '10.244.11.0/24', gw: '10.244.2.0' }, { dev: 'weft.vx1', dst: '10.244.12.0/24', gw: '10.244.2.0' },
      { dev: 'weft.vx1', dst: '10.244.13.0/24', gw: '10.244.2.0' }, { dev: 'weft.vx1', dst: '10.244.14.0/24', gw: '10.244.2.0' },
      { dev: 'weft.vx2', dst: '10.245.11.0/24', gw: '10.245.2.0' }, { dev: 'weft.vx2', dst: '10.245.12.0/24', gw: '10.245.2.0' },
      { dev: 'weft.vx2', dst: '10.245.13.0/24', gw: '10.245.2.0' }, { dev: 'weft.vx2', dst: '10.245.14.0/24', gw: '10.245.2.0' },
    ].sort((a, b) => (a.dst < b.dst ? -1 : 1)));
    expect(r.fdbs.map((f) => f.dst).sort()).toEqual(['192.168.1.1', '192.168.1.1', '192.168.1.2', '192.168.1.2']);
    expect(r.neighs.every((n) => !/\.1[1-4]\.0$/.test(n.ip))).toBe(true);
    expect(r.skipped).toEqual([]);
  });

  it('no choice: no route to that datacenter at all; a gateway leaves remote hosts to weft.xdc', () => {
    const none = renderOverlay(t, 'h1', atts('h1'), { datacenter: 'dc1', role: 'host', choices: new Map() });
    const gw = renderOverlay(t, 'g1a', atts('g1a'), { datacenter: 'dc1', role: 'gateway', choices });
    for (const r of [none, gw]) {
      expect(r.routes.some((x) => /^10\.24[45]\.1[1-4]\./.test(x.dst))).toBe(false);
      expect(r.fdbs.some((f) => f.dst.startsWith('192.168.2.'))).toBe(false);
    }
  });

  it('every host in this datacenter: exactly the overlay without datacenters', () => {
    const one: Topology = { ...t, hosts: HOSTS.filter((h) => h.datacenter === 'dc1') };
    expect(renderOverlay(one, 'h1', atts('h1'), { datacenter: 'dc1', role: 'host', choices })).toEqual(renderOverlay(one, 'h1', atts('h1')));
  });
});

describe('full mesh: a datacenter whose hosts encrypt host-to-host traffic', () => {
  const withKeys = (hs: RemoteHost[]) => hs.map((h) => ({ ...h, wgPublicKey: KEY(h.name.slice(-1) === 'a' ? 'a' : h.name.slice(-1) === 'b' ? 'b' : 'h') }));
  function meshTopo(o: { oneDc?: boolean } = {}): Topology {
    const t = topo();
    const hosts = withKeys(o.oneDc ? HOSTS.filter((h) => h.datacenter === 'dc1') : HOSTS);
    const dcs = (t.datacenters ?? []).filter((d) => !o.oneDc || d.name === 'dc1').map((d) => (d.name === 'dc1' ? { ...d, mesh: true } : d));
    return { ...t, hosts, datacenters: dcs };
  }

  it('a plain host: every other host of its datacenter is a peer at its underlay, reached at its tunnel address; no weft.xdc', () => {
    const p = planTunnel({ topology: meshTopo(), self: 'h1', datacenter: 'dc1', attachments: atts('h1') });
    expect(p.mesh).toEqual(new Map([['g1a', '10.244.1.0'], ['g1b', '10.244.2.0']]));
    const wg = p.wireguard!;
    expect(wg.xdc).toBe(false);
    expect(wg.tunnelAddress).toBe('10.244.3.0');
    expect(wg.peers.map((x) => [x.host, x.endpoint, x.allowedIps])).toEqual([
      ['g1a', '192.168.1.1:51820', ['10.244.1.0/32']], ['g1b', '192.168.1.2:51820', ['10.244.2.0/32']],
    ]);
    expect(wg.wgRoutes).toEqual(['10.244.1.0/32', '10.244.2.0/32']);
    expect(wg.xdcRoutes).toEqual([]);
    // no VXLAN to a neighbour's underlay in cleartext, nor to another datacenter's
    expect(p.policy.mesh).toBe(true);
    expect(p.policy.remoteUnderlays).toEqual(['192.168.1.1', '192.168.1.2', '192.168.2.1', '192.168.2.2', '192.168.2.3', '192.168.2.4']);
  });

  it('a gateway of a mesh datacenter: its neighbours and the remote gateways, weft.xdc kept', () => {
    const p = planTunnel({ topology: meshTopo(), self: 'g1a', datacenter: 'dc1', attachments: atts('g1a'), choices: new Map([['dc2', 'g2b']]) });
    const wg = p.wireguard!;
    expect(wg.xdc).toBe(true);
    expect(wg.peers.map((x) => [x.host, x.endpoint])).toEqual([
      ['g1b', '192.168.1.2:51820'], ['g2a', '203.0.113.11:51820'], ['g2b', '203.0.113.12:51820'], ['h1', '192.168.1.3:51820'],
    ]);
    expect(wg.xdcRoutes.length).toBeGreaterThan(0);
  });

  it('one datacenter: the mesh alone still makes the device, peers and a policy that speaks for the neighbours', () => {
    const p = planTunnel({ topology: meshTopo({ oneDc: true }), self: 'h1', datacenter: 'dc1', attachments: atts('h1') });
    expect(p.multiDatacenter).toBe(false);
    expect(p.wireguard!.peers.map((x) => x.host)).toEqual(['g1a', 'g1b']);
    expect(p.policy).toMatchObject({ pools: [], local: [], remoteUnderlays: ['192.168.1.1', '192.168.1.2'], mesh: true });
  });

  it('a neighbour with no registered key is no peer (its traffic is dropped inside weft.wg0, never sent in cleartext)', () => {
    const t = meshTopo();
    t.hosts = t.hosts.map((h) => (h.name === 'g1b' ? { ...h, wgPublicKey: '' } : h));
    const p = planTunnel({ topology: t, self: 'h1', datacenter: 'dc1', attachments: atts('h1') });
    expect(p.wireguard!.peers.map((x) => x.host)).toEqual(['g1a']);
    expect(p.mesh!.get('g1b')).toBe('10.244.2.0');
    expect(p.policy.remoteUnderlays).toContain('192.168.1.2');
  });

  it('not a mesh datacenter: no neighbour is a peer and the policy says nothing of the mesh', () => {
    const p = planTunnel({ topology: { ...meshTopo(), datacenters: topo().datacenters }, self: 'h1', datacenter: 'dc1', attachments: atts('h1') });
    expect(p.mesh).toBeUndefined();
    expect(p.wireguard).toBeUndefined();
    expect(p.policy.mesh).toBeUndefined();
  });

  it('the overlay sends a neighbour\'s VXLAN to its tunnel address, another datacenter\'s hosts stay behind the gateway', () => {
    const t = meshTopo();
    const p = planTunnel({ topology: t, self: 'h1', datacenter: 'dc1', attachments: atts('h1') });
    const r = renderOverlay(t, 'h1', atts('h1'), { datacenter: 'dc1', role: 'host', choices: new Map([['dc2', 'g1b']]), mesh: p.mesh });
    expect(r.fdbs.map((f) => `${f.dev} ${f.dst}`).sort()).toEqual(['weft.vx1 10.244.1.0', 'weft.vx1 10.244.2.0', 'weft.vx2 10.244.1.0', 'weft.vx2 10.244.2.0']);
    expect(r.routes.filter((x) => x.dst === '10.244.1.0/24')).toEqual([{ dev: 'weft.vx1', dst: '10.244.1.0/24', gw: '10.244.1.0' }]);
  });
});

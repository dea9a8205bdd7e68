// The topology page's data and markup: hosts grouped by datacenter and rack
// with their health, gateways with their state, tunnels with the gateway the
// hosts chose and the youngest handshake; every string a host sent escaped;
// no key beyond a fingerprint.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  HEALTH_COLORS, type TopologyFacts, buildTopology, esc, readTopology, renderTopologyMain, renderTopologyPage, topologyResponse,
} from '../../controller/daemon/topology-page';
import { saveClusterConfig } from '../../controller/ipam';
import { encodeDatacenter } from '../../controller/registry/datacenters';
import { encodeHostReport, putHost } from '../../controller/registry/hosts';
import { datacenterKey, hostStatusKey } from '../../controller/registry/keys';
import { openSqliteStore } from '../../controller/store/sqlite';
import type { Store } from '../../controller/store/types';

const host = (name: string, datacenter: string, rack: string, health = 'alive'): TopologyFacts['hosts'][number] => ({
  name, datacenter, rack, health, heartbeatAgeMs: 1500, agentVersion: '1.2.3', underlayIp: '192.0.2.1',
  subnets: [{ network: 'default', subnet: '10.244.1.0/24' }], paths: [],
});

const facts = (over: Partial<TopologyFacts> = {}): TopologyFacts => ({
  nowUnixMs: Date.UTC(2026, 0, 1), revision: 42, leaseTtlSeconds: 60,
  hosts: [host('b1', 'dc2', 'r1'), host('a2', 'dc1', 'r2', 'expired'), host('a1', 'dc1', 'r1'), host('loose', '', '', 'stale')],
  datacenters: [
    {
      name: 'dc1',
      gateways: [
        { host: 'a1', state: 'active', keyFingerprint: 'AbCdEfGh', reported: true, peers: [
          { host: 'b1', datacenter: 'dc2', handshakeAgeSeconds: 40 },
          { host: 'b9', datacenter: 'dc2', handshakeAgeSeconds: 7 },
          { host: 'b8', datacenter: 'dc2', handshakeAgeSeconds: -1 },
        ] },
        { host: 'a2', state: 'draining', keyFingerprint: '', reported: false, peers: [] },
      ],
    },
    { name: 'dc2', gateways: [{ host: 'b1', state: 'active', keyFingerprint: 'ZZZZ0000', reported: true, peers: [] }] },
  ],
  paths: [
    { from: 'dc1', to: 'dc2', chosen: { a1: 2, '': 1 }, hosts: 3, failovers: 1 },
    { from: 'dc2', to: 'dc1', chosen: {}, hosts: 0, failovers: 0 },
  ],
  ...over,
});

describe('buildTopology', () => {
  it('groups hosts by datacenter and rack, marks gateways, and takes the youngest handshake per tunnel', () => {
    const t = buildTopology(facts());
    expect(t.datacenters.map((d) => [d.name, d.declared])).toEqual([['', false], ['dc1', true], ['dc2', true]]);
    const dc1 = t.datacenters[1]!;
    expect(dc1.racks.map((r) => [r.name, r.hosts.map((h) => [h.name, h.health, h.gateway])])).toEqual([
      ['r1', [['a1', 'alive', true]]],
      ['r2', [['a2', 'expired', true]]],
    ]);
    expect(t.datacenters[0]!.racks[0]!.hosts[0]).toMatchObject({ name: 'loose', gateway: false });
    expect(t.tunnels).toEqual([
      { from: 'dc1', to: 'dc2', chosen: { a1: 2, '': 1 }, hosts: 3, failovers: 1, handshakeAgeSeconds: 7 },
      { from: 'dc2', to: 'dc1', chosen: {}, hosts: 0, failovers: 0, handshakeAgeSeconds: -1 },
    ]);
  });
});

describe('rendering', () => {
  it('escapes the five characters that could end a text or an attribute', () => {
    expect(esc(`<a href="x" title='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  });

  it('shows one box per host coloured by health, the gateways with their state, and the tunnels', () => {
    const html = renderTopologyMain(buildTopology(facts()));
    const boxes = [...html.matchAll(/<div class="host" data-host="([^"]*)" data-health="([^"]*)" style="background:([^"]*)">/g)]
      .map((m) => [m[1], m[2], m[3]]);
    expect(boxes).toEqual([
      ['loose', 'stale', HEALTH_COLORS.stale],
      ['a1', 'alive', HEALTH_COLORS.alive],
      ['a2', 'expired', HEALTH_COLORS.expired],
      ['b1', 'alive', HEALTH_COLORS.alive],
    ]);
    expect(html).toMatch(/<section class="dc" data-dc="dc1"><h2>dc1<\/h2>/);
    expect(html).toContain('<h2>(no datacenter) <small>(not declared)</small></h2>');
    expect(html).toContain('<td>a2</td><td class="state-draining">draining</td>');
    expect(html).toContain('<code>AbCdEfGh</code>');
    expect(html).toContain('b9 (dc2): handshake 7 s ago');
    expect(html).toContain('b8 (dc2): handshake never');
    expect(html).toMatch(/<tr data-from="dc1" data-to="dc2"><td>dc1 &rarr; dc2<\/td><td><em>none answering<\/em>: 1 host<br>a1: 2 hosts<\/td><td>7 s ago<\/td><td>1<\/td><\/tr>/);
    expect(html).toContain('<td>no host reported</td><td>never</td>');
    expect(html).toContain('4 hosts:');
  });

  it('escapes everything a host sent: names, racks, datacenters, versions, chosen gateways, peers', () => {
    const evil = `<img src=x onerror="alert(1)">'`;
    const t = buildTopology(facts({
      hosts: [{ ...host(evil, evil, evil), agentVersion: evil, underlayIp: evil, subnets: [{ network: evil, subnet: evil }], paths: [{ datacenter: evil, chosen: evil, rttMs: 1 }] }],
      datacenters: [{ name: evil, gateways: [{ host: evil, state: evil, keyFingerprint: evil, reported: true, peers: [{ host: evil, datacenter: evil, handshakeAgeSeconds: 3 }] }] }],
      paths: [{ from: evil, to: evil, chosen: { [evil]: 1 }, hosts: 1, failovers: 0 }],
    }));
    const page = renderTopologyPage(t, 'n0nce');
    expect(page).not.toContain('<img');
    expect(page).not.toMatch(/onerror="/);
    expect(page).toContain('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&#39;');
    // The only script is the page's own, under its nonce.
    expect([...page.matchAll(/<script/g)]).toHaveLength(1);
    expect(page).toContain('<script nonce="n0nce">');
    // A health no renderer knows gets the neutral colour, not a string from the host.
    expect(renderTopologyMain(buildTopology(facts({ hosts: [host('h', 'dc1', 'r', evil)] })))).toContain('style="background:#8c959f"');
  });

  it('is a complete page without JavaScript, refreshing itself then, and fetching only its own fragment with it', () => {
    const page = renderTopologyPage(buildTopology(facts()), 'abc');
    expect(page).toMatch(/^<!doctype html>/);
    expect(page).toContain('<noscript><meta http-equiv="refresh" content="5"></noscript>');
    expect(page).toContain('<main id="main"><p class="summary">');
    expect(page).toContain("fetch('topology?part=main'");
    expect(page).not.toMatch(/https?:\/\//); // no CDN, nothing external
  });
});

describe('readTopology', () => {
  let dir: string | undefined;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    store = dir = undefined;
  });

  it('joins hosts, heartbeat reports and datacenters from the store, shows no key beyond a fingerprint, and sets a strict policy', async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-topo-'));
    store = openSqliteStore(join(dir, 'store.db'));
    await saveClusterConfig(store, { networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/16', hostPrefixLength: 24 }], leaseTtlSeconds: 30 });
    const now = Date.now();
    const key = 'k'.repeat(43) + '=';
    const rec = (name: string, dc: string, beat: number) => ({
      name, underlayIp: '192.0.2.9', vtepMac: '02:00:00:00:00:09', rack: 'r1', datacenter: dc, wgPublicKey: key, agentVersion: 'reg-1', lastHeartbeat: beat,
    });
    await putHost(store, rec('g1', 'dc1', now - 1000));
    await putHost(store, rec('g2', 'dc1', now - 60_000));
    await putHost(store, rec('h2', 'dc2', now - 25_000));
    await store.put(datacenterKey('dc1'), encodeDatacenter({
      name: 'dc1', gateways: [{ host: 'g1', wanEndpoint: '198.51.100.1:51820', state: 'active' }, { host: 'g2', wanEndpoint: '198.51.100.2:51820', state: 'draining' }],
      listenPort: 51820, mtu: 0, mesh: false, allowSingleGateway: false,
    }));
    await store.put(hostStatusKey('g1'), encodeHostReport({
      name: 'g1', agentVersion: 'rep-2', reportedAt: now - 1000,
      tunnel: {
        role: 'gateway', datacenter: 'dc1', paths: [{ datacenter: 'dc2', chosen: 'g1', lastOkAt: now, consecutiveMisses: 0, failovers: 0, rttMs: 1 }],
        peers: [{ host: 'h2', datacenter: 'dc2', endpoint: '198.51.100.3:51820', handshakeAgeSeconds: 5, rxBytes: 1, txBytes: 2 }],
        wgMtu: 1420, xdcMtu: 1420, mtuSource: 'derived', keySince: 0,
      },
    }));
    const t = await readTopology(store, () => now);
    expect(t.leaseTtlSeconds).toBe(30);
    const dc1 = t.datacenters.find((d) => d.name === 'dc1')!;
    expect(dc1.gateways.map((g) => [g.host, g.state, g.keyFingerprint])).toEqual([['g1', 'active', 'kkkkkkkk'], ['g2', 'draining', 'kkkkkkkk']]);
    expect(dc1.racks[0]!.hosts.map((h) => [h.name, h.health, h.agentVersion, h.gateway])).toEqual([
      ['g1', 'alive', 'rep-2', true], ['g2', 'expired', 'reg-1', true],
    ]);
    expect(t.datacenters.find((d) => d.name === 'dc2')).toMatchObject({ declared: false, racks: [{ hosts: [{ name: 'h2', health: 'stale' }] }] });
    // Reported 5 s old one second ago: 6 s old now.
    expect(t.tunnels).toEqual([{ from: 'dc1', to: 'dc2', chosen: { g1: 1 }, hosts: 1, failovers: 0, handshakeAgeSeconds: 6 }]);

    const json = await topologyResponse(store, '/topology.json', '');
    const page = await topologyResponse(store, '/topology', '');
    for (const r of [json, page]) expect(r.body).not.toContain(key.slice(0, 12));
    expect(json.headers['content-type']).toBe('application/json');
    const csp = page.headers['content-security-policy']!;
    const nonce = /'nonce-([^']+)'/.exec(csp)![1]!;
    expect(page.body).toContain(`<script nonce="${nonce}">`);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect((await topologyResponse(store, '/topology', 'part=main')).body).toMatch(/^<p class="summary">/);
  });
});

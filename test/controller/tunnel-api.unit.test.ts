// WireGuard key rotation and tunnel status through the API: a host drains and
// activates only its own gateway entries (the last active one refused with a
// code the agent can match), registers its new public key (unique, the old
// one freed), an operator asks hosts to rotate (the generation reaches agents
// in WatchTopology and survives re-registration), heartbeats carry a
// bounded, validated tunnel report kept with the host status, and
// ListTunnels joins it all per datacenter and per pair of datacenters.
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WEFT_CODE_TRAILER } from '../../controller/api/proto';
import { type Harness, hostRequest, registerHost, startHarness, wgKeyFor } from './api-harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

async function refusal(p: Promise<unknown>): Promise<{ code: string; details: string; weftCode: string | undefined }> {
  const err = (await p.then(() => undefined, (e) => e)) as grpc.ServiceError | undefined;
  if (!err) throw new Error('the call succeeded; expected it to be refused');
  return { code: grpc.status[err.code], details: err.details, weftCode: err.metadata?.get(WEFT_CODE_TRAILER)[0] as string | undefined };
}

/** dc2: gateways h7, h8 (h9 a plain host); dc1: gateways h1, h2 (h3 a plain host). */
async function twoDatacenters(): Promise<void> {
  for (const [n, i, dc] of [['h7', 7, 'dc2'], ['h8', 8, 'dc2'], ['h9', 9, 'dc2'], ['h1', 1, 'dc1'], ['h2', 2, 'dc1'], ['h3', 3, 'dc1']] as const) {
    await registerHost(h, n, i, { datacenter: dc });
  }
  await h.call('CreateDatacenter', { name: 'dc2', gateways: [{ host: 'h7' }, { host: 'h8' }] }, 'admin');
  await h.call('CreateDatacenter', { name: 'dc1', gateways: [{ host: 'h1' }, { host: 'h2' }] }, 'admin');
}

const states = async (dc: string) => JSON.parse((await h.store.get(`/weft/datacenters/${dc}`))!.value).gateways.map((g: { host: string; state: string }) => `${g.host}:${g.state}`);

describe('SetOwnGatewayState', () => {
  it('drains and activates the caller\'s own gateway entry; the last active one is refused with WEFT_GATEWAY_LAST_ACTIVE and nothing written', async () => {
    await twoDatacenters();
    const drained = await h.call('SetOwnGatewayState', { name: 'h7', state: 'draining' }, 'host:h7');
    expect(drained.datacenters).toEqual(['dc2']);
    expect(await states('dc2')).toEqual(['h7:draining', 'h8:active']);
    // draining again: no write at all
    const rev = await h.store.revision();
    expect((await h.call('SetOwnGatewayState', { name: 'h7', state: 'draining' }, 'host:h7')).datacenters).toEqual(['dc2']);
    expect(await h.store.revision()).toBe(rev);
    // h8 is now the last active gateway of dc2
    const last = await refusal(h.call('SetOwnGatewayState', { name: 'h8', state: 'draining' }, 'host:h8'));
    expect(last).toEqual({
      code: 'FAILED_PRECONDITION', weftCode: 'WEFT_GATEWAY_LAST_ACTIVE',
      details: expect.stringMatching(/^state: datacenter "dc2" would have no active gateway/),
    });
    expect(await h.store.revision()).toBe(rev);
    // an operator's drain of the last one carries the same code
    expect((await refusal(h.call('DrainGateway', { datacenter: 'dc2', host: 'h8' }, 'admin'))).weftCode).toBe('WEFT_GATEWAY_LAST_ACTIVE');
    expect((await h.call('SetOwnGatewayState', { name: 'h7', state: 'active' }, 'host:h7')).datacenters).toEqual(['dc2']);
    expect(await states('dc2')).toEqual(['h7:active', 'h8:active']);
    // a host that is no gateway: nothing to set, not an error
    expect(await h.call('SetOwnGatewayState', { name: 'h9', state: 'draining' }, 'host:h9')).toEqual({ datacenters: [], revision: expect.any(Number) });
  });

  it('lets a host act only for itself, never an admin or an ingress, and checks every field first', async () => {
    await twoDatacenters();
    expect((await refusal(h.call('SetOwnGatewayState', { name: 'h8', state: 'draining' }, 'host:h7'))).code).toBe('PERMISSION_DENIED');
    expect((await refusal(h.call('SetOwnGatewayState', { name: 'h7', state: 'draining' }, 'admin'))).code).toBe('PERMISSION_DENIED');
    expect((await refusal(h.call('SetOwnGatewayState', { name: 'h7', state: 'draining' }, 'ingress:edge'))).code).toBe('PERMISSION_DENIED');
    expect((await refusal(h.call('SetOwnGatewayState', { name: 'h7', state: 'draining' }))).code).toBe('UNAUTHENTICATED');
    expect(await refusal(h.call('SetOwnGatewayState', { name: 'h7', state: 'off' }, 'host:h7'))).toEqual({
      code: 'INVALID_ARGUMENT', weftCode: 'WEFT_INVALID_ARGUMENT', details: 'state: "off" is not a gateway state (one of active, draining)',
    });
    expect(await states('dc2')).toEqual(['h7:active', 'h8:active']);
    expect(h.logs.some((l) => l.msg === 'refused: host acting on another host\'s records' && l.target === 'h8')).toBe(true);
  });
});

describe('SetWireGuardKey', () => {
  it('replaces the caller\'s public key, frees the old one for others, and refuses one another host holds', async () => {
    await twoDatacenters();
    const fresh = wgKeyFor(77);
    await h.call('SetWireGuardKey', { name: 'h7', wg_public_key: fresh }, 'host:h7');
    const stored = JSON.parse((await h.store.get('/weft/hosts/h7'))!.value);
    expect(stored.wgPublicKey).toBe(fresh);
    // the datacenter shows the gateway's new key (it is read from the host record)
    const list = await h.call('ListDatacenters', {}, 'admin');
    expect(list.datacenters.find((d: { name: string }) => d.name === 'dc2').gateways[0].wg_public_key).toBe(fresh);
    // h8's key is h8's
    expect(await refusal(h.call('SetWireGuardKey', { name: 'h7', wg_public_key: wgKeyFor(8) }, 'host:h7'))).toEqual({
      code: 'ALREADY_EXISTS', weftCode: 'WEFT_HOST_CONFLICT', details: expect.stringMatching(/^wg_public_key: .* is already held by another registered host/),
    });
    // h7's old key is free: another host may register it
    await h.call('SetWireGuardKey', { name: 'h9', wg_public_key: wgKeyFor(7) }, 'host:h9');
    // the heartbeat after a rotation keeps the new key
    await h.call('Heartbeat', { name: 'h7' }, 'host:h7');
    expect(JSON.parse((await h.store.get('/weft/hosts/h7'))!.value).wgPublicKey).toBe(fresh);
  });

  it('refuses other hosts, bad keys and unregistered hosts', async () => {
    await twoDatacenters();
    const before = await h.store.revision();
    expect((await refusal(h.call('SetWireGuardKey', { name: 'h8', wg_public_key: wgKeyFor(70) }, 'host:h7'))).code).toBe('PERMISSION_DENIED');
    expect((await refusal(h.call('SetWireGuardKey', { name: 'h7', wg_public_key: wgKeyFor(70) }, 'admin'))).code).toBe('PERMISSION_DENIED');
    expect((await refusal(h.call('SetWireGuardKey', { name: 'h7', wg_public_key: 'abc' }, 'host:h7'))).details).toMatch(/^wg_public_key: "abc" is not a WireGuard public key/);
    expect((await refusal(h.call('SetWireGuardKey', { name: 'h7', wg_public_key: '' }, 'host:h7'))).details).toMatch(/^wg_public_key: is required/);
    expect((await refusal(h.call('SetWireGuardKey', { name: 'ghost', wg_public_key: wgKeyFor(70) }, 'host:ghost'))).code).toBe('NOT_FOUND');
    expect(await h.store.revision()).toBe(before);
  });
});

describe('RotateWireGuardKeys', () => {
  it('raises each host\'s generation, which agents see in WatchTopology and re-registration keeps', async () => {
    await twoDatacenters();
    const watch = h.open('WatchTopology', { from_revision: 0 }, 'host:h1');
    await watch.waitFor((m) => m.kind === 'SNAPSHOT');
    const one = await h.call('RotateWireGuardKeys', { hosts: ['h7', 'h7', 'h8'] }, 'admin');
    expect(one.hosts).toEqual([{ host: 'h7', wg_key_rotation: 1 }, { host: 'h8', wg_key_rotation: 1 }]);
    const put = await watch.waitFor((m) => m.kind === 'HOST_PUT' && m.hosts[0].name === 'h8');
    expect(put.hosts[0].wg_key_rotation).toBe(1);
    const all = await h.call('RotateWireGuardKeys', { all: true }, 'admin');
    expect(all.hosts.map((x: { host: string; wg_key_rotation: number }) => `${x.host}=${x.wg_key_rotation}`)).toEqual(['h1=1', 'h2=1', 'h3=1', 'h7=2', 'h8=2', 'h9=1']);
    // a re-registering agent is not asked again, nor un-asked
    await h.call('RegisterHost', hostRequest('h7', 7, { datacenter: 'dc2' }), 'host:h7');
    expect(JSON.parse((await h.store.get('/weft/hosts/h7'))!.value).wgKeyRotation).toBe(2);
    // heartbeats do not reach watchers, the generation does
    await h.call('Heartbeat', { name: 'h7' }, 'host:h7');
    expect(JSON.parse((await h.store.get('/weft/hosts/h7'))!.value).wgKeyRotation).toBe(2);
    const snap = h.open('WatchTopology', { from_revision: 0 }, 'host:h2');
    const s = await snap.waitFor((m) => m.kind === 'SNAPSHOT');
    expect(s.hosts.find((x: { name: string }) => x.name === 'h7').wg_key_rotation).toBe(2);
  });

  it('is for admins only; an unknown host is refused before anything is written', async () => {
    await twoDatacenters();
    const before = await h.store.revision();
    expect((await refusal(h.call('RotateWireGuardKeys', { hosts: ['h7'] }, 'host:h7'))).code).toBe('PERMISSION_DENIED');
    expect((await refusal(h.call('RotateWireGuardKeys', { all: true }, 'ingress:edge'))).code).toBe('PERMISSION_DENIED');
    expect(await refusal(h.call('RotateWireGuardKeys', { hosts: ['h7', 'ghost'] }, 'admin'))).toEqual({
      code: 'NOT_FOUND', weftCode: 'WEFT_RECORD_NOT_FOUND', details: 'host: "ghost" is not registered (weft hosts lists them)',
    });
    expect((await refusal(h.call('RotateWireGuardKeys', {}, 'admin'))).details).toBe('hosts: name at least one host, or set all');
    expect((await refusal(h.call('RotateWireGuardKeys', { hosts: ['h7'], all: true }, 'admin'))).code).toBe('INVALID_ARGUMENT');
    expect((await refusal(h.call('RotateWireGuardKeys', { hosts: ['H7'] }, 'admin'))).details).toMatch(/^hosts\[0\]: "H7" is not a valid name/);
    expect(await h.store.revision()).toBe(before);
  });
});

/** A tunnel report as an agent sends it. */
function report(o: { role: 'host' | 'gateway'; dc: string; paths?: Array<[string, string, number]>; peers?: Array<[string, string, number]>; keySince?: number }) {
  return {
    role: o.role, datacenter: o.dc, wg_mtu: o.role === 'gateway' ? 1420 : 0, xdc_mtu: o.role === 'gateway' ? 1370 : 0, mtu_source: o.role === 'gateway' ? 'derived' : 'none',
    key_since_unix_ms: o.keySince ?? 0,
    paths: (o.paths ?? []).map(([datacenter, chosen, failovers]) => ({ datacenter, chosen, last_ok_unix_ms: 1, consecutive_misses: 0, failovers, rtt_ms: 0.4 })),
    peers: (o.peers ?? []).map(([host, datacenter, age]) => ({ host, datacenter, endpoint: '203.0.113.9:51820', handshake_age_seconds: age, rx_bytes: 10, tx_bytes: 20 })),
  };
}

describe('tunnel reports and ListTunnels', () => {
  it('keeps the heartbeat\'s tunnel report with the host status and shows it in ListHosts', async () => {
    await twoDatacenters();
    const t = report({ role: 'gateway', dc: 'dc2', paths: [['dc1', 'h1', 2]], peers: [['h1', 'dc1', 5]], keySince: 1234 });
    await h.call('Heartbeat', { name: 'h7', agent_version: '0.2.0', tunnel: t }, 'host:h7');
    const stored = JSON.parse((await h.store.get('/weft/host-status/h7'))!.value);
    expect(stored.tunnel).toEqual({
      role: 'gateway', datacenter: 'dc2', wgMtu: 1420, xdcMtu: 1370, mtuSource: 'derived', keySince: 1234,
      paths: [{ datacenter: 'dc1', chosen: 'h1', lastOkAt: 1, consecutiveMisses: 0, failovers: 2, rttMs: 0.4 }],
      peers: [{ host: 'h1', datacenter: 'dc1', endpoint: '203.0.113.9:51820', handshakeAgeSeconds: 5, rxBytes: 10, txBytes: 20 }],
    });
    const hosts = await h.call('ListHosts', {}, 'admin');
    expect(hosts.hosts.find((x: { host: { name: string } }) => x.host.name === 'h7').tunnel).toEqual(t);
    expect(hosts.hosts.find((x: { host: { name: string } }) => x.host.name === 'h8').tunnel).toBeNull();
  });

  it('refuses a report out of bounds or malformed, and writes nothing', async () => {
    await twoDatacenters();
    const before = await h.store.revision();
    const base = report({ role: 'gateway', dc: 'dc2' });
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ role: 'router' }, /^tunnel\.role: "router" is not one of host, gateway/],
      [{ mtu_source: 'guessed' }, /^tunnel\.mtu_source:/],
      [{ wg_mtu: 70000 }, /^tunnel\.wg_mtu: 70000 is not an MTU/],
      [{ datacenter: 'DC2' }, /^tunnel\.datacenter:/],
      [{ paths: Array.from({ length: 65 }, (_, i) => ({ datacenter: `d${i}`, chosen: '' })) }, /^tunnel\.paths: has 65 entries \(at most 64\)/],
      [{ peers: Array.from({ length: 1025 }, (_, i) => ({ host: `p${i}`, endpoint: '' })) }, /^tunnel\.peers: has 1025 entries \(at most 1024\)/],
      [{ peers: [{ host: 'p1', endpoint: 'nowhere', handshake_age_seconds: 1 }] }, /^tunnel\.peers\[0\]\.endpoint: "nowhere" is not an endpoint/],
      [{ peers: [{ host: 'p1', endpoint: '[fd00::1]:51820', handshake_age_seconds: -2 }] }, /^tunnel\.peers\[0\]\.handshake_age_seconds: -2 is not a count/],
      [{ paths: [{ datacenter: 'dc1', chosen: 'Bad Host' }] }, /^tunnel\.paths\[0\]\.chosen:/],
    ];
    for (const [patch, msg] of cases) {
      const r = await refusal(h.call('Heartbeat', { name: 'h7', tunnel: { ...base, ...patch } }, 'host:h7'));
      expect(r, JSON.stringify(patch).slice(0, 80)).toEqual({ code: 'INVALID_ARGUMENT', weftCode: 'WEFT_INVALID_ARGUMENT', details: expect.stringMatching(msg) });
    }
    expect(await h.store.revision()).toBe(before);
    // 64 paths and 1024 peers are fine
    const big = { ...base, paths: Array.from({ length: 64 }, (_, i) => ({ datacenter: `d${i}`, chosen: '' })), peers: Array.from({ length: 1024 }, (_, i) => ({ host: `p${i}`, endpoint: '' })) };
    await h.call('Heartbeat', { name: 'h7', tunnel: big }, 'host:h7');
  });

  it('joins gateways, keys and handshakes per datacenter, and the hosts\' choices per pair of datacenters', async () => {
    await twoDatacenters();
    await h.call('DrainGateway', { datacenter: 'dc2', host: 'h8' }, 'admin');
    h.clock.now = 1_000_000;
    // dc1: h3 chose local gateway h1, h2 (a gateway) chose remote h7 after one failover; h1 reported peers
    await h.call('Heartbeat', { name: 'h3', tunnel: report({ role: 'host', dc: 'dc1', paths: [['dc2', 'h1', 0]] }) }, 'host:h3');
    await h.call('Heartbeat', { name: 'h1', tunnel: report({ role: 'gateway', dc: 'dc1', paths: [['dc2', 'h7', 0]], peers: [['h7', 'dc2', 4], ['h8', 'dc2', -1]] }) }, 'host:h1');
    await h.call('Heartbeat', { name: 'h2', tunnel: report({ role: 'gateway', dc: 'dc1', paths: [['dc2', 'h7', 1]] }) }, 'host:h2');
    h.clock.now = 1_010_500;
    const t = await h.call('ListTunnels', {}, 'admin');
    expect(t.now_unix_ms).toBe(1_010_500);
    expect(t.datacenters.map((d: { name: string }) => d.name)).toEqual(['dc1', 'dc2']);
    const [dc1, dc2] = t.datacenters;
    expect(dc1.gateways[0]).toEqual({
      host: 'h1', state: 'active', key_fingerprint: wgKeyFor(1).slice(0, 8), reported: true, reported_at_unix_ms: 1_000_000, key_since_unix_ms: 0,
      // aged by the 10.5 s since the report; "none yet" stays -1
      peers: [
        { host: 'h7', datacenter: 'dc2', endpoint: '203.0.113.9:51820', handshake_age_seconds: 14, rx_bytes: 10, tx_bytes: 20 },
        { host: 'h8', datacenter: 'dc2', endpoint: '203.0.113.9:51820', handshake_age_seconds: -1, rx_bytes: 10, tx_bytes: 20 },
      ],
    });
    expect(dc2.gateways.map((g: { host: string; state: string; reported: boolean }) => `${g.host}:${g.state}:${g.reported}`)).toEqual(['h7:active:false', 'h8:draining:false']);
    expect(t.paths).toEqual([
      { from: 'dc1', to: 'dc2', chosen: { h1: 1, h7: 2 }, failovers: 1, hosts: 3 },
      { from: 'dc2', to: 'dc1', chosen: {}, failovers: 0, hosts: 0 },
    ]);
    // a gateway whose host left shows no key
    await h.call('LeaveHost', { name: 'h8' }, 'host:h8');
    expect((await h.call('ListTunnels', {}, 'admin')).datacenters[1].gateways[1].key_fingerprint).toBe('');
    expect((await refusal(h.call('ListTunnels', {}, 'host:h1'))).code).toBe('PERMISSION_DENIED');
  });
});

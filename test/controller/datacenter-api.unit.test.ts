// Datacenters through the API: every bad field refused before anything is
// written, the gateway rules checked against the host records, who may call
// what, concurrent edits that all land, and what WatchTopology tells hosts.
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Harness, registerHost, startHarness, wgKeyFor } from './api-harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

async function status(p: Promise<unknown>): Promise<{ code: string; details: string }> {
  const err = (await p.then(() => undefined, (e) => e)) as grpc.ServiceError | undefined;
  if (!err) throw new Error('the call succeeded; expected it to be refused');
  return { code: grpc.status[err.code], details: err.details };
}

/** Hosts h7, h8, h9 in dc2 and h1 in dc1, each with its own WireGuard key. */
async function hosts(): Promise<void> {
  await registerHost(h, 'h7', 7, { datacenter: 'dc2' });
  await registerHost(h, 'h8', 8, { datacenter: 'dc2' });
  await registerHost(h, 'h9', 9, { datacenter: 'dc2' });
  await registerHost(h, 'h1', 1, { datacenter: 'dc1' });
}

const create = (req: Record<string, unknown>, as = 'admin') => h.call('CreateDatacenter', req, as);
const dc2 = (extra: Record<string, unknown> = {}) =>
  create({ name: 'dc2', gateways: [{ host: 'h7', wan_endpoint: '203.0.113.7:51820' }, { host: 'h8', wan_endpoint: '' }], ...extra });

describe('CreateDatacenter', () => {
  it('stores gateways and options, and describes them with the hosts\' own keys, counts and subnets', async () => {
    await hosts();
    const r = await dc2({ mtu: 1380, mesh: true });
    expect(r.revision).toBeGreaterThan(0);
    expect(r.datacenter).toEqual({
      name: 'dc2', listen_port: 51820, mtu: 1380, mesh: true, allow_single_gateway: false, host_count: 3,
      gateways: [
        { host: 'h7', wan_endpoint: '203.0.113.7:51820', state: 'active', wg_public_key: wgKeyFor(7) },
        // no endpoint given: the host's underlay address and the listen port
        { host: 'h8', wan_endpoint: '192.168.1.8:51820', state: 'active', wg_public_key: wgKeyFor(8) },
      ],
      subnets: expect.any(Array),
      pools: {},
    });
    // the subnets leased to its hosts, by network then subnet, each naming its host
    const leases = (await h.store.range('/weft/leases/')).kvs.map((kv) => {
      const [network, subnet] = kv.key.slice('/weft/leases/'.length).split('/');
      return { network, subnet: subnet.replace('-', '/'), host: JSON.parse(kv.value).host as string };
    }).filter((l) => l.host !== 'h1');
    const key = (x: { network: string; subnet: string }) => `${x.network} ${x.subnet}`;
    expect(r.datacenter.subnets).toHaveLength(6);
    expect(r.datacenter.subnets.map(key)).toEqual([...r.datacenter.subnets.map(key)].sort());
    expect([...r.datacenter.subnets].sort((a: any, b: any) => (key(a) < key(b) ? -1 : 1))).toEqual(leases.sort((a, b) => (key(a) < key(b) ? -1 : 1)));
    // one source of truth for keys: the record holds none
    const stored = JSON.parse((await h.store.get('/weft/datacenters/dc2'))!.value);
    expect(stored).toEqual({
      name: 'dc2', listenPort: 51820, mtu: 1380, mesh: true, allowSingleGateway: false,
      gateways: [{ host: 'h7', wanEndpoint: '203.0.113.7:51820', state: 'active' }, { host: 'h8', wanEndpoint: '192.168.1.8:51820', state: 'active' }],
    });
    expect(JSON.stringify(stored)).not.toContain(wgKeyFor(7));
    expect(await status(dc2())).toEqual({ code: 'ALREADY_EXISTS', details: expect.stringMatching(/^datacenter "dc2" already exists/) });
  });

  it('canonicalises endpoints and takes a listen port for the default ones', async () => {
    await hosts();
    const r = await dc2({ listen_port: 4500, gateways: [{ host: 'h7', wan_endpoint: '[2001:DB8:0::7]:4500' }, { host: 'h8' }] });
    expect(r.datacenter.gateways.map((g: { wan_endpoint: string }) => g.wan_endpoint)).toEqual(['[2001:db8::7]:4500', '192.168.1.8:4500']);
    expect(r.datacenter.listen_port).toBe(4500);
  });

  it('refuses every malformed field with INVALID_ARGUMENT naming it, and writes nothing', async () => {
    await hosts();
    const gw = (wan: string) => ({ name: 'dc2', gateways: [{ host: 'h7', wan_endpoint: wan }, { host: 'h8' }] });
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ name: 'DC2', gateways: [] }, 'name', /is not a valid name/],
      [{ name: '', gateways: [] }, 'name', /is required/],
      [{ name: 'a/b', gateways: [] }, 'name', /is not a valid name/],
      [gw('127.0.0.1:51820'), 'gateways[0].wan_endpoint', /loopback/],
      [gw('[::1]:51820'), 'gateways[0].wan_endpoint', /loopback/],
      [gw('224.0.0.9:51820'), 'gateways[0].wan_endpoint', /multicast/],
      [gw('[ff02::1]:51820'), 'gateways[0].wan_endpoint', /multicast/],
      [gw('169.254.1.1:51820'), 'gateways[0].wan_endpoint', /link-local/],
      [gw('[fe80::1]:51820'), 'gateways[0].wan_endpoint', /link-local/],
      [gw('0.0.0.0:51820'), 'gateways[0].wan_endpoint', /unspecified/],
      [gw('[::]:51820'), 'gateways[0].wan_endpoint', /unspecified/],
      [gw('255.255.255.255:51820'), 'gateways[0].wan_endpoint', /broadcast/],
      [gw('[::ffff:203.0.113.7]:51820'), 'gateways[0].wan_endpoint', /IPv4-mapped/],
      [gw('10.244.3.9:51820'), 'gateways[0].wan_endpoint', /inside weft network "default"/],
      [gw('10.250.0.1:51820'), 'gateways[0].wan_endpoint', /inside weft network "blue"/],
      [gw('203.0.113.7:0'), 'gateways[0].wan_endpoint', /port 0 is not 1-65535/],
      [gw('203.0.113.7:65536'), 'gateways[0].wan_endpoint', /port 65536 is not 1-65535/],
      [gw('203.0.113.7'), 'gateways[0].wan_endpoint', /must be "ip:port"/],
      [gw('2001:db8::7:51820'), 'gateways[0].wan_endpoint', /in brackets/],
      [gw('[203.0.113.7]:51820'), 'gateways[0].wan_endpoint', /not an IPv6 address/],
      [gw('gw.example.com:51820'), 'gateways[0].wan_endpoint', /must be "ip:port"/],
      [gw('203.0.113.7:51820\n'), 'gateways[0].wan_endpoint', /must be "ip:port"/],
      [{ name: 'dc2', gateways: [{ host: 'admin' }, { host: 'h8' }] }, 'gateways[0].host', /reserved/],
      [{ name: 'dc2', gateways: [{ host: 'h7' }, { host: 'h7' }] }, 'gateways[1].host', /already gateways\[0\]/],
      [{ name: 'dc2', gateways: Array.from({ length: 17 }, (_, i) => ({ host: `h${i}` })) }, 'gateways', /at most 16/],
      [{ name: 'dc2', gateways: [], listen_port: 70000 }, 'listen_port', /not a port/],
      [{ name: 'dc2', gateways: [], mtu: 1000 }, 'mtu', /not an MTU/],
      [{ name: 'dc2', gateways: [], mtu: 9217 }, 'mtu', /not an MTU/],
    ];
    for (const [req, field, msg] of cases) {
      const s = await status(create(req));
      expect(s.code, JSON.stringify(req)).toBe('INVALID_ARGUMENT');
      expect(s.details, JSON.stringify(req)).toMatch(new RegExp(`^${field.replace(/[[\]]/g, '\\$&')}: `));
      expect(s.details, JSON.stringify(req)).toMatch(msg);
    }
    expect((await h.store.range('/weft/datacenters/')).kvs).toEqual([]);
  });

  it('holds the gateway rules against the host records (FAILED_PRECONDITION)', async () => {
    await hosts();
    await registerHost(h, 'nokey', 20, { datacenter: 'dc2', wg_public_key: '' });
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ gateways: [{ host: 'h7' }, { host: 'ghost' }] }, /^gateways\[1\]\.host: host "ghost" is not registered/],
      [{ gateways: [{ host: 'h7' }, { host: 'h1' }] }, /^gateways\[1\]\.host: host "h1" is in datacenter "dc1", not "dc2"/],
      [{ gateways: [{ host: 'h7' }, { host: 'nokey' }] }, /^gateways\[1\]\.host: host "nokey" registered no WireGuard public key/],
      [{ gateways: [{ host: 'h7' }] }, /^gateways: datacenter "dc2" would have 1 gateway; it needs at least 2/],
      [{ gateways: [] }, /would have 0 gateways/],
      [{ gateways: [{ host: 'h7', wan_endpoint: '203.0.113.7:51820' }, { host: 'h8', wan_endpoint: '203.0.113.7:51820' }] }, /WAN endpoint 203\.0\.113\.7:51820 is already gateway "h7"'s/],
    ];
    for (const [req, msg] of cases) {
      const s = await status(create({ name: 'dc2', ...req }));
      expect(s, JSON.stringify(req)).toEqual({ code: 'FAILED_PRECONDITION', details: expect.stringMatching(msg) });
    }
    expect((await h.store.range('/weft/datacenters/')).kvs).toEqual([]);
    // a single gateway is a choice the operator states
    const one = await create({ name: 'dc2', gateways: [{ host: 'h7' }], allow_single_gateway: true });
    expect(one.datacenter.gateways).toHaveLength(1);
    expect(one.datacenter.allow_single_gateway).toBe(true);
  });
});

describe('gateways: add, drain, remove', () => {
  it('changes one gateway at a time and keeps the rules', async () => {
    await hosts();
    await dc2();
    const drained = await h.call('DrainGateway', { datacenter: 'dc2', host: 'h7' }, 'admin');
    expect(drained.datacenter.gateways.map((g: { host: string; state: string }) => `${g.host}:${g.state}`)).toEqual(['h7:draining', 'h8:active']);
    // draining the last active gateway would leave the datacenter unreachable
    expect(await status(h.call('DrainGateway', { datacenter: 'dc2', host: 'h8' }, 'admin'))).toEqual({
      code: 'FAILED_PRECONDITION', details: expect.stringMatching(/^host: datacenter "dc2" would have no active gateway/),
    });
    // draining again is no change and no error
    expect((await h.call('DrainGateway', { datacenter: 'dc2', host: 'h7' }, 'admin')).datacenter.gateways[0].state).toBe('draining');
    // removing one of two would leave too few
    expect((await status(h.call('RemoveGateway', { datacenter: 'dc2', host: 'h8' }, 'admin'))).details).toMatch(/would have 1 gateway; it needs at least 2/);
    // add: a third gateway; then add again re-activates h7 with a new endpoint
    await h.call('AddGateway', { datacenter: 'dc2', host: 'h9', wan_endpoint: '198.51.100.9:51820' }, 'admin');
    const back = await h.call('AddGateway', { datacenter: 'dc2', host: 'h7', wan_endpoint: '198.51.100.7:51821' }, 'admin');
    expect(back.datacenter.gateways.map((g: { host: string; state: string; wan_endpoint: string }) => `${g.host}:${g.state}:${g.wan_endpoint}`)).toEqual([
      'h7:active:198.51.100.7:51821', 'h8:active:192.168.1.8:51820', 'h9:active:198.51.100.9:51820',
    ]);
    // add without an endpoint keeps the gateway's own
    expect((await h.call('AddGateway', { datacenter: 'dc2', host: 'h7' }, 'admin')).datacenter.gateways[0].wan_endpoint).toBe('198.51.100.7:51821');
    const removed = await h.call('RemoveGateway', { datacenter: 'dc2', host: 'h8' }, 'admin');
    expect(removed.datacenter.gateways.map((g: { host: string }) => g.host)).toEqual(['h7', 'h9']);

    expect(await status(h.call('RemoveGateway', { datacenter: 'dc2', host: 'h8' }, 'admin'))).toEqual({
      code: 'NOT_FOUND', details: 'host: "h8" is not a gateway of datacenter "dc2" (its gateways: h7, h9)',
    });
    expect((await status(h.call('AddGateway', { datacenter: 'nope', host: 'h8' }, 'admin'))).code).toBe('NOT_FOUND');
    expect((await status(h.call('AddGateway', { datacenter: 'dc2', host: 'h1' }, 'admin'))).details).toMatch(/^host: host "h1" is in datacenter "dc1"/);
    expect((await status(h.call('AddGateway', { datacenter: 'dc2', host: 'h8', wan_endpoint: '198.51.100.9:51820' }, 'admin'))).details)
      .toMatch(/WAN endpoint 198\.51\.100\.9:51820 is already gateway "h9"'s/);
    // an endpoint another datacenter's gateway has is refused too
    await registerHost(h, 'h2', 2, { datacenter: 'dc1' });
    await create({ name: 'dc1', gateways: [{ host: 'h1', wan_endpoint: '198.51.100.1:51820' }, { host: 'h2' }] });
    expect(await status(h.call('AddGateway', { datacenter: 'dc2', host: 'h8', wan_endpoint: '198.51.100.1:51820' }, 'admin'))).toEqual({
      code: 'FAILED_PRECONDITION', details: 'wan_endpoint: WAN endpoint 198.51.100.1:51820 is already gateway "h1"\'s in datacenter "dc1"; every gateway needs its own',
    });
    expect(await status(h.call('RemoveGateway', { datacenter: 'dc2', host: 'h7', wan_endpoint: '198.51.100.9:1' }, 'admin'))).toEqual({
      code: 'INVALID_ARGUMENT', details: 'wan_endpoint: only AddGateway sets a WAN endpoint',
    });
    expect((await status(h.call('AddGateway', { datacenter: 'dc2', host: 'h8', wan_endpoint: '127.0.0.1:1' }, 'admin'))).code).toBe('INVALID_ARGUMENT');
  });

  it('lets concurrent edits of one datacenter all land (compare-and-swap, retried on the winner\'s record)', async () => {
    const n = 12;
    for (let i = 0; i < n; i++) await registerHost(h, `g${i}`, 30 + i, { datacenter: 'dc3' });
    await create({ name: 'dc3', gateways: [{ host: 'g0' }, { host: 'g1' }] });
    // ten adds at once, each with its own endpoint, plus a drain of g0, on one record
    const calls = [
      ...Array.from({ length: n - 2 }, (_, i) => h.call('AddGateway', { datacenter: 'dc3', host: `g${i + 2}`, wan_endpoint: `198.51.100.${i + 2}:51820` }, 'admin')),
      h.call('DrainGateway', { datacenter: 'dc3', host: 'g0' }, 'admin'),
    ];
    const replies = await Promise.all(calls);
    const stored = JSON.parse((await h.store.get('/weft/datacenters/dc3'))!.value);
    expect(stored.gateways.map((g: { host: string }) => g.host).sort()).toEqual(Array.from({ length: n }, (_, i) => `g${i}`).sort());
    expect(stored.gateways.find((g: { host: string }) => g.host === 'g0').state).toBe('draining');
    // every reply reports a distinct revision: each write committed on its own
    expect(new Set(replies.map((r) => r.revision)).size).toBe(calls.length);
  });
});

describe('DeleteDatacenter and ListDatacenters', () => {
  it('refuses to delete a datacenter with hosts unless forced, and says why', async () => {
    await hosts();
    await dc2();
    expect(await status(h.call('DeleteDatacenter', { name: 'dc2' }, 'admin'))).toEqual({
      code: 'FAILED_PRECONDITION', details: expect.stringMatching(/^datacenter "dc2" still has 3 registered hosts \(h7, h8, h9\)/),
    });
    expect((await h.store.get('/weft/datacenters/dc2'))).toBeDefined();
    expect((await h.call('DeleteDatacenter', { name: 'dc2', force: true }, 'admin')).deleted).toBe(true);
    expect((await h.call('DeleteDatacenter', { name: 'dc2' }, 'admin')).deleted).toBe(false);
    expect((await status(h.call('DeleteDatacenter', { name: 'Bad' }, 'admin'))).code).toBe('INVALID_ARGUMENT');
  });

  it('deletes an empty datacenter without force', async () => {
    await registerHost(h, 'e1', 41, { datacenter: 'dc5' });
    await registerHost(h, 'e2', 42, { datacenter: 'dc5' });
    await create({ name: 'dc5', gateways: [{ host: 'e1' }, { host: 'e2' }] });
    await h.call('LeaveHost', { name: 'e1' }, 'host:e1');
    await h.call('LeaveHost', { name: 'e2' }, 'host:e2');
    expect((await h.call('DeleteDatacenter', { name: 'dc5' }, 'admin')).deleted).toBe(true);
  });

  it('lists datacenters with their gateways, and the datacenters hosts name without a record', async () => {
    await hosts();
    await dc2();
    const list = await h.call('ListDatacenters', {}, 'host:h1');
    expect(list.datacenters.map((d: { name: string; host_count: number }) => [d.name, d.host_count])).toEqual([['dc2', 3]]);
    expect(list.datacenters[0].gateways[0]).toEqual({ host: 'h7', wan_endpoint: '203.0.113.7:51820', state: 'active', wg_public_key: wgKeyFor(7) });
    expect(list.undeclared).toEqual({ dc1: 1 });
    expect(list.revision).toBeGreaterThan(0);
    // a gateway host that left is still listed, without a key: nobody may tunnel to it
    await h.call('LeaveHost', { name: 'h8' }, 'host:h8');
    const after = await h.call('ListDatacenters', {}, 'admin');
    expect(after.datacenters[0].gateways[1]).toEqual({ host: 'h8', wan_endpoint: '192.168.1.8:51820', state: 'active', wg_public_key: '' });
    expect(after.datacenters[0].host_count).toBe(2);
  });
});

describe('who may call', () => {
  it('refuses writes to host and ingress certificates and to anonymous callers; hosts may list', async () => {
    await hosts();
    const writes: Array<[string, Record<string, unknown>]> = [
      ['CreateDatacenter', { name: 'dc2', gateways: [{ host: 'h7' }, { host: 'h8' }] }],
      ['DeleteDatacenter', { name: 'dc2' }],
      ['AddGateway', { datacenter: 'dc2', host: 'h7' }],
      ['RemoveGateway', { datacenter: 'dc2', host: 'h7' }],
      ['DrainGateway', { datacenter: 'dc2', host: 'h7' }],
    ];
    for (const [method, req] of writes) {
      // h7 is a gateway host itself: still not its call to make
      expect((await status(h.call(method, req, 'host:h7'))).code, method).toBe('PERMISSION_DENIED');
      expect((await status(h.call(method, req, 'ingress:edge'))).code, method).toBe('PERMISSION_DENIED');
      expect((await status(h.call(method, req))).code, method).toBe('UNAUTHENTICATED');
    }
    expect((await h.store.range('/weft/datacenters/')).kvs).toEqual([]);
    expect((await h.call('ListDatacenters', {}, 'host:h7')).datacenters).toEqual([]);
    expect((await status(h.call('ListDatacenters', {}, 'ingress:edge'))).code).toBe('PERMISSION_DENIED');
  });
});

describe('WatchTopology', () => {
  it('tells hosts of datacenters incrementally, one message per revision, and a resume sees the same', async () => {
    await hosts();
    const w = h.open('WatchTopology', { from_revision: 0 }, 'host:h1');
    const snap = await w.waitFor((m) => m.kind === 'SNAPSHOT');
    expect(snap.datacenters).toEqual([]);

    const created = await dc2();
    const put = await w.waitFor((m) => m.kind === 'DATACENTER_PUT');
    expect(put.revision).toBe(created.revision);
    expect(put.datacenters).toEqual([created.datacenter]);

    // a new host in dc2: its HOST_PUT carries dc2's new count and subnets, no snapshot
    const reg = await registerHost(h, 'h10', 10, { datacenter: 'dc2' });
    const hostPut = await w.waitFor((m) => m.kind === 'HOST_PUT' && m.hosts.some((x: { name: string }) => x.name === 'h10'));
    expect(hostPut.revision).toBe(reg.revision);
    expect(hostPut.datacenters).toHaveLength(1);
    expect(hostPut.datacenters[0].host_count).toBe(4);
    expect(hostPut.datacenters[0].subnets.filter((s: { host: string }) => s.host === 'h10')).toHaveLength(2);

    // a gateway host re-keying: the datacenter's gateway key follows the host record
    const rekey = await registerHost(h, 'h7', 7, { datacenter: 'dc2', wg_public_key: wgKeyFor(77) });
    const rekeyed = await w.waitFor((m) => m.revision === rekey.revision);
    expect(rekeyed.kind).toBe('HOST_PUT');
    expect(rekeyed.datacenters[0].gateways[0].wg_public_key).toBe(wgKeyFor(77));

    // a heartbeat changes nothing anyone uses: no message
    const beat = await h.call('Heartbeat', { name: 'h7' }, 'host:h7');
    const drained = await h.call('DrainGateway', { datacenter: 'dc2', host: 'h8' }, 'admin');
    const drainMsg = await w.waitFor((m) => m.revision === drained.revision);
    expect(drainMsg.kind).toBe('DATACENTER_PUT');
    expect(drainMsg.datacenters[0].gateways[1].state).toBe('draining');
    expect(w.msgs.filter((m) => m.revision > rekey.revision && m.revision <= beat.revision)).toEqual([]);

    const deleted = await h.call('DeleteDatacenter', { name: 'dc2', force: true }, 'admin');
    const del = await w.waitFor((m) => m.kind === 'DATACENTER_DELETE');
    expect(del).toMatchObject({ revision: deleted.revision, datacenter_name: 'dc2', datacenters: [] });
    expect(w.msgs.filter((m) => m.kind === 'SNAPSHOT')).toHaveLength(1);

    // a stream resumed from the snapshot's revision gets the same messages
    const r = h.open('WatchTopology', { from_revision: snap.revision }, 'host:h9');
    await r.waitFor((m) => m.revision === deleted.revision);
    const strip = (ms: any[]) => ms.filter((m) => m.revision > snap.revision).map((m) => ({ ...m, hosts: m.hosts.map((x: any) => ({ ...x, last_heartbeat_unix_ms: 0, subnets: x.subnets.map((s: any) => ({ ...s, lease_expires_at_unix_ms: 0 })) })) }));
    expect(strip(r.msgs)).toEqual(strip(w.msgs));

    // a fresh snapshot has every datacenter
    await dc2();
    const fresh = h.open('WatchTopology', { from_revision: 0 }, 'host:h1');
    const s2 = await fresh.waitFor((m) => m.kind === 'SNAPSHOT');
    expect(s2.datacenters.map((d: { name: string }) => d.name)).toEqual(['dc2']);
  });

  it('carries the datacenter pools of the cluster config', async () => {
    const { updateClusterConfig } = await import('../../controller/ipam/cluster-config');
    await hosts();
    await dc2();
    const w = h.open('WatchTopology', { from_revision: 0 }, 'host:h1');
    await w.waitFor((m) => m.kind === 'SNAPSHOT');
    await h.call('LeaveHost', { name: 'h7' }, 'host:h7');
    await h.call('LeaveHost', { name: 'h8' }, 'host:h8');
    await h.call('LeaveHost', { name: 'h9' }, 'host:h9');
    await h.call('LeaveHost', { name: 'h1' }, 'host:h1');
    const saved = await updateClusterConfig(h.store, (c) => ({
      ...c, networks: c.networks.map((n) => (n.name === 'default' ? { ...n, datacenterPools: { dc2: '10.244.128.0/17', dc1: '10.244.0.0/17' } } : n)),
    }));
    const msg = await w.waitFor((m) => m.revision === saved.revision);
    // the config agents get is unchanged (pools are not in it): only the datacenter's view moved
    expect(msg.kind).toBe('DATACENTER_PUT');
    expect(msg.datacenters).toEqual([expect.objectContaining({ name: 'dc2', pools: { default: '10.244.128.0/17' } })]);
  });
});

// The controller's unary calls over a real gRPC server and the SQLite store:
// validation (every bad field named, nothing written), authorization, host
// lifecycle, endpoint claims, services, status.
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Harness, WG_KEY, hostRequest, registerHost, startHarness, wgKeyFor } from './api-harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

async function expectStatus(p: Promise<unknown>, code: grpc.status, details?: RegExp): Promise<grpc.ServiceError> {
  const err = (await p.then(
    (v) => {
      throw new Error(`expected status ${grpc.status[code]}, got a reply: ${JSON.stringify(v)}`);
    },
    (e) => e,
  )) as grpc.ServiceError;
  expect(grpc.status[err.code]).toBe(grpc.status[code]);
  if (details) expect(err.details).toMatch(details);
  return err;
}

/** The request fails with INVALID_ARGUMENT naming `field`, and the store is untouched. */
async function expectInvalid(method: string, req: unknown, as: string, field: string): Promise<void> {
  const before = await h.store.revision();
  const err = await expectStatus(h.call(method, req, as), grpc.status.INVALID_ARGUMENT);
  expect(err.details.startsWith(`${field}: `), `"${err.details}" should start with "${field}: "`).toBe(true);
  expect(await h.store.revision()).toBe(before);
}

describe('validation over gRPC', () => {
  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['name', { name: '' }, 'name'],
    ['name', { name: 'Host_1' }, 'name'],
    ['name', { name: 'a'.repeat(64) }, 'name'],
    ['underlay_ip', { underlay_ip: '' }, 'underlay_ip'],
    ['underlay_ip', { underlay_ip: '10.0.0.256' }, 'underlay_ip'],
    ['underlay_ip', { underlay_ip: '0.0.0.0' }, 'underlay_ip'],
    ['underlay_ip', { underlay_ip: '224.0.0.1' }, 'underlay_ip'],
    ['vtep_mac', { vtep_mac: 'zz:00:00:00:00:01' }, 'vtep_mac'],
    ['vtep_mac', { vtep_mac: '00:00:00:00:00:00' }, 'vtep_mac'],
    ['vtep_mac', { vtep_mac: '01:00:5e:00:00:01' }, 'vtep_mac'],
    ['rack', { rack: 'Rack 1' }, 'rack'],
    ['datacenter', { datacenter: '-dc' }, 'datacenter'],
    ['wg_public_key', { wg_public_key: 'abc' }, 'wg_public_key'],
    ['wg_public_key', { wg_public_key: Buffer.alloc(31).toString('base64') }, 'wg_public_key'],
    ['agent_version', { agent_version: 'a b' }, 'agent_version'],
    ['networks', { networks: ['nope'] }, 'networks[0]'],
    ['networks', { networks: ['default', 'Bad'] }, 'networks[1]'],
  ];
  for (const [what, patch, field] of bad) {
    it(`RegisterHost refuses a bad ${what} (${JSON.stringify(patch).slice(0, 60)})`, async () => {
      const req = hostRequest('h1', 1, patch);
      const as = `host:${typeof patch.name === 'string' && patch.name ? patch.name : 'h1'}`;
      await expectInvalid('RegisterHost', req, as, field);
    });
  }

  it('names the field in the message, with the value', async () => {
    const err = await expectStatus(h.call('RegisterHost', hostRequest('h1', 1, { vtep_mac: 'zz:00:00:00:00:01' }), 'host:h1'), grpc.status.INVALID_ARGUMENT);
    expect(err.details).toBe('vtep_mac: "zz:00:00:00:00:01" is not a MAC address (expected six hex octets like "02:42:ac:11:00:02")');
  });

  it('refuses bad endpoints, services and other requests, writing nothing', async () => {
    await registerHost(h, 'h1', 1);
    const { host } = await h.call('RegisterHost', hostRequest('h1', 1), 'host:h1');
    const subnet = host.subnets.find((s: any) => s.network === 'default').subnet as string;
    const base = subnet.split('/')[0].split('.').slice(0, 3).join('.');
    const ep = { network: 'default', ip: `${base}.5`, container_id: 'c1', host: 'h1', labels: { app: 'web' }, ifname: 'eth0' };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ network: 'nope' }, 'endpoint.network'],
      [{ ip: 'x' }, 'endpoint.ip'],
      [{ ip: '10.99.0.5' }, 'endpoint.ip'],
      [{ ip: `${base}.0` }, 'endpoint.ip'],
      [{ ip: `${base}.1` }, 'endpoint.ip'],
      [{ ip: `${base}.255` }, 'endpoint.ip'],
      [{ container_id: '' }, 'endpoint.container_id'],
      [{ container_id: 'a/b' }, 'endpoint.container_id'],
      [{ host: 'H1' }, 'endpoint.host'],
      [{ labels: { 'bad key!': 'x' } }, 'endpoint.labels'],
      [{ labels: { app: 'bad value!' } }, 'endpoint.labels'],
      [{ labels: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, 'v'])) }, 'endpoint.labels'],
      [{ ifname: 'a-very-long-interface' }, 'endpoint.ifname'],
    ];
    for (const [patch, field] of cases) {
      await expectInvalid('RegisterEndpoint', { endpoint: { ...ep, ...patch } }, 'host:h1', field);
    }
    await expectInvalid('RegisterEndpoint', {}, 'host:h1', 'endpoint');

    const svc = { name: 'web', ports: [{ name: 'http', port: 80, target_port: 8080, protocol: 'http' }], selector: { app: 'web' }, network: 'default', rack_policy: '' };
    const svcCases: Array<[Record<string, unknown>, string]> = [
      [{ name: 'Web!' }, 'service.name'],
      [{ ports: [] }, 'service.ports'],
      [{ ports: [{ name: 'http', port: 0, target_port: 0, protocol: 'tcp' }] }, 'service.ports[0].port'],
      [{ ports: [{ name: 'http', port: 70000, target_port: 0, protocol: 'tcp' }] }, 'service.ports[0].port'],
      [{ ports: [{ name: 'http', port: 80, target_port: 70000, protocol: 'tcp' }] }, 'service.ports[0].target_port'],
      [{ ports: [{ name: 'http', port: 80, target_port: 0, protocol: 'sctp' }] }, 'service.ports[0].protocol'],
      [{ hostnames: ['Bad_Host'] }, 'service.hostnames[0]'],
      [{ path_prefix: '/../etc' }, 'service.path_prefix'],
      [{ health_path: 'x' }, 'service.health_path'],
      [{ affinity: 'sticky' }, 'service.affinity'],
      [{ ports: [{ name: 'a', port: 80, target_port: 0, protocol: 'tcp' }, { name: 'b', port: 80, target_port: 0, protocol: 'tcp' }] }, 'service.ports[1].port'],
      [{ ports: [{ name: 'a', port: 80, target_port: 0, protocol: 'tcp' }, { name: 'a', port: 81, target_port: 0, protocol: 'tcp' }] }, 'service.ports[1].name'],
      [{ selector: {} }, 'service.selector'],
      [{ network: 'nope' }, 'service.network'],
      [{ rack_policy: 'nearest' }, 'service.rack_policy'],
    ];
    for (const [patch, field] of svcCases) {
      await expectInvalid('CreateService', { service: { ...svc, ...patch } }, 'admin', field);
    }
    await expectInvalid('Heartbeat', { name: '' }, 'host:h1', 'name');
    await expectInvalid('LeaveHost', { name: 'x/y' }, 'host:h1', 'name');
    await expectInvalid('ReleaseEndpoint', { network: 'default', ip: 'nope', container_id: '' }, 'host:h1', 'ip');
    await expectInvalid('ListEndpoints', { network: 'Bad Net', host: '' }, 'host:h1', 'network');
    await expectInvalid('DeleteService', { name: '' }, 'admin', 'name');
    await expectInvalid('Join', { token: 'abc', host_name: 'h9', public_key_pem: '' }, '', 'token');
    await expectInvalid('Join', { token: 'abcdef.0123456789abcdef', host_name: 'admin', public_key_pem: '-----BEGIN PUBLIC KEY-----' }, '', 'host_name');
    const w = h.open('WatchTopology', { from_revision: -1 }, 'host:h1');
    const st = (await w.ended) as grpc.StatusObject;
    expect(grpc.status[st.code]).toBe('INVALID_ARGUMENT');
    expect(st.details).toMatch(/^from_revision: /);
  });
});

describe('authorization', () => {
  it('needs an identity for everything but Join', async () => {
    await expectStatus(h.call('RegisterHost', hostRequest('h1', 1)), grpc.status.UNAUTHENTICATED);
    await expectStatus(h.call('ListServices', {}), grpc.status.UNAUTHENTICATED);
    await expectStatus(h.call('GetStatus', {}), grpc.status.UNAUTHENTICATED);
    const w = h.open('WatchTopology', { from_revision: 0 });
    expect(grpc.status[(await w.ended).code]).toBe('UNAUTHENTICATED');
  });

  it('lets a host write only its own records, and logs the refusal', async () => {
    const before = await h.store.revision();
    await expectStatus(h.call('RegisterHost', hostRequest('h2', 2), 'host:h1'), grpc.status.PERMISSION_DENIED, /host "h1" may not act for host "h2"/);
    await expectStatus(h.call('Heartbeat', { name: 'h2' }, 'host:h1'), grpc.status.PERMISSION_DENIED);
    await expectStatus(h.call('LeaveHost', { name: 'h2' }, 'host:h1'), grpc.status.PERMISSION_DENIED);
    expect(await h.store.revision()).toBe(before);
    expect(h.logs.some((l) => l.msg.includes('another host') && l.caller === 'host "h1"' && l.target === 'h2')).toBe(true);

    const { host } = await registerHost(h, 'h2', 2);
    const ip = host.subnets[0].subnet.replace(/\.0\/24$/, '.7');
    await expectStatus(
      h.call('RegisterEndpoint', { endpoint: { network: host.subnets[0].network, ip, container_id: 'c1', host: 'h2', labels: {}, ifname: '' } }, 'host:h1'),
      grpc.status.PERMISSION_DENIED,
    );
    await h.call('RegisterEndpoint', { endpoint: { network: host.subnets[0].network, ip, container_id: 'c1', host: 'h2', labels: {}, ifname: '' } }, 'host:h2');
    await expectStatus(h.call('ReleaseEndpoint', { network: host.subnets[0].network, ip, container_id: '' }, 'host:h1'), grpc.status.PERMISSION_DENIED);
  });

  it('keeps services to admins', async () => {
    const svc = { name: 'web', ports: [{ name: '', port: 80, target_port: 0, protocol: '' }], selector: { app: 'web' }, network: 'default', rack_policy: '' };
    await expectStatus(h.call('CreateService', { service: svc }, 'host:h1'), grpc.status.PERMISSION_DENIED, /admin certificate/);
    await expectStatus(h.call('DeleteService', { name: 'web' }, 'host:h1'), grpc.status.PERMISSION_DENIED);
    const created = await h.call('CreateService', { service: svc }, 'admin');
    // Defaults are filled in and returned.
    expect(created).toMatchObject({ name: 'web', rack_policy: 'prefer-local', ports: [{ port: 80, target_port: 80, protocol: 'tcp' }] });
    expect((await h.call('ListServices', {}, 'host:h1')).services.map((s: any) => s.name)).toEqual(['web']);
    await expectStatus(h.call('RegisterHost', hostRequest('h1', 1), 'admin'), grpc.status.PERMISSION_DENIED);
    expect(await h.call('DeleteService', { name: 'web' }, 'admin')).toEqual({ deleted: true });
    expect(await h.call('DeleteService', { name: 'web' }, 'admin')).toEqual({ deleted: false });
  });

  it('does not serve Join without the CA', async () => {
    await expectStatus(
      h.call('Join', { token: 'abcdef.0123456789abcdef', host_name: 'h9', public_key_pem: '-----BEGIN PUBLIC KEY-----\n' }),
      grpc.status.PERMISSION_DENIED,
    );
  });
});

describe('host lifecycle', () => {
  it('registers with a subnet in every network, sticky on re-register', async () => {
    const r = await registerHost(h, 'h1', 1);
    expect(r.host).toMatchObject({ name: 'h1', underlay_ip: '192.168.1.1', vtep_mac: '02:00:00:00:00:01', rack: 'r1', datacenter: 'dc1', wg_public_key: wgKeyFor(1) });
    expect(r.host.subnets.map((s: any) => s.network).sort()).toEqual(['blue', 'default']);
    expect(r.config.networks.map((n: any) => n.name)).toEqual(['default', 'blue']);
    expect(r.config).toMatchObject({ vxlan_port: 4789, lease_ttl_seconds: 60, mtu: 0 });
    expect(r.revision).toBe(await h.store.revision());
    const again = await registerHost(h, 'h1', 1, { vtep_mac: '02:00:00:00:00:AA' });
    expect(again.host.subnets.map((s: any) => s.subnet)).toEqual(r.host.subnets.map((s: any) => s.subnet));
    expect(again.host.vtep_mac).toBe('02:00:00:00:00:aa');
    // Narrowing the networks gives the other lease back.
    const narrowed = await registerHost(h, 'h1', 1, { networks: ['default'] });
    expect(narrowed.host.subnets.map((s: any) => s.network)).toEqual(['default']);
    expect((await h.call('GetStatus', {}, 'host:h1')).leases).toBe(1);
  });

  it('heartbeat renews leases and records liveness; unregistered hosts get NOT_FOUND', async () => {
    await expectStatus(h.call('Heartbeat', { name: 'h1' }, 'host:h1'), grpc.status.NOT_FOUND, /not registered/);
    const r = await registerHost(h, 'h1', 1);
    const first = r.host.subnets[0].lease_expires_at_unix_ms;
    h.clock.now += 30_000;
    const hb = await h.call('Heartbeat', { name: 'h1' }, 'host:h1');
    expect(hb.next_heartbeat_seconds).toBe(20);
    expect(hb.subnets).toHaveLength(2);
    expect(hb.subnets[0].lease_expires_at_unix_ms).toBe(first + 30_000);
    expect(hb.subnets.map((s: any) => s.subnet).sort()).toEqual(r.host.subnets.map((s: any) => s.subnet).sort());
    const stored = JSON.parse((await h.store.get('/weft/hosts/h1'))!.value);
    expect(stored.lastHeartbeat).toBe(h.clock.now);
  });

  it('leave releases the leases, the endpoints and the host record', async () => {
    const r = await registerHost(h, 'h1', 1);
    const sub = r.host.subnets.find((s: any) => s.network === 'default').subnet as string;
    await h.call('RegisterEndpoint', { endpoint: { network: 'default', ip: sub.replace(/\.0\/24$/, '.9'), container_id: 'c1', host: 'h1', labels: {}, ifname: '' } }, 'host:h1');
    const res = await h.call('LeaveHost', { name: 'h1' }, 'host:h1');
    expect(res.revision).toBe(await h.store.revision());
    expect(await h.store.get('/weft/hosts/h1')).toBeUndefined();
    const st = await h.call('GetStatus', {}, 'admin');
    expect(st).toMatchObject({ hosts: 0, leases: 0, endpoints: 0, controller_id: 'test-controller', store: 'sqlite', leader: true, version: 'test' });
  });
});

describe('endpoints', () => {
  it('claims an address once: idempotent for its container, ALREADY_EXISTS for another', async () => {
    const r = await registerHost(h, 'h1', 1);
    const sub = r.host.subnets.find((s: any) => s.network === 'default').subnet as string;
    const ip = sub.replace(/\.0\/24$/, '.10');
    const ep = { network: 'default', ip, container_id: 'c1', host: 'h1', labels: { app: 'web', tier: 'front' }, ifname: 'eth0' };
    expect(await h.call('RegisterEndpoint', { endpoint: ep }, 'host:h1')).toEqual(ep);
    const rev = await h.store.revision();
    expect(await h.call('RegisterEndpoint', { endpoint: ep }, 'host:h1')).toEqual(ep);
    expect(await h.store.revision()).toBe(rev); // nothing to write
    const relabelled = await h.call('RegisterEndpoint', { endpoint: { ...ep, labels: { app: 'api' } } }, 'host:h1');
    expect(relabelled.labels).toEqual({ app: 'api' });
    const before = await h.store.revision();
    await expectStatus(h.call('RegisterEndpoint', { endpoint: { ...ep, container_id: 'c2' } }, 'host:h1'), grpc.status.ALREADY_EXISTS, /held by container "c1"/);
    expect(await h.store.revision()).toBe(before);

    const list = await h.call('ListEndpoints', { network: 'default', host: '' }, 'host:h1');
    expect(list.endpoints).toHaveLength(1);
    expect((await h.call('ListEndpoints', { network: '', host: 'h9' }, 'host:h1')).endpoints).toHaveLength(0);

    await expectStatus(h.call('ReleaseEndpoint', { network: 'default', ip, container_id: 'c2' }, 'host:h1'), grpc.status.FAILED_PRECONDITION, /"c1", not "c2"/);
    expect(await h.call('ReleaseEndpoint', { network: 'default', ip, container_id: 'c1' }, 'host:h1')).toEqual({ released: true });
    expect(await h.call('ReleaseEndpoint', { network: 'default', ip, container_id: 'c1' }, 'host:h1')).toEqual({ released: false });
    expect(await h.call('RegisterEndpoint', { endpoint: { ...ep, container_id: 'c2' } }, 'host:h1')).toMatchObject({ container_id: 'c2' });
  });

  it('stores IPv6-style addresses canonically so one address has one key', async () => {
    await h.close();
    h = await startHarness({ config: { networks: [{ name: 'v6', vni: 6, cidr: 'fd00:10::/48', hostPrefixLength: 64 }] } });
    const r = await registerHost(h, 'h1', 1);
    const sub = r.host.subnets[0].subnet as string; // fd00:10:0:x::/64
    const prefix = sub.replace(/::\/64$/, '');
    const long = `${prefix}:0:0:0:00AB`;
    const ep = await h.call('RegisterEndpoint', { endpoint: { network: 'v6', ip: long, container_id: 'c1', host: 'h1', labels: {}, ifname: '' } }, 'host:h1');
    expect(ep.ip).toBe(`${prefix}::ab`);
    await expectStatus(
      h.call('RegisterEndpoint', { endpoint: { network: 'v6', ip: `${prefix}::ab`, container_id: 'c2', host: 'h1', labels: {}, ifname: '' } }, 'host:h1'),
      grpc.status.ALREADY_EXISTS,
    );
  });

  it('needs a lease in the network first', async () => {
    await registerHost(h, 'h1', 1, { networks: ['blue'] });
    await expectInvalid('RegisterEndpoint', { endpoint: { network: 'default', ip: '10.244.0.5', container_id: 'c1', host: 'h1', labels: {}, ifname: '' } }, 'host:h1', 'endpoint.network');
  });
});

describe('registry records', () => {
  it('keeps datacenters at /weft/datacenters/<dc>, and reads the first record form (keys copied in, now ignored)', async () => {
    const { getDatacenter, listDatacenters, deleteDatacenter } = await import('../../controller/registry/datacenters');
    await h.store.put('/weft/datacenters/dc1', JSON.stringify({ name: 'dc1', gateways: ['h1'], wanEndpoints: ['203.0.113.1:51820'], wgPublicKeys: [WG_KEY] }));
    const dc = { name: 'dc1', gateways: [{ host: 'h1', wanEndpoint: '203.0.113.1:51820', state: 'active' }], listenPort: 51820, mtu: 0, mesh: false, allowSingleGateway: false };
    expect(await getDatacenter(h.store, 'dc1')).toEqual({ ...dc, modRevision: expect.any(Number) });
    expect((await listDatacenters(h.store)).datacenters).toEqual([dc]);
    expect((await deleteDatacenter(h.store, 'dc1')).deleted).toBe(true);
    expect(await getDatacenter(h.store, 'dc1')).toBeUndefined();
  });

  it('reports a hand-edited record with its key', async () => {
    await h.store.put('/weft/services/web', '{not json');
    const err = await h.call('ListServices', {}, 'admin').catch((e) => e);
    expect(grpc.status[err.code]).toBe('FAILED_PRECONDITION');
    expect(err.details).toMatch(/^record \/weft\/services\/web is unreadable: invalid JSON/);
  });
});

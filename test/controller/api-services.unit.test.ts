// Services as the ingress reads them: the routing fields round-trip through
// CreateService, ListServices and WatchServices; port numbers are checked
// against the other services (also under concurrent creates); and an ingress
// identity may only read services and status.
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Harness, registerHost, startHarness } from './api-harness';
import { SERVICES_PREFIX, serviceKey } from '../../controller/registry/keys';
import { type ServiceRecord, decodeService, putService, ServicePortConflictError } from '../../controller/registry/services';
import type { Store } from '../../controller/store/types';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

async function statusOf(p: Promise<unknown>): Promise<{ code: string; details: string }> {
  return p.then(
    () => ({ code: 'OK', details: '' }),
    (e: grpc.ServiceError) => ({ code: grpc.status[e.code], details: e.details }),
  );
}

function service(name: string, patch: Record<string, unknown> = {}) {
  return {
    name, ports: [{ name: '', port: 80, target_port: 8080, protocol: 'http' }], selector: { app: name }, network: 'default', rack_policy: '',
    hostnames: [] as string[], path_prefix: '', affinity: '', health_path: '', proxy_protocol: false, ...patch,
  };
}

const record = (name: string, ports: ServiceRecord['ports'], patch: Partial<ServiceRecord> = {}): ServiceRecord => ({
  name, ports, selector: { app: name }, network: 'default', rackPolicy: 'prefer-local',
  hostnames: [], pathPrefix: '', affinity: 'none', healthPath: '', proxyProtocol: false, ...patch,
});

describe('service fields for the ingress', () => {
  it('round-trip through CreateService, ListServices and WatchServices with their backends', async () => {
    const full = service('shop', {
      ports: [{ name: 'web', port: 80, target_port: 8080, protocol: 'http' }, { name: 'dns', port: 53, target_port: 5353, protocol: 'udp' }],
      hostnames: ['shop.example.com', '*.shop.example.com'], path_prefix: '/api', affinity: 'client-ip', health_path: '/healthz', proxy_protocol: true,
    });
    const created = await h.call('CreateService', { service: full }, 'admin');
    expect(created).toEqual({ ...full, rack_policy: 'prefer-local' });
    expect((await h.call('ListServices', {}, 'admin')).services).toEqual([created]);

    const { host } = await registerHost(h, 'h1', 1);
    const ip = host.subnets.find((s: any) => s.network === 'default').subnet.replace(/\.0\/24$/, '.9');
    await h.call('RegisterEndpoint', { endpoint: { network: 'default', ip, container_id: 'c1', host: 'h1', labels: { app: 'shop' }, ifname: '' } }, 'host:h1');
    const w = h.open('WatchServices', { from_revision: 0 }, 'ingress:edge1');
    const snap = await w.waitFor((m) => m.kind === 'SNAPSHOT');
    expect(snap.services).toEqual([{ service: created, backends: [{ ip, host: 'h1', rack: 'r1', datacenter: 'dc1', container_id: 'c1' }] }]);

    // A change of a routing field alone reaches the ingress.
    const moved = await h.call('CreateService', { service: { ...full, path_prefix: '/v2' } }, 'admin');
    const put = await w.waitFor((m) => m.kind === 'SERVICE_PUT');
    expect(put.services[0].service).toEqual(moved);
  });

  it('reads a record stored before the fields existed with their defaults', async () => {
    const old = { name: 'legacy', ports: [{ name: '', port: 8443, targetPort: 443, protocol: 'tcp' }], selector: { app: 'x' }, network: 'default', rackPolicy: 'any' };
    await h.store.put(serviceKey('legacy'), JSON.stringify(old));
    expect(decodeService(serviceKey('legacy'), JSON.stringify(old))).toMatchObject({ hostnames: [], pathPrefix: '', affinity: 'none', healthPath: '', proxyProtocol: false });
    const [svc] = (await h.call('ListServices', {}, 'admin')).services;
    expect(svc).toMatchObject({ name: 'legacy', hostnames: [], path_prefix: '', affinity: 'none', health_path: '', proxy_protocol: false, rack_policy: 'any' });
  });
});

describe('port numbers across services', () => {
  it('gives a tcp or udp port number to one service, naming the other, and writes nothing', async () => {
    await h.call('CreateService', { service: service('db', { ports: [{ name: '', port: 5432, target_port: 0, protocol: 'tcp' }] }) }, 'admin');
    await h.call('CreateService', { service: service('dns', { ports: [{ name: '', port: 53, target_port: 0, protocol: 'udp' }] }) }, 'admin');
    const before = await h.store.revision();
    for (const [ports, other] of [
      [[{ name: '', port: 5432, target_port: 0, protocol: 'tcp' }], 'db'],
      [[{ name: '', port: 5432, target_port: 0, protocol: 'http' }], 'db'],
      [[{ name: '', port: 53, target_port: 0, protocol: 'udp' }], 'dns'],
    ] as const) {
      const st = await statusOf(h.call('CreateService', { service: service('other', { ports }) }, 'admin'));
      expect(st.code).toBe('ALREADY_EXISTS');
      expect(st.details).toMatch(new RegExp(`^service\\.ports\\[0\\]\\.port: .*service "${other}"`));
    }
    expect(await h.store.revision()).toBe(before);
    // Another transport is another number space; a service may replace itself.
    await h.call('CreateService', { service: service('dns-tcp', { ports: [{ name: '', port: 53, target_port: 0, protocol: 'tcp' }] }) }, 'admin');
    await h.call('CreateService', { service: service('db', { ports: [{ name: '', port: 5432, target_port: 5433, protocol: 'tcp' }] }) }, 'admin');
    // A deleted service frees its ports.
    await h.call('DeleteService', { name: 'db' }, 'admin');
    await h.call('CreateService', { service: service('db2', { ports: [{ name: '', port: 5432, target_port: 0, protocol: 'tcp' }] }) }, 'admin');
  });

  it('shares an http port between services that route different hosts or paths, not the same route', async () => {
    await h.call('CreateService', { service: service('shop', { hostnames: ['shop.example.com'] }) }, 'admin');
    await h.call('CreateService', { service: service('api', { hostnames: ['shop.example.com'], path_prefix: '/api' }) }, 'admin');
    await h.call('CreateService', { service: service('blog', { hostnames: ['blog.example.com'] }) }, 'admin');
    await h.call('CreateService', { service: service('catchall') }, 'admin');
    const same = await statusOf(h.call('CreateService', { service: service('shop2', { hostnames: ['www.example.com', 'shop.example.com'] }) }, 'admin'));
    expect(same).toEqual({ code: 'ALREADY_EXISTS', details: expect.stringMatching(/host "shop.example.com", path prefix "\/" is already routed to service "shop"/) });
    const any = await statusOf(h.call('CreateService', { service: service('catchall2', { path_prefix: '/' }) }, 'admin'));
    expect(any).toEqual({ code: 'ALREADY_EXISTS', details: expect.stringMatching(/any host, path prefix "\/" is already routed to service "catchall"/) });
    expect((await h.call('ListServices', {}, 'admin')).services.map((s: any) => s.name)).toEqual(['api', 'blog', 'catchall', 'shop']);
  });

  it('lets only one of two concurrent creates of one tcp port win', async () => {
    // Both writers read the services before either writes: without the guard both would pass the check.
    let reads = 0;
    let release!: () => void;
    const bothRead = new Promise<void>((r) => (release = r));
    const racing: Store = {
      ...h.store,
      async range(prefix, opts) {
        const r = await h.store.range(prefix, opts);
        if (prefix === SERVICES_PREFIX && ++reads <= 2) {
          if (reads === 2) release();
          await bothRead;
        }
        return r;
      },
    };
    const tcp = [{ name: '', port: 6379, targetPort: 6379, protocol: 'tcp' as const }];
    const results = await Promise.allSettled([putService(racing, record('redis-a', tcp)), putService(racing, record('redis-b', tcp))]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(ServicePortConflictError);
    expect((await h.store.range(SERVICES_PREFIX)).kvs).toHaveLength(1);
  });
});

describe('the ingress identity', () => {
  it('reads services and status, and is refused everything else', async () => {
    await h.call('CreateService', { service: service('web') }, 'admin');
    await registerHost(h, 'edge1', 5);
    const as = 'ingress:edge1';
    expect((await h.call('ListServices', {}, as)).services.map((s: any) => s.name)).toEqual(['web']);
    expect((await h.call('GetStatus', {}, as)).services).toBe(1);
    const w = h.open('WatchServices', { from_revision: 0 }, as);
    expect((await w.waitFor((m) => m.kind === 'SNAPSHOT')).services).toHaveLength(1);

    const refused: Array<[string, unknown]> = [
      ['CreateService', { service: service('evil') }],
      ['DeleteService', { name: 'web' }],
      ['RegisterHost', { name: 'edge1' }],
      ['Heartbeat', { name: 'edge1' }],
      ['LeaveHost', { name: 'edge1' }],
      ['RegisterEndpoint', { endpoint: { network: 'default', ip: '10.244.0.9', container_id: 'c', host: 'edge1', labels: {}, ifname: '' } }],
      ['ReleaseEndpoint', { network: 'default', ip: '10.244.0.9', container_id: '' }],
      ['ListEndpoints', { network: '', host: '' }],
    ];
    const before = await h.store.revision();
    for (const [method, req] of refused) {
      const st = await statusOf(h.call(method, req, as));
      expect(st, method).toEqual({ code: 'PERMISSION_DENIED', details: `${method} is not open to ingress "edge1": an ingress may call only ListServices, WatchServices, GetStatus` });
    }
    const topo = h.open('WatchTopology', { from_revision: 0 }, as);
    expect(grpc.status[(await topo.ended).code]).toBe('PERMISSION_DENIED');
    // An ingress named like a host is not that host: the host record is untouched.
    expect(await h.store.revision()).toBe(before);
  });
});

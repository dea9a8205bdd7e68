// The one client of the controller's API (controller/api/client) against a
// real controller, as a role other than the agent uses it: an administrator's
// certificate, typed unary calls, and the services watch handing over raw
// events and resuming from its revision across a controller restart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControllerClient, connectController, isTransient } from '../../controller/api/client/client';
import { clientCredentials } from '../../controller/api/client/trust';
import type { ServiceEvent } from '../../controller/api/proto';
import { ADMIN_NAME } from '../../controller/api/validate';
import { issueClientCert } from '../../controller/pki';
import { type Cluster, type RunningController, startCluster } from '../agent/controller-fixture';
import { waitFor } from '../helpers/wait';

let cluster: Cluster;
let ctl: RunningController;
let admin: ControllerClient;

const service = (name: string, app: string) => ({
  name, network: 'default', rack_policy: 'any', selector: { app }, ports: [{ name: 'web', port: 80, target_port: 8080, protocol: 'http' }],
  // http port 80 is shared by routing each service's own host name; a tcp port would belong to one service
  hostnames: [`${name}.example.com`],
});

beforeAll(async () => {
  cluster = await startCluster();
  ctl = await cluster.startController();
  const cert = await issueClientCert(cluster.ca, { host: ADMIN_NAME, ttlDays: 1 });
  admin = connectController({
    server: ctl.address, credentials: clientCredentials({ caPem: cluster.ca.certPem, certPem: cert.certPem, keyPem: cert.keyPem! }),
    backoff: { initialMs: 50, maxMs: 300 },
  });
});

afterAll(async () => {
  admin?.close();
  await cluster?.close();
});

describe('controller client', () => {
  it('makes typed unary calls; a refusal keeps its gRPC code and is not transient', async () => {
    const status = await admin.call('GetStatus', {});
    expect(status).toMatchObject({ controller_id: expect.any(String), store: 'sqlite', version: 'test' });
    expect(status.revision).toBeTypeOf('number');
    const created = await admin.call('CreateService', { service: service('web', 'web') });
    expect(created).toMatchObject({ name: 'web', selector: { app: 'web' } });
    expect((await admin.call('ListServices', {})).services.map((s) => s.name)).toEqual(['web']);
    const err = await admin.call('CreateService', { service: { name: 'Not A Name' } }).catch((e) => e);
    expect(err.message).toMatch(/^CreateService via 127\.0\.0\.1:\d+: INVALID_ARGUMENT: /);
    expect(isTransient(err)).toBe(false);
  });

  it('watches services as raw events and resumes after a controller restart without a second snapshot', async () => {
    const events: ServiceEvent[] = [];
    const watch = admin.watch('WatchServices', { onEvent: (ev) => events.push(ev) });
    try {
      await waitFor('the snapshot', () => events.length > 0);
      expect(events[0].kind).toBe('SNAPSHOT');
      expect(watch.revision()).toBe(events[0].revision);
      await admin.call('CreateService', { service: service('api', 'api') });
      await waitFor('SERVICE_PUT for api', () => events.find((e) => e.kind === 'SERVICE_PUT' && e.services[0]?.service?.name === 'api'));

      const port = ctl.port;
      await ctl.stop();
      await waitFor('disconnected', () => admin.connectionState() === 'disconnected');
      const before = watch.revision();
      ctl = await cluster.startController(port);
      await waitFor('the watch back', () => admin.connectionState() === 'connected', 15_000);
      await admin.call('DeleteService', { name: 'api' });
      await waitFor('SERVICE_DELETE for api', () => events.find((e) => e.kind === 'SERVICE_DELETE' && e.service_name === 'api'), 15_000);
      expect(events.filter((e) => e.kind === 'SNAPSHOT')).toHaveLength(1);
      expect(watch.revision()).toBeGreaterThan(before);
      for (let i = 1; i < events.length; i++) expect(events[i].revision).toBeGreaterThan(events[i - 1].revision);
    } finally {
      watch.stop();
    }
  });

  it('resumes from a revision the caller gives', async () => {
    const first: ServiceEvent[] = [];
    const w1 = admin.watch('WatchServices', { onEvent: (ev) => first.push(ev) });
    await waitFor('the snapshot', () => first.length > 0);
    w1.stop();
    const from = first[0].revision;
    await admin.call('CreateService', { service: service('late', 'late') });
    const later: ServiceEvent[] = [];
    const w2 = admin.watch('WatchServices', { fromRevision: from, onEvent: (ev) => later.push(ev) });
    try {
      const put = await waitFor('SERVICE_PUT for late', () => later.find((e) => e.kind === 'SERVICE_PUT' && e.services[0]?.service?.name === 'late'));
      expect(later[0]).toBe(put);
      expect(put.revision).toBeGreaterThan(from);
    } finally {
      w2.stop();
    }
  });
});

// The endpoint outbox against a real controller (gRPC, mTLS, SQLite) and a
// real agent DB file: intents are on disk before registered()/released()
// return, delivered in order once the controller is reachable, kept across a
// restart of the outbox, and a release overtakes a register still queued.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listEndpoints } from '../../controller/registry/endpoints';
import { type AgentClient, connectAgentClient } from '../../cni-plugin/agent/sync/controller';
import { type EndpointDelivery, type EndpointOutbox, type OutboxItem, openEndpointOutbox } from '../../cni-plugin/agent/sync/endpoint-outbox';
import { channelCredentials, joinCluster } from '../../controller/api/client/credentials';
import { openIpamStore } from '../../cni-plugin/agent/ipam-store';
import type { EndpointRecord } from '../../cni-plugin/agent/state/types';
import { waitFor } from '../helpers/wait';
import { type Cluster, type RunningController, startCluster } from './controller-fixture';

let cluster: Cluster;
let ctl: RunningController;
let client: AgentClient;
let prefix: string; // "10.244.N." of host-o's subnet
let dir: string;
let n = 0;
const open: EndpointOutbox[] = [];

/** The real client, with a record of what was actually sent (not a stand-in: every call goes to the controller). */
function recording(sent: string[]): EndpointDelivery {
  return {
    registerEndpoint: (ep) => (sent.push(`register ${ep.ip} ${ep.containerId}`), client.registerEndpoint(ep)),
    releaseEndpoint: (ep) => (sent.push(`release ${ep.ip} ${ep.containerId}`), client.releaseEndpoint(ep)),
  };
}

function ep(host: number, container: string, labels: Record<string, string> = {}): EndpointRecord {
  return { network: 'default', ip: prefix + host, containerId: container, ifname: 'eth0', labels };
}

function outbox(path: string, extra: Partial<Parameters<typeof openEndpointOutbox>[0]> = {}): EndpointOutbox {
  const o = openEndpointOutbox({ path, backoff: { initialMs: 20, maxMs: 200 }, ...extra });
  open.push(o);
  return o;
}

const dbPath = () => join(dir, `agent-${++n}.db`);

async function atController(): Promise<Map<string, string>> {
  const { endpoints } = await listEndpoints(cluster.store, { host: 'host-o' });
  return new Map(endpoints.map((e) => [e.ip, e.containerId]));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'weft-outbox-'));
  cluster = await startCluster();
  ctl = await cluster.startController();
  const creds = await joinCluster({ server: ctl.address, token: await cluster.token(), hostName: 'host-o', caCertHash: cluster.pin, stateDir: join(dir, 'state') });
  client = connectAgentClient({ server: ctl.address, credentials: channelCredentials(creds), hostName: 'host-o', callTimeoutMs: 2000, backoff: { initialMs: 50, maxMs: 300 } });
  const reg = await client.registerHost({ underlayIp: '192.168.1.9', vtepMac: '02:00:00:00:00:09', rack: 'r1', datacenter: 'dc1', wgPublicKey: '', agentVersion: '0.1.0', networks: [] });
  prefix = reg.subnets[0].subnet.replace(/0\/24$/, '');
});

afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});

afterAll(async () => {
  client?.close();
  await cluster?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('endpoint outbox', () => {
  it('delivers in order, and a release after delivery removes the endpoint', async () => {
    const sent: string[] = [];
    const delivered: OutboxItem[] = [];
    const o = outbox(dbPath(), { onDelivered: (i) => delivered.push(i) });
    o.start(recording(sent));
    o.registered(ep(10, 'c10', { app: 'web' }));
    o.registered(ep(11, 'c11'));
    await o.drained();
    expect(sent).toEqual([`register ${prefix}10 c10`, `register ${prefix}11 c11`]);
    expect(await atController()).toEqual(new Map([[prefix + '10', 'c10'], [prefix + '11', 'c11']]));
    const { endpoints } = await listEndpoints(cluster.store, { host: 'host-o' });
    expect(endpoints.find((e) => e.ip === prefix + '10')?.labels).toEqual({ app: 'web' });

    o.released(ep(10, 'c10'));
    o.released(ep(11, 'c11'));
    await o.drained();
    expect(await atController()).toEqual(new Map());
    expect(delivered.map((i) => `${i.op} ${i.endpoint.ip}`)).toEqual([`register ${prefix}10`, `register ${prefix}11`, `release ${prefix}10`, `release ${prefix}11`]);
  });

  it('returns at once while the controller is away, keeps the intent on disk, and delivers when the controller is back', async () => {
    const path = dbPath();
    const port = ctl.port;
    await ctl.stop();
    try {
      const sent: string[] = [];
      const o = outbox(path);
      o.start(recording(sent));
      const t0 = performance.now();
      o.registered(ep(20, 'c20'));
      expect(performance.now() - t0).toBeLessThan(500);
      // On disk, in the agent DB's own table, before anything reached the controller.
      const db = new Database(path, { readonly: true });
      expect(db.prepare('SELECT op, ip, container_id FROM outbox_endpoints').all()).toEqual([{ op: 'register', ip: prefix + '20', container_id: 'c20' }]);
      db.close();
      await waitFor('a failed attempt', () => o.pending()[0]?.attempts > 0);
      expect(o.pending()[0].lastError).toMatch(/UNAVAILABLE/);
    } finally {
      ctl = await cluster.startController(port);
    }
    await waitFor('delivery after the controller returned', async () => (await atController()).get(prefix + '20') === 'c20', 15_000);
    const o = open[open.length - 1];
    await o.drained();
    expect(o.pending()).toEqual([]);
    o.released(ep(20, 'c20'));
    await o.drained();
    expect(await atController()).toEqual(new Map());
  });

  it('survives a restart of the outbox: what was queued is delivered by the next one, in order', async () => {
    const path = dbPath();
    const first = outbox(path);
    // Never started: the agent stopped before the controller was reachable.
    first.registered(ep(30, 'c30'));
    first.registered(ep(31, 'c31'));
    first.released(ep(30, 'c30'));
    first.registered(ep(30, 'c30b'));
    await first.close();

    const sent: string[] = [];
    const second = outbox(path);
    expect(second.pending().map((i) => `${i.op} ${i.endpoint.ip} ${i.endpoint.containerId}`))
      .toEqual([`register ${prefix}31 c31`, `release ${prefix}30 c30`, `register ${prefix}30 c30b`]);
    second.start(recording(sent));
    await second.drained();
    expect(sent).toEqual([`register ${prefix}31 c31`, `release ${prefix}30 c30`, `register ${prefix}30 c30b`]);
    expect(await atController()).toEqual(new Map([[prefix + '31', 'c31'], [prefix + '30', 'c30b']]));
    second.released(ep(31, 'c31'));
    second.released(ep(30, 'c30b'));
    await second.drained();
    expect(await atController()).toEqual(new Map());
  });

  it('a release before delivery cancels the register: the controller never sees the endpoint', async () => {
    const path = dbPath();
    const sent: string[] = [];
    const o = outbox(path);
    o.registered(ep(40, 'c40'));
    o.registered(ep(40, 'c40')); // the runtime retried ADD: still one register
    o.registered(ep(41, 'c41'));
    expect(o.pending().filter((i) => i.op === 'register')).toHaveLength(2);
    o.released(ep(40, 'c40'));
    expect(o.pending().map((i) => `${i.op} ${i.endpoint.ip}`)).toEqual([`register ${prefix}41`, `release ${prefix}40`]);
    const before = await cluster.store.revision();
    o.start(recording(sent));
    await o.drained();
    expect(sent).toEqual([`register ${prefix}41 c41`, `release ${prefix}40 c40`]);
    expect(await atController()).toEqual(new Map([[prefix + '41', 'c41']]));
    // Exactly one write reached the store: the register of c41 (the release of c40 found nothing).
    expect(await cluster.store.revision()).toBe(before + 1);
    o.released(ep(41, 'c41'));
    await o.drained();
  });

  it('drops an update the controller keeps refusing, without stalling the ones behind it', async () => {
    const dropped: Array<{ item: OutboxItem; err: Error }> = [];
    const sent: string[] = [];
    const o = outbox(dbPath(), { maxRefusals: 3, onDropped: (item, err) => dropped.push({ item, err }) });
    o.registered({ network: 'default', ip: '10.99.0.5', containerId: 'bad', ifname: 'eth0', labels: {} }); // not in this host's subnet
    o.registered(ep(50, 'c50'));
    o.start(recording(sent));
    await o.drained();
    expect(dropped).toHaveLength(1);
    expect(dropped[0].item.attempts).toBe(3);
    expect(dropped[0].err.message).toMatch(/INVALID_ARGUMENT/);
    expect(sent.filter((s) => s.includes('bad'))).toHaveLength(3);
    expect(await atController()).toEqual(new Map([[prefix + '50', 'c50']]));
    o.released(ep(50, 'c50'));
    await o.drained();
  });

  it('drops at once an endpoint the controller\'s rules refuse (a label value over 63 characters), never sending it, and delivers the ones behind it', async () => {
    const dropped: Array<{ item: OutboxItem; err: Error }> = [];
    const sent: string[] = [];
    const o = outbox(dbPath(), { onDropped: (item, err) => dropped.push({ item, err }) });
    o.registered(ep(52, 'bad-labels', { app: 'x'.repeat(64) }));
    o.registered(ep(53, 'bad;id'));
    o.registered(ep(51, 'c51'));
    o.start(recording(sent));
    await o.drained();
    expect(sent).toEqual([`register ${prefix}51 c51`]);
    expect(dropped.map((d) => [d.item.endpoint.containerId, d.item.attempts])).toEqual([['bad-labels', 0], ['bad;id', 0]]);
    expect(dropped[0].err.message).toMatch(/^endpoint\.labels: value "x{60,}.*" of "app" is not a valid label value/);
    expect(dropped[1].err.message).toMatch(/^endpoint\.container_id: "bad;id" is not a container id/);
    expect(await atController()).toEqual(new Map([[prefix + '51', 'c51']]));
    o.released(ep(51, 'c51'));
    await o.drained();
  });

  it('a controller refusal with INVALID_ARGUMENT about the record itself drops it after one try; one about its subnet is retried', async () => {
    const tries = new Map<string, number>();
    const dropped: OutboxItem[] = [];
    const refuse = (details: string) => Object.assign(new Error(`3 INVALID_ARGUMENT: ${details}`), { code: 3, details });
    // a stand-in for the controller: the refusals under test, and success for everything else
    const delivery: EndpointDelivery = {
      registerEndpoint: async (e) => {
        tries.set(e.containerId, (tries.get(e.containerId) ?? 0) + 1);
        if (e.containerId === 'refused-labels') throw refuse('endpoint.labels: key "a" is not a valid label name');
        if (e.containerId === 'no-subnet-yet') throw refuse('endpoint.network: host "host-o" holds no subnet in network "default" (RegisterHost first)');
      },
      releaseEndpoint: async () => true,
    };
    const o = outbox(dbPath(), { maxRefusals: 3, onDropped: (item) => dropped.push(item) });
    o.registered(ep(60, 'refused-labels'));
    o.registered(ep(61, 'no-subnet-yet'));
    o.registered(ep(62, 'fine'));
    o.start(delivery);
    await o.drained();
    expect(Object.fromEntries(tries)).toEqual({ 'refused-labels': 1, 'no-subnet-yet': 3, fine: 1 });
    expect(dropped.map((i) => [i.endpoint.containerId, i.attempts])).toEqual([['refused-labels', 1], ['no-subnet-yet', 3]]);
  });

  it('shares the agent DB file with the address store, each in its own tables', async () => {
    const path = dbPath();
    const ipam = openIpamStore({ path });
    try {
      const o = outbox(path);
      const a = ipam.allocate('default', prefix + '0/24', prefix + '1', 'c60', 'eth0');
      o.registered(ep(Number(a.allocation.ip.split('.')[3]), 'c60'));
      await o.close();
      expect(ipam.get('default', 'c60', 'eth0')?.ip).toBe(a.allocation.ip);
      const again = outbox(path);
      expect(again.pending().map((i) => i.endpoint.ip)).toEqual([a.allocation.ip]);
    } finally {
      ipam.close();
    }
  });
});

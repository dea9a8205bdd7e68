// Three `weft controller` processes on one real etcd, sharing one CA as the
// PKI README prescribes: exactly one leader, every controller serves reads
// and watches, a host registered through one is seen on another's watch,
// and when the leader is SIGKILLed another takes over within seconds.
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LEADER_KEY } from '../../controller/daemon/election';
import { clientCredentials, issueClientCert, loadCa } from '../../controller/pki';
import { startEtcd, type EtcdInstance } from '../helpers/etcd';
import { GiveUp, waitFor } from '../helpers/wait';
import {
  type Client, type Daemon, call, client, httpGet, killAllDaemons, metric, readCa, startDaemon, watch, weft,
} from './daemon-process';

let tmp: string;
let etcd: EtcdInstance;
let ds: Daemon[] = [];
const admins = new Map<Daemon, Client>();
const clients: Client[] = [];

async function statusOf(d: Daemon) {
  return call(admins.get(d)!, 'GetStatus', {});
}

async function leadersAmong(list: Daemon[]): Promise<string[]> {
  const st = await Promise.all(list.map(statusOf));
  return st.filter((s) => s.leader).map((s) => s.controller_id);
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'weft-ha-'));
  etcd = await startEtcd();
  const store = ['--store', `etcd:${etcd.endpoint}`];
  const first = await startDaemon({ dataDir: join(tmp, 'c0'), args: store });
  for (const i of [1, 2]) {
    const dir = join(tmp, `c${i}`);
    mkdirSync(dir, { mode: 0o700 });
    copyFileSync(join(first.dataDir, 'ca.key'), join(dir, 'ca.key'));
    copyFileSync(join(first.dataDir, 'ca.crt'), join(dir, 'ca.crt'));
  }
  ds = [first, ...(await Promise.all([1, 2].map((i) => startDaemon({ dataDir: join(tmp, `c${i}`), args: store }))))];
  const ca = await loadCa(first.dataDir);
  const admin = await issueClientCert(ca, { host: 'admin', ttlDays: 1 });
  for (const d of ds) admins.set(d, client(d.grpcPort, clientCredentials({ caPem: ca.certPem, certPem: admin.certPem, keyPem: admin.keyPem! })));
}, 60_000);

afterAll(async () => {
  for (const c of [...admins.values(), ...clients]) c.close();
  await killAllDaemons();
  await etcd?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('three controllers on one etcd', () => {
  it('elect exactly one leader, and all agree on the store', async () => {
    await waitFor('exactly one leader', async () => (await leadersAmong(ds)).length === 1, 5000, 100);
    const st = await Promise.all(ds.map(statusOf));
    expect(new Set(st.map((s) => s.controller_id)).size).toBe(3);
    expect(st.every((s) => s.store === 'etcd')).toBe(true);
    const gauges = await Promise.all(ds.map(async (d) => metric((await httpGet(d.metricsPort, '/metrics')).body, 'weft_leader')));
    expect(gauges.sort()).toEqual([0, 0, 1]);
    // Only one controller ever said it was elected.
    expect(ds.flatMap((d) => d.logs.filter((l) => l.msg === 'elected leader'))).toHaveLength(1);
  });

  it('a host joined and registered through one controller is seen by watches on the others', async () => {
    const [a, b, c] = ds;
    const watches = [b, c].map((d) => {
      const w = watch(admins.get(d)!, 'WatchTopology', { from_revision: 0 });
      return w;
    });
    for (const w of watches) await w.waitFor((m) => m.kind === 'SNAPSHOT');
    const token = JSON.parse((await weft(['token', 'create', '--data-dir', b.dataDir, '--store', `etcd:${etcd.endpoint}`, '--json'])).stdout).token;
    expect(token).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    // The token was written through the store by the CLI; controller a verifies it.
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const anon = client(a.grpcPort, clientCredentials({ caPem: readCa(a.dataDir) }));
    clients.push(anon);
    const joined = await call(anon, 'Join', { token, host_name: 'ha-host', public_key_pem: publicKey.export({ type: 'spki', format: 'pem' }) });
    const host = client(a.grpcPort, clientCredentials({ caPem: joined.ca_pem, certPem: joined.certificate_pem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }));
    clients.push(host);
    const reg = await call(host, 'RegisterHost', {
      name: 'ha-host', underlay_ip: '192.168.9.1', vtep_mac: '02:00:00:00:09:01', rack: 'r1', datacenter: 'dc1', wg_public_key: '', agent_version: 'test', networks: [],
    });
    for (const w of watches) {
      const put = await w.waitFor((m) => m.kind === 'HOST_PUT' && m.hosts[0]?.name === 'ha-host');
      expect(put.hosts[0].subnets[0].subnet).toBe(reg.host.subnets[0].subnet);
      expect(put.revision).toBe(reg.revision);
    }
    // The same certificate works on another controller: one CA for the cluster.
    const hostOnC = client(c.grpcPort, clientCredentials({ caPem: joined.ca_pem, certPem: joined.certificate_pem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }));
    clients.push(hostOnC);
    expect((await call(hostOnC, 'Heartbeat', { name: 'ha-host' })).subnets).toHaveLength(1);
    expect((await Promise.all(ds.map(statusOf))).map((s) => s.hosts)).toEqual([1, 1, 1]);
    for (const w of watches) w.cancel();
  });

  it('after SIGKILL of the leader, another controller leads within seconds', async () => {
    const st = await Promise.all(ds.map(statusOf));
    const leader = ds[st.findIndex((s) => s.leader)];
    const rest = ds.filter((d) => d !== leader);
    const t0 = Date.now();
    leader.kill('SIGKILL');
    expect((await leader.exited).signal).toBe('SIGKILL');
    await waitFor('a new leader', async () => (await leadersAmong(rest)).length === 1, 10_000, 50);
    const took = Date.now() - t0;
    // The dead leader's lease (5 s) must run out first; the survivors campaign the moment etcd deletes the key.
    expect(took).toBeLessThan(8000);
    console.log(`leader failover after SIGKILL: ${took} ms`);
    const winner = rest.find((d) => d.logs.some((l) => l.msg === 'elected leader'))!;
    expect(winner).toBeDefined();
    expect(rest.flatMap((d) => d.logs.filter((l) => l.msg === 'elected leader'))).toHaveLength(1);
    // It keeps the lead: the lease on the leader key outlives its own TTL, which only renewals
    // achieve (etcd reports whole seconds, so a renewal itself is not visible), still under the
    // same lease; then it is still the only leader and serves.
    const store = new Etcd3({ hosts: etcd.endpoint });
    try {
      const leaseOf = async () => (await store.get(LEADER_KEY).exec()).kvs[0]?.lease;
      const lease = await leaseOf();
      expect(lease).toBeDefined();
      const ttl = async () => store.leaseClient.leaseTimeToLive({ ID: lease! });
      const grantedMs = Number((await ttl()).grantedTTL) * 1000;
      const since = Date.now();
      await waitFor('the new leader\'s lease to outlive its TTL', async () => {
        if (Number((await ttl()).TTL) <= 0) throw new GiveUp('the new leader\'s lease expired');
        return Date.now() - since > grantedMs + 500;
      }, grantedMs + 10_000, 100);
      expect(await leaseOf()).toBe(lease);
    } finally {
      store.close();
    }
    expect(await leadersAmong(rest)).toHaveLength(1);
    expect((await httpGet(winner.metricsPort, '/readyz')).status).toBe(200);
  }, 30_000);
});

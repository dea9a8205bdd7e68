// The controller as operators run it: the built `weft controller` process on
// the embedded SQLite store, joined by a host with a token from `weft token
// create`, scraped over HTTP, and stopped with SIGTERM.
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caCertHash, clientCredentials } from '../../controller/pki';
import { openSqliteStore } from '../../controller/store/sqlite';
import { createToken } from '../../controller/pki/tokens';
import { waitFor } from '../helpers/wait';
import {
  ROOT, type Daemon, type Client, call, cleanEnv, client, codeOf, httpGet, killAllDaemons, metric, readCa, startDaemon, watch, weft,
} from './daemon-process';

let tmp: string;
let d: Daemon;
const clients: Client[] = [];

/** Runs a command line through the shell from the repository root, as an operator pasting it would. */
function sh(cmd: string): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', cmd], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: cleanEnv() });
    let stdout = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout }));
  });
}

/** The token in the join command `weft token create` prints. */
function tokenOf(joinLine: string): string {
  const m = / --token ([a-z0-9]{6}\.[a-z0-9]{16}) /.exec(joinLine);
  if (!m) throw new Error(`no token in ${JSON.stringify(joinLine)}`);
  return m[1];
}

const hostKey = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });

function tlsClient(cert?: { certPem: string; keyPem: string }): Client {
  const c = client(d.grpcPort, clientCredentials({ caPem: readCa(d.dataDir), ...cert }));
  clients.push(c);
  return c;
}

/** Joins `name` with `token` over TLS (the controller's CA trusted, no client certificate yet) using the host's own key. */
async function joinHost(name: string, token: string) {
  const { publicKey, privateKey } = hostKey();
  const res = await call(tlsClient(), 'Join', { token, host_name: name, public_key_pem: publicKey.export({ type: 'spki', format: 'pem' }) });
  return { certPem: res.certificate_pem as string, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, caPem: res.ca_pem as string };
}

const hostReq = (name: string, n: number) => ({
  name, underlay_ip: `192.168.7.${n}`, vtep_mac: `02:00:00:00:07:${n.toString(16).padStart(2, '0')}`, rack: 'r1', datacenter: 'dc1',
  wg_public_key: '', agent_version: 'test', networks: [],
});

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'weft-daemon-'));
  d = await startDaemon({ dataDir: join(tmp, 'data') });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await killAllDaemons();
  rmSync(tmp, { recursive: true, force: true });
});

describe('weft controller: flags', () => {
  it.each([
    [['--listen', 'nope'], '--listen'],
    [['--bogus'], '--bogus'],
    [['--metrics-listen', '127.0.0.1:99999'], '--metrics-listen'],
    [['--store', 'mysql://x'], '--store'],
    [['--insecure', '--listen', '0.0.0.0:7443'], '--insecure'],
    [['--log-level', 'loud'], '--log-level'],
  ])('%j exits 2 naming the flag and creates no data dir', async (args, flag) => {
    const dir = join(tmp, `bad-${flag.slice(2)}`);
    const r = await weft(['controller', '--data-dir', dir, ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^weft controller: /);
    expect(r.stderr).toContain(flag);
    expect(r.stdout).toBe('');
    expect(existsSync(dir)).toBe(false);
  });

  it('refuses token flags by name and will not create a store that is not there', async () => {
    const bad = await weft(['token', 'create', '--data-dir', d.dataDir, '--ttl', '5x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--ttl');
    const range = await weft(['token', 'create', '--data-dir', d.dataDir, '--ttl', '8d']);
    expect(range.code).toBe(2);
    expect(range.stderr).toContain('--ttl: 8d is out of range');
    const missing = join(tmp, 'no-such-data');
    const r = await weft(['token', 'create', '--data-dir', missing]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no store at ${join(missing, 'weft.db')}`);
    expect(existsSync(missing)).toBe(false);
    expect((await weft(['token', 'frobnicate', '--data-dir', d.dataDir])).code).toBe(2);
    expect((await weft(['admin-cert', '--data-dir', d.dataDir])).stderr).toContain('--out');
  });

  it('token create without join.json works the join command out here; without ca.crt it names what is missing and creates no token', async () => {
    const dir = join(tmp, 'never-started');
    mkdirSync(dir, { mode: 0o700 });
    await openSqliteStore(join(dir, 'weft.db')).close();
    const none = await weft(['token', 'create', '--data-dir', dir]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`no ${join(dir, 'ca.crt')}: the join command needs the cluster CA's hash`);
    expect(none.stdout).toBe('');
    expect(JSON.parse((await weft(['token', 'list', '--data-dir', dir, '--json'])).stdout)).toEqual([]);

    copyFileSync(join(d.dataDir, 'ca.crt'), join(dir, 'ca.crt'));
    const r = await weft(['token', 'create', '--data-dir', dir]);
    expect(r.code).toBe(0);
    // the default listen address 0.0.0.0:7443: an address of this machine, never its hostname
    const m = new RegExp(`^weft agent --server (\\S+):7443 --token [a-z0-9]{6}\\.[a-z0-9]{16} --ca-cert-hash ${caCertHash(readCa(d.dataDir))}\\n$`).exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(isIP(m![1].replace(/^\[|\]$/g, ''))).not.toBe(0);
    expect(r.stderr).toContain(`no join.json in ${dir}`);
  });

  it('fails with exit 1 and removes the data dir it made when a port is taken', async () => {
    const dir = join(tmp, 'port-taken');
    const r = await weft(['controller', '--data-dir', dir, '--listen', `127.0.0.1:${d.grpcPort}`, '--metrics-listen', '127.0.0.1:0'.replace(':0', `:${d.metricsPort}`)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot listen on 127\.0\.0\.1:\d+/);
    expect(existsSync(dir)).toBe(false);
  });
});

describe('weft controller: serving', () => {
  it('answers /healthz, /readyz and /metrics', async () => {
    expect(await httpGet(d.metricsPort, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
    const ready = await httpGet(d.metricsPort, '/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({ ready: true, checks: { grpc: `serving on 127.0.0.1:${d.grpcPort}` } });
    const m = (await httpGet(d.metricsPort, '/metrics')).body;
    expect(metric(m, 'weft_leader')).toBe(1);
    expect(metric(m, 'weft_store_up')).toBe(1);
    expect(metric(m, 'weft_store_revision')).toBeGreaterThan(0);
    expect(m).toContain('process_cpu_user_seconds_total');
    expect((await httpGet(d.metricsPort, '/nope')).status).toBe(404);
  });

  it('logs where it listens and the exact commands to join a host; the token command works as printed', async () => {
    const how = d.logs.find((l) => typeof l.agentCommand === 'string')!;
    // Started from the checkout (as npm start does), so the command names the bundle.
    expect(how.tokenCommand).toBe(`node dist/weft.mjs token create --data-dir ${d.dataDir}`);
    const ran = await sh(how.tokenCommand as string);
    expect(ran.code).toBe(0);
    // It prints the whole join command, one line: the log's template with the token filled in.
    const pin = caCertHash(readCa(d.dataDir));
    expect(ran.stdout).toMatch(new RegExp(`^weft agent --server 127\\.0\\.0\\.1:${d.grpcPort} --token [a-z0-9]{6}\\.[a-z0-9]{16} --ca-cert-hash ${pin}\\n$`));
    expect(how.agentCommand).toBe(`weft agent --server 127.0.0.1:${d.grpcPort} --token <token> --ca-cert-hash ${pin}`);
    expect(ran.stdout).toBe(`${(how.agentCommand as string).replace('<token>', tokenOf(ran.stdout))}\n`);
    // what token create read it from: the data dir's record of this start
    expect(JSON.parse(readFileSync(join(d.dataDir, 'join.json'), 'utf8'))).toMatchObject({
      server: `127.0.0.1:${d.grpcPort}`, caCertHash: pin, tls: true, certNames: expect.arrayContaining(['127.0.0.1', 'localhost']),
    });
    expect(d.logs.find((l) => l.msg === 'controller listening')).toMatchObject({ grpc: `127.0.0.1:${d.grpcPort}`, tls: true });
    expect(d.logs.some((l) => l.msg === 'elected leader')).toBe(true);
  });

  it('joins a host with a token from `weft token create`, then serves it over mTLS', async () => {
    const t = await weft(['token', 'create', '--data-dir', d.dataDir, '--ttl', '10m', '--description', 'daemon test', '--json']);
    expect(t.code).toBe(0);
    const created = JSON.parse(t.stdout);
    const token = created.token as string;
    expect(token).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    expect(created).toMatchObject({
      id: token.split('.')[0], server: `127.0.0.1:${d.grpcPort}`, caCertHash: caCertHash(readCa(d.dataDir)),
      joinCommand: `weft agent --server 127.0.0.1:${d.grpcPort} --token ${token} --ca-cert-hash ${caCertHash(readCa(d.dataDir))}`,
    });
    const listed = await weft(['token', 'list', '--data-dir', d.dataDir, '--json']);
    expect(JSON.parse(listed.stdout)).toContainEqual(expect.objectContaining({ id: token.split('.')[0], description: 'daemon test' }));

    const joined = await joinHost('node-a', token);
    expect(joined.caPem).toBe(readCa(d.dataDir));
    const a = tlsClient(joined);
    const w = watch(a, 'WatchTopology', { from_revision: 0 });
    await w.waitFor((m) => m.kind === 'SNAPSHOT');
    const reg = await call(a, 'RegisterHost', hostReq('node-a', 1));
    expect(reg.host.subnets).toHaveLength(1);
    const hb = await call(a, 'Heartbeat', { name: 'node-a' });
    expect(hb.subnets[0].subnet).toBe(reg.host.subnets[0].subnet);
    const put = await w.waitFor((m) => m.kind === 'HOST_PUT' && m.hosts[0]?.name === 'node-a');
    expect(put.hosts[0].subnets[0].subnet).toBe(reg.host.subnets[0].subnet);

    // A token is reusable, but not to take over the name of an existing host.
    const again = await codeOf(joinHost('node-a', token));
    expect(again).toBe('ALREADY_EXISTS');
    await d.waitLog((l) => l.msg === 'refused join: name belongs to an existing host' && l.host === 'node-a');
    expect(await codeOf(joinHost('node-b', token))).toBe('OK');

    const m = (await httpGet(d.metricsPort, '/metrics')).body;
    expect(metric(m, 'weft_hosts')).toBe(1);
    expect(metric(m, 'weft_leases', 'network="default"')).toBe(1);
    expect(metric(m, 'weft_watch_streams', 'method="WatchTopology"')).toBe(1);
    expect(metric(m, 'weft_watch_sent_revision', 'method="WatchTopology"')).toBe(put.revision);
    expect(metric(m, 'weft_subnet_allocation_seconds_count', 'network="default",result="ok"')).toBe(1);
    expect(metric(m, 'weft_grpc_requests_total', 'method="Join",code="ALREADY_EXISTS"')).toBe(1);
    w.cancel();
    await w.ended;
    // A cancelled stream is no longer counted as open.
    await waitFor('weft_watch_streams to drop to 0 after the client cancelled', async () =>
      metric((await httpGet(d.metricsPort, '/metrics')).body, 'weft_watch_streams', 'method="WatchTopology"') === 0, 5000, 100);
  });

  it('refuses calls without a certificate, and garbage, unknown or expired tokens, and logs the refusals', async () => {
    const anon = tlsClient();
    expect(await codeOf(call(anon, 'GetStatus', {}))).toBe('UNAUTHENTICATED');
    expect(await codeOf(call(anon, 'RegisterHost', hostReq('node-x', 9)))).toBe('UNAUTHENTICATED');
    expect(await codeOf(joinHost('node-x', 'garbage'))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(joinHost('node-x', 'abcdef.0123456789abcdef'))).toBe('UNAUTHENTICATED');
    // An expired token, written by a second process on the same store file as the controller.
    const store = openSqliteStore(join(d.dataDir, 'weft.db'));
    let expired: string;
    try {
      ({ token: expired } = await createToken(store, { ttlSeconds: 60, now: new Date(Date.now() - 120_000) }));
    } finally {
      await store.close();
    }
    expect(await codeOf(joinHost('node-x', expired))).toBe('UNAUTHENTICATED');
    for (const reason of ['unknown', 'expired']) {
      await d.waitLog((l) => l.msg === 'refused join' && l.reason === reason && l.host === 'node-x');
    }
    // Every refusal is also logged with the caller's address.
    const refused = d.logs.filter((l) => l.msg === 'refused call' && typeof l.peer === 'string' && (l.peer as string).startsWith('127.0.0.1:'));
    expect(refused.map((l) => `${l.method} ${l.code}`)).toEqual(expect.arrayContaining([
      'GetStatus UNAUTHENTICATED', 'RegisterHost UNAUTHENTICATED', 'Join INVALID_ARGUMENT', 'Join UNAUTHENTICATED',
    ]));
    expect(refused.find((l) => l.method === 'Join' && l.code === 'INVALID_ARGUMENT')!.details).toMatch(/^token/);
    const m = (await httpGet(d.metricsPort, '/metrics')).body;
    expect(metric(m, 'weft_grpc_requests_total', 'method="GetStatus",code="UNAUTHENTICATED"')).toBe(1);
    expect(metric(m, 'weft_grpc_requests_total', 'method="Join",code="UNAUTHENTICATED"')).toBe(2);
    expect(metric(m, 'weft_grpc_requests_total', 'method="Join",code="INVALID_ARGUMENT"')).toBe(1);
  });

  it('issues an admin certificate (0600 files) that `weft status` and the API accept as admin', async () => {
    const out = join(tmp, 'admin');
    const r = await weft(['admin-cert', '--data-dir', d.dataDir, '--out', out, '--ttl-days', '2']);
    expect(r.code).toBe(0);
    for (const f of ['admin.crt', 'admin.key', 'ca.crt']) expect(statSync(join(out, f)).mode & 0o777).toBe(0o600);
    expect((await weft(['admin-cert', '--data-dir', d.dataDir, '--out', out])).stderr).toContain('already exist');

    const s = await weft(['status', '--server', `127.0.0.1:${d.grpcPort}`, '--ca', join(out, 'ca.crt'), '--cert', join(out, 'admin.crt'), '--key', join(out, 'admin.key'), '--json']);
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout)).toMatchObject({ leader: true, store: 'sqlite', hosts: 1, leases: 1 });
    // Without a certificate, on the controller's machine: a short-lived one from the CA in the data dir.
    const plain = await weft(['status', '--server', `127.0.0.1:${d.grpcPort}`, '--data-dir', d.dataDir]);
    expect(plain.stdout).toMatch(/^leader {7}\S+ \(this controller\)$/m);

    const admin = tlsClient({ certPem: readFileSync(join(out, 'admin.crt'), 'utf8'), keyPem: readFileSync(join(out, 'admin.key'), 'utf8') });
    const svc = await call(admin, 'CreateService', { service: { name: 'web', ports: [{ name: 'http', port: 80, target_port: 8080, protocol: 'http' }], selector: { app: 'web' }, network: 'default', rack_policy: '' } });
    expect(svc.name).toBe('web');
    const refused = await weft(['status', '--server', `127.0.0.1:${d.grpcPort}`, '--ca', join(out, 'ca.crt'), '--cert', join(out, 'admin.crt')]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--cert and --key go together');
  });

  it('exits 0 promptly on SIGTERM with a watch stream open, ending the stream', async () => {
    const joined = await joinHost('node-c', tokenOf((await weft(['token', 'create', '--data-dir', d.dataDir])).stdout));
    const c = tlsClient(joined);
    const w = watch(c, 'WatchServices', { from_revision: 0 });
    await w.waitFor((m) => m.kind === 'SNAPSHOT');
    const t0 = Date.now();
    d.kill('SIGTERM');
    const exit = await d.exited;
    const took = Date.now() - t0;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(took).toBeLessThan(3000);
    const end = await w.ended;
    expect([0, 14]).toContain(end.code); // OK (ended by the server) or UNAVAILABLE (connection gone)
    expect(d.logs.some((l) => l.msg === 'stopped')).toBe(true);
    expect(d.logs.filter((l) => l.level >= 50)).toEqual([]);
  });
});

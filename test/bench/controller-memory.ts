// Where the controller's memory goes, stage by stage: the real `weft
// controller` process (SQLite), then N simulated hosts in a few child
// processes (the controller bench's watchers: each its own key, client
// certificate and connection) registered, then each with a WatchTopology
// stream and its snapshot. At every stage: RSS and anonymous memory from
// /proc (smaps_rollup), the V8 heap and external (Buffer) memory from the
// controller's /metrics, and its CPU time.
//
// Run: npm run bench -- controller-memory
// Knobs (env): WEFT_BENCH_HOSTS (500), WEFT_BENCH_WATCHER_PROCS (4),
// WEFT_BENCH_MODE (mtls|insecure), WEFT_BENCH_CONNECT_ONLY=1 (one
// certificate for all, one GetStatus per connection and nothing else: the
// cost of a connection alone). The last line is JSON.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { controllerClientConstructor } from '../../controller/api/proto';
import { saveClusterConfig } from '../../controller/ipam';
import { clientCredentials, ensureCa, issueClientCert } from '../../controller/pki';
import { openSqliteStore } from '../../controller/store/sqlite';
import { freePort } from '../helpers/ports';
import { waitFor } from '../helpers/wait';
import { installCleanup, removeDir, startChild, stopChild, tempDir } from './controller/procs';
import { channelOptions, type FromChild, type Mode, type ToChild } from './controller/protocol';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const WEFT = join(root, 'dist', 'weft.mjs');
const HOSTS = Number(process.env.WEFT_BENCH_HOSTS ?? 500);
const PROCS = Number(process.env.WEFT_BENCH_WATCHER_PROCS ?? 4);
const MODE: Mode = process.env.WEFT_BENCH_MODE === 'insecure' ? 'insecure' : 'mtls';
const CONNECT_ONLY = process.env.WEFT_BENCH_CONNECT_ONLY === '1';
installCleanup();

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Math.round(((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK);
}
function kbField(text: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  if (!m) throw new Error(`no ${field}`);
  return Number(m[1]);
}
async function sample(pid: number, metricsPort: number) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const smaps = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const metric = (name: string) => Math.round(Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]) / 1048576);
  return {
    rssMb: Math.round(kbField(status, 'VmRSS') / 1024), peakMb: Math.round(kbField(status, 'VmHWM') / 1024),
    anonMb: Math.round(kbField(smaps, 'Anonymous') / 1024),
    heapUsedMb: metric('nodejs_heap_size_used_bytes'), externalMb: metric('nodejs_external_memory_bytes'), cpuMs: cpuMs(pid),
  };
}

function watcherProc(): { child: ChildProcess; ask: <K>(m: ToChild, ms: number) => Promise<K> } {
  const child = startChild(process.execPath, ['--import', 'tsx', join(here, 'controller', 'watcher.ts')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: root });
  const ask = <K>(m: ToChild, ms: number) => new Promise<K>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`watcher ${child.pid}: no reply to ${m.cmd} within ${ms} ms`)), ms);
    child.once('message', (r: FromChild) => {
      clearTimeout(t);
      if ('error' in r) reject(new Error(r.error)); else resolve(r as K);
    });
    child.send(m);
  });
  return { child, ask };
}

function unary(client: grpc.Client, method: string, md: grpc.Metadata, ms: number): Promise<unknown> {
  return new Promise((resolve, reject) =>
    (client as any)[method]({}, md, { deadline: Date.now() + ms }, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))));
}

if (!existsSync(WEFT)) throw new Error(`${WEFT} is missing: run npm run build (npm run bench does)`);
const dataDir = tempDir('memory');
const procs: ReturnType<typeof watcherProc>[] = [];
const clients: grpc.Client[] = [];
let ctl: ChildProcess | undefined;
const stages: Array<Record<string, unknown>> = [];
try {
  const ca = await ensureCa(dataDir);
  const seed = openSqliteStore(join(dataDir, 'weft.db'));
  await saveClusterConfig(seed, { networks: [{ name: 'default', vni: 1, cidr: '10.0.0.0/12', hostPrefixLength: 24 }], leaseTtlSeconds: 3600 });
  await seed.close();
  const [port, metricsPort] = [await freePort(), await freePort()];
  const target = `127.0.0.1:${port}`;
  ctl = startChild(process.execPath, [WEFT, 'controller', '--data-dir', dataDir, '--listen', target, '--metrics-listen', `127.0.0.1:${metricsPort}`,
    '--log-level', 'error', ...(MODE === 'insecure' ? ['--insecure'] : [])], { stdio: ['ignore', 'inherit', 'inherit'], cwd: root });
  const pid = ctl.pid!;
  const Client = controllerClientConstructor();
  const md = (host: string) => {
    const m = new grpc.Metadata();
    if (MODE === 'insecure') m.set('x-weft-host', host);
    return m;
  };
  const creds = async (host: string) => {
    if (MODE === 'insecure') return grpc.credentials.createInsecure();
    const c = await issueClientCert(ca, { host, ttlDays: 1 });
    return clientCredentials({ caPem: ca.certPem, certPem: c.certPem, keyPem: c.keyPem! });
  };
  const admin = new Client(target, await creds('admin'), channelOptions(MODE));
  clients.push(admin);
  await waitFor('the controller to answer', () => unary(admin, 'GetStatus', md('admin'), 1000).then(() => true), 30_000, 200);
  const stage = async (name: string, extra: Record<string, unknown> = {}) => {
    const s = { stage: name, ...(await sample(pid, metricsPort)), ...extra };
    stages.push(s);
    console.log(JSON.stringify(s));
  };
  await stage('idle');

  if (CONNECT_ONLY) {
    const shared = await creds('h0');
    for (let i = 0; i < HOSTS; i++) clients.push(new Client(target, shared, channelOptions(MODE)));
    let next = 1;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < clients.length) await unary(clients[next++], 'GetStatus', md('h0'), 60_000);
    }));
    await new Promise((r) => setTimeout(r, 3000));
    await stage('connected (one GetStatus each)');
  } else {
    for (let p = 0; p < PROCS; p++) procs.push(watcherProc());
    const names = Array.from({ length: HOSTS }, (_, n) => ({ name: `w${String(n).padStart(4, '0')}`, n }));
    let t = Date.now();
    await Promise.all(procs.map((p, i) => p.ask({ cmd: 'setup', target, mode: MODE, caDir: dataDir, hosts: names.filter((_, n) => n % PROCS === i) }, 1_800_000)));
    await new Promise((r) => setTimeout(r, 2000));
    await stage('connected and registered', { ms: Date.now() - t });
    t = Date.now();
    const cpu0 = cpuMs(pid);
    await Promise.all(procs.map((p) => p.ask({ cmd: 'watch', timeoutMs: 1_800_000 }, 1_810_000)));
    await stage('watching (every snapshot delivered)', { ms: Date.now() - t, snapshotCpuMs: cpuMs(pid) - cpu0 });
    await new Promise((r) => setTimeout(r, 5000));
    await stage('watching, 5 s later');
  }
  const idle = stages[0].rssMb as number;
  const last = stages[stages.length - 1];
  console.log(JSON.stringify({
    hosts: HOSTS, mode: MODE, connectOnly: CONNECT_ONLY, idle_rss_mb: idle, rss_mb: last.rssMb, peak_rss_mb: last.peakMb,
    rss_per_host_kb: Math.round((((last.rssMb as number) - idle) * 1024) / HOSTS), stages,
  }));
} finally {
  for (const c of clients) c.close();
  for (const p of procs) {
    if (p.child.connected) p.child.send({ cmd: 'close' } satisfies ToChild);
    await stopChild(p.child, 5000);
  }
  if (ctl) await stopChild(ctl, 5000);
  removeDir(dataDir);
}

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
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { controllerClientConstructor } from '../../controller/api/proto';
import { saveClusterConfig } from '../../controller/ipam';
import { ensureCa } from '../../controller/pki';
import { openSqliteStore } from '../../controller/store/sqlite';
import { freePort } from '../helpers/ports';
import { hostIdentity, unaryCall } from './controller/child-calls';
import { callerFor, cpuMs, heapMb, mb, startController, startWorker, statusKb, waitAnswering, type ControllerProc, type Worker } from './controller/daemon';
import { installCleanup, removeDir, stopChild, tempDir } from './controller/procs';
import { hostChannelOptions, type FromChild, type Mode, type ToChild } from './controller/protocol';
import { envInt } from './weft/env';

const WATCHER = join(dirname(fileURLToPath(import.meta.url)), 'controller', 'watcher.ts');
const HOSTS = envInt('WEFT_BENCH_HOSTS', 500, 1);
const PROCS = envInt('WEFT_BENCH_WATCHER_PROCS', 4, 1);
const MODE: Mode = process.env.WEFT_BENCH_MODE === 'insecure' ? 'insecure' : 'mtls';
const CONNECT_ONLY = process.env.WEFT_BENCH_CONNECT_ONLY === '1';
installCleanup(undefined, 'controller-memory bench');

/** RSS, its peak and anonymous memory (/proc), the V8 heap and external memory (/metrics), CPU time. */
async function sample(pid: number, metricsPort: number) {
  const anon = /^Anonymous:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  if (!anon) throw new Error(`no Anonymous in /proc/${pid}/smaps_rollup`);
  return {
    rssMb: mb(statusKb(pid, 'VmRSS')), peakMb: mb(statusKb(pid, 'VmHWM')), anonMb: mb(Number(anon[1])),
    ...(await heapMb(metricsPort)), cpuMs: Math.round(cpuMs(pid)),
  };
}

const dataDir = tempDir('memory');
const procs: Array<Worker<ToChild, FromChild>> = [];
const clients: grpc.Client[] = [];
let ctl: ControllerProc | undefined;
const stages: Array<Record<string, unknown>> = [];
try {
  const ca = await ensureCa(dataDir);
  const seed = openSqliteStore(join(dataDir, 'weft.db'));
  await saveClusterConfig(seed, { networks: [{ name: 'default', vni: 1, cidr: '10.0.0.0/12', hostPrefixLength: 24 }], leaseTtlSeconds: 3600 });
  await seed.close();
  const [port, metricsPort] = [await freePort(), await freePort()];
  const target = `127.0.0.1:${port}`;
  ctl = startController(MODE, dataDir, port, metricsPort);
  const pid = ctl.child.pid!;
  const admin = await callerFor('admin', target, MODE, ca);
  clients.push(admin.client);
  await waitAnswering(ctl, admin, target);
  const stage = async (name: string, extra: Record<string, unknown> = {}) => {
    const s = { stage: name, ...(await sample(pid, metricsPort)), ...extra };
    stages.push(s);
    console.log(JSON.stringify(s));
  };
  await stage('idle');

  if (CONNECT_ONLY) {
    const { creds, md } = await hostIdentity(MODE === 'mtls' ? ca : undefined, 'h0');
    const Client = controllerClientConstructor();
    const conns = Array.from({ length: HOSTS }, () => new Client(target, creds, hostChannelOptions(MODE)));
    clients.push(...conns);
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < conns.length) await unaryCall(conns[next++], md, 'GetStatus', {}, 60_000);
    }));
    await new Promise((r) => setTimeout(r, 3000));
    await stage('connected (one GetStatus each)');
  } else {
    for (let p = 0; p < PROCS; p++) procs.push(startWorker<ToChild, FromChild>(WATCHER));
    const names = Array.from({ length: HOSTS }, (_, n) => ({ name: `w${String(n).padStart(4, '0')}`, n }));
    let t = Date.now();
    await Promise.all(procs.map((p, i) => p.ask({ cmd: 'setup', target, mode: MODE, caDir: dataDir, hosts: names.filter((_, n) => n % PROCS === i) }, 1_800_000)));
    await new Promise((r) => setTimeout(r, 2000));
    await stage('connected and registered', { ms: Date.now() - t });
    t = Date.now();
    const cpu0 = cpuMs(pid);
    await Promise.all(procs.map((p) => p.ask({ cmd: 'watch', timeoutMs: 1_800_000 }, 1_810_000)));
    await stage('watching (every snapshot delivered)', { ms: Date.now() - t, snapshotCpuMs: Math.round(cpuMs(pid) - cpu0) });
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
  if (ctl) await stopChild(ctl.child, 5000);
  removeDir(dataDir);
}

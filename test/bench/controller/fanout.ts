// Fan-out: a controller process with `hosts` watchers (real gRPC clients in
// a few child processes, one channel and one WatchTopology stream each), then
// new hosts registered one at a time; for every (watcher, new host) pair the
// time from the RegisterHost call to that watcher holding the HOST_PUT.
// Every watcher must receive every event, carrying the subnet RegisterHost
// returned; otherwise the run fails.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { controllerClientConstructor } from '../../../controller/api/proto';
import { saveClusterConfig } from '../../../controller/ipam';
import { clientCredentials, ensureCa, issueClientCert, type Ca } from '../../../controller/pki';
import { openSqliteStore } from '../../../controller/store/sqlite';
import { freePort } from '../../helpers/ports';
import { GiveUp, waitFor } from '../../helpers/wait';
import { startChild, stopChild, tempDir, removeDir } from './procs';
import { channelOptions, hostRequest, type Arrival, type FromChild, type Mode, type ToChild } from './protocol';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');

/** Room for every simulated host and the new ones; a long TTL so nothing expires mid-run. */
const FANOUT_CONFIG = {
  networks: [{ name: 'default', vni: 1, cidr: '10.0.0.0/12', hostPrefixLength: 24 }],
  leaseTtlSeconds: 3600,
};

export type FanoutOptions = { hosts: number; events: number; procs: number; mode: Mode; log: (s: string) => void };

export type FanoutResult = {
  mode: Mode;
  hosts: number;
  events: number;
  procs: number;
  /** ms from RegisterHost call to arrival, one per (watcher, measured event) */
  latenciesMs: number[];
  /** per event: the slowest watcher (ms) */
  lastArrivalMs: number[];
  /** RegisterHost's own reply time per event (ms) */
  registerReplyMs: number[];
  warmupLastArrivalMs: number;
  rss: { idleMb: number; watchersMb: number; afterEventsMb: number; peakMb: number };
  /** the daemon's V8 heap in use and external (Buffer) memory with every watcher connected */
  heap: { heapUsedMb: number; externalMb: number };
  setup: { certsMs: number; registerMs: number; watchMs: number };
  /** CPU time per measured event, from /proc: who did the work on the shared cores */
  cpuPerEventMs: { controller: number; watchers: number };
};

const WEFT = join(root, 'dist', 'weft.mjs');

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}
const mb = (kb: number) => Math.round(kb / 102.4) / 10;

/**
 * The daemon's own view of its memory (prom-client's default metrics): live
 * V8 heap versus RSS tells retained state from garbage not yet collected.
 */
async function heapMb(metricsPort: number): Promise<{ heapUsedMb: number; externalMb: number }> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const value = (name: string) => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    if (!m) throw new Error(`controller /metrics has no ${name}`);
    return Math.round(Number(m[1]) / 104857.6) / 10;
  };
  return { heapUsedMb: value('nodejs_heap_size_used_bytes'), externalMb: value('nodejs_external_memory_bytes') };
}

/** utime + stime of a process, in ms. */
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
function cpuMs(pid: number): number {
  // the command name (field 2) may hold spaces; count fields after its closing parenthesis
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

function startController(mode: Mode, dataDir: string, port: number, metricsPort: number): { child: ChildProcess; output: () => string } {
  if (!existsSync(WEFT)) throw new Error(`${WEFT} is missing: run npm run build (npm run bench does)`);
  const flags = ['--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--metrics-listen', `127.0.0.1:${metricsPort}`, '--log-level', 'warn'];
  if (mode === 'insecure') flags.push('--insecure');
  const child = startChild(process.execPath, [WEFT, 'controller', ...flags], { stdio: ['ignore', 'pipe', 'pipe'], cwd: root });
  let out = '';
  const keep = (b: Buffer) => { out = (out + b.toString()).slice(-8000); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, output: () => out };
}

type Caller = { client: grpc.Client; md: grpc.Metadata };

async function callerFor(name: string, target: string, mode: Mode, ca: Ca): Promise<Caller> {
  const Client = controllerClientConstructor();
  const md = new grpc.Metadata();
  let creds: grpc.ChannelCredentials;
  if (mode === 'mtls') {
    const c = await issueClientCert(ca, { host: name, ttlDays: 1 });
    creds = clientCredentials({ caPem: ca.certPem, certPem: c.certPem, keyPem: c.keyPem! });
  } else {
    creds = grpc.credentials.createInsecure();
    md.set('x-weft-host', name);
  }
  return { client: new Client(target, creds, channelOptions(mode)), md };
}

function unary<T = any>(c: Caller, method: string, req: unknown, ms = 30_000): Promise<T> {
  return new Promise((resolve, reject) =>
    (c.client as any)[method](req, c.md, { deadline: Date.now() + ms }, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))),
  );
}

/** A watcher process, with a request/reply helper over IPC that fails loudly if the child errors or dies. */
function startWatcherProc(): { child: ChildProcess; ask: <K extends FromChild>(m: ToChild, timeoutMs: number) => Promise<K> } {
  const child = startChild(process.execPath, ['--import', 'tsx', join(here, 'watcher.ts')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: root });
  const ask = <K extends FromChild>(m: ToChild, timeoutMs: number) =>
    new Promise<K>((resolve, reject) => {
      const done = (err?: Error, reply?: K) => {
        clearTimeout(t);
        child.off('message', onMsg);
        child.off('exit', onExit);
        if (err) reject(err); else resolve(reply!);
      };
      const onMsg = (r: FromChild) => ('error' in r ? done(new Error(`watcher process ${child.pid}: ${r.error}`)) : done(undefined, r as K));
      const onExit = (code: number | null, sig: string | null) => done(new Error(`watcher process ${child.pid} exited (${sig ?? code}) during ${m.cmd}`));
      const t = setTimeout(() => done(new Error(`watcher process ${child.pid}: no reply to ${m.cmd} within ${timeoutMs} ms`)), timeoutMs);
      child.on('message', onMsg);
      child.once('exit', onExit);
      child.send(m);
    });
  return { child, ask };
}

export async function runFanout(o: FanoutOptions): Promise<FanoutResult> {
  const dataDir = tempDir('controller');
  const procs: ReturnType<typeof startWatcherProc>[] = [];
  const callers: Caller[] = [];
  let ctl: ReturnType<typeof startController> | undefined;
  try {
    // The CA and the cluster config exist before the first start, as on an HA
    // controller that was handed the cluster's CA: the bench can then issue
    // host certificates without waiting for the controller.
    const ca = await ensureCa(dataDir);
    const seed = openSqliteStore(join(dataDir, 'weft.db'));
    await saveClusterConfig(seed, FANOUT_CONFIG);
    await seed.close();

    const [port, metricsPort] = [await freePort(), await freePort()];
    const target = `127.0.0.1:${port}`;
    ctl = startController(o.mode, dataDir, port, metricsPort);
    const pid = ctl.child.pid!;
    const admin = await callerFor('admin', target, o.mode, ca);
    callers.push(admin);
    await waitFor(`the controller to answer on ${target}`, async () => {
      if (ctl!.child.exitCode !== null || ctl!.child.signalCode !== null) {
        throw new GiveUp(`controller exited (${ctl!.child.exitCode ?? ctl!.child.signalCode})`);
      }
      await unary(admin, 'GetStatus', {}, 1000);
      return true;
    }, 30_000, 200).catch((e: Error) => {
      throw new Error(`${e.message}; controller output: ${ctl!.output()}`);
    });
    const idleKb = statusKb(pid, 'VmRSS');
    o.log(`weft controller (pid ${pid}, ${o.mode}) up on ${target}; RSS idle ${mb(idleKb)} MB`);

    // ---- the simulated hosts: register, then watch ----
    for (let p = 0; p < o.procs; p++) procs.push(startWatcherProc());
    const names = Array.from({ length: o.hosts }, (_, n) => ({ name: `w${String(n).padStart(4, '0')}`, n }));
    let t = Date.now();
    const setups = await Promise.all(procs.map((p, i) =>
      p.ask<Extract<FromChild, { ok: 'setup' }>>({ cmd: 'setup', target, mode: o.mode, caDir: dataDir, hosts: names.filter((_, n) => n % o.procs === i) }, 240_000)));
    const setupMs = Date.now() - t;
    const certsMs = Math.max(...setups.map((s) => s.certsMs));
    o.log(`${o.hosts} hosts with their own ${o.mode === 'mtls' ? 'client certificates and ' : ''}channels in ${o.procs} processes; registered in ${setupMs} ms (certificates ${certsMs} ms of it)`);
    t = Date.now();
    const watching = await Promise.all(procs.map((p) => p.ask<Extract<FromChild, { ok: 'watching' }>>({ cmd: 'watch', timeoutMs: 120_000 }, 130_000)));
    const watchMs = Date.now() - t;
    const snapMin = Math.min(...watching.map((w) => w.snapshotMin));
    const snapMax = Math.max(...watching.map((w) => w.snapshotMax));
    if (snapMin !== o.hosts || snapMax !== o.hosts) throw new Error(`snapshots held ${snapMin}-${snapMax} hosts, expected ${o.hosts}`);
    await new Promise((r) => setTimeout(r, 1000)); // let the snapshot burst's buffers go before reading RSS
    const watchersKb = statusKb(pid, 'VmRSS');
    const heap = await heapMb(metricsPort);
    o.log(`${o.hosts} WatchTopology streams open, each snapshot had all ${o.hosts} hosts (${watchMs} ms); controller RSS ${mb(watchersKb)} MB, V8 heap in use ${heap.heapUsedMb} MB, external ${heap.externalMb} MB`);

    // ---- new hosts, one at a time; the first is a warm-up ----
    const latenciesMs: number[] = [];
    const lastArrivalMs: number[] = [];
    const registerReplyMs: number[] = [];
    let warmupLastArrivalMs = NaN;
    const cpu = { controller: 0, watchers: 0 };
    const watcherCpu = () => procs.reduce((sum, p) => sum + cpuMs(p.child.pid!), 0);
    for (let k = 0; k <= o.events; k++) {
      const name = `new-${k}`;
      const c = await callerFor(name, target, o.mode, ca);
      callers.push(c);
      await unary(c, 'GetStatus', {}); // connection and handshake happen before the clock starts
      await new Promise((r) => setTimeout(r, 200)); // quiet before each event
      const cpu0 = { controller: cpuMs(pid), watchers: watcherCpu() };
      const t0 = process.hrtime.bigint();
      const reply = await unary(c, 'RegisterHost', hostRequest(name, o.hosts + k));
      const t1 = process.hrtime.bigint();
      const want = reply.host.subnets.map((s: any) => `${s.network}:${s.subnet}`).join(',');
      if (!want) throw new Error(`RegisterHost ${name} returned no subnet`);
      const replies = await Promise.all(procs.map((p) => p.ask<Extract<FromChild, { ok: 'collected' }>>({ cmd: 'collect', host: name, timeoutMs: 30_000 }, 35_000)));
      if (k > 0) {
        cpu.controller += cpuMs(pid) - cpu0.controller;
        cpu.watchers += watcherCpu() - cpu0.watchers;
      }
      const arrivals: Arrival[] = replies.flatMap((r) => r.arrivals);
      const missing = arrivals.filter((a): a is Extract<Arrival, { missing: string }> => 'missing' in a);
      if (arrivals.length !== o.hosts || missing.length > 0) {
        throw new Error(`event ${name}: ${missing.length} of ${o.hosts} watchers did not receive HOST_PUT (first: ${missing[0]?.watcher}: ${missing[0]?.missing}); ${arrivals.length} reported`);
      }
      const ms: number[] = [];
      for (const a of arrivals as Array<Extract<Arrival, { ns: string }>>) {
        if (a.subnets !== want) throw new Error(`event ${name}: watcher ${a.watcher} got subnets ${a.subnets}, RegisterHost returned ${want}`);
        ms.push(Number(BigInt(a.ns) - t0) / 1e6);
      }
      const last = Math.max(...ms);
      if (k === 0) {
        warmupLastArrivalMs = last;
      } else {
        latenciesMs.push(...ms);
        lastArrivalMs.push(last);
        registerReplyMs.push(Number(t1 - t0) / 1e6);
      }
      o.log(`  ${k === 0 ? 'warm-up' : `event ${k}/${o.events}`}: ${name} -> all ${o.hosts} watchers (verified), reply ${(Number(t1 - t0) / 1e6).toFixed(1)} ms, first ${Math.min(...ms).toFixed(1)} ms, last ${last.toFixed(1)} ms`);
    }
    const afterKb = statusKb(pid, 'VmRSS');
    const peakKb = statusKb(pid, 'VmHWM');
    return {
      mode: o.mode, hosts: o.hosts, events: o.events, procs: o.procs,
      latenciesMs, lastArrivalMs, registerReplyMs, warmupLastArrivalMs,
      heap,
      rss: { idleMb: mb(idleKb), watchersMb: mb(watchersKb), afterEventsMb: mb(afterKb), peakMb: mb(peakKb) },
      setup: { certsMs, registerMs: setupMs, watchMs },
      cpuPerEventMs: { controller: cpu.controller / o.events, watchers: cpu.watchers / o.events },
    };
  } finally {
    for (const c of callers) c.client.close();
    await Promise.all(procs.map(async (p) => {
      if (p.child.connected) p.child.send({ cmd: 'close' } satisfies ToChild);
      await stopChild(p.child, 5000);
    }));
    if (ctl) await stopChild(ctl.child, 5000);
    removeDir(dataDir);
  }
}

// Fan-out: a controller process with `hosts` watchers (real gRPC clients in
// a few child processes, one channel and one WatchTopology stream each), then
// new hosts registered one at a time; for every (watcher, new host) pair the
// time from the RegisterHost call to that watcher holding the HOST_PUT.
// Every watcher must receive every event, carrying the subnet RegisterHost
// returned; otherwise the run fails.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { saveClusterConfig } from '../../../controller/ipam';
import { ensureCa } from '../../../controller/pki';
import { openSqliteStore } from '../../../controller/store/sqlite';
import { freePort } from '../../helpers/ports';
import { type Caller, callerFor, cpuMs, heapMb, mb, startController, startWorker, statusKb, unary, waitAnswering } from './daemon';
import { stopChild, tempDir, removeDir } from './procs';
import { hostRequest, type Arrival, type FromChild, type Mode, type ToChild } from './protocol';

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

const WATCHER = join(dirname(fileURLToPath(import.meta.url)), 'watcher.ts');
const startWatcherProc = () => startWorker<ToChild, FromChild>(WATCHER);

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
    await waitAnswering(ctl, admin, target);
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

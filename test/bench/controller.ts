// The controller's two scaling claims, measured against a peer in the same run:
//
// 1. Subnet allocation rate through IPAM (acquireLease) on the embedded
//    SQLite store and on a real etcd, one at a time and 32 in flight, next to
//    the same store's raw put rate (the ratio is what IPAM costs on top of a
//    write). Every repetition starts from an empty pool and is verified:
//    every host holds exactly one lease, no subnet is handed out twice.
// 2. Watch fan-out: a controller process with 1,000 simulated hosts (real
//    gRPC clients over mTLS with their own certificates, in a few child
//    processes), each with an open WatchTopology stream; new hosts are
//    registered one at a time and for every (watcher, event) pair the time
//    from the RegisterHost call to the HOST_PUT is recorded on the machine's
//    monotonic clock. Every watcher must receive every event. The
//    controller's RSS is read from /proc/<pid>/status.
//
// Run: npm run bench -- controller
// Knobs (env): WEFT_BENCH_REPS (5), WEFT_BENCH_ALLOCS (2000), WEFT_BENCH_HOSTS (1000),
// WEFT_BENCH_EVENTS (10), WEFT_BENCH_WATCHER_PROCS (4), WEFT_BENCH_MODE (mtls|insecure),
// WEFT_BENCH_ONLY (alloc|fanout: one half only, no JSON line).
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { openEtcdStore } from '../../controller/store/etcd';
import { openSqliteStore } from '../../controller/store/sqlite';
import type { Store } from '../../controller/store/types';
import { startEtcd, type EtcdInstance } from '../helpers/etcd';
import { measureRound, prepareAllocStore, type Op } from './controller/alloc';
import { runFanout, type FanoutResult } from './controller/fanout';
import { installCleanup, removeDir, stopAll, tempDir } from './controller/procs';
import type { Mode } from './controller/protocol';
import { quantile, round, spread, stats, table, type Stats } from './weft/stats';
import { envInt } from './weft/env';

const REPS = envInt('WEFT_BENCH_REPS', 5, 5);
const ALLOCS = envInt('WEFT_BENCH_ALLOCS', 2000, 100);
const HOSTS = envInt('WEFT_BENCH_HOSTS', 1000, 1);
const EVENTS = envInt('WEFT_BENCH_EVENTS', 10, 1);
const PROCS = envInt('WEFT_BENCH_WATCHER_PROCS', 4, 1);
const MODE: Mode = process.env.WEFT_BENCH_MODE === 'insecure' ? 'insecure' : 'mtls';
const IN_FLIGHT = [1, 32] as const;
// Developing one half need not wait for the other; the recorded result always runs both.
const ONLY = process.env.WEFT_BENCH_ONLY;
if (ONLY !== undefined && ONLY !== 'alloc' && ONLY !== 'fanout') throw new Error(`WEFT_BENCH_ONLY must be alloc or fanout (got ${ONLY})`);

let etcd: EtcdInstance | undefined;
installCleanup(async () => { await etcd?.stop(); });

// ---- 1. allocation ----

type Cell = { store: 'sqlite' | 'etcd'; op: Op; inFlight: number };
const key = (c: Cell) => `${c.store}_${c.op}_x${c.inFlight}`;

async function allocation(): Promise<{ cells: Cell[]; samples: Map<string, number[]>; ratios: Map<string, number[]> }> {
  const dir = tempDir('alloc');
  const stores: Record<Cell['store'], Store | undefined> = { sqlite: undefined, etcd: undefined };
  try {
    stores.sqlite = openSqliteStore(join(dir, 'weft.db'));
    etcd = await startEtcd();
    stores.etcd = await openEtcdStore(etcd.endpoint);
    for (const s of Object.values(stores)) await prepareAllocStore(s!);
    const cells: Cell[] = [];
    for (const store of ['sqlite', 'etcd'] as const) for (const inFlight of IN_FLIGHT) for (const op of ['alloc', 'put'] as const) cells.push({ store, op, inFlight });
    const samples = new Map(cells.map((c) => [key(c), [] as number[]]));
    const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
    console.log(`allocation: ${ALLOCS} hosts into 10.0.0.0/12 (/24 each, at most half the pool) per round; ${REPS} repetitions after 1 warm-up, order rotated each repetition`);
    for (const c of cells) await measureRound(stores[c.store]!, c.op, Math.min(ALLOCS, 300), c.inFlight, -1); // warm-up: JIT, etcd's first compactions
    for (let rep = 0; rep < REPS; rep++) {
      const line: string[] = [];
      for (let i = 0; i < cells.length; i++) {
        const c = cells[(i + rep * 3) % cells.length];
        gc();
        const r = await measureRound(stores[c.store]!, c.op, ALLOCS, c.inFlight, rep);
        samples.get(key(c))!.push(r);
        line.push(`${key(c)}=${Math.round(r)}/s`);
      }
      console.log(`  rep ${rep + 1}/${REPS}: ${line.join(' ')} (all verified)`);
    }
    // put/alloc within one repetition: both ran minutes apart at most, so drift cancels
    const ratios = new Map<string, number[]>();
    for (const store of ['sqlite', 'etcd'] as const) for (const inFlight of IN_FLIGHT) {
      const a = samples.get(key({ store, op: 'alloc', inFlight }))!;
      const p = samples.get(key({ store, op: 'put', inFlight }))!;
      ratios.set(`${store}_x${inFlight}`, a.map((x, i) => p[i] / x));
    }
    return { cells, samples, ratios };
  } finally {
    for (const s of Object.values(stores)) await s?.close().catch(() => {});
    await etcd?.stop();
    etcd = undefined;
    removeDir(dir);
  }
}

// ---- report ----

function printAllocation(a: Awaited<ReturnType<typeof allocation>>): Record<string, Stats> {
  const st: Record<string, Stats> = {};
  for (const [k, xs] of a.samples) st[k] = stats(xs);
  const rows: string[][] = [];
  for (const store of ['sqlite', 'etcd'] as const) for (const inFlight of IN_FLIGHT) {
    const alloc = st[key({ store, op: 'alloc', inFlight })];
    const put = st[key({ store, op: 'put', inFlight })];
    const r = stats(a.ratios.get(`${store}_x${inFlight}`)!);
    rows.push([`${store}, ${inFlight} in flight: acquireLease`, String(Math.round(alloc.median)), `${Math.round(alloc.p25)}-${Math.round(alloc.p75)}`, `${Math.round(alloc.min)}-${Math.round(alloc.max)}`, `${round(r.median, 2).toFixed(2)}x slower`]);
    rows.push([`${store}, ${inFlight} in flight: raw put (peer)`, String(Math.round(put.median)), `${Math.round(put.p25)}-${Math.round(put.p75)}`, `${Math.round(put.min)}-${Math.round(put.max)}`, '1.00x']);
  }
  console.log('');
  console.log(table(['operation', 'median /s', 'p25-p75 /s', 'min-max /s', 'vs raw put'], rows));
  console.log('acquireLease = config and host-index reads + one compare-and-swap writing the lease and the host index; "x slower" is the per-repetition put/alloc ratio (median).');
  return st;
}

function printFanout(f: FanoutResult): { lat: number[]; p50: number; p99: number; max: number } {
  const lat = [...f.latenciesMs].sort((a, b) => a - b);
  const p50 = quantile(lat, 0.5);
  const p99 = quantile(lat, 0.99);
  const max = lat[lat.length - 1];
  const last = stats(f.lastArrivalMs);
  const reply = stats(f.registerReplyMs);
  console.log('');
  console.log(table(['fan-out', 'value'], [
    ['controller process', 'weft controller (dist/weft.mjs), SQLite store'],
    ['transport', f.mode === 'mtls' ? 'mTLS, one client certificate, channel and connection per host' : 'INSECURE loopback (no TLS), one channel and connection per host'],
    ['watchers (WatchTopology streams)', `${f.hosts} in ${f.procs} processes`],
    ['events measured (after 1 warm-up)', `${f.events} x ${f.hosts} = ${lat.length} deliveries, all verified`],
    ['RegisterHost -> HOST_PUT p50', `${round(p50)} ms`],
    ['RegisterHost -> HOST_PUT p99', `${round(p99)} ms`],
    ['RegisterHost -> HOST_PUT max', `${round(max)} ms`],
    ['last watcher per event: median (min-max)', `${round(last.median)} ms (${round(last.min)}-${round(last.max)})`],
    ['RegisterHost reply (peer: one unary call)', `${round(reply.median)} ms (${round(reply.min)}-${round(reply.max)})`],
    ['controller RSS idle / with watchers / after events', `${f.rss.idleMb} / ${f.rss.watchersMb} / ${f.rss.afterEventsMb} MB`],
    ['controller peak RSS (VmHWM)', `${f.rss.peakMb} MB`],
    ['controller V8 heap in use / external, with watchers', `${f.heap.heapUsedMb} / ${f.heap.externalMb} MB`],
    ['RSS per watcher (with - idle) / hosts', `${round(((f.rss.watchersMb - f.rss.idleMb) * 1024) / f.hosts)} kB`],
    ['CPU per event: controller / watcher processes', `${round(f.cpuPerEventMs.controller)} / ${round(f.cpuPerEventMs.watchers)} ms`],
    ['setup: register all hosts / all snapshots delivered', `${round(f.setup.registerMs / 1000)} s / ${round(f.setup.watchMs / 1000)} s`],
  ]));
  return { lat, p50, p99, max };
}

async function main(): Promise<void> {
  const loadBefore = round(loadavg()[0], 2);
  console.log(`controller bench: node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model.trim()}), load ${loadBefore}`);

  if (ONLY === 'fanout') {
    printFanout(await runFanout({ hosts: HOSTS, events: EVENTS, procs: PROCS, mode: MODE, log: (s) => console.log(s) }));
    return;
  }
  const t0 = Date.now();
  const alloc = await allocation();
  const st = printAllocation(alloc);
  console.log(`(allocation took ${Math.round((Date.now() - t0) / 1000)} s)`);
  if (ONLY === 'alloc') return;

  console.log('');
  const loadFanout = round(loadavg()[0], 2);
  const t1 = Date.now();
  const fan = await runFanout({ hosts: HOSTS, events: EVENTS, procs: PROCS, mode: MODE, log: (s) => console.log(s) });
  const f = printFanout(fan);
  console.log(`(fan-out took ${Math.round((Date.now() - t1) / 1000)} s)`);
  console.log('');

  const s = (k: string) => st[k];
  const ratio = (k: string) => { const r = stats(alloc.ratios.get(k)!); return { median: round(r.median, 2), min: round(r.min, 2), max: round(r.max, 2) }; };
  console.log(JSON.stringify({
    bench: 'controller',
    hosts: HOSTS,
    events: EVENTS,
    fanout_p50_ms: round(f.p50),
    fanout_p99_ms: round(f.p99),
    fanout_max_ms: round(f.max),
    fanout_last_arrival_ms: spread(stats(fan.lastArrivalMs)),
    fanout_register_reply_ms: round(stats(fan.registerReplyMs).median),
    fanout_warmup_last_ms: round(fan.warmupLastArrivalMs),
    rss_mb: fan.rss.watchersMb,
    rss_idle_mb: fan.rss.idleMb,
    rss_after_events_mb: fan.rss.afterEventsMb,
    rss_peak_mb: fan.rss.peakMb,
    heap_used_mb: fan.heap.heapUsedMb,
    external_mb: fan.heap.externalMb,
    mode: fan.mode,
    controller: 'weft controller (dist/weft.mjs), sqlite',
    rss_per_watcher_kb: round(((fan.rss.watchersMb - fan.rss.idleMb) * 1024) / HOSTS),
    cpu_per_event_ms: { controller: round(fan.cpuPerEventMs.controller), watchers: round(fan.cpuPerEventMs.watchers) },
    setup_s: { certs: round(fan.setup.certsMs / 1000), register: round(fan.setup.registerMs / 1000), all_snapshots: round(fan.setup.watchMs / 1000) },
    watcher_procs: PROCS,
    allocs_per_round: ALLOCS,
    alloc_per_s_sqlite: Math.round(s('sqlite_alloc_x1').median),
    alloc_per_s_sqlite_x32: Math.round(s('sqlite_alloc_x32').median),
    alloc_per_s_etcd: Math.round(s('etcd_alloc_x1').median),
    alloc_per_s_etcd_x32: Math.round(s('etcd_alloc_x32').median),
    put_per_s_sqlite: Math.round(s('sqlite_put_x1').median),
    put_per_s_sqlite_x32: Math.round(s('sqlite_put_x32').median),
    put_per_s_etcd: Math.round(s('etcd_put_x1').median),
    put_per_s_etcd_x32: Math.round(s('etcd_put_x32').median),
    alloc_spread_per_s: Object.fromEntries(alloc.cells.filter((c) => c.op === 'alloc').map((c) => [`${c.store}_x${c.inFlight}`, spread(s(key(c)), 0)])),
    put_spread_per_s: Object.fromEntries(alloc.cells.filter((c) => c.op === 'put').map((c) => [`${c.store}_x${c.inFlight}`, spread(s(key(c)), 0)])),
    put_over_alloc: Object.fromEntries(IN_FLIGHT.flatMap((n) => [[`sqlite_x${n}`, ratio(`sqlite_x${n}`)], [`etcd_x${n}`, ratio(`etcd_x${n}`)]])),
    repetitions: REPS,
    date: new Date().toISOString(),
    node: process.version,
    cores: cpus().length,
    loadavg_1m: { before: loadBefore, fanout: loadFanout, after: round(loadavg()[0], 2) },
  }));
}

try {
  await main();
} catch (e) {
  console.error(`controller bench failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
} finally {
  await etcd?.stop().catch(() => {});
  await stopAll();
}

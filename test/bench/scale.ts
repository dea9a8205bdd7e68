// One controller against thousands of hosts, on each store: a weft
// controller process (SQLite in its data dir, or a real etcd on loopback)
// and 5,000 simulated hosts, light gRPC clients with no dataplane, each with
// its own key, client certificate and mTLS connection, spread over a few
// child processes. Each host registers, keeps one WatchTopology stream
// (resumed from its last revision after any interruption, with the agent's
// backoff) and heartbeats at the interval the controller names.
//
// Phases, in order (test/bench/scale/phases.ts): join storm from zero,
// steady state, fan-out of one change, controller restart with everyone
// connected, 5% of watchers stalled, dead peers. Tables per store, then the
// goals and, last line, JSON.
//
// Run: npm run bench -- scale
// Knobs (env): WEFT_BENCH_HOSTS (5000), WEFT_BENCH_STORES (sqlite,etcd),
// WEFT_BENCH_HOST_PROCS (4, plus one for the dead batch), WEFT_BENCH_EVENTS (10),
// WEFT_BENCH_JOIN_IN_FLIGHT (8 RegisterHost calls at a time in the join storm,
// rounded up to a multiple of the host processes; 0: every host at once, where
// concurrent registrations collide and time out: 607 s for 1,000 hosts),
// WEFT_BENCH_DEAD (1% of the hosts), WEFT_BENCH_STALL_EVERY (20: 5% stall),
// WEFT_BENCH_STALL_BURST (0: changes made while they stall besides the measured
// ones; over the controller's per-stream queue bound, 4,096, they are ended),
// WEFT_BENCH_LEASE_TTL_S (60: heartbeat every 20 s, as by default),
// WEFT_BENCH_STEADY_S (one heartbeat interval), WEFT_BENCH_RESTART_SIGNAL (SIGKILL|SIGTERM),
// WEFT_BENCH_CONTROLLER_NODE_ARGS (options for node running the controller, e.g.
// "--cpu-prof --cpu-prof-dir=DIR" with WEFT_BENCH_RESTART_SIGNAL=SIGTERM, so the
// first process writes its profile when it stops).
import { cpus, loadavg } from 'node:os';
import { installCleanup, stopAll } from './controller/procs';
import { stopAllEtcd } from '../helpers/etcd';
import { runScale, type ScaleResult, type StoreKind } from './scale/phases';
import { round, table } from './weft/stats';
import { envInt } from './weft/env';

const HOSTS = envInt('WEFT_BENCH_HOSTS', 5000, 20);
const PROCS = envInt('WEFT_BENCH_HOST_PROCS', 4, 1);
const EVENTS = envInt('WEFT_BENCH_EVENTS', 10, 10);
const JOIN_IN_FLIGHT = envInt('WEFT_BENCH_JOIN_IN_FLIGHT', 8, 0);
const DEAD = envInt('WEFT_BENCH_DEAD', Math.max(1, Math.round(HOSTS / 100)), 1);
const STALL_EVERY = envInt('WEFT_BENCH_STALL_EVERY', 20, 2);
const STALL_BURST = envInt('WEFT_BENCH_STALL_BURST', 0, 0);
const LEASE_TTL_S = envInt('WEFT_BENCH_LEASE_TTL_S', 60, 5);
const HEARTBEAT_S = Math.max(1, Math.floor(LEASE_TTL_S / 3));
const STEADY_S = envInt('WEFT_BENCH_STEADY_S', HEARTBEAT_S, 0);
const SIGNAL = (process.env.WEFT_BENCH_RESTART_SIGNAL ?? 'SIGKILL') as 'SIGKILL' | 'SIGTERM';
if (SIGNAL !== 'SIGKILL' && SIGNAL !== 'SIGTERM') throw new Error(`WEFT_BENCH_RESTART_SIGNAL must be SIGKILL or SIGTERM (got ${String(SIGNAL)})`);
const STORES = (process.env.WEFT_BENCH_STORES ?? 'sqlite,etcd').split(',').map((s) => s.trim()) as StoreKind[];
for (const s of STORES) if (s !== 'sqlite' && s !== 'etcd') throw new Error(`WEFT_BENCH_STORES: unknown store ${s} (sqlite, etcd)`);
if (DEAD >= HOSTS / 2) throw new Error(`WEFT_BENCH_DEAD (${DEAD}) must be under half of WEFT_BENCH_HOSTS (${HOSTS})`);

installCleanup(stopAllEtcd, 'scale bench');

/** The goals at 5,000 hosts, each a test of one store's figures. */
const GOALS: Array<{ key: string; text: string; pass: (f: Figures) => boolean }> = [
  { key: 'fanout_p99', text: 'fan-out p99 <= 1 s', pass: (f) => f.fanout_p99_ms <= 1000 },
  { key: 'rss', text: 'controller RSS <= 512 MB', pass: (f) => f.rss_mb <= 512 },
  { key: 'rss_per_host', text: 'controller RSS per host <= 100 kB', pass: (f) => f.rss_per_host_kb <= 100 },
  { key: 'storm_converge', text: 'restart converges < 30 s', pass: (f) => f.storm_converge_s < 30 },
  { key: 'storm_resumed', text: '>= 95% of watches resume from their revision', pass: (f) => f.storm_resumed_pct >= 95 },
  { key: 'storm_peak_rss', text: 'restart peak RSS < 2x steady', pass: (f) => f.storm_peak_rss_mb < 2 * f.rss_mb },
  { key: 'stalled', text: "stalled watchers raise the others' p99 < 10%", pass: (f) => f.stalled_p99_increase_pct < 10 },
  { key: 'dead_peers', text: 'dead peers detected within 3 heartbeat intervals', pass: (f) => f.dead_detect_s <= 3 * f.heartbeat_s },
];

type Figures = ReturnType<typeof figures>;

function figures(r: ScaleResult) {
  return {
    store: r.store,
    hosts: r.hosts,
    fanout_p50_ms: round(r.fanout.p50Ms),
    fanout_p99_ms: round(r.fanout.p99Ms),
    fanout_max_ms: round(r.fanout.maxMs),
    rss_mb: r.steady.rssMb,
    rss_idle_mb: r.idleRssMb,
    rss_per_host_kb: r.steady.rssPerHostKb,
    heap_used_mb: r.steady.heapUsedMb,
    external_mb: r.steady.externalMb,
    join_register_s: round(r.join.registeredS),
    join_snapshots_s: round(r.join.snapshotsS),
    join_converge_s: round(r.join.convergeS),
    join_peak_rss_mb: r.join.peakRssMb,
    join_register_retries: r.join.retries,
    join_in_flight: r.join.inFlight,
    storm_converge_s: round(r.restart.convergeS),
    storm_converge_from_start_s: round(r.restart.convergeFromStartS),
    storm_last_watch_open_s: round(r.restart.lastWatchOpenS),
    storm_change_made_s: round(r.restart.markerS),
    storm_resumed_pct: r.restart.resumedPct,
    storm_snapshots: r.restart.snapshots,
    storm_peak_rss_mb: r.restart.peakRssMb,
    storm_signal: r.restart.signal,
    stalled_watches: r.stalled.watches,
    stalled_baseline_p99_ms: round(r.stalled.baseline.p99Ms),
    stalled_p99_ms: round(r.stalled.fanout.p99Ms),
    stalled_p99_increase_pct: r.stalled.p99IncreasePct,
    stalled_caught_up: r.stalled.outcome.caughtUp,
    stalled_ended_by: r.stalled.outcome.endedBy,
    stalled_resumed: r.stalled.outcome.resumed,
    stalled_snapshots: r.stalled.outcome.snapshots,
    stalled_catch_up_s: round(r.stalled.catchUpS, 2),
    dead_hosts: r.dead.hosts,
    dead_streams_closed_s: round(r.dead.streamsClosedS, 2),
    dead_detect_s: round(r.dead.detectS),
    heartbeat_s: r.heartbeatS,
  };
}

function print(r: ScaleResult, f: Figures): void {
  const s = (x: number) => `${round(x)} s`;
  console.log('');
  console.log(table([`${r.store}: ${r.hosts} hosts, one controller`, 'value'], [
    [`1. join storm (${r.join.inFlight || 'all'} in flight): all registered / all first snapshots`, `${s(r.join.registeredS)} / ${s(r.join.snapshotsS)}`],
    ['1. join storm: every watch holds every host', s(r.join.convergeS)],
    ['1. join storm: controller peak RSS (VmHWM)', `${r.join.peakRssMb} MB`],
    ['2. steady: controller RSS (idle before any host)', `${r.steady.rssMb} MB (${r.idleRssMb} MB)`],
    ['2. steady: (RSS - idle) / hosts', `${r.steady.rssPerHostKb} kB`],
    ['2. steady: V8 heap in use / external', `${r.steady.heapUsedMb} / ${r.steady.externalMb} MB`],
    ['3. fan-out RegisterHost -> HOST_PUT p50 / p99 / max', `${f.fanout_p50_ms} / ${f.fanout_p99_ms} / ${f.fanout_max_ms} ms`],
    [`4. restart (${r.restart.signal}): all in sync after the kill (after start)`, `${s(r.restart.convergeS)} (${s(r.restart.convergeFromStartS)})`],
    ['4. restart: last watch reopened / the change made (after the kill)', `${s(r.restart.lastWatchOpenS)} / ${s(r.restart.markerS)}`],
    ['4. restart: resumed from their revision / snapshots', `${r.restart.resumedPct}% (${r.restart.resumed} of ${r.restart.watches}) / ${r.restart.snapshots}`],
    ['4. restart: new controller peak RSS / 2 s later', `${r.restart.peakRssMb} / ${r.restart.rssAfterMb} MB`],
    [`5. ${r.stalled.watches} stalled: others' p99 (vs none stalled just before)`, `${f.stalled_p99_ms} ms (${f.stalled_baseline_p99_ms} ms, ${r.stalled.p99IncreasePct >= 0 ? '+' : ''}${r.stalled.p99IncreasePct}%)`],
    ['5. stalled: caught up on their stream / ended / resumed / snapshots', `${r.stalled.outcome.caughtUp} / ${JSON.stringify(r.stalled.outcome.endedBy)} / ${r.stalled.outcome.resumed} / ${r.stalled.outcome.snapshots}`],
    ['5. stalled: all hold the last event after reading again', `${round(r.stalled.catchUpS, 2)} s`],
    [`6. ${r.dead.hosts} SIGKILLed: streams closed / not "alive"`, `${round(r.dead.streamsClosedS, 2)} s / ${s(r.dead.detectS)} (${r.dead.detectIntervals} x ${r.heartbeatS} s)`],
  ]));
}

async function main(): Promise<void> {
  const loadBefore = round(loadavg()[0], 2);
  console.log(`scale bench: node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model.trim()}), load ${loadBefore}; ${HOSTS} hosts in ${PROCS}+1 processes, stores ${STORES.join(', ')}`);
  const results: Record<string, Figures & { pass: Record<string, boolean> }> = {};
  const loads: Record<string, number> = {};
  for (const store of STORES) {
    const t0 = Date.now();
    loads[store] = round(loadavg()[0], 2);
    const r = await runScale({
      store, hosts: HOSTS, procs: PROCS, dead: DEAD, joinInFlight: JOIN_IN_FLIGHT, events: EVENTS, stallEvery: STALL_EVERY, stallBurst: STALL_BURST, leaseTtlS: LEASE_TTL_S, steadyS: STEADY_S,
      restartSignal: SIGNAL, log: (x) => console.log(x),
    });
    const f = figures(r);
    print(r, f);
    console.log(`(${store} took ${Math.round((Date.now() - t0) / 1000)} s)`);
    results[store] = { ...f, pass: Object.fromEntries(GOALS.map((g) => [g.key, g.pass(f)])) };
  }
  console.log('');
  console.log(table(['goal', ...STORES], GOALS.map((g) => [g.text, ...STORES.map((s) => (results[s].pass[g.key] ? 'pass' : 'FAIL'))])));
  console.log('');
  console.log(JSON.stringify({
    bench: 'scale',
    hosts: HOSTS,
    heartbeat_s: HEARTBEAT_S,
    ...results,
    goals: Object.fromEntries(GOALS.map((g) => [g.key, g.text])),
    pass: STORES.every((s) => Object.values(results[s].pass).every(Boolean)),
    host_procs: PROCS + 1,
    events: EVENTS,
    date: new Date().toISOString(),
    node: process.version,
    cores: cpus().length,
    loadavg_1m: { before: loadBefore, ...loads, after: round(loadavg()[0], 2) },
  }));
}

try {
  await main();
} catch (e) {
  console.error(`scale bench failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
} finally {
  await stopAllEtcd().catch(() => {});
  await stopAll();
}

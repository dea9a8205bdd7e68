// One scale run on one store: a controller process, `hosts` simulated hosts
// in a few host processes (plus one more holding the batch that dies in the
// last phase), and six measured phases in order:
//   1. join storm from zero: every host registers and opens its watch at once;
//   2. steady state after a heartbeat interval: RSS, heap, RSS per host;
//   3. fan-out: new hosts registered one at a time, arrival at every watcher;
//   4. restart: the controller is killed and started again with everyone
//      connected; the time until every watch holds a change made after the
//      restart, and how each watch came back (resumed or a new SNAPSHOT);
//   5. stalled: fan-out with nobody stalled, then with 5% of watches not
//      reading: the others' p99 against that baseline, and what became of the
//      stalled ones once they read again;
//   6. dead peers: the last host process is SIGKILLed; the time until the
//      controller's ListHosts no longer calls those hosts alive.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { saveClusterConfig } from '../../../controller/ipam';
import { ensureCa, type Ca } from '../../../controller/pki';
import { openEtcdStore } from '../../../controller/store/etcd';
import { openSqliteStore } from '../../../controller/store/sqlite';
import type { Store } from '../../../controller/store/types';
import { startEtcd, type EtcdInstance } from '../../helpers/etcd';
import { freePort } from '../../helpers/ports';
import { waitFor } from '../../helpers/wait';
import {
  type Caller, type ControllerProc, type Worker, callerFor, heapMb, mb, metricsText, startController, startWorker, statusKb, unary, waitAnswering,
} from '../controller/daemon';
import { exited, removeDir, stopChild, tempDir } from '../controller/procs';
import { hostRequest } from '../controller/protocol';
import { quantile } from '../weft/stats';
import { PROBE_PREFIX, type Arrival, type Counters, type FromHosts, type StallOutcome, type ToHosts } from './protocol';

export type StoreKind = 'sqlite' | 'etcd';

export type ScaleOptions = {
  store: StoreKind;
  hosts: number;
  /** host processes for the hosts that live to the end; one more holds the `dead` batch */
  procs: number;
  dead: number;
  /** RegisterHost calls in flight in the join storm, over all host processes; 0: every host at once */
  joinInFlight: number;
  events: number;
  /** every stallEvery-th host stalls (20: 5%) */
  stallEvery: number;
  /** changes made while they stall, beyond the measured events: enough pass the controller's per-stream queue bound */
  stallBurst: number;
  leaseTtlS: number;
  /** how long steady state settles before it is read; default one heartbeat interval */
  steadyS: number;
  restartSignal: 'SIGKILL' | 'SIGTERM';
  log: (s: string) => void;
};

export type FanoutStats = { events: number; deliveries: number; p50Ms: number; p99Ms: number; maxMs: number; lastMs: number[] };

export type ScaleResult = {
  store: StoreKind;
  hosts: number;
  heartbeatS: number;
  certsS: number;
  idleRssMb: number;
  join: { inFlight: number; registeredS: number; snapshotsS: number; convergeS: number; retries: number; peakRssMb: number; snapshotMin: number; snapshotMax: number };
  steady: { rssMb: number; heapUsedMb: number; externalMb: number; rssPerHostKb: number };
  fanout: FanoutStats;
  restart: { signal: string; downS: number; lastWatchOpenS: number; markerS: number; convergeS: number; convergeFromStartS: number; resumedPct: number; resumed: number; snapshots: number; watches: number; peakRssMb: number; rssAfterMb: number };
  stalled: { watches: number; baseline: FanoutStats; fanout: FanoutStats; p99IncreasePct: number; outcome: StallOutcome; catchUpS: number };
  dead: { hosts: number; streamsClosedS: number; detectS: number; detectIntervals: number };
};

const HOSTS_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'hosts.ts');

/** Room for 32,768 hosts (the old /12 had 4,096); a reclaim grace longer than any run, so no subnet moves mid-run. */
const scaleConfig = (leaseTtlSeconds: number) => ({
  networks: [{ name: 'default', vni: 1, cidr: '10.0.0.0/9', hostPrefixLength: 24 }],
  leaseTtlSeconds,
  reclaimGraceSeconds: 7200,
});

type HostProc = Worker<ToHosts, FromHosts>;
const nsNow = () => process.hrtime.bigint();
const sinceS = (t0: bigint, ns: string | bigint) => Number(BigInt(ns) - t0) / 1e9;
const r1 = (x: number) => Math.round(x * 10) / 10;

function fanoutStats(ms: number[], lastMs: number[], events: number): FanoutStats {
  const lat = [...ms].sort((a, b) => a - b);
  return { events, deliveries: lat.length, p50Ms: quantile(lat, 0.5), p99Ms: quantile(lat, 0.99), maxMs: lat[lat.length - 1], lastMs };
}

export async function runScale(o: ScaleOptions): Promise<ScaleResult> {
  const dataDir = tempDir(`scale-${o.store}`);
  const procs: HostProc[] = [];
  const callers: Caller[] = [];
  let etcd: EtcdInstance | undefined;
  let ctl: ControllerProc | undefined;
  const heartbeatS = Math.max(1, Math.floor(o.leaseTtlS / 3)); // what the controller tells agents
  try {
    // The CA and the cluster config exist before the first start, so host
    // certificates are issued before the clock of the join storm starts.
    const ca = await ensureCa(dataDir);
    let seed: Store;
    let storeFlag: string | undefined;
    if (o.store === 'etcd') {
      etcd = await startEtcd();
      seed = await openEtcdStore(etcd.endpoint);
      storeFlag = `etcd:${etcd.endpoint}`;
    } else {
      seed = openSqliteStore(join(dataDir, 'weft.db'));
    }
    await saveClusterConfig(seed, scaleConfig(o.leaseTtlS));
    await seed.close();

    const [port, metricsPort] = [await freePort(), await freePort()];
    const target = `127.0.0.1:${port}`;
    const start = () => startController('mtls', dataDir, port, metricsPort, storeFlag);
    const firstStart = Date.now();
    ctl = start();
    const admin = await callerFor('admin', target, 'mtls', ca);
    callers.push(admin);
    await waitAnswering(ctl, admin, target);
    const startS = (Date.now() - firstStart) / 1000;
    const idleKb = statusKb(ctl.child.pid!, 'VmRSS');
    o.log(`[${o.store}] weft controller (pid ${ctl.child.pid}) on ${target}, store ${storeFlag ?? 'sqlite in its data dir'}, answering ${r1(startS)} s after its start; RSS idle ${mb(idleKb)} MB; heartbeat every ${heartbeatS} s (lease TTL ${o.leaseTtlS} s)`);

    // ---- the simulated hosts: certificates and channels, nothing sent yet ----
    const live = o.hosts - o.dead;
    const names = Array.from({ length: o.hosts }, (_, n) => ({ name: `h${String(n).padStart(5, '0')}`, n }));
    const shares = Array.from({ length: o.procs }, (_, i) => names.slice(0, live).filter((_, n) => n % o.procs === i));
    shares.push(names.slice(live));
    for (let i = 0; i < shares.length; i++) procs.push(startWorker<ToHosts, FromHosts>(HOSTS_SCRIPT));
    const all = <K extends FromHosts>(m: ToHosts, ms: number, among: HostProc[] = procs) => Promise.all(among.map((p) => p.ask<K>(m, ms)));
    /** What the hosts went through since the last look, for the log: stream ends and heartbeats by status. */
    const happened = async (): Promise<string> => {
      const cs = await all<Extract<FromHosts, { ok: 'counters' }>>({ cmd: 'counters' }, 30_000);
      const sum: Counters = { streamEnds: {}, heartbeats: {}, opens: 0 };
      for (const { counters: c } of cs) {
        sum.opens += c.opens;
        for (const [k, v] of Object.entries(c.streamEnds)) sum.streamEnds[k] = (sum.streamEnds[k] ?? 0) + v;
        for (const [k, v] of Object.entries(c.heartbeats)) sum.heartbeats[k] = (sum.heartbeats[k] ?? 0) + v;
      }
      return `watch streams opened ${sum.opens}, ended ${JSON.stringify(sum.streamEnds)}; heartbeats ${JSON.stringify(sum.heartbeats)}`;
    };
    const healths = async (): Promise<Map<string, string>> => {
      const list = await unary<any>(admin, 'ListHosts', {}, 30_000);
      return new Map(list.hosts.map((x: any) => [x.host.name, x.health]));
    };
    let t = Date.now();
    await Promise.all(procs.map((p, i) => p.ask({ cmd: 'setup', target, mode: 'mtls', caDir: dataDir, hosts: shares[i], heartbeatMs: heartbeatS * 1000 }, 600_000)));
    const certsS = (Date.now() - t) / 1000;
    o.log(`[${o.store}] ${o.hosts} hosts, each with its own key, client certificate and connection, in ${procs.length} processes (${o.dead} of them in the last, which dies in phase 6); certificates ${r1(certsS)} s`);

    // Probe hosts are the bench's own changes: new hosts registered one at a
    // time (numbered after the simulated ones), each watch noting when it got one.
    let probes = 0;
    const nextProbe = () => `${PROBE_PREFIX}${probes++}`;
    const register = async (name: string, ms = 30_000): Promise<{ name: string; subnets: string; callMs: number; start: bigint }> => {
      const c = await callerFor(name, target, 'mtls', ca);
      try {
        await unary(c, 'GetStatus', {}, ms); // connection and handshake happen before the clock starts
        const start0 = nsNow();
        const reply = await unary(c, 'RegisterHost', hostRequest(name, o.hosts + Number(name.slice(PROBE_PREFIX.length))), ms);
        const subnets = reply.host.subnets.map((s: any) => `${s.network}:${s.subnet}`).join(',');
        if (!subnets) throw new Error(`RegisterHost ${name} returned no subnet`);
        return { name, subnets, callMs: Number(nsNow() - start0) / 1e6, start: start0 };
      } finally {
        c.client.close();
      }
    };

    // ---- 1. join storm from zero ----
    const t0 = nsNow();
    const perProc = o.joinInFlight > 0 ? Math.max(1, Math.ceil(o.joinInFlight / procs.length)) : 0;
    const joined = await all<Extract<FromHosts, { ok: 'joined' }>>({ cmd: 'join', timeoutMs: 1_800_000, inFlight: perProc }, 1_900_000);
    const joinMarker = await register(nextProbe());
    const synced = await all<Extract<FromHosts, { ok: 'synced' }>>({ cmd: 'sync', host: joinMarker.name, timeoutMs: 300_000 }, 320_000);
    const join_ = {
      inFlight: perProc * procs.length,
      registeredS: Math.max(...joined.map((j) => sinceS(t0, j.registeredNs))),
      snapshotsS: Math.max(...joined.map((j) => sinceS(t0, j.snapshotsNs))),
      convergeS: Math.max(...synced.map((s) => sinceS(t0, s.lastNs))),
      retries: joined.reduce((a, j) => a + j.registerRetries, 0),
      peakRssMb: mb(statusKb(ctl.child.pid!, 'VmHWM')),
      snapshotMin: Math.min(...joined.map((j) => j.snapshotMin)),
      snapshotMax: Math.max(...joined.map((j) => j.snapshotMax)),
    };
    o.log(`[${o.store}] 1. join storm (RegisterHost ${perProc > 0 ? `${perProc * procs.length} in flight` : 'all at once'}): all ${o.hosts} registered in ${r1(join_.registeredS)} s (${join_.retries} retries), all first snapshots in ${r1(join_.snapshotsS)} s (${join_.snapshotMin}-${join_.snapshotMax} hosts each), every watch held every host (a host registered after all of them) in ${r1(join_.convergeS)} s; controller peak RSS ${join_.peakRssMb} MB`);
    o.log(`  (${await happened()})`);

    // ---- 2. steady state ----
    await new Promise((r) => setTimeout(r, o.steadyS * 1000)); // every host has heartbeated at least once
    const rssKb = statusKb(ctl.child.pid!, 'VmRSS');
    const heap = await heapMb(metricsPort);
    const health = await healths();
    const alive = names.filter((h) => health.get(h.name) === 'alive').length;
    const steady = { rssMb: mb(rssKb), heapUsedMb: heap.heapUsedMb, externalMb: heap.externalMb, rssPerHostKb: r1((rssKb - idleKb) / o.hosts) };
    o.log(`[${o.store}] 2. steady (${o.steadyS} s later): controller RSS ${steady.rssMb} MB ((RSS - idle) / hosts = ${steady.rssPerHostKb} kB per host), V8 heap in use ${steady.heapUsedMb} MB, external ${steady.externalMb} MB; ${alive} of ${o.hosts} hosts alive in ListHosts`);
    o.log(`  (${await happened()})`);

    // ---- 3. one change to all watchers ----
    const probe = async (label: string, among: HostProc[], expect: number): Promise<{ ms: number[]; last: number; name: string }> => {
      await new Promise((r) => setTimeout(r, 200)); // quiet before each event
      const { name, subnets: want, start: start0 } = await register(nextProbe());
      const replies = await all<Extract<FromHosts, { ok: 'collected' }>>({ cmd: 'collect', host: name, timeoutMs: 120_000 }, 130_000, among);
      const arrivals: Arrival[] = replies.flatMap((r) => r.arrivals);
      const missing = arrivals.filter((a): a is Extract<Arrival, { missing: string }> => 'missing' in a);
      if (arrivals.length !== expect || missing.length > 0) {
        throw new Error(`${name}: ${missing.length} of ${expect} watchers did not receive HOST_PUT (first: ${missing[0]?.watcher}: ${missing[0]?.missing}); ${arrivals.length} reported`);
      }
      const ms = (arrivals as Array<Extract<Arrival, { ns: string }>>).map((a) => {
        if (a.subnets !== want) throw new Error(`${name}: watcher ${a.watcher} got subnets ${a.subnets}, RegisterHost returned ${want}`);
        return Number(BigInt(a.ns) - start0) / 1e6;
      });
      const last = Math.max(...ms);
      o.log(`  ${label}: ${name} -> all ${expect} reading watchers (verified), first ${Math.min(...ms).toFixed(1)} ms, last ${last.toFixed(1)} ms`);
      return { ms, last, name };
    };
    const fanout = async (tag: string, among: HostProc[], expect: number): Promise<FanoutStats> => {
      const ms: number[] = [];
      const lastMs: number[] = [];
      await probe(`${tag} warm-up`, among, expect);
      for (let k = 1; k <= o.events; k++) {
        const p = await probe(`${tag} event ${k}/${o.events}`, among, expect);
        ms.push(...p.ms);
        lastMs.push(p.last);
      }
      return fanoutStats(ms, lastMs, o.events);
    };
    const fan = await fanout('3. fan-out', procs, o.hosts);
    o.log(`[${o.store}] 3. fan-out to ${o.hosts} watchers: p50 ${r1(fan.p50Ms)} ms, p99 ${r1(fan.p99Ms)} ms, max ${r1(fan.maxMs)} ms over ${fan.deliveries} deliveries`);

    // ---- 4. controller restart with everyone connected ----
    await all({ cmd: 'mark' }, 10_000);
    const old = ctl;
    const killAt = nsNow();
    old.child.kill(o.restartSignal);
    await exited(old.child);
    const downAt = nsNow();
    ctl = start();
    const startedAt = nsNow();
    await waitAnswering(ctl, admin, target, 120_000);
    const readyAt = nsNow();
    const marker = await register(nextProbe(), 60_000);
    const markedAt = nsNow();
    const back = await all<Extract<FromHosts, { ok: 'synced' }>>({ cmd: 'sync', host: marker.name, timeoutMs: 600_000 }, 620_000);
    const watches = back.reduce((a, b) => a + b.hosts, 0);
    const resumed = back.reduce((a, b) => a + b.resumed, 0);
    const snapshots = back.reduce((a, b) => a + b.snapshots, 0);
    const lastOpen = back.map((b) => BigInt(b.openedNs)).reduce((a, b) => (b > a ? b : a));
    const lastBack = back.map((b) => BigInt(b.lastNs)).reduce((a, b) => (b > a ? b : a));
    const restart = {
      signal: o.restartSignal,
      downS: Number(downAt - killAt) / 1e9,
      convergeS: sinceS(killAt, lastBack),
      convergeFromStartS: sinceS(startedAt, lastBack),
      lastWatchOpenS: sinceS(killAt, lastOpen),
      markerS: sinceS(killAt, markedAt),
      resumedPct: r1((100 * resumed) / watches),
      resumed, snapshots, watches,
      peakRssMb: mb(statusKb(ctl.child.pid!, 'VmHWM')),
      rssAfterMb: 0,
    };
    await new Promise((r) => setTimeout(r, 2000));
    restart.rssAfterMb = mb(statusKb(ctl.child.pid!, 'VmRSS'));
    o.log(`[${o.store}] 4. restart (${o.restartSignal}): every watch held the change made after it (${marker.name}) ${r1(restart.convergeS)} s after the kill (${r1(restart.convergeFromStartS)} s after the new process started); ${resumed} of ${watches} resumed from their revision (${restart.resumedPct}%), ${snapshots} took a snapshot; new controller's peak RSS ${restart.peakRssMb} MB, ${restart.rssAfterMb} MB 2 s later`);
    o.log(`  (old process gone ${r1(restart.downS)} s after the signal; new one answering ${r1(sinceS(killAt, readyAt))} s after it, the change made ${r1(restart.markerS)} s after it; the last watch that brought it opened ${r1(restart.lastWatchOpenS)} s after it; ${await happened()})`);

    // ---- 5. 5% of watchers stalled ----
    // The baseline is taken on this same (restarted) process just before the
    // stall, so the two differ only in the stalled watches.
    const base = await fanout('5. baseline, nobody stalled', procs, o.hosts);
    const stalledCounts = await all<Extract<FromHosts, { ok: 'stalled' }>>({ cmd: 'stall', every: o.stallEvery }, 10_000);
    const stalledN = stalledCounts.reduce((a, b) => a + b.count, 0);
    const sfan = await fanout('5. stalled', procs, o.hosts - stalledN);
    if (o.stallBurst > 0) {
      // One host changing its rack over and over: each change is a HOST_PUT to every watch.
      const name = nextProbe();
      const n = o.hosts + Number(name.slice(PROBE_PREFIX.length));
      const c = await callerFor(name, target, 'mtls', ca);
      const tb = Date.now();
      try {
        for (let i = 0; i < o.stallBurst; i++) await unary(c, 'RegisterHost', { ...hostRequest(name, n), rack: `burst-${i}` });
      } finally {
        c.client.close();
      }
      o.log(`  5. stalled: ${o.stallBurst} more changes (one host's rack) in ${r1((Date.now() - tb) / 1000)} s`);
    }
    const last = await probe('5. stalled, last event before reading again', procs, o.hosts - stalledN);
    const unstallAt = nsNow();
    const outs = await all<Extract<FromHosts, { ok: 'unstalled' }>>({ cmd: 'unstall', host: last.name, timeoutMs: 300_000 }, 320_000);
    const outcome: StallOutcome = { stalled: 0, caughtUp: 0, endedBy: {}, resumed: 0, snapshots: 0, lastNs: '0' };
    for (const { outcome: x } of outs) {
      outcome.stalled += x.stalled;
      outcome.caughtUp += x.caughtUp;
      outcome.resumed += x.resumed;
      outcome.snapshots += x.snapshots;
      for (const [code, k] of Object.entries(x.endedBy)) outcome.endedBy[code] = (outcome.endedBy[code] ?? 0) + k;
      if (BigInt(x.lastNs) > BigInt(outcome.lastNs)) outcome.lastNs = x.lastNs;
    }
    const stalled = {
      watches: stalledN, baseline: base, fanout: sfan,
      p99IncreasePct: r1((100 * (sfan.p99Ms - base.p99Ms)) / base.p99Ms),
      outcome, catchUpS: sinceS(unstallAt, outcome.lastNs),
    };
    o.log(`[${o.store}] 5. ${stalledN} watches stalled: the others' fan-out p99 ${r1(sfan.p99Ms)} ms (${stalled.p99IncreasePct}% vs ${r1(base.p99Ms)} ms just before with none stalled); reading again, ${outcome.caughtUp} caught up on their stream, ends while stalled ${JSON.stringify(outcome.endedBy)}, ${outcome.resumed} resumed, ${outcome.snapshots} snapshots; all held the last event ${r1(stalled.catchUpS)} s later`);
    o.log(`  (${await happened()})`);

    // ---- 6. dead peers ----
    const victim = procs.pop()!;
    const deadNames = new Set(shares[shares.length - 1].map((h) => h.name));
    const streamsOf = async () => Number(/^weft_watch_streams\{method="WatchTopology"\} (\S+)$/m.exec(await metricsText(metricsPort))?.[1] ?? NaN);
    await waitFor(`the ${o.dead} hosts about to be killed to be alive in ListHosts`, async () => {
      const h = await healths();
      return [...deadNames].every((n) => h.get(n) === 'alive');
    }, { ms: (3 * heartbeatS + 30) * 1000, everyMs: 500 });
    const streamsBefore = await streamsOf();
    const deadAt = nsNow();
    victim.child.kill('SIGKILL');
    await exited(victim.child);
    let streamsClosedS = NaN;
    let detectS = NaN;
    await waitFor(`the controller to stop calling the ${o.dead} killed hosts alive`, async () => {
      if (Number.isNaN(streamsClosedS) && (await streamsOf()) <= streamsBefore - o.dead) streamsClosedS = sinceS(deadAt, nsNow());
      const list = await unary<any>(admin, 'ListHosts', {}, 30_000);
      const stillAlive = list.hosts.filter((s: any) => deadNames.has(s.host.name) && s.health === 'alive').length;
      if (stillAlive > 0) return false;
      detectS = sinceS(deadAt, nsNow());
      return true;
    }, { ms: (6 * heartbeatS + 60) * 1000, everyMs: 500 });
    const dead = { hosts: o.dead, streamsClosedS, detectS, detectIntervals: r1(detectS / heartbeatS) };
    o.log(`[${o.store}] 6. ${o.dead} hosts SIGKILLed: their watch streams closed after ${r1(streamsClosedS)} s; ListHosts stopped calling them alive after ${r1(detectS)} s (${dead.detectIntervals} heartbeat intervals of ${heartbeatS} s)`);

    return { store: o.store, hosts: o.hosts, heartbeatS, certsS, idleRssMb: mb(idleKb), join: join_, steady, fanout: fan, restart, stalled, dead };
  } finally {
    for (const c of callers) c.client.close();
    await Promise.all(procs.map(async (p) => {
      if (p.child.connected) p.child.send({ cmd: 'close' } satisfies ToHosts);
      await stopChild(p.child, 5000);
    }));
    if (ctl) await stopChild(ctl.child, 5000);
    await etcd?.stop();
    removeDir(dataDir);
  }
}

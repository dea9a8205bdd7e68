// One host process of the scale bench: simulates a share of the hosts, each
// with its own key, client certificate and channel (its own TCP and TLS
// connection), doing what an agent does towards the controller and nothing
// else: RegisterHost, one WatchTopology stream resumed from its last
// revision after every interruption (with the client's jittered backoff),
// and a Heartbeat at the interval the controller names. No dataplane.
//
// Arrival times are taken first thing in the 'data' handler and kept in
// memory; the parent collects them only once the awaited event is
// everywhere, so reporting never competes with delivery.
import * as grpc from '@grpc/grpc-js';
import { backoff, type Backoff } from '../../../controller/api/client/backoff';
import { controllerClientConstructor } from '../../../controller/api/proto';
import { loadCa } from '../../../controller/pki';
import { hostChannelOptions, hostRequest, type Mode } from '../controller/protocol';
import { PROBE_PREFIX, type Arrival, type Counters, type FromHosts, type StallOutcome, type ToHosts } from './protocol';
import { pool } from '../controller/pool';
import { eventWaits, hostIdentity, unaryCall } from '../controller/child-calls';

/** What the next stream opened after arm() begins with: where a restart or a stall leaves a watch. */
type FirstAfter = 'idle' | 'armed' | 'opened' | 'SNAPSHOT' | 'resumed';

type Host = {
  name: string;
  n: number;
  client: grpc.Client;
  md: grpc.Metadata;
  stream?: grpc.ClientReadableStream<any>;
  /** where the watch resumes from: the last event's revision (a SNAPSHOT's even when lower) */
  rev: number;
  streams: number;
  /** when the current stream was opened */
  openedAt: bigint;
  /** probe -> when the stream it came on was opened */
  probeStreams: Map<string, bigint>;
  firstSnapshotAt?: bigint;
  snapshotHosts?: number;
  probes: Map<string, [bigint, string]>;
  delays: Backoff;
  afterMark: FirstAfter;
  afterStall: FirstAfter;
  stalled: boolean;
  stallStreams: number;
  stallEnds: Map<string, number>;
  heartbeat?: NodeJS.Timeout;
};

const RETRYABLE = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.RESOURCE_EXHAUSTED, grpc.status.ABORTED]);
/** The agent's own deadline for a unary call. */
const CALL_MS = 10_000;

const hosts: Host[] = [];
let heartbeatMs = 20_000;
let closing = false;
let counters: Counters = { streamEnds: {}, heartbeats: {}, opens: 0 };
const count = (m: Record<string, number>, k: string) => { m[k] = (m[k] ?? 0) + 1; };
const { until, wakeAll } = eventWaits(500);

function send(m: FromHosts): void {
  process.send!(m);
}

const call = <T>(h: { client: any; md: grpc.Metadata }, method: string, req: unknown): Promise<T> => unaryCall<T>(h.client, h.md, method, req, CALL_MS);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const subnetsOf = (h: any) => h.subnets.map((s: any) => `${s.network}:${s.subnet}`).join(',');
const maxNs = (xs: bigint[]) => xs.reduce((a, b) => (b > a ? b : a), 0n).toString();

async function setup(m: Extract<ToHosts, { cmd: 'setup' }>): Promise<void> {
  const t0 = Date.now();
  heartbeatMs = m.heartbeatMs;
  const Client = controllerClientConstructor();
  const ca = m.mode === 'mtls' ? await loadCa(m.caDir) : undefined;
  const opts = hostChannelOptions(m.mode as Mode);
  for (const { name, n } of m.hosts) {
    const { creds, md } = await hostIdentity(ca, name);
    hosts.push({
      name, n, md, client: new Client(m.target, creds, opts), rev: 0, streams: 0, openedAt: 0n, probeStreams: new Map(), probes: new Map(), delays: backoff(),
      afterMark: 'idle', afterStall: 'idle', stalled: false, stallStreams: 0, stallEnds: new Map(),
    });
  }
  send({ ok: 'setup', certsMs: Date.now() - t0 });
}

function gotProbe(h: Host, x: any, at: bigint): void {
  h.probes.set(x.name, [at, subnetsOf(x)]);
  h.probeStreams.set(x.name, h.openedAt);
}

function openWatch(h: Host): void {
  if (closing) return;
  const s: grpc.ClientReadableStream<any> = (h.client as any).WatchTopology({ from_revision: h.rev }, h.md);
  h.stream = s;
  h.streams++;
  h.openedAt = process.hrtime.bigint();
  counters.opens++;
  if (h.stalled) s.pause();
  if (h.afterMark === 'armed') h.afterMark = 'opened';
  if (h.afterStall === 'armed') h.afterStall = 'opened';
  let first = true;
  let over = false;
  s.on('data', (ev: any) => {
    const at = process.hrtime.bigint();
    h.delays.reset();
    if (first) {
      first = false;
      const kind = ev.kind === 'SNAPSHOT' ? 'SNAPSHOT' : 'resumed';
      if (h.afterMark === 'opened') h.afterMark = kind;
      if (h.afterStall === 'opened') h.afterStall = kind;
    }
    const rev = Number(ev.revision);
    if (ev.kind === 'SNAPSHOT') {
      h.rev = rev;
      h.firstSnapshotAt ??= at;
      h.snapshotHosts = ev.hosts.length;
      for (const x of ev.hosts) if (x.name.startsWith(PROBE_PREFIX) && !h.probes.has(x.name)) gotProbe(h, x, at);
    } else {
      h.rev = Math.max(h.rev, rev);
      if (ev.kind === 'HOST_PUT') {
        for (const x of ev.hosts) if (x.name.startsWith(PROBE_PREFIX) && !h.probes.has(x.name)) gotProbe(h, x, at);
      }
    }
    wakeAll();
  });
  const again = (code: string) => {
    if (over) return;
    over = true;
    count(counters.streamEnds, code);
    if (h.stalled) h.stallEnds.set(code, (h.stallEnds.get(code) ?? 0) + 1);
    wakeAll();
    if (closing) return;
    setTimeout(() => openWatch(h), h.delays.next());
  };
  s.on('error', (e: grpc.ServiceError) => again(grpc.status[e.code] ?? String(e.code)));
  // a clean end: the controller is going away; reconnect as the agent does
  s.on('end', () => again('END'));
}

function scheduleHeartbeat(h: Host, ms: number): void {
  h.heartbeat = setTimeout(async () => {
    let next = heartbeatMs;
    try {
      const r = await call<any>(h, 'Heartbeat', { name: h.name });
      if (r.next_heartbeat_seconds > 0) next = r.next_heartbeat_seconds * 1000;
      count(counters.heartbeats, 'OK');
    } catch (e) {
      // the controller is away or busy: try again at the next beat, as the agent does
      count(counters.heartbeats, grpc.status[(e as grpc.ServiceError).code] ?? 'error');
    }
    if (!closing) scheduleHeartbeat(h, next);
  }, ms);
}

async function join(timeoutMs: number, inFlight: number): Promise<void> {
  let retries = 0;
  const registered: bigint[] = [];
  await pool(hosts, inFlight > 0 ? inFlight : hosts.length, async (h) => {
    const delays = backoff();
    for (;;) {
      try {
        await call(h, 'RegisterHost', hostRequest(h.name, h.n));
        registered.push(process.hrtime.bigint());
        break;
      } catch (e) {
        if (!RETRYABLE.has((e as grpc.ServiceError).code)) throw e;
        retries++;
        await sleep(delays.next());
      }
    }
    openWatch(h);
    // heartbeats spread over the interval, as agents started at different times are
    scheduleHeartbeat(h, Math.random() * heartbeatMs);
  });
  const ok = await until('a snapshot on every watch', () => hosts.every((h) => h.firstSnapshotAt !== undefined), timeoutMs);
  if (!ok) throw new Error(`${hosts.filter((h) => h.firstSnapshotAt === undefined).length} of ${hosts.length} watches had no snapshot after ${timeoutMs} ms`);
  const counts = hosts.map((h) => h.snapshotHosts!);
  send({
    ok: 'joined', registeredNs: maxNs(registered), snapshotsNs: maxNs(hosts.map((h) => h.firstSnapshotAt!)),
    registerRetries: retries, snapshotMin: Math.min(...counts), snapshotMax: Math.max(...counts),
  });
}

async function sync(host: string, timeoutMs: number): Promise<void> {
  const reading = hosts.filter((h) => !h.stalled);
  const ok = await until(`${host} on every watch`, () => reading.every((h) => h.probes.has(host)), timeoutMs);
  if (!ok) {
    const behind = reading.filter((h) => !h.probes.has(host));
    throw new Error(`${behind.length} of ${reading.length} watches did not get ${host} in ${timeoutMs} ms (first: ${behind[0]?.name}, watch at revision ${behind[0]?.rev})`);
  }
  send({
    ok: 'synced', lastNs: maxNs(reading.map((h) => h.probes.get(host)![0])), hosts: reading.length,
    openedNs: maxNs(reading.map((h) => h.probeStreams.get(host)!)),
    resumed: reading.filter((h) => h.afterMark === 'resumed').length,
    snapshots: reading.filter((h) => h.afterMark === 'SNAPSHOT').length,
    reconnects: reading.filter((h) => h.afterMark !== 'armed' && h.afterMark !== 'idle').length,
    notReopened: reading.filter((h) => h.afterMark === 'armed').length,
  });
}

function mark(): void {
  for (const h of hosts) h.afterMark = 'armed';
  send({ ok: 'marked' });
}

async function collect(host: string, timeoutMs: number): Promise<void> {
  const reading = hosts.filter((h) => !h.stalled);
  await until(`${host} on every watch`, () => reading.every((h) => h.probes.has(host)), timeoutMs);
  send({
    ok: 'collected', host,
    arrivals: reading.map((h): Arrival => {
      const g = h.probes.get(host);
      return g ? { watcher: h.name, ns: g[0].toString(), subnets: g[1] } : { watcher: h.name, missing: `no event (watch at revision ${h.rev})` };
    }),
  });
}

function stall(every: number): void {
  let count = 0;
  hosts.forEach((h, i) => {
    if (i % every !== 0) return;
    h.stalled = true;
    h.stallStreams = h.streams;
    h.stallEnds.clear();
    h.afterStall = 'armed';
    h.stream?.pause();
    count++;
  });
  send({ ok: 'stalled', count });
}

async function unstall(host: string, timeoutMs: number): Promise<void> {
  const stalled = hosts.filter((h) => h.stalled);
  for (const h of stalled) {
    h.stalled = false;
    h.stream?.resume();
  }
  const ok = await until(`${host} on every stalled watch`, () => stalled.every((h) => h.probes.has(host)), timeoutMs);
  if (!ok) throw new Error(`${stalled.filter((h) => !h.probes.has(host)).length} of ${stalled.length} stalled watches did not get ${host} within ${timeoutMs} ms of reading again`);
  const endedBy: Record<string, number> = {};
  for (const h of stalled) for (const [code, k] of h.stallEnds) endedBy[code] = (endedBy[code] ?? 0) + k;
  const outcome: StallOutcome = {
    stalled: stalled.length,
    caughtUp: stalled.filter((h) => h.streams === h.stallStreams).length,
    endedBy,
    resumed: stalled.filter((h) => h.afterStall === 'resumed').length,
    snapshots: stalled.filter((h) => h.afterStall === 'SNAPSHOT').length,
    lastNs: maxNs(stalled.map((h) => h.probes.get(host)![0])),
  };
  for (const h of stalled) h.afterStall = 'idle';
  send({ ok: 'unstalled', outcome });
}

function takeCounters(): void {
  send({ ok: 'counters', counters });
  counters = { streamEnds: {}, heartbeats: {}, opens: 0 };
}

function close(): void {
  closing = true;
  for (const h of hosts) {
    clearTimeout(h.heartbeat);
    h.stream?.cancel();
    h.client.close();
  }
  process.exit(0);
}

process.on('message', (m: ToHosts) => {
  const run = m.cmd === 'setup' ? setup(m)
    : m.cmd === 'join' ? join(m.timeoutMs, m.inFlight ?? 0)
    : m.cmd === 'sync' ? sync(m.host, m.timeoutMs)
    : m.cmd === 'mark' ? Promise.resolve(mark())
    : m.cmd === 'collect' ? collect(m.host, m.timeoutMs)
    : m.cmd === 'stall' ? Promise.resolve(stall(m.every))
    : m.cmd === 'unstall' ? unstall(m.host, m.timeoutMs)
    : m.cmd === 'counters' ? Promise.resolve(takeCounters())
    : Promise.resolve(close());
  run.catch((e: Error) => send({ error: `${m.cmd}: ${e.stack ?? e.message}` }));
});
// The parent is our lifeline: if it dies, so do we (no orphaned connections holding the controller's memory).
process.on('disconnect', () => process.exit(1));

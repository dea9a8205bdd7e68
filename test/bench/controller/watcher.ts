// One watcher process of the fan-out bench: simulates a share of the hosts,
// each with its own key, client certificate and gRPC channel (its own TCP
// and TLS connection: no subchannel sharing), registers them as agents do,
// then keeps one WatchTopology stream per host open.
//
// Arrival times are process.hrtime (CLOCK_MONOTONIC, one clock for every
// process on the machine), taken first thing in the 'data' handler and kept
// in memory; the parent collects them only after each event has reached
// every watcher, so reporting never competes with delivery.
//
// Talks to the parent over IPC: setup -> watch -> collect* -> close.
import * as grpc from '@grpc/grpc-js';
import { controllerClientConstructor } from '../../../controller/api/proto';
import { loadCa } from '../../../controller/pki';
import { hostChannelOptions, hostRequest, type ToChild, type FromChild } from './protocol';
import { pool } from './pool';
import { eventWaits, hostIdentity, unaryCall } from './child-calls';

type Watcher = {
  name: string;
  client: grpc.Client;
  md: grpc.Metadata;
  stream?: grpc.ClientReadableStream<any>;
  snapshotHosts?: number;
  /** new host -> [arrival (ns, monotonic), subnet in the event] */
  got: Map<string, [bigint, string]>;
  ended?: string;
};

const watchers: Watcher[] = [];
const { until, wakeAll } = eventWaits();

function send(m: FromChild): void {
  process.send!(m);
}

const call = <T>(w: { client: any; md: grpc.Metadata }, method: string, req: unknown): Promise<T> => unaryCall<T>(w.client, w.md, method, req, 60_000);

async function setup(m: Extract<ToChild, { cmd: 'setup' }>): Promise<void> {
  const t0 = Date.now();
  const Client = controllerClientConstructor();
  const ca = m.mode === 'mtls' ? await loadCa(m.caDir) : undefined;
  for (const { name } of m.hosts) {
    const { creds, md } = await hostIdentity(ca, name);
    const client = new Client(m.target, creds, hostChannelOptions(m.mode));
    watchers.push({ name, client, md, got: new Map() });
  }
  const certsMs = Date.now() - t0;
  const byName = new Map(m.hosts.map((h) => [h.name, h.n]));
  await pool(watchers, 8, async (w) => {
    await call(w, 'RegisterHost', hostRequest(w.name, byName.get(w.name)!));
  });
  send({ ok: 'setup', certsMs, registerMs: Date.now() - t0 - certsMs });
}

async function watch(timeoutMs: number): Promise<void> {
  for (const w of watchers) {
    const s: grpc.ClientReadableStream<any> = (w.client as any).WatchTopology({ from_revision: 0 }, w.md);
    w.stream = s;
    s.on('data', (msg: any) => {
      const at = process.hrtime.bigint();
      if (msg.kind === 'SNAPSHOT') w.snapshotHosts = msg.hosts.length;
      else if (msg.kind === 'HOST_PUT') {
        for (const h of msg.hosts) {
          if (!w.got.has(h.name)) w.got.set(h.name, [at, h.subnets.map((s: any) => `${s.network}:${s.subnet}`).join(',')]);
        }
      }
      wakeAll();
    });
    s.on('error', (e: grpc.ServiceError) => { w.ended ??= `error ${grpc.status[e.code]}: ${e.details}`; wakeAll(); });
    s.on('end', () => { w.ended ??= 'ended by the controller'; wakeAll(); });
  }
  const ok = await until('a snapshot on every watch', () => watchers.every((w) => w.snapshotHosts !== undefined || w.ended), timeoutMs);
  const ended = watchers.filter((w) => w.ended);
  const missing = watchers.filter((w) => w.snapshotHosts === undefined).length;
  if (!ok || ended.length > 0) {
    throw new Error(`${missing} of ${watchers.length} watchers had no snapshot after ${timeoutMs} ms; ${ended.length} streams ended (first: ${ended[0]?.name} ${ended[0]?.ended})`);
  }
  const counts = watchers.map((w) => w.snapshotHosts!);
  send({ ok: 'watching', snapshotMin: Math.min(...counts), snapshotMax: Math.max(...counts) });
}

async function collect(host: string, timeoutMs: number): Promise<void> {
  await until(`${host} on every watch`, () => watchers.every((w) => w.got.has(host) || w.ended), timeoutMs);
  send({
    ok: 'collected',
    host,
    arrivals: watchers.map((w) => {
      const g = w.got.get(host);
      return g ? { watcher: w.name, ns: g[0].toString(), subnets: g[1] } : { watcher: w.name, missing: w.ended ?? 'no event' };
    }),
  });
}

function close(): void {
  for (const w of watchers) {
    w.stream?.cancel();
    w.client.close();
  }
  process.exit(0);
}

process.on('message', (m: ToChild) => {
  const run = m.cmd === 'setup' ? setup(m) : m.cmd === 'watch' ? watch(m.timeoutMs) : m.cmd === 'collect' ? collect(m.host, m.timeoutMs) : Promise.resolve(close());
  run.catch((e: Error) => send({ error: `${m.cmd}: ${e.stack ?? e.message}` }));
});
// The parent is our lifeline: if it dies, so do we (no orphaned connections holding the controller's memory).
process.on('disconnect', () => process.exit(1));

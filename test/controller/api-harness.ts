// A real controller for API tests: the SQLite store in a temp dir, a grpc-js
// server on 127.0.0.1 and a client. The store is the real one, wrapped only
// to count open watches (so tests can prove a cancelled stream stops its
// watch), and the server counts the watch streams it has open (so a test
// knows when the server has seen a client cancel). Identity comes from a
// test header unless a test passes its own function (the mTLS test does).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { controllerClientConstructor, controllerServiceDefinition } from '../../controller/api/proto';
import { createControllerService, type ControllerDeps } from '../../controller/service/service';
import type { Identity, IdentityFn } from '../../controller/service/caller';
import { saveClusterConfig } from '../../controller/ipam';
import { openSqliteStore } from '../../controller/store/sqlite';
import type { Store } from '../../controller/store/types';
import { captureLogger, type LogLine } from '../helpers/log';
import { waitFor } from '../helpers/wait';

export const ID_HEADER = 'x-test-identity';

/** "host:<name>", "ingress:<name>" or "admin" in the test header; no header: anonymous. */
export const headerIdentity: IdentityFn = (call) => {
  const v = (call as unknown as grpc.ServerUnaryCall<unknown, unknown>).metadata.get(ID_HEADER)[0];
  if (typeof v !== 'string') return null;
  if (v === 'admin') return 'admin';
  if (v.startsWith('ingress:')) return { ingress: v.slice(8) };
  return v.startsWith('host:') ? { host: v.slice(5) } : null;
};

export type { LogLine };

export type Harness = {
  store: Store;
  client: grpc.Client;
  port: number;
  logs: LogLine[];
  activeWatches: () => number;
  /** Server-side watch streams not yet finished or cancelled. */
  openStreams: () => number;
  clock: { now: number };
  call<Res = any>(method: string, req: unknown, as?: string): Promise<Res>;
  open(method: string, req: unknown, as?: string): Reader;
  close(): Promise<void>;
};

export type Reader = {
  msgs: any[];
  /** Resolves with the first message (at index >= from) that matches, within `ms`. */
  waitFor(pred: (m: any) => boolean, ms?: number, from?: number): Promise<any>;
  /** Resolves when the stream ends with an error or cleanly: the status. */
  ended: Promise<grpc.StatusObject | { code: 0 }>;
  cancel(): void;
};

export const TEST_CONFIG = {
  networks: [
    { name: 'default', vni: 1, cidr: '10.244.0.0/16', hostPrefixLength: 24 },
    { name: 'blue', vni: 2, cidr: '10.250.0.0/16', hostPrefixLength: 24 },
  ],
  leaseTtlSeconds: 60,
};

export function countWatches(store: Store): { store: Store; active: () => number } {
  let active = 0;
  const wrapped: Store = {
    ...store,
    watch(prefix, opts) {
      const inner = store.watch(prefix, opts);
      return {
        async *[Symbol.asyncIterator]() {
          active++;
          try {
            yield* inner;
          } finally {
            active--;
          }
        },
      };
    },
  };
  return { store: wrapped, active: () => active };
}

/** The service with each server-streaming method counting its open streams through `delta` (+1 open, -1 done). */
function countStreams(impl: grpc.UntypedServiceImplementation, delta: (d: 1 | -1) => void): grpc.UntypedServiceImplementation {
  const def = controllerServiceDefinition();
  const out: grpc.UntypedServiceImplementation = { ...impl };
  for (const [method, handler] of Object.entries(impl)) {
    if (!def[method]?.responseStream) continue;
    out[method] = ((call: grpc.ServerWritableStream<unknown, unknown>) => {
      delta(1);
      let open = true;
      const done = () => {
        if (open) delta(-1);
        open = false;
      };
      // after the handler, so its own 'cancelled' and 'close' listeners have run when the count drops
      const r = (handler as (c: typeof call) => unknown)(call);
      for (const ev of ['cancelled', 'close', 'finish']) call.once(ev, done);
      return r;
    }) as grpc.UntypedHandleCall;
  }
  return out;
}

export async function startHarness(opts: {
  identity?: IdentityFn;
  deps?: Partial<ControllerDeps>;
  serverCredentials?: grpc.ServerCredentials;
  clientCredentials?: grpc.ChannelCredentials;
  config?: unknown;
  /** The gRPC server's options (the daemon's come from controller/service/server-options.ts). */
  serverOptions?: grpc.ServerOptions;
  /** Wraps the service as the daemon does (its metrics), given the store. */
  instrument?: (impl: grpc.UntypedServiceImplementation, store: Store) => grpc.UntypedServiceImplementation;
} = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-api-'));
  const raw = openSqliteStore(join(dir, 'store.db'), { pollIntervalMs: 20 });
  const { store, active } = countWatches(raw);
  await saveClusterConfig(store, opts.config ?? TEST_CONFIG);
  const { logger, lines: logs } = captureLogger('info');
  const clock = { now: Date.now() };
  const server = new grpc.Server(opts.serverOptions);
  let streams = 0;
  const impl = createControllerService({
    store,
    identity: opts.identity ?? headerIdentity,
    logger,
    controllerId: 'test-controller',
    now: () => clock.now,
    version: 'test',
    ...opts.deps,
  });
  server.addService(controllerServiceDefinition(), countStreams(opts.instrument ? opts.instrument(impl, opts.deps?.store ?? store) : impl, (d) => (streams += d)));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', opts.serverCredentials ?? grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const Client = controllerClientConstructor();
  const client = new Client(`127.0.0.1:${port}`, opts.clientCredentials ?? grpc.credentials.createInsecure());
  const readers: Reader[] = [];

  const md = (as?: string) => {
    const m = new grpc.Metadata();
    if (as) m.set(ID_HEADER, as);
    return m;
  };

  return {
    store: raw,
    client,
    port,
    logs,
    activeWatches: active,
    openStreams: () => streams,
    clock,
    call(method, req, as) {
      return new Promise((resolve, reject) => {
        (client as any)[method](req, md(as), { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: any) => (err ? reject(err) : resolve(res)));
      });
    },
    open(method, req, as) {
      const s: grpc.ClientReadableStream<any> = (client as any)[method](req, md(as));
      const msgs: any[] = [];
      const waiters = new Set<() => void>();
      s.on('data', (m) => {
        msgs.push(m);
        for (const w of [...waiters]) w();
      });
      const ended = new Promise<grpc.StatusObject | { code: 0 }>((resolve) => {
        s.on('error', (e: grpc.ServiceError) => resolve(e));
        s.on('end', () => resolve({ code: 0 }));
      });
      const reader: Reader = {
        msgs,
        ended,
        cancel: () => s.cancel(),
        waitFor(pred, ms = 5000, from = 0) {
          const wake = (check: () => void) => {
            waiters.add(check);
            return () => waiters.delete(check);
          };
          return waitFor(`a matching ${method} message`, () => msgs.slice(from).find(pred), { ms, wake }).catch((e: Error) => {
            throw new Error(`${e.message}; got ${JSON.stringify(msgs.slice(from)).slice(0, 2000)}`);
          });
        },
      };
      readers.push(reader);
      return reader;
    },
    async close() {
      for (const r of readers) r.cancel();
      client.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      server.forceShutdown();
      await raw.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const WG_KEY = Buffer.alloc(32, 7).toString('base64');
/** Host n's WireGuard key: the controller refuses a key another host holds, so each test host has its own. */
export const wgKeyFor = (n: number): string => Buffer.alloc(32, n % 256).toString('base64');

export function hostRequest(name: string, n: number, extra: Record<string, unknown> = {}) {
  return {
    name,
    underlay_ip: `192.168.1.${n}`,
    vtep_mac: `02:00:00:00:00:${n.toString(16).padStart(2, '0')}`,
    rack: 'r1',
    datacenter: 'dc1',
    wg_public_key: wgKeyFor(n),
    agent_version: '0.1.0',
    networks: [],
    ...extra,
  };
}

export async function registerHost(h: Harness, name: string, n: number, extra: Record<string, unknown> = {}) {
  return h.call('RegisterHost', hostRequest(name, n, extra), `host:${name}`);
}

export type { Identity };

// Prometheus metrics of one controller process. Counts that live in the
// store (hosts, leases, endpoints, revision) are read when scraped, so every
// controller of an HA cluster reports the same cluster-wide numbers; what
// happens in this process (requests, watch streams, allocation latency,
// leadership) is counted here as it happens.
//
// The API handlers are instrumented from the outside (wrapping the service
// implementation and the IPAM functions it is given), so the handlers stay
// free of metrics code.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../common/log';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { LeaseFns } from '../service/service';
import { LEASES_PREFIX } from '../ipam/records';
import { ENDPOINTS_PREFIX, HOSTS_PREFIX, SERVICES_PREFIX } from '../registry/keys';
import type { Store } from '../store/types';

export type ControllerMetrics = {
  registry: Registry;
  requests: Counter<'method' | 'code'>;
  watchStreams: Gauge<'method'>;
  watchSentRevision: Gauge<'method'>;
  allocation: Histogram<'network' | 'result'>;
  leader: Gauge;
  reclaimed: Counter;
};

export function createMetrics(deps: { store: Store; isLeader: () => boolean; controllerId: string; version: string }): ControllerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const { store } = deps;

  new Gauge({
    name: 'weft_controller_info', help: 'Always 1; labels name this controller and its version', registers: [registry],
    labelNames: ['controller_id', 'version', 'store'],
  }).set({ controller_id: deps.controllerId, version: deps.version, store: store.kind }, 1);

  // One collector reads the store for all store-derived gauges, once per scrape.
  let pending: Promise<void> | undefined;
  const collect = () =>
    (pending ??= (async () => {
      try {
        const [h, l, e, s, rev] = await Promise.all([
          store.range(HOSTS_PREFIX), store.range(LEASES_PREFIX), store.range(ENDPOINTS_PREFIX), store.range(SERVICES_PREFIX), store.revision(),
        ]);
        hosts.set(h.kvs.length);
        endpoints.set(e.kvs.length);
        services.set(s.kvs.length);
        revision.set(rev);
        leases.reset();
        for (const kv of l.kvs) {
          const network = kv.key.slice(LEASES_PREFIX.length).split('/')[0];
          if (network) leases.inc({ network });
        }
        storeUp.set(1);
      } catch {
        storeUp.set(0);
      } finally {
        pending = undefined;
      }
    })());
  const storeUp = new Gauge({ name: 'weft_store_up', help: '1 if the last scrape could read the store', registers: [registry], collect });
  const revision = new Gauge({ name: 'weft_store_revision', help: 'Current global store revision', registers: [registry], collect });
  const hosts = new Gauge({ name: 'weft_hosts', help: 'Registered hosts', registers: [registry], collect });
  const leases = new Gauge({ name: 'weft_leases', help: 'Subnet leases held, per network', labelNames: ['network'], registers: [registry], collect });
  const endpoints = new Gauge({ name: 'weft_endpoints', help: 'Registered container endpoints', registers: [registry], collect });
  const services = new Gauge({ name: 'weft_services', help: 'Services', registers: [registry], collect });

  const leader = new Gauge({
    name: 'weft_leader', help: '1 while this controller is the elected leader', registers: [registry],
    collect() {
      this.set(deps.isLeader() ? 1 : 0);
    },
  });

  return {
    registry,
    leader,
    requests: new Counter({
      name: 'weft_grpc_requests_total', help: 'Finished gRPC calls by method and status code', labelNames: ['method', 'code'], registers: [registry],
    }),
    watchStreams: new Gauge({ name: 'weft_watch_streams', help: 'Open watch streams', labelNames: ['method'], registers: [registry] }),
    watchSentRevision: new Gauge({
      name: 'weft_watch_sent_revision',
      help: 'Highest revision sent on any watch stream; compare with weft_store_revision (a stream only sends revisions that change what it watches)',
      labelNames: ['method'], registers: [registry],
    }),
    allocation: new Histogram({
      name: 'weft_subnet_allocation_seconds', help: 'Time to acquire a subnet lease', labelNames: ['network', 'result'], registers: [registry],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    }),
    reclaimed: new Counter({ name: 'weft_leases_reclaimed_total', help: 'Expired leases reclaimed by this controller as leader', registers: [registry] }),
  };
}

/** The IPAM functions the service uses, with acquireLease timed. */
export function instrumentLeases(fns: LeaseFns, m: ControllerMetrics): LeaseFns {
  const acquireLease: LeaseFns['acquireLease'] = async (store, req, opts) => {
    const end = m.allocation.startTimer({ network: req.network });
    try {
      const lease = await fns.acquireLease(store, req, opts);
      end({ result: 'ok' });
      return lease;
    } catch (err) {
      end({ result: 'error' });
      throw err;
    }
  };
  return { ...fns, acquireLease };
}

type Handler = (call: any, callback?: any) => void;

/** Refusals worth an audit line with the peer's address: someone without the right credentials tried. */
const AUDITED = new Set([grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED]);

/**
 * Wraps every handler: unary calls are counted by status code; server
 * streams are counted while open and the revision of each message they send
 * is recorded. With a logger, refused calls are logged with the peer address
 * (a malformed Join token counts: it is how a token guesser shows up).
 */
export function instrumentService(
  impl: grpc.UntypedServiceImplementation,
  definition: grpc.ServiceDefinition,
  m: ControllerMetrics,
  log?: Logger,
): grpc.UntypedServiceImplementation {
  const audit = (method: string, call: { getPeer?: () => string }, err: Partial<grpc.StatusObject>) => {
    const code = err.code ?? grpc.status.UNKNOWN;
    if (AUDITED.has(code) || (method === 'Join' && code === grpc.status.INVALID_ARGUMENT)) {
      log?.warn({ method, code: grpc.status[code], peer: call.getPeer?.(), details: err.details }, 'refused call');
    }
  };
  const out: grpc.UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(impl) as Array<[string, Handler]>) {
    const def = definition[method];
    if (def?.responseStream) {
      out[method] = ((call: grpc.ServerWritableStream<unknown, { revision?: number }>) => {
        m.watchStreams.inc({ method });
        let open = true;
        const closed = (code: string) => () => {
          if (!open) return;
          open = false;
          m.watchStreams.dec({ method });
          m.requests.inc({ method, code });
        };
        call.once('finish', closed('OK'));
        call.once('cancelled', closed('CANCELLED'));
        call.once('close', closed('OK'));
        // The callback goes through: the watch hub waits on it to know a snapshot's bytes have left.
        const write = call.write.bind(call) as (msg: { revision?: number }, cb?: () => void) => boolean;
        (call as { write: unknown }).write = (msg: { revision?: number }, cb?: () => void) => {
          if (typeof msg?.revision === 'number') m.watchSentRevision.set({ method }, msg.revision);
          return write(msg, cb);
        };
        const emit = call.emit.bind(call);
        (call as { emit: unknown }).emit = (event: string, ...args: unknown[]) => {
          if (event === 'error') {
            const err = args[0] as Partial<grpc.StatusObject>;
            audit(method, call, err);
            closed(grpc.status[err?.code ?? grpc.status.UNKNOWN] ?? 'UNKNOWN')();
          }
          return emit(event, ...args);
        };
        handler(call);
      }) as grpc.UntypedHandleCall;
    } else {
      out[method] = ((call: unknown, callback: grpc.sendUnaryData<unknown>) => {
        handler(call, (err: Partial<grpc.StatusObject> | null, res: unknown) => {
          if (err) audit(method, call as { getPeer?: () => string }, err);
          m.requests.inc({ method, code: err ? (grpc.status[err.code ?? grpc.status.UNKNOWN] ?? 'UNKNOWN') : 'OK' });
          callback(err as grpc.ServiceError | null, res);
        });
      }) as grpc.UntypedHandleCall;
    }
  }
  return out;
}

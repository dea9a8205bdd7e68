// Container endpoints on their way to the controller. The CNI handlers must
// never wait for (or fail because of) the controller, so registered() and
// released() only write the intent to the agent's SQLite file and return; a
// delivery loop sends the queue in order, retrying with backoff, and what is
// still queued when the agent stops is sent after it starts again.
//
// Order matters only per address, but one queue in write order keeps that for
// free (a release of 10.244.3.7 by one container is delivered before the
// register of 10.244.3.7 by the next) and costs little: the queue is short
// except during an outage, when nothing can be delivered anyway.
//
// A release cancels a register of the same endpoint still waiting in the
// queue; the release itself stays queued, because a register that was already
// sent may have been applied even if its answer was lost, and a release of an
// endpoint the controller never had is a harmless no-op (released: false).
//
// An item the controller can never accept is dropped at once, so it cannot
// hold up the items behind it: one that fails the controller's own request
// rules here (validate.ts; e.g. queued by an older agent that did not check
// labels), and one the controller refuses with INVALID_ARGUMENT naming a
// field of the record itself. A refusal about endpoint.network or
// endpoint.ip depends on the cluster (this host holds no subnet while it
// re-registers), so those get maxRefusals tries first.
import * as grpc from '@grpc/grpc-js';
import { agentDbPath, openAgentDb } from '../state/agent-db';
import type { EndpointRecord, EndpointSink } from '../state/types';
import { backoff, sleep, type BackoffOptions } from '../../../controller/api/client/backoff';
import { grpcCode, isTransient } from '../../../controller/api/client/client';
import { checkContainerId, checkIfname, checkLabels, checkName, checkUnicastIp } from '../../../controller/api/validate';
import type { AgentClient } from './controller';
import { type Logger, silentLogger } from '../../../controller/common/log';

export type OutboxOp = 'register' | 'release';
export type OutboxItem = { seq: number; op: OutboxOp; endpoint: EndpointRecord; queuedAt: number; attempts: number; lastError: string | null };

/** The two calls the outbox needs; the agent passes its AgentClient. */
export type EndpointDelivery = Pick<AgentClient, 'registerEndpoint' | 'releaseEndpoint'>;

export type OutboxOptions = {
  /** The agent's DB file; default: the agent's DB in the default state dir. */
  path?: string;
  log?: Logger;
  backoff?: BackoffOptions;
  /**
   * How often the controller may refuse an item (a refusal other than "away
   * or busy") before it is dropped. Refusals can be passing — an endpoint sent
   * while the host is re-registering has no subnet yet — so one is not enough;
   * but a queue must not stall forever behind one bad item.
   */
  maxRefusals?: number;
  onDelivered?: (item: OutboxItem) => void;
  onDropped?: (item: OutboxItem, err: Error) => void;
  now?: () => number;
};

export type EndpointOutbox = EndpointSink & {
  /** Starts delivering through `delivery`; queued items from earlier runs go first. */
  start(delivery: EndpointDelivery): void;
  /** Stops delivering (after the call in flight, if any); the queue stays on disk. */
  stop(): Promise<void>;
  pending(): OutboxItem[];
  /** Resolves once the queue is empty (tests and graceful shutdown). */
  drained(): Promise<void>;
  close(): Promise<void>;
};

const SCHEMA = `
CREATE TABLE IF NOT EXISTS outbox_endpoints (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  op TEXT NOT NULL CHECK (op IN ('register', 'release')),
  network TEXT NOT NULL,
  ip TEXT NOT NULL,
  container_id TEXT NOT NULL,
  ifname TEXT NOT NULL,
  labels TEXT NOT NULL,
  queued_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_endpoints_by_endpoint ON outbox_endpoints (network, ip, container_id);
`;

type Row = {
  seq: number; op: OutboxOp; network: string; ip: string; container_id: string; ifname: string; labels: string;
  queued_at: number; attempts: number; last_error: string | null;
};

function toItem(r: Row): OutboxItem {
  return {
    seq: r.seq, op: r.op, queuedAt: r.queued_at, attempts: r.attempts, lastError: r.last_error,
    endpoint: { network: r.network, ip: r.ip, containerId: r.container_id, ifname: r.ifname, labels: JSON.parse(r.labels) },
  };
}

/** A release refused because the address is not (or no longer) ours to release has nothing left to do. */
function releaseSettled(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === grpc.status.FAILED_PRECONDITION || code === grpc.status.PERMISSION_DENIED || code === grpc.status.NOT_FOUND;
}

/** Why the controller's request rules refuse this item, whatever the cluster's state; undefined when they accept it. */
export function invalidItem(item: Pick<OutboxItem, 'op' | 'endpoint'>): string | undefined {
  const ep = item.endpoint;
  const p = item.op === 'register' ? 'endpoint.' : '';
  return (
    checkName(ep.network, `${p}network`) ??
    checkUnicastIp(ep.ip, `${p}ip`) ??
    checkContainerId(ep.containerId, `${p}container_id`) ??
    (item.op === 'register' ? checkIfname(ep.ifname, 'endpoint.ifname') ?? checkLabels(ep.labels, 'endpoint.labels') : undefined)
  );
}

// Fields whose refusal can pass: the network may be configured later, the host may hold no subnet yet.
const STATE_DEPENDENT_FIELDS = ['endpoint.network', 'endpoint.ip'];

/** INVALID_ARGUMENT about the record itself: sending it again can never succeed. */
function refusedForGood(err: unknown): boolean {
  if ((err as { code?: unknown })?.code !== grpc.status.INVALID_ARGUMENT) return false;
  // the controller's messages start with the proto path of the field (controller/api/validate.ts)
  const details = String((err as { details?: unknown }).details ?? '');
  const field = /^([a-z_.]+): /.exec(details)?.[1];
  return field === undefined || !STATE_DEPENDENT_FIELDS.includes(field);
}

export function openEndpointOutbox(o: OutboxOptions = {}): EndpointOutbox {
  const log = o.log ?? silentLogger;
  const now = o.now ?? Date.now;
  const maxRefusals = Math.max(1, o.maxRefusals ?? 8);
  // An intent the CNI runtime was told about must survive a power cut: openAgentDb's synchronous=FULL.
  const db = openAgentDb(o.path ?? agentDbPath());
  db.exec(SCHEMA);

  const q = {
    insert: db.prepare(`INSERT INTO outbox_endpoints (op, network, ip, container_id, ifname, labels, queued_at) VALUES (?, ?, ?, ?, ?, ?, ?)`),
    head: db.prepare(`SELECT * FROM outbox_endpoints ORDER BY seq LIMIT 1`),
    all: db.prepare(`SELECT * FROM outbox_endpoints ORDER BY seq`),
    remove: db.prepare(`DELETE FROM outbox_endpoints WHERE seq = ?`),
    failed: db.prepare(`UPDATE outbox_endpoints SET attempts = attempts + 1, last_error = ? WHERE seq = ?`),
    // Registers of this endpoint not yet handed to the controller; the one in flight (seq = ?) is past recall.
    cancel: db.prepare(`DELETE FROM outbox_endpoints WHERE op = 'register' AND network = ? AND ip = ? AND container_id = ? AND seq IS NOT ?`),
    // Every queued register of an endpoint comes after its last release (a release deletes those before it), so it is safe to refresh.
    refresh: db.prepare(`UPDATE outbox_endpoints SET ifname = ?, labels = ? WHERE op = 'register' AND network = ? AND ip = ? AND container_id = ? AND seq IS NOT ?`),
  };

  let inFlight: number | null = null;
  let wake: (() => void) | null = null;
  let running: { stop: AbortController; done: Promise<void> } | null = null;
  const drainWaiters = new Set<() => void>();

  const kick = () => {
    wake?.();
  };
  const checkDrained = () => {
    if (q.head.get() !== undefined) return;
    for (const w of [...drainWaiters]) w();
    drainWaiters.clear();
  };

  const registerTx = db.transaction((ep: EndpointRecord) => {
    const labels = JSON.stringify(ep.labels ?? {});
    // An ADD retried by the runtime reports the same endpoint again: one queued register is enough.
    const r = q.refresh.run(ep.ifname, labels, ep.network, ep.ip, ep.containerId, inFlight);
    if (r.changes === 0) q.insert.run('register', ep.network, ep.ip, ep.containerId, ep.ifname, labels, now());
  });
  const releaseTx = db.transaction((ep: EndpointRecord) => {
    const cancelled = q.cancel.run(ep.network, ep.ip, ep.containerId, inFlight).changes;
    q.insert.run('release', ep.network, ep.ip, ep.containerId, ep.ifname, JSON.stringify(ep.labels ?? {}), now());
    return cancelled;
  });

  async function deliverOne(d: EndpointDelivery, item: OutboxItem): Promise<void> {
    if (item.op === 'register') await d.registerEndpoint(item.endpoint);
    else await d.releaseEndpoint(item.endpoint);
  }

  async function run(d: EndpointDelivery, stop: AbortSignal): Promise<void> {
    const delays = backoff({ initialMs: 250, maxMs: 10_000, ...o.backoff });
    while (!stop.aborted) {
      const row = q.head.get() as Row | undefined;
      if (!row) {
        checkDrained();
        await new Promise<void>((resolve) => {
          const done = () => {
            wake = null;
            stop.removeEventListener('abort', done);
            resolve();
          };
          wake = done;
          stop.addEventListener('abort', done, { once: true });
        });
        continue;
      }
      const item = toItem(row);
      const invalid = invalidItem(item);
      if (invalid) {
        q.remove.run(item.seq);
        log.error({ op: item.op, endpoint: item.endpoint, problem: invalid }, `endpoint update the controller would refuse; dropped: ${invalid}`);
        o.onDropped?.({ ...item, lastError: invalid }, new Error(invalid));
        continue;
      }
      inFlight = item.seq;
      let err: unknown = null;
      try {
        await deliverOne(d, item);
      } catch (e) {
        err = e;
      } finally {
        inFlight = null;
      }
      if (err === null || (item.op === 'release' && releaseSettled(err))) {
        q.remove.run(item.seq);
        delays.reset();
        log.debug({ op: item.op, endpoint: item.endpoint, settled: err ? grpcCode(err) : undefined }, 'endpoint delivered');
        o.onDelivered?.(item);
        continue;
      }
      const message = (err as Error)?.message ?? String(err);
      const transient = isTransient(err);
      if (refusedForGood(err)) {
        q.remove.run(item.seq);
        log.error({ op: item.op, endpoint: item.endpoint, code: grpcCode(err), err }, `controller refused an endpoint update as invalid; dropped: ${message}`);
        o.onDropped?.({ ...item, attempts: item.attempts + 1, lastError: message }, err as Error);
        continue;
      }
      if (!transient && item.attempts + 1 >= maxRefusals) {
        q.remove.run(item.seq);
        log.error({ op: item.op, endpoint: item.endpoint, code: grpcCode(err), err, attempts: item.attempts + 1 }, 'controller keeps refusing an endpoint update; dropped');
        o.onDropped?.({ ...item, attempts: item.attempts + 1, lastError: message }, err as Error);
        continue;
      }
      q.failed.run(message, item.seq);
      const wait = delays.next();
      (transient ? log.debug : log.warn).call(log, { op: item.op, endpoint: item.endpoint, code: grpcCode(err), err, retryInMs: wait }, 'endpoint delivery failed; will retry');
      await sleep(wait, stop);
    }
  }

  return {
    registered(ep) {
      registerTx(ep);
      kick();
    },
    released(ep) {
      const cancelled = releaseTx(ep);
      if (cancelled > 0) log.debug({ endpoint: ep, cancelled }, 'release cancelled a queued register');
      kick();
    },
    start(delivery) {
      if (running) throw new Error('endpoint outbox is already delivering');
      const stop = new AbortController();
      running = { stop, done: run(delivery, stop.signal).catch((err) => log.error({ err }, 'endpoint outbox stopped on an error')) };
    },
    async stop() {
      const r = running;
      running = null;
      if (!r) return;
      r.stop.abort();
      await r.done;
    },
    pending: () => (q.all.all() as Row[]).map(toItem),
    drained() {
      return new Promise((resolve) => {
        drainWaiters.add(resolve);
        checkDrained();
      });
    },
    async close() {
      await this.stop();
      db.close();
    },
  };
}

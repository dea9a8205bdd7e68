// The Store on an etcd v3 cluster, through the etcd3 client's raw KV, Lease
// and Watch RPCs: the Store contract is etcd's own, so this is mostly a
// translation of names and of revisions (int64 strings) to numbers.
import {
  Etcd3, EtcdLeaseInvalidError, GRPCOutOfRangeError, isRecoverableError,
  type ICompare, type IKeyValue, type IRequestOp, type IWatchRequest, type IWatchResponse, type IDuplexStream,
} from 'etcd3';
import {
  CompactedError, LeaseNotFoundError, StoreUnavailableError,
  type Compare, type KeyValue, type Store, type TxnOp, type WatchBatch, type WatchEvent, type WatchOptions,
} from './types';
import {
  checkCompare, checkKey, checkLeaseId, checkLimit, checkPrefix, checkRevision, checkTtl, checkTxnOps, checkValue,
} from './checks';

export type EtcdStoreOptions = {
  /** Deadline for each unary request (ms). */
  requestTimeoutMs?: number;
  /** How long to wait for a connection (ms). */
  dialTimeoutMs?: number;
  /** TLS towards etcd. */
  credentials?: { rootCertificate: Buffer; privateKey?: Buffer; certChain?: Buffer };
  auth?: { username: string; password: string };
  /** Longest pause between watch reconnection attempts (ms). */
  maxWatchBackoffMs?: number;
};

const ZERO = Buffer.from([0]);

/** Byte-wise range end for a prefix; "\0" means "to the end of the keyspace" in etcd. */
function rangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return ZERO;
}

function prefixRange(prefix: string): { key: Buffer; range_end: Buffer } {
  // etcd has no empty key; "\0".."\0" is its spelling of "every key"
  if (prefix === '') return { key: ZERO, range_end: ZERO };
  const key = Buffer.from(prefix);
  return { key, range_end: rangeEnd(key) };
}

function toKv(kv: IKeyValue): KeyValue {
  const out: KeyValue = {
    key: kv.key.toString(),
    value: kv.value ? kv.value.toString() : '',
    createRevision: Number(kv.create_revision),
    modRevision: Number(kv.mod_revision),
    version: Number(kv.version),
  };
  if (kv.lease && kv.lease !== '0') out.lease = String(kv.lease);
  return out;
}

function toEvent(ev: { type: string | number; kv: IKeyValue; prev_kv?: IKeyValue | null }, withPrev: boolean): WatchEvent {
  const isDelete = ev.type === 'Delete' || ev.type === 1;
  const kv = isDelete
    ? { key: ev.kv.key.toString(), value: '', createRevision: 0, modRevision: Number(ev.kv.mod_revision), version: 0 }
    : toKv(ev.kv);
  const out: WatchEvent = { type: isDelete ? 'delete' : 'put', kv };
  if (withPrev && ev.prev_kv) out.prevKv = toKv(ev.prev_kv);
  return out;
}

const compareTarget = { value: 'Value', version: 'Version', createRevision: 'Create', modRevision: 'Mod' } as const;
const compareResult = { '==': 'Equal', '!=': 'NotEqual', '<': 'Less', '>': 'Greater' } as const;

function toCompare(c: Compare): ICompare {
  const base: ICompare = { key: Buffer.from(c.key), target: compareTarget[c.target], result: compareResult[c.op] };
  switch (c.target) {
    case 'value': return { ...base, value: Buffer.from(c.value) };
    case 'version': return { ...base, version: c.version };
    case 'createRevision': return { ...base, create_revision: c.createRevision };
    case 'modRevision': return { ...base, mod_revision: c.modRevision };
  }
}

function toRequestOp(op: TxnOp): IRequestOp {
  switch (op.type) {
    case 'put': return { request_put: { key: Buffer.from(op.key), value: Buffer.from(op.value), lease: op.lease ?? 0 } };
    case 'delete': return { request_delete_range: { key: Buffer.from(op.key) } };
    case 'deletePrefix': return { request_delete_range: prefixRange(op.prefix) };
    case 'get': return { request_range: { key: Buffer.from(op.key) } };
  }
}

function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return isRecoverableError(err)
    || err.constructor.name === 'BrokenCircuitError' || err.name === 'ClientClosedError'
    // the client's circuit breaker refuses calls for a while after failures
    || /UNAVAILABLE|DEADLINE_EXCEEDED|ECONNREFUSED|No connection established|circuit breaker is open/i.test(err.message);
}

/** Opens a client for `endpoints` and checks one of them answers. */
export async function openEtcdStore(endpoints: string | string[], opts: EtcdStoreOptions = {}): Promise<Store> {
  const hosts = (Array.isArray(endpoints) ? endpoints : endpoints.split(',')).map((h) => h.trim()).filter(Boolean);
  if (hosts.length === 0) throw new TypeError('etcd store needs at least one endpoint, e.g. http://127.0.0.1:2379');
  for (const h of hosts) {
    if (!/^https?:\/\/[^/\s]+\/?$/.test(h)) throw new TypeError(`etcd endpoint "${h}" must look like http://host:port or https://host:port`);
  }
  const requestTimeout = opts.requestTimeoutMs ?? 10_000;
  const client = new Etcd3({
    hosts,
    dialTimeout: opts.dialTimeoutMs ?? 5_000,
    credentials: opts.credentials,
    auth: opts.auth,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + requestTimeout }),
  });
  const where = hosts.join(',');
  const maxBackoff = opts.maxWatchBackoffMs ?? 3_000;
  let closed = false;
  const watches = new Set<() => void>();

  /** Runs one RPC, translating etcd's failures into the Store's errors. */
  async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (closed) throw new StoreUnavailableError('etcd store is closed');
    try {
      return await fn();
    } catch (err) {
      if (err instanceof EtcdLeaseInvalidError) throw err; // callers know the lease id
      if (isUnavailable(err)) throw new StoreUnavailableError(`etcd at ${where} unavailable during ${what}: ${(err as Error).message}`, { cause: err });
      throw err;
    }
  }

  async function withLease<T>(lease: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof EtcdLeaseInvalidError) throw new LeaseNotFoundError(lease ?? '?');
      throw err;
    }
  }

  function watch(prefix: string, wo: WatchOptions = {}): AsyncIterable<WatchBatch> {
    checkPrefix(prefix);
    if (wo.fromRevision !== undefined) checkRevision(wo.fromRevision, 'fromRevision');
    const withPrev = wo.prevKv === true;
    const signal = wo.signal;
    const range = prefixRange(prefix);
    // 0 until the server tells us "now"; after that, where a reconnect resumes
    let next = wo.fromRevision || 0;
    const queue: WatchBatch[] = [];
    let failure: unknown;
    let ended = false;
    let wakeConsumer: (() => void) | undefined;
    let stream: IDuplexStream<IWatchRequest, IWatchResponse> | undefined;
    let wakeConnector: (() => void) | undefined;

    const notify = () => { const w = wakeConsumer; wakeConsumer = undefined; w?.(); };
    const stop = () => {
      if (ended) return;
      ended = true;
      watches.delete(stop);
      signal?.removeEventListener('abort', stop);
      try { stream?.cancel(); } catch { /* already closed */ }
      wakeConnector?.();
      notify();
    };
    watches.add(stop);
    signal?.addEventListener('abort', stop, { once: true });
    if (signal?.aborted) stop();

    // One gRPC stream per watch; when it breaks, open another from `next`
    // (etcd replays from there), so a consumer sees no gap and no duplicate.
    const connect = async () => {
      let backoff = 100;
      while (!ended) {
        try {
          const s = await client.watchClient.watch();
          if (ended) { s.cancel(); return; }
          stream = s;
          const broken = new Promise<void>((resolve) => {
            wakeConnector = resolve;
            s.on('data', (res) => {
              backoff = 100;
              if (res.created && next === 0) next = Number(res.header.revision) + 1;
              if (res.events?.length) {
                const events = res.events.map((e) => toEvent(e, withPrev));
                const revision = events[events.length - 1].kv.modRevision;
                next = revision + 1;
                queue.push({ events, revision });
                notify();
              }
              if (res.canceled) {
                const compactRev = Number(res.compact_revision ?? 0);
                failure = compactRev > 0
                  ? new CompactedError(next, compactRev)
                  : new Error(`etcd cancelled the watch on "${prefix}": ${res.cancel_reason || 'no reason given'}`);
                stop();
              }
            });
            s.on('error', () => resolve());
            s.on('end', () => resolve());
          });
          s.write({ create_request: { ...range, start_revision: next || undefined, prev_kv: withPrev } });
          await broken;
          try { s.cancel(); } catch { /* already closed */ }
        } catch {
          /* could not open the stream: retry below */
        }
        if (ended) return;
        await new Promise<void>((r) => { wakeConnector = r; setTimeout(r, backoff); });
        backoff = Math.min(backoff * 2, maxBackoff);
      }
    };
    void connect();

    async function* batches(): AsyncGenerator<WatchBatch> {
      try {
        for (;;) {
          if (queue.length > 0) { yield queue.shift()!; continue; }
          if (failure) throw failure;
          if (ended) return;
          await new Promise<void>((r) => { wakeConsumer = r; });
        }
      } finally {
        stop();
      }
    }
    const gen = batches();
    // return() must end the watch even while a next() is waiting, which a
    // bare async generator would queue behind that next().
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => gen.next(),
        return: (v?: unknown) => { stop(); return gen.return(v); },
        throw: (e?: unknown) => { stop(); return gen.throw(e); },
      }),
    };
  }

  const store: Store = {
    kind: 'etcd',

    async get(key) {
      checkKey(key);
      const res = await call('get', () => client.kv.range({ key: Buffer.from(key) }));
      return res.kvs.length > 0 ? toKv(res.kvs[0]) : undefined;
    },

    async range(prefix, o = {}) {
      checkPrefix(prefix);
      const limit = checkLimit(o.limit);
      const res = await call('range', () => client.kv.range({ ...prefixRange(prefix), limit }));
      return { kvs: res.kvs.map(toKv), revision: Number(res.header.revision) };
    },

    async put(key, value, o = {}) {
      checkKey(key);
      checkValue(value);
      if (o.lease !== undefined) checkLeaseId(o.lease);
      const res = await withLease(o.lease, () => call('put', () =>
        client.kv.put({ key: Buffer.from(key), value: Buffer.from(value), lease: o.lease ?? 0, prev_kv: true })));
      const revision = Number(res.header.revision);
      return res.prev_kv ? { revision, prev: toKv(res.prev_kv) } : { revision };
    },

    async delete(key) {
      checkKey(key);
      const res = await call('delete', () => client.kv.deleteRange({ key: Buffer.from(key) }));
      return { revision: Number(res.header.revision), deleted: Number(res.deleted) };
    },

    async deletePrefix(prefix) {
      checkPrefix(prefix);
      const res = await call('deletePrefix', () => client.kv.deleteRange(prefixRange(prefix)));
      return { revision: Number(res.header.revision), deleted: Number(res.deleted) };
    },

    async txn(compares, success, failure = []) {
      if (!Array.isArray(compares)) throw new TypeError('txn compares must be an array');
      compares.forEach(checkCompare);
      checkTxnOps(success, 'success');
      checkTxnOps(failure, 'failure');
      // etcd names no lease in its error; report the first one the txn uses
      const leaseOf = [...success, ...failure].flatMap((op) => (op.type === 'put' && op.lease ? [op.lease] : []))[0];
      const res = await withLease(leaseOf, () => call('txn', () => client.kv.txn({
        compare: compares.map(toCompare),
        success: success.map(toRequestOp),
        failure: failure.map(toRequestOp),
      })));
      const ran = res.succeeded ? success : failure;
      const results = ran.map((op, i) => {
        if (op.type !== 'get') return undefined;
        const kvs = res.responses[i]?.response_range?.kvs ?? [];
        return kvs.length > 0 ? toKv(kvs[0]) : undefined;
      });
      return { succeeded: res.succeeded, revision: Number(res.header.revision), results };
    },

    async revision() {
      // a count-only range of one key is the cheapest call whose header carries the revision
      const res = await call('revision', () => client.kv.range({ key: ZERO, count_only: true }));
      return Number(res.header.revision);
    },

    watch,

    async compact(revision) {
      checkRevision(revision, 'compact revision');
      try {
        await call('compact', () => client.kv.compact({ revision, physical: true }));
      } catch (err) {
        if (err instanceof GRPCOutOfRangeError && /future revision/.test(err.message)) {
          throw new RangeError(`cannot compact to revision ${revision}: it is in the future`);
        }
        // already compacted at or past `revision`: nothing left to do, as with SQLite
        if (err instanceof GRPCOutOfRangeError && /compacted/.test(err.message)) return;
        throw err;
      }
    },

    async leaseGrant(ttlSeconds) {
      checkTtl(ttlSeconds);
      const res = await call('leaseGrant', () => client.leaseClient.leaseGrant({ TTL: ttlSeconds }));
      if (res.error) throw new Error(`etcd refused a lease of ${ttlSeconds}s: ${res.error}`);
      return String(res.ID);
    },

    async leaseKeepAlive(id) {
      checkLeaseId(id);
      // etcd renews only over a stream; one short-lived stream per renewal
      // keeps this a plain request/response call.
      const ttl = await call('leaseKeepAlive', async () => {
        const s = await client.leaseClient.leaseKeepAlive();
        try {
          return await new Promise<number>((resolve, reject) => {
            const timer = setTimeout(() => reject(new StoreUnavailableError(`etcd at ${where}: lease keepalive timed out`)), requestTimeout);
            s.on('data', (res) => { clearTimeout(timer); resolve(Number(res.TTL)); });
            s.on('error', (err) => { clearTimeout(timer); reject(err); });
            s.on('end', () => { clearTimeout(timer); reject(new StoreUnavailableError(`etcd at ${where}: keepalive stream ended`)); });
            s.write({ ID: id });
          });
        } finally {
          s.end();
        }
      });
      if (ttl <= 0) throw new LeaseNotFoundError(id);
      return ttl;
    },

    async leaseTimeToLive(id) {
      checkLeaseId(id);
      const res = await call('leaseTimeToLive', () => client.leaseClient.leaseTimeToLive({ ID: id }));
      // etcd answers TTL -1 for a lease it does not know (expired, revoked or never granted).
      const remaining = Number(res.TTL);
      return remaining < 0 ? undefined : { remainingSeconds: remaining, grantedSeconds: Number(res.grantedTTL) };
    },

    async leaseRevoke(id) {
      checkLeaseId(id);
      try {
        await call('leaseRevoke', () => client.leaseClient.leaseRevoke({ ID: id }));
      } catch (err) {
        if (err instanceof EtcdLeaseInvalidError) return; // unknown ids are ignored, per the contract
        throw err;
      }
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const stop of [...watches]) stop();
      client.close();
    },
  };

  try {
    await store.revision();
  } catch (err) {
    client.close();
    throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError(`cannot reach etcd at ${where}: ${(err as Error).message}`, { cause: err });
  }
  return store;
}

// The embedded store: one SQLite file holding the keys, a log of every change
// (so watches resume from any revision still kept), the global revision and
// the leases. Every write is one IMMEDIATE transaction, so a second process
// on the same file serialises with us, and WAL + synchronous=FULL means a
// write that returned survives a crash.
import { chmodSync, closeSync, fchmodSync, fstatSync, mkdirSync, openSync, statSync, constants as fsc } from 'node:fs';
import { dirname } from 'node:path';
import { randomInt } from 'node:crypto';
import Database from 'better-sqlite3';
import { createLogger, type Logger } from '../common/log';
import {
  CompactedError, LeaseNotFoundError, StoreUnavailableError,
  type Compare, type KeyValue, type RangeResult, type Store, type TxnOp, type TxnResult,
  type WatchBatch, type WatchEvent, type WatchOptions,
} from './types';
import {
  checkCompare, checkKey, checkLeaseId, checkLimit, checkPrefix, checkRevision, checkTtl,
  checkTxnOps, checkValue, compareHolds, prefixEnd,
} from './checks';

export type SqliteStoreOptions = {
  /** How often watchers look for writes by other processes (ms). */
  pollIntervalMs?: number;
  /** How often expired leases are swept (ms). */
  leaseSweepIntervalMs?: number;
  /** How long a write waits for another process's write lock (ms). */
  busyTimeoutMs?: number;
  /** Most revisions one watch batch covers, to bound memory on a long replay. */
  watchBatchRevisions?: number;
  /** Where the one line about tightening a store file's mode goes; default: JSON lines on stderr. */
  logger?: Logger;
};

const PRIVATE_MODE = 0o600;

/**
 * The store holds every host's records and the token hashes: only the
 * controller's user may read it, whatever the umask and the directory's mode.
 * The file is created 0600 before SQLite opens it (SQLite gives its -wal and
 * -shm the main file's mode), and a file, WAL or shared-memory file found
 * open to others is narrowed to 0600, with a log line.
 */
function makeStoreFilesPrivate(path: string, log: () => Logger): void {
  const fd = openSync(path, fsc.O_RDONLY | fsc.O_CREAT, PRIVATE_MODE);
  try {
    const mode = fstatSync(fd).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      fchmodSync(fd, PRIVATE_MODE);
      log().warn({ path, mode: `0${mode.toString(8)}` }, 'store file was readable by other users; its mode is now 0600');
    }
  } finally {
    closeSync(fd);
  }
  for (const side of [`${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    let mode: number;
    try {
      mode = statSync(side).mode & 0o777;
    } catch {
      continue; // not there: SQLite makes it with the main file's mode
    }
    if ((mode & 0o077) !== 0) {
      chmodSync(side, PRIVATE_MODE);
      log().warn({ path: side, mode: `0${mode.toString(8)}` }, 'store file was readable by other users; its mode is now 0600');
    }
  }
}

type KvRow = { key: string; value: string; create_rev: number; mod_rev: number; version: number; lease: number | null };
type LogRow = {
  rev: number; seq: number; type: 'put' | 'delete'; key: string; value: string;
  create_rev: number; version: number; lease: number | null;
  prev_value: string | null; prev_create_rev: number | null; prev_mod_rev: number | null;
  prev_version: number | null; prev_lease: number | null;
};

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 1), ('compact', 0), ('schema', 1);
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY, value TEXT NOT NULL,
  create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL, version INTEGER NOT NULL,
  lease INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_by_lease ON kv (lease) WHERE lease IS NOT NULL;
CREATE TABLE IF NOT EXISTS log (
  rev INTEGER NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  create_rev INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER,
  prev_value TEXT, prev_create_rev INTEGER, prev_mod_rev INTEGER, prev_version INTEGER, prev_lease INTEGER,
  PRIMARY KEY (rev, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL, expires_at INTEGER NOT NULL);
`;

// 2^48 keeps ids exact as JS numbers and as SQLite integers.
const LEASE_ID_MAX = 2 ** 48;

function toKv(r: KvRow): KeyValue {
  const kv: KeyValue = { key: r.key, value: r.value, createRevision: r.create_rev, modRevision: r.mod_rev, version: r.version };
  if (r.lease !== null) kv.lease = String(r.lease);
  return kv;
}

function toEvent(r: LogRow, withPrev: boolean): WatchEvent {
  const kv: KeyValue = { key: r.key, value: r.value, createRevision: r.create_rev, modRevision: r.rev, version: r.version };
  if (r.lease !== null) kv.lease = String(r.lease);
  const ev: WatchEvent = { type: r.type, kv };
  if (withPrev && r.prev_mod_rev !== null) {
    ev.prevKv = {
      key: r.key, value: r.prev_value!, createRevision: r.prev_create_rev!, modRevision: r.prev_mod_rev,
      version: r.prev_version!,
    };
    if (r.prev_lease !== null) ev.prevKv.lease = String(r.prev_lease);
  }
  return ev;
}

/** Opens (creating if needed) the store at `path`; a file left by a crashed process is recovered by SQLite's WAL replay. */
export function openSqliteStore(path: string, opts: SqliteStoreOptions = {}): Store {
  const pollMs = opts.pollIntervalMs ?? 100;
  const sweepMs = opts.leaseSweepIntervalMs ?? 250;
  const batchRevs = opts.watchBatchRevisions ?? 1000;

  let db: Database.Database;
  try {
    if (path !== ':memory:' && path !== '') {
      mkdirSync(dirname(path), { recursive: true });
      let log = opts.logger;
      makeStoreFilesPrivate(path, () => (log ??= createLogger({ level: 'info', destination: process.stderr })));
    }
    db = new Database(path);
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(SCHEMA);
  } catch (err) {
    throw new StoreUnavailableError(`cannot open SQLite store at ${path}: ${(err as Error).message}`, { cause: err });
  }

  const q = {
    meta: db.prepare<[string], { value: number }>('SELECT value FROM meta WHERE name = ?'),
    setMeta: db.prepare<[number, string]>('UPDATE meta SET value = ? WHERE name = ?'),
    get: db.prepare<[string], KvRow>('SELECT * FROM kv WHERE key = ?'),
    rangeAll: db.prepare<[string, number], KvRow>('SELECT * FROM kv WHERE key >= ? ORDER BY key LIMIT ?'),
    rangeTo: db.prepare<[string, string, number], KvRow>('SELECT * FROM kv WHERE key >= ? AND key < ? ORDER BY key LIMIT ?'),
    upsert: db.prepare<[string, string, number, number, number, number | null]>(
      'INSERT OR REPLACE INTO kv (key, value, create_rev, mod_rev, version, lease) VALUES (?, ?, ?, ?, ?, ?)'),
    del: db.prepare<[string]>('DELETE FROM kv WHERE key = ?'),
    byLease: db.prepare<[number], KvRow>('SELECT * FROM kv WHERE lease = ? ORDER BY key'),
    log: db.prepare(
      `INSERT INTO log (rev, seq, type, key, value, create_rev, version, lease,
         prev_value, prev_create_rev, prev_mod_rev, prev_version, prev_lease)
       VALUES (@rev, @seq, @type, @key, @value, @create_rev, @version, @lease,
         @prev_value, @prev_create_rev, @prev_mod_rev, @prev_version, @prev_lease)`),
    logAll: db.prepare<[number, number, string], LogRow>(
      'SELECT * FROM log WHERE rev >= ? AND rev <= ? AND key >= ? ORDER BY rev, seq'),
    logTo: db.prepare<[number, number, string, string], LogRow>(
      'SELECT * FROM log WHERE rev >= ? AND rev <= ? AND key >= ? AND key < ? ORDER BY rev, seq'),
    compactLog: db.prepare<[number]>('DELETE FROM log WHERE rev < ?'),
    lease: db.prepare<[number], { id: number; ttl: number; expires_at: number }>('SELECT * FROM leases WHERE id = ?'),
    addLease: db.prepare<[number, number, number]>('INSERT INTO leases (id, ttl, expires_at) VALUES (?, ?, ?)'),
    renewLease: db.prepare<[number, number]>('UPDATE leases SET expires_at = ? WHERE id = ?'),
    delLease: db.prepare<[number]>('DELETE FROM leases WHERE id = ?'),
    expired: db.prepare<[number], { id: number }>('SELECT id FROM leases WHERE expires_at <= ? ORDER BY expires_at LIMIT 100'),
  };

  let closed = false;
  const meta = (name: string): number => q.meta.get(name)!.value;

  // ---- writes -------------------------------------------------------------

  /** One revision's worth of changes; the revision is claimed only if something changes. */
  type Write = { rev: number; seq: number };

  function logChange(w: Write, type: 'put' | 'delete', kv: { key: string; value: string; create_rev: number; version: number; lease: number | null }, prev: KvRow | undefined): void {
    q.log.run({
      rev: w.rev, seq: w.seq++, type, key: kv.key, value: kv.value, create_rev: kv.create_rev, version: kv.version, lease: kv.lease,
      prev_value: prev?.value ?? null, prev_create_rev: prev?.create_rev ?? null, prev_mod_rev: prev?.mod_rev ?? null,
      prev_version: prev?.version ?? null, prev_lease: prev?.lease ?? null,
    });
  }

  function liveLease(id: string): number {
    const n = Number(id);
    const row = q.lease.get(n);
    if (!row || row.expires_at <= Date.now()) throw new LeaseNotFoundError(id);
    return n;
  }

  function putKey(w: Write, key: string, value: string, lease: string | undefined): KvRow | undefined {
    const leaseId = lease === undefined ? null : liveLease(lease);
    const prev = q.get.get(key);
    const row = { key, value, create_rev: prev ? prev.create_rev : w.rev, version: prev ? prev.version + 1 : 1, lease: leaseId };
    q.upsert.run(key, value, row.create_rev, w.rev, row.version, leaseId);
    logChange(w, 'put', row, prev);
    return prev;
  }

  function deleteKey(w: Write, prev: KvRow): void {
    q.del.run(prev.key);
    logChange(w, 'delete', { key: prev.key, value: '', create_rev: 0, version: 0, lease: null }, prev);
  }

  function rangeRows(prefix: string, limit: number): KvRow[] {
    const end = prefixEnd(prefix);
    const lim = limit > 0 ? limit : -1; // SQLite: negative LIMIT means none
    return end === undefined ? q.rangeAll.all(prefix, lim) : q.rangeTo.all(prefix, end, lim);
  }

  function deleteRows(w: Write, prefix: string): number {
    const rows = rangeRows(prefix, 0);
    for (const r of rows) deleteKey(w, r);
    return rows.length;
  }

  // Group commit: writes issued in the same turn of the event loop share one
  // SQLite transaction, hence one fsync, while each keeps its own revision
  // and its own savepoint (a failing write rolls back alone). A write's
  // promise settles only after the commit, so durability is unchanged.
  type Pending = { fn: (w: Write) => unknown; resolve: (v: { revision: number; result: unknown }) => void; reject: (e: unknown) => void };
  let pending: Pending[] = [];

  const writeOne = db.transaction((fn: (w: Write) => unknown) => {
    const current = meta('revision');
    const w: Write = { rev: current + 1, seq: 0 };
    const result = fn(w);
    if (w.seq === 0) return { revision: current, result };
    q.setMeta.run(w.rev, 'revision');
    return { revision: w.rev, result };
  });

  const writeBatch = db.transaction((batch: Pending[]) =>
    batch.map((p) => {
      try {
        return { ok: true as const, value: writeOne(p.fn) }; // nested: runs in a savepoint
      } catch (err) {
        return { ok: false as const, err };
      }
    }));

  function flush(): void {
    const batch = pending;
    pending = [];
    if (batch.length === 0) return;
    let outcomes: ReturnType<typeof writeBatch>;
    try {
      outcomes = writeBatch.immediate(batch);
    } catch (err) {
      const e = mapError(err);
      for (const p of batch) p.reject(e);
      return;
    }
    let top = 0;
    outcomes.forEach((o, i) => {
      if (o.ok) {
        top = Math.max(top, o.value.revision);
        batch[i].resolve(o.value);
      } else {
        batch[i].reject(mapError(o.err));
      }
    });
    if (top > seenRevision) wake(top);
  }

  /** Runs `fn` with the next revision inside the next group commit; resolves with the revision after it. */
  function write<T>(fn: (w: Write) => T): Promise<{ revision: number; result: T }> {
    if (closed) return Promise.reject(new StoreUnavailableError('SQLite store is closed'));
    return new Promise((resolve, reject) => {
      pending.push({ fn, resolve: resolve as Pending['resolve'], reject });
      if (pending.length === 1) setImmediate(flush);
    });
  }

  function read<T>(fn: () => T): T {
    if (closed) throw new StoreUnavailableError('SQLite store is closed');
    try {
      return db.transaction(fn)();
    } catch (err) {
      throw mapError(err);
    }
  }

  function mapError(err: unknown): unknown {
    const code = (err as { code?: string })?.code ?? '';
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_CANTOPEN') || code === 'SQLITE_FULL') {
      return new StoreUnavailableError(`SQLite store ${path}: ${(err as Error).message}`, { cause: err });
    }
    return err;
  }

  // ---- watch wake-ups -----------------------------------------------------

  // Watchers sleep on this; a local commit wakes them at once, the poller
  // wakes them when another process has moved the revision on.
  let seenRevision = meta('revision');
  let waiters = new Set<() => void>();
  let watchers = 0;
  let poller: NodeJS.Timeout | undefined;

  function wake(revision: number): void {
    seenRevision = Math.max(seenRevision, revision);
    const ws = waiters;
    waiters = new Set();
    for (const w of ws) w();
  }

  function nextChange(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (closed || signal?.aborted) return resolve();
      const done = () => {
        waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  function watcherStarted(): void {
    if (watchers++ === 0) {
      poller = setInterval(() => {
        try {
          const rev = meta('revision');
          if (rev > seenRevision) wake(rev);
        } catch {
          /* file busy: look again next tick */
        }
      }, pollMs);
    }
  }

  function watcherStopped(): void {
    if (--watchers === 0 && poller) {
      clearInterval(poller);
      poller = undefined;
    }
  }

  async function* watchFrom(prefix: string, from: number, withPrev: boolean, signal?: AbortSignal): AsyncGenerator<WatchBatch> {
    const end = prefixEnd(prefix);
    let next = from;
    watcherStarted();
    try {
      while (!closed && !signal?.aborted) {
        const { events, through } = read(() => {
          const compact = meta('compact');
          if (next < compact) throw new CompactedError(next, compact);
          const upto = Math.min(meta('revision'), next + batchRevs - 1);
          if (upto < next) return { events: [] as LogRow[], through: next - 1 };
          const rows = end === undefined ? q.logAll.all(next, upto, prefix) : q.logTo.all(next, upto, prefix, end);
          return { events: rows, through: upto };
        });
        // Everything up to `through` has been looked at, whether or not it matched the prefix.
        next = through + 1;
        if (events.length > 0) {
          yield { events: events.map((r) => toEvent(r, withPrev)), revision: events[events.length - 1].rev };
          continue;
        }
        if (through < seenRevision) continue; // more revisions already known beyond this batch
        await nextChange(signal);
      }
    } finally {
      watcherStopped();
    }
  }

  // ---- leases -------------------------------------------------------------

  function revokeLease(w: Write, id: number): void {
    for (const r of q.byLease.all(id)) deleteKey(w, r);
    q.delLease.run(id);
  }

  // Each expired lease is revoked in its own revision, as etcd does.
  function sweep(): void {
    if (closed) return;
    try {
      for (const { id } of q.expired.all(Date.now())) {
        write((w) => {
          const row = q.lease.get(id);
          if (row && row.expires_at <= Date.now()) revokeLease(w, id);
        }).catch(() => { /* another process holds the lock: sweep again next tick */ });
      }
    } catch {
      /* file busy: sweep again next tick */
    }
  }
  const sweeper = setInterval(sweep, sweepMs);
  sweeper.unref(); // expiry must not keep a process alive by itself

  // ---- the Store ----------------------------------------------------------

  function runOps(w: Write, ops: TxnOp[]): Array<KeyValue | undefined> {
    return ops.map((op) => {
      switch (op.type) {
        case 'put': putKey(w, op.key, op.value, op.lease); return undefined;
        case 'delete': { const prev = q.get.get(op.key); if (prev) deleteKey(w, prev); return undefined; }
        case 'deletePrefix': deleteRows(w, op.prefix); return undefined;
        case 'get': { const r = q.get.get(op.key); return r ? toKv(r) : undefined; }
      }
    });
  }

  function holds(c: Compare): boolean {
    const r = q.get.get(c.key);
    switch (c.target) {
      // etcd: a value compare on a missing key fails whatever the op
      case 'value': return r !== undefined && compareHolds(r.value, c.op, c.value);
      case 'version': return compareHolds(r?.version ?? 0, c.op, c.version);
      case 'createRevision': return compareHolds(r?.create_rev ?? 0, c.op, c.createRevision);
      case 'modRevision': return compareHolds(r?.mod_rev ?? 0, c.op, c.modRevision);
    }
  }

  const store: Store = {
    kind: 'sqlite',

    async get(key) {
      checkKey(key);
      return read(() => { const r = q.get.get(key); return r ? toKv(r) : undefined; });
    },

    async range(prefix, opts = {}): Promise<RangeResult> {
      checkPrefix(prefix);
      const limit = checkLimit(opts.limit);
      return read(() => ({ kvs: rangeRows(prefix, limit).map(toKv), revision: meta('revision') }));
    },

    async put(key, value, opts = {}) {
      checkKey(key);
      checkValue(value);
      if (opts.lease !== undefined) checkLeaseId(opts.lease);
      const { revision, result } = await write((w) => putKey(w, key, value, opts.lease));
      return result ? { revision, prev: toKv(result) } : { revision };
    },

    async delete(key) {
      checkKey(key);
      const { revision, result } = await write((w) => {
        const prev = q.get.get(key);
        if (!prev) return 0;
        deleteKey(w, prev);
        return 1;
      });
      return { revision, deleted: result };
    },

    async deletePrefix(prefix) {
      checkPrefix(prefix);
      const { revision, result } = await write((w) => deleteRows(w, prefix));
      return { revision, deleted: result };
    },

    async txn(compares, success, failure = []): Promise<TxnResult> {
      if (!Array.isArray(compares)) throw new TypeError('txn compares must be an array');
      compares.forEach(checkCompare);
      checkTxnOps(success, 'success');
      checkTxnOps(failure, 'failure');
      const { revision, result } = await write((w) => {
        const succeeded = compares.every(holds);
        return { succeeded, results: runOps(w, succeeded ? success : failure) };
      });
      return { succeeded: result.succeeded, revision, results: result.results };
    },

    async revision() {
      return read(() => meta('revision'));
    },

    watch(prefix, opts: WatchOptions = {}) {
      checkPrefix(prefix);
      if (opts.fromRevision !== undefined) checkRevision(opts.fromRevision, 'fromRevision');
      // "From now" is fixed when watch() is called, not when iteration starts,
      // so a write right after watch() returns is never missed.
      const from = opts.fromRevision || read(() => meta('revision')) + 1;
      // return() must end the watch even while a next() is waiting for a
      // change, which a bare async generator would queue behind that next().
      const stop = new AbortController();
      const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
      const gen = watchFrom(prefix, from, opts.prevKv === true, signal);
      return {
        [Symbol.asyncIterator]: () => ({
          next: () => gen.next(),
          return: (v?: unknown) => { stop.abort(); return gen.return(v); },
          throw: (e?: unknown) => { stop.abort(); return gen.throw(e); },
        }),
      };
    },

    async compact(revision) {
      checkRevision(revision, 'compact revision');
      await write(() => {
        const current = meta('revision');
        const compacted = meta('compact');
        if (revision > current) throw new RangeError(`cannot compact to revision ${revision}: it is in the future (current ${current})`);
        // already compacted at or past `revision`: nothing to do, as with etcd
        if (revision <= compacted) return;
        q.compactLog.run(revision);
        q.setMeta.run(revision, 'compact');
      });
    },

    async leaseGrant(ttlSeconds) {
      checkTtl(ttlSeconds);
      const { result } = await write(() => {
        for (;;) {
          const id = randomInt(1, LEASE_ID_MAX);
          if (q.lease.get(id)) continue;
          q.addLease.run(id, ttlSeconds, Date.now() + ttlSeconds * 1000);
          return String(id);
        }
      });
      return result;
    },

    async leaseTimeToLive(id) {
      checkLeaseId(id);
      return read(() => {
        const row = q.lease.get(Number(id));
        const left = row ? row.expires_at - Date.now() : 0;
        return row && left > 0 ? { remainingSeconds: left / 1000, grantedSeconds: row.ttl } : undefined;
      });
    },

        async leaseKeepAlive(id) {
      checkLeaseId(id);
      const { result } = await write((w) => {
        const n = Number(id);
        const row = q.lease.get(n);
        if (!row) return undefined;
        if (row.expires_at <= Date.now()) {
          // Expired but not yet swept: finish it now so its keys go too.
          revokeLease(w, n);
          return undefined;
        }
        q.renewLease.run(Date.now() + row.ttl * 1000, n);
        return row.ttl;
      });
      if (result === undefined) throw new LeaseNotFoundError(id);
      return result;
    },

    async leaseRevoke(id) {
      checkLeaseId(id);
      await write((w) => {
        const n = Number(id);
        if (q.lease.get(n)) revokeLease(w, n);
      });
    },

    async close() {
      if (closed) return;
      flush(); // writes already accepted still commit
      closed = true;
      clearInterval(sweeper);
      if (poller) clearInterval(poller);
      wake(seenRevision); // watches see `closed` and end
      db.close();
    },
  };
  return store;
}

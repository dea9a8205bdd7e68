// The part both watch streams share: a consistent picture of the keys under
// a prefix at one revision, then every later revision's changes, with the
// value each key had before and after. Consumers derive their own state
// (hosts, services) from that and decide what to send.
//
// Resuming from revision R without a gap or a duplicate needs the state *at
// R*, so that the first change after R is judged against what the client
// actually has. The store can only list the present (revision C >= R), so
// the state at R is rebuilt by listing at C and undoing the logged changes
// (R, C] with their previous values; those changes are then replayed
// forward like live ones. A resume and an unbroken stream therefore send the
// same events for the same revisions.
import { CompactedError, type Store, type WatchEvent } from '../store/types';

export type KeyChange = { key: string; before?: string; after?: string };

export type CoreEvent =
  /** The state at `revision`. `announce`: the client has nothing usable and must be sent a snapshot; false on a resume. */
  | { type: 'reset'; revision: number; kvs: Map<string, string>; announce: boolean }
  /** Every change of one revision, in write order. */
  | { type: 'changes'; revision: number; changes: KeyChange[] };

export type CoreOptions = {
  prefix: string;
  /** The last revision the client has applied; 0: start with a snapshot. */
  fromRevision: number;
  signal: AbortSignal;
  /** Called with every CompactedError that forced a fresh snapshot (for logs and metrics). */
  onCompacted?: (err: CompactedError) => void;
};

/**
 * Ends when the signal aborts or the store closes. A resume from a compacted
 * revision (or one the store has not reached: a wiped store) falls back to
 * a snapshot; so does falling behind a compaction mid-stream.
 */
export async function* watchCore(store: Store, opts: CoreOptions): AsyncGenerator<CoreEvent> {
  let from = opts.fromRevision;
  while (!opts.signal.aborted) {
    try {
      const { kvs: list, revision: listed } = await store.range(opts.prefix);
      const kvs = new Map(list.map((kv) => [kv.key, kv.value]));
      let backlog: WatchEvent[] = [];
      if (from > 0 && from < listed) backlog = await history(store, opts, from, listed);
      if (opts.signal.aborted) return;
      if (from > 0 && from <= listed) {
        // Undo newest first to reach the state at `from`, then hand the same changes out forward.
        for (let i = backlog.length - 1; i >= 0; i--) {
          const ev = backlog[i];
          if (ev.prevKv) kvs.set(ev.kv.key, ev.prevKv.value);
          else kvs.delete(ev.kv.key);
        }
        yield { type: 'reset', revision: from, kvs, announce: false };
        for (const group of byRevision(backlog, kvs)) yield group;
      } else {
        yield { type: 'reset', revision: listed, kvs, announce: true };
      }
      const live = store.watch(opts.prefix, { fromRevision: listed + 1, prevKv: true, signal: opts.signal });
      for await (const batch of live) {
        for (const group of byRevision(batch.events, kvs)) yield group;
      }
      return;
    } catch (err) {
      if (!(err instanceof CompactedError)) throw err;
      opts.onCompacted?.(err);
      from = 0; // what the client has can no longer be brought up to date: replace it
    }
  }
}

/**
 * The logged changes in (from, until]. Watched on the whole keyspace, not
 * just the prefix: every revision has at least one change somewhere, so the
 * change at `until` is sure to arrive and marks the end, even when the last
 * write was to a key outside the prefix.
 */
async function history(store: Store, opts: CoreOptions, from: number, until: number): Promise<WatchEvent[]> {
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  opts.signal.addEventListener('abort', onAbort, { once: true });
  const out: WatchEvent[] = [];
  try {
    for await (const batch of store.watch('', { fromRevision: from + 1, prevKv: true, signal: stop.signal })) {
      let done = false;
      for (const ev of batch.events) {
        if (ev.kv.modRevision > until) { done = true; break; }
        if (ev.kv.key.startsWith(opts.prefix)) out.push(ev);
        if (ev.kv.modRevision === until) done = true;
      }
      if (done) break;
    }
  } finally {
    opts.signal.removeEventListener('abort', onAbort);
    stop.abort();
  }
  return out;
}

/** Applies events to `kvs` and groups them per revision, with each key's value before and after. */
function byRevision(events: WatchEvent[], kvs: Map<string, string>): Array<CoreEvent & { type: 'changes' }> {
  const out: Array<CoreEvent & { type: 'changes' }> = [];
  for (const ev of events) {
    const key = ev.kv.key;
    const before = kvs.get(key);
    const after = ev.type === 'put' ? ev.kv.value : undefined;
    if (after === undefined) kvs.delete(key);
    else kvs.set(key, after);
    const last = out[out.length - 1];
    const change: KeyChange = { key, before, after };
    if (last && last.revision === ev.kv.modRevision) last.changes.push(change);
    else out.push({ type: 'changes', revision: ev.kv.modRevision, changes: [change] });
  }
  return out;
}

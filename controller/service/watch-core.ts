// The store side of the watch streams: the keys under a prefix at one
// revision, and the changes of later revisions grouped per revision. The
// hubs (watch-hub.ts) follow the store live; readSince serves the exact
// resume of a client further behind than a hub remembers.
//
// Resuming from revision R without a gap or a duplicate needs the state *at
// R*, so that the first change after R is judged against what the client
// actually has. The store can only list the present (revision C >= R), so
// the state at R is rebuilt by listing at C and undoing the logged changes
// (R, C] with their previous values; those changes are then replayed
// forward like live ones. A resume and an unbroken stream therefore send the
// same events for the same revisions.
import { type Store, StoreUnavailableError, type WatchEvent } from '../store/types';

/** A key's value after one write; undefined: deleted. */
export type KeyChange = { key: string; after?: string };

/** Every change of one revision, in write order. */
export type RevisionChanges = { revision: number; changes: KeyChange[] };

export type PastState =
  /** The keys at `from`, and every change to one of them in (from, revision], in order. */
  | { type: 'resume'; kvs: Map<string, string>; events: WatchEvent[]; revision: number }
  /** `from` is ahead of the store (a wiped or replaced store): what the client has cannot be judged. */
  | { type: 'ahead'; revision: number };

/** The longest prefix shared by `prefixes`: the narrowest single watch that sees all of them. */
export function commonPrefix(prefixes: string[]): string {
  if (prefixes.length === 0) return '';
  let p = prefixes[0];
  for (const q of prefixes) while (!q.startsWith(p)) p = p.slice(0, -1);
  return p;
}

export const underAny = (prefixes: string[]) => (key: string): boolean => prefixes.some((p) => key.startsWith(p));

/**
 * The state at revision `from` (> 0) of the keys under `prefix`, and the
 * changes since. Throws CompactedError when the store no longer holds the
 * changes after `from`.
 */
export async function readSince(store: Store, prefix: string, from: number, signal: AbortSignal): Promise<PastState> {
  const { kvs: list, revision: listed } = await store.range(prefix);
  if (from > listed) return { type: 'ahead', revision: listed };
  const kvs = new Map(list.map((kv) => [kv.key, kv.value]));
  const backlog = from < listed ? await history(store, prefix, from, listed, signal) : [];
  // Undo newest first to reach the state at `from`, then hand the same changes out forward.
  for (let i = backlog.length - 1; i >= 0; i--) {
    const ev = backlog[i];
    if (ev.prevKv) kvs.set(ev.kv.key, ev.prevKv.value);
    else kvs.delete(ev.kv.key);
  }
  return { type: 'resume', kvs, events: backlog, revision: listed };
}

/**
 * The logged changes in (from, until]. Watched on the whole keyspace, not
 * just the prefix: every revision has at least one change somewhere, so the
 * change at `until` is sure to arrive and marks the end, even when the last
 * write was to a key outside the prefix.
 */
async function history(store: Store, prefix: string, from: number, until: number, signal: AbortSignal): Promise<WatchEvent[]> {
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  const out: WatchEvent[] = [];
  let done = false;
  try {
    for await (const batch of store.watch('', { fromRevision: from + 1, prevKv: true, signal: stop.signal })) {
      for (const ev of batch.events) {
        if (ev.kv.modRevision > until) { done = true; break; }
        if (ev.kv.key.startsWith(prefix)) out.push(ev);
        if (ev.kv.modRevision === until) done = true;
      }
      if (done) break;
    }
    // A watch that ended early (the store closing, the daemon shutting down) left a torn history: undoing it would invent a state.
    if (!done && !signal.aborted) throw new StoreUnavailableError(`the store's history ended before revision ${until}; reconnect to resume`);
  } finally {
    signal.removeEventListener('abort', onAbort);
    stop.abort();
  }
  return out;
}

/** The changes to keys that pass `keep`, grouped per revision (revisions with none are left out). */
export function byRevision(events: WatchEvent[], keep: (key: string) => boolean): RevisionChanges[] {
  const out: RevisionChanges[] = [];
  for (const ev of events) {
    if (!keep(ev.kv.key)) continue;
    const change: KeyChange = { key: ev.kv.key, after: ev.type === 'put' ? ev.kv.value : undefined };
    const last = out[out.length - 1];
    if (last && last.revision === ev.kv.modRevision) last.changes.push(change);
    else out.push({ revision: ev.kv.modRevision, changes: [change] });
  }
  return out;
}

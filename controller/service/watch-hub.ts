// One hub per watch kind (topology, services) in a controller process: ONE
// store watch, ONE current state, the messages of each revision derived
// once and handed to every stream (the same object for all of them). Per
// stream there is only a sink (watch-sink.ts): a queue of shared messages.
//
// Resuming: the hub remembers the messages of recent revisions (a bounded
// log), so a client that reconnects from a revision the log covers is
// replayed from memory. A client further behind takes the exact path
// through the store's history (watch-core.ts readSince) with a private state
// that lives only until it has caught up, then joins the hub. Either way it
// gets the messages an unbroken stream got: the hub's state is what every
// subscriber has, because they all get the same messages.
//
// A storm of clients (all joining, or all coming back after a controller
// restart) costs little more than one: snapshots are written a few at a
// time (each stream holds its framed copy until read), one snapshot serves
// until a message changes it, and clients resuming from one revision older
// than the log share one read of the store's history, which then extends
// the log. Clients that ask are sent PROGRESS now and then, so their resume
// revision follows the store's even while only heartbeats move it.
//
// Lifecycle: the hub starts with its first subscriber and stops when the
// last one leaves or its store watch ends (the store closed, or the daemon's
// shutdown ended it: every stream is then ended cleanly and its client
// reconnects). A store error restarts the watch from the last revision
// seen, after a pause; a compaction while it was down means a fresh list
// and a SNAPSHOT to everyone.
import type { Logger } from '../common/log';
import { CompactedError, type Store, StoreUnavailableError } from '../store/types';
import { type KeyChange, byRevision, commonPrefix, readSince, underAny } from './watch-core';
import type { Sink } from './watch-sink';

export type WatchKind<S, Msg extends { revision: number }> = {
  /** For logs. */
  name: string;
  /** The keys the state is made of; the store watch covers their common prefix and other keys are dropped on arrival. */
  prefixes: string[];
  /** The state at one revision; the client is taken to have exactly this. */
  init: (kvs: Map<string, string>) => S;
  snapshot: (s: S, revision: number) => Msg;
  /** At most one message per revision; updates the state. */
  changes: (s: S, revision: number, changes: KeyChange[]) => Msg[];
  /** A message that says only "you are current up to `revision`", for clients that asked (see HubOptions.progressMs). */
  progress: (revision: number) => Msg;
  /**
   * Messages that may be told as one: a run of consecutive mergeable
   * messages is sent as `merge(run)`, which must leave a client exactly where
   * the run would, at the run's last revision (see HubOptions.pace). Without
   * these every message is sent as it comes.
   */
  mergeable?: (msg: Msg) => boolean;
  merge?: (run: Msg[]) => Msg;
};

export type HubOptions = {
  store: Store;
  logger: Logger;
  /** Messages kept for resumes, and their most size as JSON: whichever is reached first. */
  log?: { messages: number; bytes: number };
  /** Exact resumes through the store's history running at once (default 4); each holds a private copy of the state while it runs. */
  catchUps?: number;
  /** Snapshots being written at once (default SNAPSHOTS_IN_FLIGHT); more clients wanting one wait their turn. */
  snapshotsInFlight?: number;
  /**
   * How often a client that asked is told the hub's revision when no message
   * moved it (default PROGRESS_MS; 0: never). Heartbeats move the store's
   * revision without a message, so without this a client's resume revision
   * falls ever further behind, and after a controller restart every client
   * would resume through a long stretch of the store's history.
   */
  progressMs?: number;
  /**
   * Fan-out pacing: after a message went to every stream, the next waits
   * until `usPerStream` per subscribed stream has passed (at most `maxMs`),
   * and mergeable messages arriving meanwhile are merged into it. A single
   * change still goes out at once; a join storm of N hosts, which would
   * send every stream one message per join (O(N²) writes), sends each
   * stream a bounded number per second instead. Default PACE.
   */
  pace?: { usPerStream: number; maxMs: number };
};

export type Hub<Msg> = {
  /**
   * Sends `sink` every message after revision `from` (0: a snapshot first),
   * then every new one, until its signal aborts. Rejects when the store
   * cannot be read at all.
   */
  attach(sink: Sink<Msg>, from: number, logContext?: Record<string, unknown>): Promise<void>;
};

type Entry<Msg> = { msg: Msg; bytes: number };

/** What the hub knows while it runs. The log holds every message with a revision in (logFrom, revision]. */
type Live<S, Msg> = {
  state: S;
  revision: number;
  log: Array<Entry<Msg>>;
  logHead: number;
  logFrom: number;
  logBytes: number;
  /** The revision of the last message (or where the state was loaded): a snapshot from at least here is still current. */
  changedAt: number;
  /** The last revision every progress-asking client was told of, by a message or a progress message. */
  toldAt: number;
  snapshot?: Msg;
  /** Messages made but not yet sent (pacing): every one mergeable, or a single one; they are in the state, not yet in the log. */
  held: Msg[];
  heldTimer?: NodeJS.Timeout;
  /** When the last message went out (performance.now()). */
  sentAt: number;
};

/** A resume through the store's history: the messages of (from, revision], or a snapshot instead. */
type Past<Msg> = {
  /** One per revision that made one: what the log can be extended with. */
  messages: Array<Entry<Msg>>;
  /** The same with runs of mergeable messages merged: what a resuming client is sent (one burst, shared by all resuming from here). */
  replay: Array<Entry<Msg>>;
  revision: number;
} | 'snapshot';

/** The log's default bounds: at least twice a stream's queue limit, so a client ended for lagging usually resumes from memory. */
export const HUB_LOG = { messages: 8192, bytes: 32 * 1024 * 1024 };

/**
 * Snapshots written at once. A snapshot is the largest message (every host)
 * and each stream holds its own framed copy until the client has read it,
 * so a join storm or reconnect storm of thousands of streams all wanting one
 * at the same moment held thousands of copies (O(hosts²) memory); in turns
 * it holds at most this many.
 */
export const SNAPSHOTS_IN_FLIGHT = 16;
/** A client that has not read its snapshot after this long gives its turn up anyway (it is stalled; its queue bound will end it). */
const SNAPSHOT_TURN_MS = 5000;
/** Progress messages: often enough that a resume after a restart replays seconds, not hours, of history. */
export const PROGRESS_MS = 10_000;
/**
 * About what one stream's write costs (grpc-js, HTTP/2 and TLS framing of a
 * shared, already encoded message): spacing fan-outs by this much per
 * stream keeps them to a bounded share of the CPU however many hosts join.
 * 5,000 streams: 100 ms.
 */
export const PACE = { usPerStream: 20, maxMs: 250 };

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5000;

export function createHub<S, Msg extends { revision: number }>(kind: WatchKind<S, Msg>, opts: HubOptions): Hub<Msg> {
  const { store, logger } = opts;
  const maxMessages = opts.log?.messages ?? HUB_LOG.messages;
  const maxBytes = opts.log?.bytes ?? HUB_LOG.bytes;
  /** Sizes as JSON: what the log and the stream queues are bounded by; computed once per message. */
  const sizes = new WeakMap<object, number>();
  const sizeOf = (msg: Msg): number => {
    let n = sizes.get(msg);
    if (n === undefined) sizes.set(msg, (n = JSON.stringify(msg).length));
    return n;
  };
  const prefix = commonPrefix(kind.prefixes);
  const keep = underAny(kind.prefixes);
  const log = logger.child({ watch: kind.name });

  const subs = new Set<Sink<Msg>>();
  /** attach() calls still deciding where to start; the hub stays up for them. */
  let pending = 0;
  let live: Live<S, Msg> | undefined;
  let starting: Promise<Live<S, Msg>> | undefined;
  let run: AbortController | undefined;
  const catchUps = limiter(opts.catchUps ?? 4);
  const snapshotTurns = turns(opts.snapshotsInFlight ?? SNAPSHOTS_IN_FLIGHT);
  const progressMs = opts.progressMs ?? PROGRESS_MS;
  const pace = opts.pace ?? PACE;
  const canMerge = kind.mergeable && kind.merge ? kind.mergeable : () => false;
  /** Resumes through the store's history in progress, by revision: clients resuming from one revision share one read. */
  const pastReads = new Map<number, Promise<Past<Msg>>>();

  async function load(signal: AbortSignal): Promise<Live<S, Msg>> {
    const { kvs, revision } = await store.range(prefix);
    if (signal.aborted) throw new Error('watch hub stopped while loading');
    const state = kind.init(new Map(kvs.filter((kv) => keep(kv.key)).map((kv) => [kv.key, kv.value])));
    return { state, revision, log: [], logHead: 0, logFrom: revision, logBytes: 0, changedAt: revision, toldAt: revision, held: [], sentAt: -Infinity };
  }

  /** The running hub's state, starting it if need be. */
  function ensure(): Promise<Live<S, Msg>> {
    if (live) return Promise.resolve(live);
    if (!starting) {
      const ctl = new AbortController();
      run = ctl;
      starting = load(ctl.signal).then(
        (l) => {
          starting = undefined;
          if (ctl.signal.aborted) throw new Error('watch hub stopped while loading');
          live = l;
          log.debug({ revision: l.revision }, 'watch hub started');
          void follow(ctl);
          if (progressMs > 0) tellProgress(ctl);
          return l;
        },
        (err) => {
          starting = undefined;
          if (run === ctl) run = undefined;
          throw err;
        },
      );
      starting.catch(() => undefined); // every attach() waiting on it sees the error; nothing else must
    }
    return starting;
  }

  /** The one store watch; ends the hub when the watch ends. */
  async function follow(ctl: AbortController): Promise<void> {
    let delay = RETRY_MIN_MS;
    try {
      for (let l = live; l && !ctl.signal.aborted; l = live) {
        try {
          for await (const batch of store.watch(prefix, { fromRevision: l.revision + 1, signal: ctl.signal })) {
            if (ctl.signal.aborted) return;
            apply(l, batch.events);
            delay = RETRY_MIN_MS;
          }
          if (!ctl.signal.aborted) {
            log.info({ revision: l.revision, streams: subs.size }, 'store watch ended: ending watch streams');
            for (const s of [...subs]) s.end();
          }
          return;
        } catch (err) {
          if (ctl.signal.aborted) return;
          if (err instanceof CompactedError) {
            log.warn({ revision: l.revision, err }, 'watch hub fell behind a compaction: listing again and sending a snapshot');
            drop(l); // the snapshot below carries what was held
            try {
              live = l = await load(ctl.signal);
            } catch (loadErr) {
              if (ctl.signal.aborted) return;
              log.error({ err: loadErr }, 'watch hub cannot list the store: ending watch streams');
              for (const s of [...subs]) s.fail(loadErr);
              return;
            }
            publish(snapshotOf(l));
            continue;
          }
          log.warn({ revision: l.revision, err, retryMs: delay }, 'store watch failed: resuming it');
          await sleep(delay, ctl.signal);
          delay = Math.min(delay * 2, RETRY_MAX_MS);
        }
      }
    } finally {
      ctl.abort();
      if (live) drop(live);
      if (run === ctl) {
        run = undefined;
        live = undefined;
        log.debug('watch hub stopped');
      }
    }
  }

  function apply(l: Live<S, Msg>, events: Parameters<typeof byRevision>[0]): void {
    for (const g of byRevision(events, keep)) {
      if (g.revision <= l.revision) continue; // a restarted watch may repeat a revision
      const msgs = kind.changes(l.state, g.revision, g.changes);
      l.revision = g.revision;
      for (const m of msgs) {
        l.changedAt = m.revision;
        hold(l, m);
      }
    }
    // Writes to keys the kind ignores move the revision on too.
    const last = events[events.length - 1]?.kv.modRevision ?? 0;
    if (last > l.revision) l.revision = last;
  }

  /** Sends `m` now, or holds it for the next paced fan-out (merged with what is held when both are mergeable). */
  function hold(l: Live<S, Msg>, m: Msg): void {
    if (l.held.length > 0 && !(canMerge(m) && canMerge(l.held[0]))) release(l);
    l.held.push(m);
    if (l.heldTimer) return;
    const wait = l.sentAt + Math.min(pace.maxMs, (subs.size * pace.usPerStream) / 1000) - performance.now();
    if (wait <= 0) {
      release(l);
      return;
    }
    l.heldTimer = setTimeout(() => {
      l.heldTimer = undefined;
      if (l === live) release(l);
    }, wait);
  }

  /** The held messages, as one, to the log and every stream. */
  function release(l: Live<S, Msg>): void {
    if (l.heldTimer) clearTimeout(l.heldTimer);
    l.heldTimer = undefined;
    if (l.held.length === 0) return;
    const m = l.held.length === 1 ? l.held[0] : kind.merge!(l.held);
    l.held = [];
    record(l, m);
    publish(m);
    l.toldAt = m.revision;
    l.sentAt = performance.now();
  }

  /** Forgets what is held: the hub stopped, or a snapshot replaces it. */
  function drop(l: Live<S, Msg>): void {
    if (l.heldTimer) clearTimeout(l.heldTimer);
    l.heldTimer = undefined;
    l.held = [];
  }

  /** To every subscriber; one stream's failure must not cost the others a message. */
  function publish(msg: Msg): void {
    const bytes = sizeOf(msg);
    for (const s of subs) {
      try {
        s.send(msg, bytes);
      } catch (err) {
        s.fail(err);
      }
    }
  }

  function record(l: Live<S, Msg>, msg: Msg): void {
    const bytes = sizeOf(msg);
    l.log.push({ msg, bytes });
    l.logBytes += bytes;
    while (l.log.length - l.logHead > maxMessages || (l.logBytes > maxBytes && l.log.length - l.logHead > 1)) {
      const old = l.log[l.logHead++];
      l.logFrom = old.msg.revision;
      l.logBytes -= old.bytes;
    }
    if (l.logHead > 1024 && l.logHead * 2 > l.log.length) {
      l.log = l.log.slice(l.logHead);
      l.logHead = 0;
    }
  }

  /**
   * Built only when someone needs it, and again only after a message: the
   * revisions in between (heartbeats) change nothing a client is told, so
   * the last snapshot still is the state, and its revision a correct place
   * to join from. In a join storm every client then shares one snapshot
   * (and its encoding) instead of one per heartbeat.
   */
  function snapshotOf(l: Live<S, Msg>): Msg {
    if (!l.snapshot || l.snapshot.revision < l.changedAt) l.snapshot = kind.snapshot(l.state, l.revision);
    return l.snapshot;
  }

  /** Every progressMs while the hub runs: the revision, to the clients that asked, when it moved without a message. */
  function tellProgress(ctl: AbortController): void {
    const timer = setInterval(() => {
      const l = live;
      // while a message is held, its revision is not yet everyone's to resume from
      if (!l || ctl.signal.aborted || l.revision <= l.toldAt || l.held.length > 0) return;
      l.toldAt = l.revision;
      const msg = kind.progress(l.revision);
      const bytes = sizeOf(msg);
      for (const s of subs) {
        if (!s.progress) continue;
        try {
          s.send(msg, bytes);
        } catch (err) {
          s.fail(err);
        }
      }
    }, progressMs);
    timer.unref();
    ctl.signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  }

  /** Replays the log after `from` and subscribes; synchronous, so no message falls in between. */
  function join(l: Live<S, Msg>, sink: Sink<Msg>, from: number): void {
    if (sink.signal.aborted) return;
    sink.skipThrough(from);
    for (let i = firstAfter(l, from); i < l.log.length; i++) sink.send(l.log[i].msg, l.log[i].bytes, true);
    subs.add(sink);
    sink.signal.addEventListener('abort', () => {
      subs.delete(sink);
      idleIfUnused();
    }, { once: true });
  }

  /** Index of the first log entry with a revision after `from` (the log is in revision order). */
  function firstAfter(l: Live<S, Msg>, from: number): number {
    let lo = l.logHead;
    let hi = l.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (l.log[mid].msg.revision <= from) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  function idleIfUnused(): void {
    if (subs.size > 0 || pending > 0 || !run) return;
    run.abort();
    run = undefined;
    live = undefined;
    starting = undefined;
  }

  async function attach(sink: Sink<Msg>, from: number, ctx: Record<string, unknown> = {}): Promise<void> {
    pending++;
    let turn: (() => void) | undefined;
    try {
      let at = from;
      let storeRevision: number | undefined;
      for (;;) {
        const l = await ensure();
        if (sink.signal.aborted) return;
        if (l !== live) continue; // replaced while we waited
        if (at === 0) {
          if (!turn) {
            turn = await snapshotTurns(sink.signal);
            if (!turn) return;
            continue; // the hub may have moved on while we waited
          }
          const snap = snapshotOf(l);
          sink.send(snap, sizeOf(snap));
          join(l, sink, snap.revision);
          const done = turn;
          turn = undefined;
          const t = setTimeout(done, SNAPSHOT_TURN_MS);
          void sink.flushed().then(() => {
            clearTimeout(t);
            done();
          });
          return;
        }
        if (at >= l.logFrom && at <= l.revision) return join(l, sink, at);
        if (at > l.revision) {
          // Ahead of the hub: fine if the store has it (the hub will get there), a wiped store if not.
          if (storeRevision === undefined) {
            storeRevision = await store.revision();
            continue;
          }
          if (at <= storeRevision) return join(l, sink, at);
          at = 0;
          continue;
        }
        // Older than the log: the messages since `at` from the store's history (one read per revision, shared), then join.
        const past = await pastFrom(l, at, ctx);
        if (sink.signal.aborted) return;
        if (past === 'snapshot') {
          at = 0;
          continue;
        }
        for (const e of past.replay) sink.send(e.msg, e.bytes, true);
        at = past.revision;
      }
    } finally {
      turn?.();
      pending--;
      idleIfUnused();
    }
  }

  function pastFrom(l: Live<S, Msg>, from: number, ctx: Record<string, unknown>): Promise<Past<Msg>> {
    let p = pastReads.get(from);
    if (!p) {
      const signal = run?.signal ?? AbortSignal.abort();
      p = catchUps(() => readPast(from, signal, ctx)).then((past) => {
        if (past !== 'snapshot') backfill(l, from, past);
        return past;
      }).finally(() => pastReads.delete(from));
      pastReads.set(from, p);
    }
    return p;
  }

  /**
   * The messages of (from, C] rebuilt from the store (watch-core.ts
   * readSince), or 'snapshot' when the store no longer has them or is behind
   * `from` (a wiped store).
   */
  async function readPast(from: number, signal: AbortSignal, ctx: Record<string, unknown>): Promise<Past<Msg>> {
    let past;
    try {
      past = await readSince(store, prefix, from, signal);
    } catch (err) {
      if (!(err instanceof CompactedError)) throw err;
      log.info({ ...ctx, from, err }, 'resume revision compacted: sending a snapshot');
      return 'snapshot';
    }
    // Shared by every client resuming from `from`: a read cut short by the hub stopping is torn, not theirs to apply.
    if (signal.aborted) throw new StoreUnavailableError('the watch hub stopped while reading the store\'s history; reconnect to resume');
    if (past.type === 'ahead') return 'snapshot';
    const state = kind.init(new Map([...past.kvs].filter(([k]) => keep(k))));
    const messages: Array<Entry<Msg>> = [];
    // Grouped and filtered as the live watch's batches are (apply).
    for (const g of byRevision(past.events, keep)) {
      for (const m of kind.changes(state, g.revision, g.changes)) messages.push({ msg: m, bytes: sizeOf(m) });
    }
    const replay = mergeRuns(messages.map((e) => e.msg)).map((m) => ({ msg: m, bytes: sizeOf(m) }));
    return { messages, replay, revision: past.revision };
  }

  function mergeRuns(msgs: Msg[]): Msg[] {
    const out: Msg[] = [];
    let run: Msg[] = [];
    const end = () => {
      if (run.length > 0) out.push(run.length === 1 ? run[0] : kind.merge!(run));
      run = [];
    };
    for (const m of msgs) {
      if (!canMerge(m)) {
        end();
        out.push(m);
      } else {
        run.push(m);
      }
    }
    end();
    return out;
  }

  /**
   * Extends the log back to `from` with a resume's messages when they reach
   * the log (and fit its bounds), so the next client resuming from there or
   * later is served from memory. After a controller restart every client
   * comes back from about the same revision (the last progress message),
   * and the first one's read then serves them all.
   */
  function backfill(l: Live<S, Msg>, from: number, past: Exclude<Past<Msg>, 'snapshot'>): void {
    if (l !== live || from >= l.logFrom || past.revision < l.logFrom) return;
    const older = past.messages.filter((e) => e.msg.revision <= l.logFrom);
    const kept = l.log.length - l.logHead;
    const bytes = older.reduce((n, e) => n + e.bytes, 0);
    if (kept + older.length > maxMessages || l.logBytes + bytes > maxBytes) return;
    l.log = [...older, ...l.log.slice(l.logHead)];
    l.logHead = 0;
    l.logBytes += bytes;
    l.logFrom = from;
  }

  return { attach };
}

/**
 * Turns for at most `n` holders at once, in arrival order: resolves with the
 * function that gives the turn back, or undefined if `signal` aborted first.
 */
function turns(n: number): (signal: AbortSignal) => Promise<(() => void) | undefined> {
  let held = 0;
  const waiting: Array<() => void> = [];
  const take = (): (() => void) => {
    held++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      held--;
      waiting.shift()?.();
    };
  };
  return (signal) => {
    if (signal.aborted) return Promise.resolve(undefined);
    if (held < n) return Promise.resolve(take());
    return new Promise((resolve) => {
      const next = () => {
        signal.removeEventListener('abort', gone);
        resolve(take());
      };
      const gone = () => {
        const i = waiting.indexOf(next);
        if (i >= 0) waiting.splice(i, 1);
        resolve(undefined);
      };
      waiting.push(next);
      signal.addEventListener('abort', gone, { once: true });
    });
  };
}

/** Runs at most `n` of the given tasks at once, the rest in arrival order. */
function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async (task) => {
    if (running >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await task();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

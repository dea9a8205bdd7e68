// The store's history is kept only as long as a watcher can need it. The
// leader compacts it every interval to the revision it saw one interval
// earlier (kube-apiserver does the same with etcd): a client resuming from a
// revision younger than one interval never meets a compacted one (agents and
// ingresses move theirs forward with PROGRESS messages every 10 s), an older
// one gets a snapshot, and neither the SQLite log nor etcd's history (etcd
// keeps every revision unless told otherwise, until its space quota stops
// all writes) grows without bound. Heartbeats alone write a revision per
// host every few seconds.
import type { Logger } from '../common/log';
import type { Store } from '../store/types';

/** How much history the store keeps: at least this much, at most twice. */
export const COMPACTION_INTERVAL_MS = 5 * 60_000;

export type Compactor = { start(): void; stop(): void };

export function leaderCompactor(store: Store, log: Logger, o: { intervalMs?: number; isLeader: () => boolean; onCompacted?: (revision: number) => void }): Compactor {
  const every = o.intervalMs ?? COMPACTION_INTERVAL_MS;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  /** The revision seen one interval ago: what the next tick compacts to. */
  let mark = 0;

  async function tick(): Promise<void> {
    if (!running) return;
    if (!o.isLeader()) {
      // not (or no longer) the leader: the one that is compacts; stop() normally comes with the demotion
      mark = 0;
      timer = setTimeout(() => void tick(), every);
      return;
    }
    try {
      const now = await store.revision();
      if (mark > 0) {
        await store.compact(mark);
        log.debug({ revision: mark, current: now }, 'store history compacted');
        o.onCompacted?.(mark);
      }
      mark = now;
    } catch (err) {
      // another controller compacted further, or the store is away: the next tick tries again
      log.warn({ err, revision: mark }, 'cannot compact the store history; will retry');
    }
    if (running) timer = setTimeout(() => void tick(), every);
  }

  return {
    start() {
      if (running) return;
      running = true;
      mark = 0;
      log.info({ everySeconds: Math.round(every / 1000) }, 'leader: compacting the store history');
      timer = setTimeout(() => void tick(), 0);
    },
    stop() {
      running = false;
      clearTimeout(timer);
      timer = undefined;
    },
  };
}

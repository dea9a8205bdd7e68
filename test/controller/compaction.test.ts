// The leader's compaction of the store history, on both stores: each tick
// compacts to the revision the previous tick saw, so a watch from a revision
// younger than one interval still resumes, an older one is told it was
// compacted (and lists again), and a controller that is not the leader
// compacts nothing.
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { leaderCompactor, type Compactor } from '../../controller/daemon/compaction';
import { CompactedError, type Store } from '../../controller/store/types';
import { captureLogger } from '../helpers/log';
import { bothStores } from '../helpers/stores';
import { waitFor } from '../helpers/wait';

/** The first batch of a watch from `rev`, or the error it ends with. */
async function firstBatch(store: Store, rev: number): Promise<unknown> {
  const ac = new AbortController();
  try {
    for await (const b of store.watch('/t/', { fromRevision: rev, signal: ac.signal })) return b;
    return undefined;
  } catch (e) {
    return e;
  } finally {
    ac.abort();
  }
}

for (const backend of bothStores('compact')) {
  describe(`store history compaction (${backend.name})`, () => {
    let store: Store;
    let c: Compactor | undefined;
    beforeAll(async () => {
      await backend.setup();
      store = await backend.open();
    }, 30_000);
    afterAll(async () => {
      await store?.close();
      await backend.teardown();
    });
    afterEach(() => c?.stop());

    it('compacts to the revision one tick earlier, leaving the younger history to resume from', async () => {
      await store.put('/t/a', '1');
      const old = await store.revision();
      const compacted: number[] = [];
      const { logger } = captureLogger();
      c = leaderCompactor(store, logger, { intervalMs: 200, isLeader: () => true, onCompacted: (r) => compacted.push(r) });
      c.start();
      // the first tick only marks; writes after it are what the next interval keeps
      await waitFor('the first mark', async () => {
        await store.put('/t/a', String(Date.now()));
        return compacted.length > 0;
      }, 10_000);
      const recent = await store.revision();
      await store.put('/t/b', 'x');
      expect(compacted[0]).toBeGreaterThanOrEqual(old);
      expect(await firstBatch(store, compacted[0] - 1)).toBeInstanceOf(CompactedError);
      const resumed = await firstBatch(store, recent);
      expect(resumed).not.toBeInstanceOf(Error);
    }, 20_000);

    it('compacts nothing while this controller is not the leader', async () => {
      const compacted: number[] = [];
      const { logger } = captureLogger();
      let asked = 0;
      c = leaderCompactor(store, logger, { intervalMs: 20, isLeader: () => (asked++, false), onCompacted: (r) => compacted.push(r) });
      c.start();
      await waitFor('five ticks', async () => {
        await store.put('/t/c', String(asked));
        return asked >= 5;
      }, 5_000);
      expect(compacted).toEqual([]);
    });
  });
}

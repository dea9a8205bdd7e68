// The revoked serials, held in memory by every controller so refusing a
// revoked certificate costs one set lookup per call. Kept current by a watch
// on the store's revocation records, so a revocation written through any
// controller (or by `weft host delete` / `weft cert revoke` on the store)
// reaches all of them; the same code serves SQLite and etcd, which both
// implement the Store watch. Records pruned by their lease (the certificate
// expired anyway) leave the set with their delete events.
//
// While the store cannot be watched the last known set stays in force and
// the watch is retried; a compacted history is answered by reading the whole
// set again.
import type { Logger } from '../common/log';
import { REVOKED_PREFIX } from '../registry/keys';
import type { Store } from '../store/types';
import { normalizeSerial } from '../api/validate';

export type RevocationSet = {
  has(serial: string): boolean;
  /** Adds at once what this controller itself just revoked, ahead of its watch. */
  add(serials: string[]): void;
  /** Called with each serial newly revoked (open watch streams of it are ended); returns the unsubscribe function. */
  onRevoked(fn: (serial: string) => void): () => void;
  size(): number;
  /** The revision the set reflects. */
  revision(): number;
  stop(): void;
};

export type RevocationWatchOptions = { logger: Logger; retryMs?: number };

/** Reads the set, then follows it; resolves once the first read is in, so nothing is served before it. */
export async function watchRevocations(store: Store, o: RevocationWatchOptions): Promise<RevocationSet> {
  const retryMs = o.retryMs ?? 1000;
  let serials = new Set<string>();
  let at = 0;
  const stop = new AbortController();
  const listeners = new Set<(serial: string) => void>();
  const revoke = (serial: string) => {
    if (serials.has(serial)) return;
    serials.add(serial);
    for (const fn of [...listeners]) {
      try {
        fn(serial);
      } catch (err) {
        o.logger.error({ err, serial }, 'revocation listener failed');
      }
    }
  };

  async function load(): Promise<void> {
    const { kvs, revision } = await store.range(REVOKED_PREFIX);
    serials = new Set(kvs.map((kv) => kv.key.slice(REVOKED_PREFIX.length)));
    at = revision;
  }

  async function follow(): Promise<void> {
    while (!stop.signal.aborted) {
      try {
        for await (const batch of store.watch(REVOKED_PREFIX, { fromRevision: at + 1, signal: stop.signal })) {
          for (const ev of batch.events) {
            const serial = ev.kv.key.slice(REVOKED_PREFIX.length);
            if (ev.type === 'put') revoke(serial);
            else serials.delete(serial);
          }
          at = Math.max(at, batch.revision);
        }
      } catch (err) {
        if (stop.signal.aborted) return;
        o.logger.warn({ err, revision: at, retryInMs: retryMs }, 'revocation watch interrupted; the last known revocations stay in force');
      }
      if (stop.signal.aborted) return;
      await new Promise((r) => setTimeout(r, retryMs).unref());
      try {
        await load();
      } catch (err) {
        o.logger.warn({ err }, 'cannot read the revocations again; retrying');
      }
    }
  }

  await load();
  void follow();
  return {
    has: (serial) => serials.has(serial),
    add(list) {
      for (const s of list) revoke(normalizeSerial(s));
    },
    onRevoked(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    size: () => serials.size,
    revision: () => at,
    stop: () => stop.abort(),
  };
}

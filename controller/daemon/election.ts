// Leader election over the Store, so it works the same on SQLite and etcd.
//
// The leader holds /weft/leader, created only when absent (version == 0) and
// attached to a short store lease that it keeps alive. Everyone else watches
// the key and campaigns again when it goes (deleted on stop, or expired with
// a dead leader's lease).
//
// Two leaders must never act at once. The store expires the lease TTL seconds
// after it received the last keepalive; we count from before we *sent* that
// keepalive and give up leadership a safety margin earlier still. So by the
// time anyone else can create the key, the old leader has already stopped
// calling itself leader, even if it cannot reach the store to say so.
import type { Logger } from '../common/log';
import { LeaseNotFoundError, type Store } from '../store/types';

export const LEADER_KEY = '/weft/leader';

export type ElectionOptions = {
  onElected?: () => void;
  onDemoted?: () => void;
  logger?: Logger;
  /** Store lease TTL in seconds; default 5. */
  ttlSeconds?: number;
  /** Keepalive interval (ms); default a fifth of the TTL, so several may fail before the lease is in danger. */
  keepAliveMs?: number;
  /** Give up leadership this long before our own estimate of the lease's end (ms); default a fifth of the TTL. */
  marginMs?: number;
  /** Followers re-check the key at least this often (ms), in case a watch missed the delete; default the TTL. */
  recheckMs?: number;
  key?: string;
};

export type Election = {
  /** True only while our lease is certainly still live at the store. */
  isLeader(): boolean;
  /** The id of the current leader as last seen, or undefined when there is none. */
  leader(): string | undefined;
  /** Steps down (deleting the key so another controller takes over at once) and stops campaigning. */
  stop(): Promise<void>;
};

export function startElection(store: Store, id: string, opts: ElectionOptions = {}): Election {
  const key = opts.key ?? LEADER_KEY;
  const ttlMs = (opts.ttlSeconds ?? 5) * 1000;
  const keepAliveMs = opts.keepAliveMs ?? Math.max(100, Math.floor(ttlMs / 5));
  const marginMs = opts.marginMs ?? Math.floor(ttlMs / 5);
  const recheckMs = opts.recheckMs ?? ttlMs;
  const log = opts.logger;

  const stopping = new AbortController();
  let lease: string | undefined;
  /** Local time after which we must no longer act as leader. */
  let deadline = 0;
  let leading = false;
  let seen: string | undefined;
  let demoteTimer: NodeJS.Timeout | undefined;

  const isLeader = () => leading && Date.now() < deadline;

  function elected(leaseId: string, sentAt: number): void {
    lease = leaseId;
    leading = true;
    seen = id;
    extend(sentAt);
    log?.info({ leader: id, lease: leaseId }, 'elected leader');
    opts.onElected?.();
  }

  function extend(sentAt: number): void {
    deadline = sentAt + ttlMs - marginMs;
    clearTimeout(demoteTimer);
    // Fires only if keepalives stop succeeding: demote on our own clock, not the store's word.
    demoteTimer = setTimeout(() => demote('lease keepalive did not succeed in time'), Math.max(0, deadline - Date.now()));
  }

  function demote(why: string): void {
    if (!leading) return;
    leading = false;
    deadline = 0;
    clearTimeout(demoteTimer);
    if (seen === id) seen = undefined;
    const old = lease;
    lease = undefined;
    log?.warn({ leader: id, reason: why }, 'no longer leader');
    opts.onDemoted?.();
    // Best effort: if the store is reachable, free the key for the others now.
    if (old) store.leaseRevoke(old).catch(() => undefined);
    wake();
  }

  // One loop: campaign; as leader, keep the lease alive; as follower, wait
  // for the key to go. `wake` cuts a wait short.
  let wakeUp: (() => void) | undefined;
  const wake = () => wakeUp?.();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        wakeUp = undefined;
        stopping.signal.removeEventListener('abort', done);
        resolve();
      }
      wakeUp = done;
      stopping.signal.addEventListener('abort', done, { once: true });
    });

  async function campaign(): Promise<number> {
    const leaseId = await store.leaseGrant(Math.ceil(ttlMs / 1000));
    const sentAt = Date.now();
    let r;
    try {
      r = await store.txn(
        [{ key, target: 'version', op: '==', version: 0 }],
        [{ type: 'put', key, value: id, lease: leaseId }],
        [{ type: 'get', key }],
      );
    } catch (err) {
      await store.leaseRevoke(leaseId).catch(() => undefined);
      throw err;
    }
    if (r.succeeded) {
      if (stopping.signal.aborted) {
        await store.leaseRevoke(leaseId).catch(() => undefined);
        return r.revision;
      }
      elected(leaseId, sentAt);
      return r.revision;
    }
    await store.leaseRevoke(leaseId).catch(() => undefined);
    const holder = r.results[0]?.value;
    if (holder !== seen) log?.info({ leader: holder }, 'following leader');
    seen = holder;
    return r.revision;
  }

  async function keepAlive(): Promise<void> {
    const current = lease;
    if (!current) return;
    const sentAt = Date.now();
    try {
      await store.leaseKeepAlive(current);
      if (leading && lease === current) extend(sentAt);
    } catch (err) {
      if (err instanceof LeaseNotFoundError) demote('leader lease expired at the store');
      else log?.warn({ err }, 'leader lease keepalive failed; retrying');
    }
  }

  /** Waits until the key is deleted (or the recheck interval passes), watching from after `revision`. */
  async function awaitVacancy(revision: number): Promise<void> {
    const ac = new AbortController();
    const onStop = () => ac.abort();
    stopping.signal.addEventListener('abort', onStop, { once: true });
    const timer = setTimeout(() => ac.abort(), recheckMs);
    try {
      for await (const batch of store.watch(key, { fromRevision: revision + 1, signal: ac.signal })) {
        for (const e of batch.events) {
          if (e.kv.key !== key) continue;
          if (e.type === 'delete') {
            log?.info({ leader: seen }, 'leader key gone; campaigning');
            seen = undefined;
            return;
          }
          if (e.kv.value !== seen) log?.info({ leader: e.kv.value }, 'following leader');
          seen = e.kv.value;
        }
      }
    } finally {
      clearTimeout(timer);
      stopping.signal.removeEventListener('abort', onStop);
      ac.abort();
    }
  }

  const loop = (async () => {
    let failures = 0;
    while (!stopping.signal.aborted) {
      try {
        if (leading) {
          await sleep(keepAliveMs);
          if (!stopping.signal.aborted) await keepAlive();
          continue;
        }
        const revision = await campaign();
        failures = 0;
        if (!leading && !stopping.signal.aborted) await awaitVacancy(revision);
      } catch (err) {
        failures++;
        if (failures === 1 || failures % 10 === 0) log?.warn({ err, failures }, 'election: store error; retrying');
        await sleep(Math.min(keepAliveMs * failures, ttlMs));
      }
    }
  })();

  return {
    isLeader,
    leader: () => (isLeader() ? id : seen),
    async stop() {
      if (stopping.signal.aborted) return loop;
      stopping.abort();
      await loop;
      clearTimeout(demoteTimer);
      const old = lease;
      if (leading) {
        leading = false;
        deadline = 0;
        lease = undefined;
        log?.info({ leader: id }, 'stepping down');
        opts.onDemoted?.();
      }
      // Revoking deletes the key, which the followers' watches see at once.
      if (old) await store.leaseRevoke(old).catch((err) => log?.warn({ err }, 'could not revoke leader lease'));
    },
  };
}

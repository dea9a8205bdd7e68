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
//
// A leader killed with SIGKILL leaves its key until the lease expires (the
// TTL, 5 s). Followers asked about the leader (/readyz) do not take the key's
// presence for a live leader: they read the lease's time to live (a read, no
// write), and granted minus remaining is how long ago the leader last renewed
// it. A leader renews every keepalive interval, so one silent for longer is
// reported as silent, with when its lease will expire.
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

/** What this controller can say about the leader right now. */
export type LeaderStatus = {
  /** The leader's id as last seen; undefined: none. */
  id: string | undefined;
  self: boolean;
  /** false: none, or one that has not renewed its lease for longer than a keepalive interval allows. */
  healthy: boolean;
  /** Seconds since the leader last renewed its lease (whole seconds on etcd, so up to a second more than the truth). */
  silentSeconds?: number;
  /** Seconds until its lease expires unless renewed. */
  expiresInSeconds?: number;
  /** One line for people: "c1 (lease renewed 0.4 s ago)", "c1 silent for 3 s; its lease expires within 2 s". */
  text: string;
};

export type Election = {
  /** True only while our lease is certainly still live at the store. */
  isLeader(): boolean;
  /** The id of the current leader as last seen, or undefined when there is none. */
  leader(): string | undefined;
  /** The leader with how recently it renewed its lease: one store read when another controller leads, none when this one does. */
  leaderStatus(): Promise<LeaderStatus>;
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
  /** The store lease the seen leader's key is attached to. */
  let seenLease: string | undefined;
  /** Local time our last successful keepalive (or the election) was sent. */
  let renewedAt = 0;
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
    renewedAt = sentAt;
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
    seenLease = r.results[0]?.lease;
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
            seenLease = undefined;
            return;
          }
          if (e.kv.value !== seen) log?.info({ leader: e.kv.value }, 'following leader');
          seen = e.kv.value;
          seenLease = e.kv.lease;
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

  /** A renewal this long ago is still on time: one keepalive interval, plus a second for etcd's whole-second TTLs. */
  const onTimeSeconds = keepAliveMs / 1000 + 1;
  const secs = (n: number) => String(Math.round(n * 10) / 10);

  async function leaderStatus(): Promise<LeaderStatus> {
    if (isLeader()) {
      const ago = Math.max(0, Date.now() - renewedAt) / 1000;
      return { id, self: true, healthy: true, silentSeconds: ago, text: `${id} (this controller; lease renewed ${secs(ago)} s ago)` };
    }
    const [holder, leaseId] = [seen, seenLease];
    if (holder === undefined) return { id: undefined, self: false, healthy: false, text: 'none (campaigning)' };
    if (!leaseId) return { id: holder, self: false, healthy: false, text: `${holder}, whose key has no lease: it would never expire` };
    const ttl = await store.leaseTimeToLive(leaseId);
    if (!ttl) return { id: holder, self: false, healthy: false, text: `none: the lease of ${holder} has expired; a controller takes over` };
    const silent = Math.max(0, ttl.grantedSeconds - ttl.remainingSeconds);
    const base = { id: holder, self: false, silentSeconds: silent, expiresInSeconds: ttl.remainingSeconds };
    if (silent <= onTimeSeconds) return { ...base, healthy: true, text: `${holder} (lease renewed within ${secs(Math.max(silent, 1))} s)` };
    return {
      ...base,
      healthy: false,
      text: `${holder} silent for ${secs(silent)} s; its lease expires within ${secs(ttl.remainingSeconds)} s, then a controller takes over`,
    };
  }

  return {
    isLeader,
    leader: () => (isLeader() ? id : seen),
    leaderStatus,
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

// One service port's backends, as the L7 proxy picks from them and the L4
// kernel path programs them: health from the active checker, passive
// ejection, rack preference, draining, and client-ip affinity.
//
// Everything a pick needs is precomputed when something changes (endpoints,
// health, an ejection or its end): the candidate sets per rack side, their
// counts, and the Maglev table. A pick is then a few comparisons, one
// locality draw, two random candidates and one Lease object. In-flight counts
// are kept per endpoint and summed per side as leases start and end, so the
// load signal costs nothing extra.
//
// An endpoint is, for selection:
//   pending   — not checked yet (see ingress/health/checker.ts): never
//               picked, and left out of the panic arithmetic, so a brand-new
//               service does not panic into endpoints nobody has checked;
//   healthy   — last reported healthy and not ejected: a candidate;
//   unhealthy — reported unhealthy, or ejected: picked only in panic;
//   draining  — gone from the service: never picked, kept until its
//               in-flight requests end or the drain deadline passes.
import { type Logger, silentLogger } from '../../controller/common/log';
import type { Affinity, Endpoint, Lease, Outcome, Picker, RackPolicy } from '../model';
import { type Choice, type LocalityOptions, type RackCounts, choose, defaultLocality, inPanic, localHealthShare } from './locality';
import { flowHash, maglevLookup, maglevRebalance, maglevSize, maglevTable } from './maglev';
import { OutlierDetector, type OutlierOptions } from './outlier';
import { pickP2C } from './p2c';

/** Timers as the pool uses them; tests pass a fake. */
export type PoolTimers = { set(fn: () => void, ms: number): unknown; clear(handle: unknown): void };

export type PoolOptions = {
  service: string;
  localRack: string;
  rackPolicy: RackPolicy;
  affinity: Affinity;
  outlier?: Partial<OutlierOptions>;
  locality?: Partial<LocalityOptions>;
  /** What a new endpoint is until setHealth reports on it: 'pending' where an active checker runs (default), 'healthy' where none does. */
  initialHealth?: 'pending' | 'healthy';
  /** How long a removed endpoint drains when setEndpoints names no drainMs (default 30 s). */
  drainMs?: number;
  /** Uniform in [0, 1) (default Math.random). */
  rng?: () => number;
  now?: () => number;
  timers?: PoolTimers;
  log?: Logger;
};

export type EndpointStatus = { key: string; rack: string; host: string; healthy: boolean; ejected: boolean; draining: boolean; inFlight: number };

export type PoolStatus = {
  service: string;
  endpoints: EndpointStatus[];
  picksLocal: number;
  picksSpilled: number;
  ejections: number;
  /** Health is being ignored: fewer than half the endpoints are healthy. */
  panic: boolean;
};

type Health = 'pending' | 'healthy' | 'unhealthy';

class Entry {
  ep: Endpoint;
  local: boolean;
  health: Health;
  draining = false;
  drainUntil = 0;
  inFlight = 0;
  readonly weight = 1;
  /** In the local or remote candidate set: its in-flight counts towards that side's load. */
  counted = false;
  /** Forgotten by the pool; leases still out on it only update its own count. */
  removed = false;
  constructor(ep: Endpoint, localRack: string, health: Health) {
    this.ep = ep;
    this.local = ep.rack === localRack;
    this.health = health;
  }
}

class PoolLease implements Lease {
  readonly endpoint: Endpoint;
  readonly spilled: boolean;
  #entry: Entry | undefined;
  readonly #finish: (e: Entry, outcome: Outcome) => void;
  constructor(e: Entry, finish: (e: Entry, outcome: Outcome) => void) {
    this.endpoint = e.ep;
    this.spilled = !e.local;
    this.#entry = e;
    this.#finish = finish;
  }
  done(outcome: Outcome): void {
    const e = this.#entry;
    // a second call is a caller's bug; counting it twice would corrupt in-flight and ejection
    if (e === undefined) return;
    this.#entry = undefined;
    this.#finish(e, outcome);
  }
}

const defaultTimers: PoolTimers = {
  set(fn, ms) {
    const t = setTimeout(fn, ms);
    // the proxy's listeners keep the process up, not a pool's bookkeeping
    t.unref();
    return t;
  },
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

export class BackendPool implements Picker {
  readonly #service: string;
  readonly #localRack: string;
  readonly #policy: RackPolicy;
  readonly #affinity: Affinity;
  readonly #locality: LocalityOptions;
  readonly #initial: Health;
  readonly #drainMs: number;
  readonly #rng: () => number;
  readonly #now: () => number;
  readonly #timers: PoolTimers;
  readonly #log: Logger;
  readonly #outlier: OutlierDetector;
  readonly #finish = (e: Entry, outcome: Outcome) => this.#done(e, outcome);

  readonly #entries = new Map<string, Entry>();
  readonly #listeners = new Set<() => void>();

  // precomputed by #rebuild
  #localSet: Entry[] = [];
  #remoteSet: Entry[] = [];
  #allGood: Entry[] = [];
  #panicSet: Entry[] = [];
  readonly #localCounts: RackCounts = { total: 0, healthy: 0, inFlight: 0 };
  readonly #remoteCounts: RackCounts = { total: 0, healthy: 0, inFlight: 0 };
  #upCount = 0;
  #candidates: Entry[] = [];
  #weights: number[] = [];
  #signature = '';
  #table: Int32Array | undefined;
  /** The table as slot -> endpoint key, what the next change rebalances from. */
  #tableKeys: (string | undefined)[] | undefined;
  #tableSize = 0;

  #nextExpiry = Infinity;
  #expiryTimer: unknown;
  #drainTimer: unknown;
  #drainAt = Infinity;
  #picksLocal = 0;
  #picksSpilled = 0;
  #closed = false;

  constructor(o: PoolOptions) {
    this.#service = o.service;
    this.#localRack = o.localRack;
    this.#policy = o.rackPolicy;
    this.#affinity = o.affinity;
    this.#locality = { ...defaultLocality, ...o.locality };
    this.#initial = o.initialHealth ?? 'pending';
    this.#drainMs = o.drainMs ?? 30_000;
    this.#rng = o.rng ?? Math.random;
    this.#now = o.now ?? Date.now;
    this.#timers = o.timers ?? defaultTimers;
    this.#log = o.log ?? silentLogger;
    this.#outlier = new OutlierDetector(o.outlier, this.#now);
  }

  /**
   * The service port's endpoints, all of them. New ones start as
   * initialHealth; ones no longer listed drain for `drainMs` (no new picks;
   * forgotten when their last lease ends or the deadline passes; 0: at
   * once); a draining one that is listed again is back in rotation with its
   * health and ejection state as they were.
   */
  setEndpoints(eps: readonly Endpoint[], opts: { drainMs?: number } = {}): void {
    if (this.#closed) return;
    const drainMs = opts.drainMs ?? this.#drainMs;
    const listed = new Set<string>();
    for (const ep of eps) {
      listed.add(ep.key);
      const e = this.#entries.get(ep.key);
      if (e === undefined) {
        this.#entries.set(ep.key, new Entry(ep, this.#localRack, this.#initial));
        continue;
      }
      e.ep = ep;
      e.local = ep.rack === this.#localRack;
      if (e.draining) {
        e.draining = false;
        e.drainUntil = 0;
      }
    }
    const now = this.#now();
    for (const e of this.#entries.values()) {
      if (listed.has(e.ep.key) || e.draining) continue;
      if (drainMs <= 0 || e.inFlight === 0) this.#forget(e);
      else {
        e.draining = true;
        e.drainUntil = now + drainMs;
      }
    }
    this.#rebuild();
    this.#scheduleDrain();
  }

  /** The active checker's verdict on `key`; ignored for endpoints the pool does not have. */
  setHealth(key: string, healthy: boolean): void {
    const e = this.#entries.get(key);
    const h: Health = healthy ? 'healthy' : 'unhealthy';
    if (this.#closed || e === undefined || e.health === h) return;
    e.health = h;
    this.#rebuild();
  }

  pick(ctx: { clientIp: string; exclude?: ReadonlySet<string> }): Lease | undefined {
    if (this.#closed) return undefined;
    if (this.#now() >= this.#nextExpiry) this.#expire();
    const exclude = ctx.exclude !== undefined && ctx.exclude.size > 0 ? ctx.exclude : undefined;

    if (this.#table !== undefined && this.#candidates.length > 0) {
      const e = this.#candidates[maglevLookup(this.#table, flowHash(ctx.clientIp))];
      // excluded on a retry: balance the retry instead, the client's next request comes back here
      if (exclude === undefined || !exclude.has(e.ep.key)) return this.#lease(e);
    }

    let set = this.#setFor(choose(this.#localCounts, this.#remoteCounts, this.#policy, this.#rng(), this.#locality));
    if (exclude !== undefined) {
      // retries only: allocation is fine here
      set = set.filter((e) => !exclude.has(e.ep.key));
      if (set.length === 0) set = this.#allGood.filter((e) => !exclude.has(e.ep.key));
    }
    const e = pickP2C(set, this.#rng);
    return e === undefined ? undefined : this.#lease(e);
  }

  /**
   * What the L4 kernel path should program: healthy, not ejected, not
   * draining endpoints, narrowed by the rack rule on health (not load, which
   * changes per request): the local rack alone while it is whole, local and
   * remote when it is degraded (candidateWeights() gives their shares), the
   * others when it has none; every endpoint in panic.
   */
  candidates(): Endpoint[] {
    return this.#candidates.map((e) => e.ep);
  }

  /** Weights parallel to candidates(), for a weighted Maglev table: equal unless the local rack is degraded. */
  candidateWeights(): number[] {
    return [...this.#weights];
  }

  /** Calls `cb` whenever candidates() (or their weights) change; returns the unsubscribe. */
  onChange(cb: () => void): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  status(): PoolStatus {
    return {
      service: this.#service,
      endpoints: [...this.#entries.values()]
        .map((e) => ({
          key: e.ep.key,
          rack: e.ep.rack,
          host: e.ep.host,
          healthy: e.health === 'healthy',
          ejected: this.#outlier.isEjected(e.ep.key),
          draining: e.draining,
          inFlight: e.inFlight,
        }))
        .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
      picksLocal: this.#picksLocal,
      picksSpilled: this.#picksSpilled,
      ejections: this.#outlier.totalEjections,
      panic: inPanic(this.#localCounts, this.#remoteCounts, this.#locality),
    };
  }

  /** Stops the timers and listeners; picks return undefined from now on. Leases still out may end. */
  close(): void {
    this.#closed = true;
    this.#timers.clear(this.#expiryTimer);
    this.#timers.clear(this.#drainTimer);
    this.#expiryTimer = this.#drainTimer = undefined;
    this.#listeners.clear();
  }

  #setFor(c: Choice): Entry[] {
    switch (c) {
      case 'local':
        return this.#localSet;
      case 'spill-health':
      case 'spill-load':
        return this.#remoteSet;
      case 'any':
        return this.#allGood;
      case 'panic':
        return this.#panicSet;
      case 'none':
        return [];
    }
  }

  #lease(e: Entry): Lease {
    e.inFlight++;
    if (e.counted) (e.local ? this.#localCounts : this.#remoteCounts).inFlight++;
    if (e.local) this.#picksLocal++;
    else this.#picksSpilled++;
    return new PoolLease(e, this.#finish);
  }

  #done(e: Entry, outcome: Outcome): void {
    e.inFlight--;
    if (e.removed) return;
    if (e.counted) (e.local ? this.#localCounts : this.#remoteCounts).inFlight--;
    if (e.draining) {
      if (e.inFlight === 0) this.#forget(e);
      return;
    }
    if (this.#closed || !this.#outlier.record(e.ep.key, outcome, this.#upCount)) return;
    this.#log.warn({ service: this.#service, endpoint: e.ep.key, host: e.ep.host, outcome, times: this.#outlier.ejectionCount(e.ep.key) }, 'endpoint ejected after consecutive failures');
    this.#rebuild();
  }

  #forget(e: Entry): void {
    e.removed = true;
    this.#entries.delete(e.ep.key);
    this.#outlier.forget(e.ep.key);
  }

  #expire(): void {
    const back = this.#outlier.expire();
    if (back.length > 0) this.#log.info({ service: this.#service, endpoints: back }, 'ejection over: endpoints back in rotation');
    this.#rebuild();
  }

  /** Recomputes every derived set, count and table; tells listeners when the candidates changed. */
  #rebuild(): void {
    const local: Entry[] = [];
    const remote: Entry[] = [];
    const up: Entry[] = [];
    const lc = this.#localCounts;
    const rc = this.#remoteCounts;
    lc.total = lc.healthy = lc.inFlight = rc.total = rc.healthy = rc.inFlight = 0;
    for (const e of this.#entries.values()) {
      e.counted = false;
      if (e.draining || e.health === 'pending') continue;
      up.push(e);
      const side = e.local ? lc : rc;
      side.total++;
      if (e.health !== 'healthy' || this.#outlier.isEjected(e.ep.key)) continue;
      side.healthy++;
      side.inFlight += e.inFlight;
      e.counted = true;
      (e.local ? local : remote).push(e);
    }
    this.#localSet = local;
    this.#remoteSet = remote;
    this.#allGood = local.concat(remote);
    this.#panicSet = up;
    this.#upCount = up.length;

    // what the kernel path programs: the rack rule by health alone
    let cands: Entry[];
    let weights: number[];
    if (up.length === 0) [cands, weights] = [[], []];
    else if (inPanic(lc, rc, this.#locality)) [cands, weights] = [up, up.map(() => 1)];
    else if (this.#policy === 'any') [cands, weights] = [this.#allGood, this.#allGood.map(() => 1)];
    else {
      const share = localHealthShare(lc, rc, this.#locality);
      if (share >= 1) [cands, weights] = [local, local.map(() => 1)];
      else if (share <= 0) [cands, weights] = [remote, remote.map(() => 1)];
      else {
        // per-endpoint weights giving each side its share, scaled so the heaviest is 1
        const wl = share / local.length;
        const wr = (1 - share) / remote.length;
        const top = Math.max(wl, wr);
        cands = local.concat(remote);
        weights = cands.map((e) => (e.local ? wl : wr) / top);
      }
    }
    // a stable order, so the signature and the table do not depend on insertion order
    const order = cands.map((_, i) => i).sort((a, b) => (cands[a].ep.key < cands[b].ep.key ? -1 : 1));
    this.#candidates = order.map((i) => cands[i]);
    this.#weights = order.map((i) => weights[i]);

    const signature = this.#candidates.map((e, i) => `${e.ep.key}=${this.#weights[i]}`).join(',');
    if (signature !== this.#signature) {
      this.#signature = signature;
      if (this.#affinity === 'client-ip') this.#buildTable();
      this.#scheduleExpiry();
      for (const cb of this.#listeners) {
        try {
          cb();
        } catch (err) {
          this.#log.error({ err, service: this.#service }, 'pool change listener failed');
        }
      }
    } else this.#scheduleExpiry();
  }

  #buildTable(): void {
    const n = this.#candidates.length;
    if (n === 0) {
      this.#table = undefined;
      return;
    }
    // Keep the table size while the count changes: a flow's slot is hash % M,
    // so a new M would move nearly every client. Grow with headroom only
    // when the table gets below 100 slots a backend.
    const keys = this.#candidates.map((e) => e.ep.key);
    const prev = this.#tableKeys;
    if (this.#tableSize < 100 * n) this.#tableSize = maglevSize(2 * n);
    // Equal weights and the same size: continue from the table in use, so a
    // change moves only the clients of the backends that came or went.
    const equal = this.#weights.every((w) => w === this.#weights[0]);
    this.#table = prev !== undefined && prev.length === this.#tableSize && equal
      ? maglevRebalance(prev, keys)
      : maglevTable(keys, this.#tableSize, this.#weights);
    this.#tableKeys = Array.from(this.#table, (i) => keys[i]);
  }

  #scheduleExpiry(): void {
    const next = this.#outlier.nextExpiry() ?? Infinity;
    if (next === this.#nextExpiry) return;
    this.#nextExpiry = next;
    this.#timers.clear(this.#expiryTimer);
    this.#expiryTimer = undefined;
    if (next === Infinity || this.#closed) return;
    this.#expiryTimer = this.#timers.set(() => {
      this.#expiryTimer = undefined;
      this.#nextExpiry = Infinity;
      if (!this.#closed) this.#expire();
    }, Math.max(0, next - this.#now()));
  }

  #scheduleDrain(): void {
    let next = Infinity;
    for (const e of this.#entries.values()) if (e.draining && e.drainUntil < next) next = e.drainUntil;
    if (next === this.#drainAt) return;
    this.#drainAt = next;
    this.#timers.clear(this.#drainTimer);
    this.#drainTimer = undefined;
    if (next === Infinity || this.#closed) return;
    this.#drainTimer = this.#timers.set(() => {
      this.#drainTimer = undefined;
      this.#drainAt = Infinity;
      if (this.#closed) return;
      const now = this.#now();
      for (const e of [...this.#entries.values()]) {
        if (!e.draining || e.drainUntil > now) continue;
        this.#log.info({ service: this.#service, endpoint: e.ep.key, inFlight: e.inFlight }, 'drain deadline passed: endpoint forgotten with requests in flight');
        this.#forget(e);
      }
      this.#scheduleDrain();
    }, Math.max(0, next - this.#now()));
  }
}

// Passive outlier ejection: an endpoint whose requests keep failing is taken
// out of rotation for a while, without waiting for the active checker (which
// only sees whether it accepts connections or answers one path).
//
// `consecutiveFailures` failed outcomes in a row eject it for
// baseEjectionMs × n, n being how many times it has been ejected (capped at
// maxEjectionMs), so an endpoint that keeps coming back broken stays out
// longer each time. n decays by one for every decayMs it spends in rotation
// without being ejected again, so an endpoint that recovered for good is
// treated as new again after a while. An 'ok' resets the run of failures.
//
// At most maxEjectionPercent of the pool is ejected at once: failures across
// many endpoints at the same time usually mean the cause is shared (a
// dependency, the network, the ingress itself), and ejecting them all would
// turn a partial outage into a full one. The cap is never below one
// endpoint: 10% of a pool under 10 rounds down to zero, which would turn
// ejection off for exactly the small pools where one bad endpoint hurts most
// (1 of 3 is a third of the requests). If that one was the last healthy
// endpoint, the pool's panic rule still serves from it.
//
// Time is read through `now` and nothing here sets timers: the pool asks for
// nextExpiry() and schedules its own wake-up.
import { InvalidArgumentError } from '../../controller/common/errors';
import type { Outcome } from '../model';

export type OutlierOptions = {
  /** Failures in a row that eject (default 5). */
  consecutiveFailures: number;
  /** The first ejection's length; the n-th lasts n times as long (default 30 s). */
  baseEjectionMs: number;
  /** The longest ejection (default 300 s). */
  maxEjectionMs: number;
  /** In rotation this long without an ejection forgets one past ejection (default 30 s; 0: never forgets). */
  decayMs: number;
  /** Ejected at once, as a percentage of the pool; at least one endpoint (default 10). */
  maxEjectionPercent: number;
};

export const defaultOutlier: OutlierOptions = { consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionMs: 300_000, decayMs: 30_000, maxEjectionPercent: 10 };

type State = {
  failures: number;
  /** Past ejections, as of `since`. */
  ejections: number;
  /** While ejected: when it ends; otherwise 0. */
  until: number;
  /** When `ejections` was last brought up to date (decay counts from here). */
  since: number;
};

export class OutlierDetector {
  readonly #o: OutlierOptions;
  readonly #now: () => number;
  readonly #state = new Map<string, State>();
  #ejectedNow = 0;
  #total = 0;

  constructor(options: Partial<OutlierOptions> = {}, now: () => number = Date.now) {
    const o = { ...defaultOutlier, ...options };
    for (const [k, v] of Object.entries(o)) {
      if (!(typeof v === 'number' && v >= 0 && Number.isFinite(v))) throw new InvalidArgumentError(`outlier option ${k} must be a non-negative number, got ${v}`, { field: k });
    }
    if (o.consecutiveFailures < 1) throw new InvalidArgumentError('outlier option consecutiveFailures must be at least 1', { field: 'consecutiveFailures' });
    this.#o = o;
    this.#now = now;
  }

  /** How many endpoints of a pool of `poolSize` may be ejected at once. */
  cap(poolSize: number): number {
    return Math.max(1, Math.floor((poolSize * this.#o.maxEjectionPercent) / 100));
  }

  /**
   * Counts one finished request of `key`, in a pool of `poolSize` endpoints.
   * True when this outcome ejected it. Outcomes of an endpoint already
   * ejected (requests that were in flight) change nothing.
   */
  record(key: string, outcome: Outcome, poolSize: number): boolean {
    let s = this.#state.get(key);
    if (outcome === 'ok') {
      if (s !== undefined) s.failures = 0;
      return false;
    }
    if (s === undefined) {
      s = { failures: 0, ejections: 0, until: 0, since: this.#now() };
      this.#state.set(key, s);
    }
    if (s.until !== 0) return false;
    s.failures++;
    // over the cap it stays a candidate: its next failure tries again
    if (s.failures < this.#o.consecutiveFailures || this.#ejectedNow >= this.cap(poolSize)) return false;
    const now = this.#now();
    this.#decay(s, now);
    s.ejections++;
    s.failures = 0;
    s.until = now + Math.min(this.#o.maxEjectionMs, this.#o.baseEjectionMs * s.ejections);
    this.#ejectedNow++;
    this.#total++;
    return true;
  }

  /** Whether `key` is out of rotation (an ejection whose time has passed counts until expire() runs). */
  isEjected(key: string): boolean {
    return (this.#state.get(key)?.until ?? 0) !== 0;
  }

  /** Ends the ejections whose time is up; returns their keys. */
  expire(): string[] {
    const now = this.#now();
    const back: string[] = [];
    for (const [key, s] of this.#state) {
      if (s.until !== 0 && s.until <= now) {
        s.until = 0;
        // decay counts from its return to rotation
        s.since = now;
        this.#ejectedNow--;
        back.push(key);
      }
    }
    return back;
  }

  /** When the next ejection ends, or undefined when none is ejected. */
  nextExpiry(): number | undefined {
    let next: number | undefined;
    for (const s of this.#state.values()) if (s.until !== 0 && (next === undefined || s.until < next)) next = s.until;
    return next;
  }

  /** Drops what is known of an endpoint that left the pool. */
  forget(key: string): void {
    const s = this.#state.get(key);
    if (s?.until) this.#ejectedNow--;
    this.#state.delete(key);
  }

  /** How many times `key` has been ejected, after decay. */
  ejectionCount(key: string): number {
    const s = this.#state.get(key);
    if (s === undefined) return 0;
    if (s.until === 0) this.#decay(s, this.#now());
    return s.ejections;
  }

  get ejectedCount(): number {
    return this.#ejectedNow;
  }

  /** Ejections since this detector was made. */
  get totalEjections(): number {
    return this.#total;
  }

  #decay(s: State, now: number): void {
    if (s.until !== 0 || this.#o.decayMs === 0) return;
    const steps = Math.floor((now - s.since) / this.#o.decayMs);
    if (steps <= 0) return;
    s.ejections = Math.max(0, s.ejections - steps);
    s.since += steps * this.#o.decayMs;
  }
}

// Active health checks of one service port's endpoints: a TCP connect, or an
// HTTP GET of a path that must answer 2xx or 3xx. Each endpoint is checked
// every interval (with jitter, so a thousand endpoints added at once do not
// stay in lockstep), each check bounded by a timeout; an endpoint turns
// unhealthy after `unhealthyThreshold` failures in a row and healthy again
// after `healthyThreshold` successes in a row. Changes go to `onChange`.
//
// A new endpoint starts PENDING: not healthy, so it gets no traffic, but
// checked at once rather than after an interval, and its first result alone
// decides (one success: healthy; one failure: unhealthy, and from then on
// the thresholds apply). The agent registers an endpoint as soon as the
// container is networked, usually before the application listens; sending it
// traffic then gives clients connection errors on every rollout, which is
// what operators complain about first. Starting it unhealthy with the usual
// thresholds would instead hold a new service back by two intervals. Pending
// with an immediate check costs one connect round trip. (The pool leaves
// pending endpoints out of its panic arithmetic too, so a brand-new service
// does not panic into endpoints nobody has checked.)
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { InvalidArgumentError } from '../../controller/common/errors';
import { type Logger, silentLogger } from '../../controller/common/log';
import type { Endpoint } from '../model';

export type HealthState = 'pending' | 'healthy' | 'unhealthy';

export type CheckerOptions = {
  /** Called when an endpoint's health is first known and whenever it changes. */
  onChange: (key: string, healthy: boolean) => void;
  /** Between the end of one check and the start of the next (default 2000). */
  intervalMs?: number;
  /** ± this fraction of the interval, at random (default 0.2). */
  jitter?: number;
  /** One check's limit, connect and (HTTP) response headers (default 1000). */
  timeoutMs?: number;
  /** Failures in a row that make a healthy endpoint unhealthy (default 2). */
  unhealthyThreshold?: number;
  /** Successes in a row that make an unhealthy endpoint healthy (default 2). */
  healthyThreshold?: number;
  log?: Logger;
  rng?: () => number;
};

type Target = {
  ep: Endpoint;
  state: HealthState;
  ok: number;
  bad: number;
  timer?: NodeJS.Timeout;
  /** Ends the check in flight, if any, without a result. */
  abort?: () => void;
};

export class HealthChecker {
  readonly #o: Required<Omit<CheckerOptions, 'log' | 'rng'>>;
  readonly #log: Logger;
  readonly #rng: () => number;
  readonly #targets = new Map<string, Target>();
  #path = '';
  #closed = false;

  constructor(o: CheckerOptions) {
    this.#o = { intervalMs: 2000, jitter: 0.2, timeoutMs: 1000, unhealthyThreshold: 2, healthyThreshold: 2, ...o };
    for (const k of ['intervalMs', 'timeoutMs', 'unhealthyThreshold', 'healthyThreshold'] as const) {
      if (!(this.#o[k] > 0) || !Number.isFinite(this.#o[k])) throw new InvalidArgumentError(`health check option ${k} must be a positive number, got ${this.#o[k]}`, { field: k });
    }
    if (!(this.#o.jitter >= 0 && this.#o.jitter < 1)) throw new InvalidArgumentError(`health check jitter must be in [0, 1), got ${this.#o.jitter}`, { field: 'jitter' });
    this.#log = o.log ?? silentLogger;
    this.#rng = o.rng ?? Math.random;
  }

  /**
   * The endpoints to check, all of them: new ones start pending and are
   * checked at once, ones no longer listed stop being checked (a check in
   * flight is abandoned), the others keep their state and schedule. `path`
   * ('' for a TCP connect check, else an absolute path) applies from each
   * endpoint's next check.
   */
  setTargets(endpoints: readonly Endpoint[], opts: { path: string }): void {
    if (this.#closed) return;
    if (opts.path !== '' && !opts.path.startsWith('/')) throw new InvalidArgumentError(`health check path must be empty or start with /, got ${JSON.stringify(opts.path)}`, { field: 'path' });
    this.#path = opts.path;
    const want = new Map(endpoints.map((ep) => [ep.key, ep]));
    for (const [key, t] of this.#targets) {
      if (!want.has(key)) {
        this.#stop(t);
        this.#targets.delete(key);
      }
    }
    for (const [key, ep] of want) {
      const t = this.#targets.get(key);
      if (t !== undefined) t.ep = ep;
      else {
        const n: Target = { ep, state: 'pending', ok: 0, bad: 0 };
        this.#targets.set(key, n);
        this.#schedule(n, 0);
      }
    }
  }

  /** An endpoint's state, or undefined when it is not a target. */
  state(key: string): HealthState | undefined {
    return this.#targets.get(key)?.state;
  }

  /** Stops every timer and check; no callback runs after this. */
  close(): void {
    this.#closed = true;
    for (const t of this.#targets.values()) this.#stop(t);
    this.#targets.clear();
  }

  #stop(t: Target): void {
    clearTimeout(t.timer);
    t.timer = undefined;
    t.abort?.();
    t.abort = undefined;
  }

  #schedule(t: Target, ms: number): void {
    t.timer = setTimeout(() => {
      t.timer = undefined;
      this.#check(t);
    }, ms);
    // the ingress's listeners keep the process up; a checker alone must not
    t.timer.unref();
  }

  #check(t: Target): void {
    if (this.#closed) return;
    const started = this.#path === '' ? tcpCheck(t.ep, this.#o.timeoutMs) : httpCheck(t.ep, this.#path, this.#o.timeoutMs);
    t.abort = started.abort;
    void started.result.then((ok) => {
      // removed, closed or replaced meanwhile: the result is not this target's any more
      if (this.#closed || t.abort !== started.abort || this.#targets.get(t.ep.key) !== t) return;
      t.abort = undefined;
      this.#record(t, ok);
      const j = this.#o.jitter * (2 * this.#rng() - 1);
      this.#schedule(t, this.#o.intervalMs * (1 + j));
    });
  }

  #record(t: Target, ok: boolean): void {
    if (ok) {
      t.ok++;
      t.bad = 0;
    } else {
      t.bad++;
      t.ok = 0;
    }
    const before = t.state;
    if (before === 'pending') t.state = ok ? 'healthy' : 'unhealthy';
    else if (before === 'healthy' && t.bad >= this.#o.unhealthyThreshold) t.state = 'unhealthy';
    else if (before === 'unhealthy' && t.ok >= this.#o.healthyThreshold) t.state = 'healthy';
    if (t.state === before) return;
    this.#log.info({ endpoint: t.ep.key, host: t.ep.host, from: before, to: t.state }, 'endpoint health changed');
    this.#o.onChange(t.ep.key, t.state === 'healthy');
  }
}

type Started = { result: Promise<boolean>; abort: () => void };

/** Succeeds when a TCP connection is established, then closes it. */
function tcpCheck(ep: Endpoint, timeoutMs: number): Started {
  let sock: Socket | undefined;
  let settle!: (ok: boolean) => void;
  const result = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => settle(false), timeoutMs);
    settle = (ok) => {
      clearTimeout(timer);
      sock?.destroy();
      resolve(ok);
    };
    sock = connect({ host: ep.ip, port: ep.port });
    sock.once('connect', () => settle(true));
    // on, not once: a destroyed socket may report a second error, which unheard would crash the process
    sock.on('error', () => settle(false));
  });
  return { result, abort: () => settle(false) };
}

/** Succeeds on a 2xx or 3xx answer to GET path; the body is discarded. */
function httpCheck(ep: Endpoint, path: string, timeoutMs: number): Started {
  let settle!: (ok: boolean) => void;
  const result = new Promise<boolean>((resolve) => {
    const req = request({ host: ep.ip, port: ep.port, path, method: 'GET', agent: false, headers: { 'user-agent': 'weft-ingress-health', connection: 'close' } });
    const timer = setTimeout(() => settle(false), timeoutMs);
    settle = (ok) => {
      clearTimeout(timer);
      req.destroy();
      resolve(ok);
    };
    req.once('response', (res) => {
      res.resume();
      const s = res.statusCode ?? 0;
      settle(s >= 200 && s < 400);
    });
    req.on('error', () => settle(false));
    req.end();
  });
  return { result, abort: () => settle(false) };
}

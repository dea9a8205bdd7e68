// Picks, for each remote datacenter, the gateway that carries this host's
// traffic there, by probing through the tunnel rather than by asking whether
// a gateway process lives: every interval one probe goes from this host's
// bridge address to each target of each remote datacenter, along the route
// the current choice put in the kernel, so probe and reply take the path
// containers' packets take. Any answer means the path works. After `misses`
// intervals in a row without one the chooser moves to the next candidate and
// tells its listeners, who change the route; the new candidate is judged
// after a grace of `graceIntervals`: the time the route change takes, and the
// time the far side needs to notice the same failure and move its own return
// route (a reply comes back by the far side's choice). Judged sooner, a good
// candidate fails while the far side still returns through the dead gateway,
// and the choice bounces back onto it: seconds lost.
//
// Rules (README "Picking a gateway"):
// - rank order is the order of `candidates`; draining ones come last, the
//   order wraps around;
// - sticky: a choice that answers is kept, even when a better-ranked
//   candidate is back;
// - a chosen candidate that becomes draining is left at once (a planned
//   switch, not a failover) when a non-draining one exists;
// - a datacenter seen for the first time starts from `initial` (the choice
//   the kernel's routes show after a restart) when it is a candidate, so a
//   restart changes nothing;
// - a reply counts only when its sequence, nonce and send time are those of
//   a probe this chooser sent through the current choice within the last two
//   intervals; anything else (late, duplicate, forged) is ignored.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import { InvalidArgumentError } from '../../../controller/common/errors';
import type { Logger } from '../../../controller/common/log';
import { decodeProbe, encodeProbe, KIND_REPLY, KIND_REQUEST, NONCE_SIZE, rateLimited } from './probe-wire';
import type { Candidate, GatewayChoices, PathHealth } from '../state/tunnel';

export type PathSpec = {
  datacenter: string; candidates: Candidate[]; targets: string[]; initial?: string;
  /**
   * This path's own misses, grace and jitter (default: the chooser's). The two
   * ends of a path judge it by replies that come back by the other end's
   * choice, so ends that judge at the same pace can fail over in step onto
   * opposite gateways, each failing because of the other. Giving one end
   * (gateways choosing another datacenter's gateway) more patience than the
   * other (hosts choosing their local gateway) lets the quick end settle first.
   */
  misses?: number; graceIntervals?: number; jitterIntervals?: number;
};

export type Chooser = {
  /** The remote datacenters to probe and this host's bridge address to probe from (undefined: none yet, no probing). */
  update(paths: PathSpec[], source: string | undefined): void;
  choices(): GatewayChoices;
  health(): PathHealth[];
  /** Called after the chooser changed a choice by itself (failover, draining, removal); never from inside update(). */
  onChange(fn: (reason: string) => void): void;
  close(): Promise<void>;
};

/** A bound UDP socket as the chooser uses it; tests give their own. */
export type ProbeSocket = {
  send(msg: Buffer, port: number, address: string, done: (err: Error | null) => void): void;
  close(): void;
};

export type OpenProbeSocket = (
  source: string,
  onMessage: (msg: Buffer, from: { address: string; port: number }) => void,
) => Promise<ProbeSocket>;

export type ChooserOptions = {
  /** The responders' port. */
  port: number;
  /** Default 250. */
  intervalMs?: number;
  /** Intervals in a row without an answer before moving on; default 3. */
  misses?: number;
  /** Intervals a new choice is not judged; default misses + 1, so the far side has moved too. */
  graceIntervals?: number;
  /**
   * Up to this many intervals more, drawn at random at each failover; default
   * misses + 1. Both ends of a path judge it, and a reply comes back by the far
   * end's choice: two ends that fail over in step keep landing on opposite
   * gateways (each failing because of the other) for as long as they stay in
   * step. The random extra breaks the step. 0 in tests that count intervals.
   */
  jitterIntervals?: number;
  /** [0, 1); default Math.random. */
  random?: () => number;
  log: Logger;
  /** Default: a real UDP socket bound to the source address. */
  openSocket?: OpenProbeSocket;
  /** Default: Date.now for ages, performance.now for round trips. */
  clock?: { wall(): number; mono(): number };
};

type PathState = {
  missLimit: number;
  graceBase: number;
  jitter: number;
  datacenter: string;
  candidates: Candidate[];
  targets: string[];
  chosen: string;
  misses: number;
  grace: number;
  failovers: number;
  lastOkAt: number;
  rttMs: number;
  /** An answer arrived in the interval now running. */
  answered: boolean;
  /** Probes went out through the current choice in the interval now running, so it can be judged. */
  sent: boolean;
};

type Outstanding = { datacenter: string; chosen: string; tick: number; sentAtUs: bigint };

const LOG_EVERY_MS = 10_000;

export function startChooser(o: ChooserOptions): Chooser {
  const intervalMs = o.intervalMs ?? 250;
  const missLimit = o.misses ?? 3;
  const graceIntervals = o.graceIntervals ?? (o.misses ?? 3) + 1;
  const jitterIntervals = o.jitterIntervals ?? (o.misses ?? 3) + 1;
  const random = o.random ?? Math.random;
  if (!(intervalMs > 0)) throw new InvalidArgumentError(`intervalMs must be > 0, not ${intervalMs}`, { field: 'intervalMs' });
  if (!Number.isInteger(missLimit) || missLimit < 1) throw new InvalidArgumentError(`misses must be an integer >= 1, not ${missLimit}`, { field: 'misses' });
  if (!Number.isInteger(graceIntervals) || graceIntervals < 0) {
    throw new InvalidArgumentError(`graceIntervals must be an integer >= 0, not ${graceIntervals}`, { field: 'graceIntervals' });
  }
  const { log, port } = o;
  const openSocket = o.openSocket ?? openUdpSocket;
  const clock = o.clock ?? { wall: Date.now, mono: () => performance.now() };

  const paths = new Map<string, PathState>();
  const outstanding = new Map<number, Outstanding>();
  const listeners: ((reason: string) => void)[] = [];
  const nonce = randomBytes(NONCE_SIZE);
  let sequence = randomBytes(4).readUInt32BE(0);
  let tickNo = 0;
  let closed = false;

  // The socket follows `source`: `generation` tells a bind that finished
  // after the source changed again (or after close) to close what it opened.
  let source: string | undefined;
  let sock: ProbeSocket | undefined;
  let binding = false;
  let generation = 0;
  const logBind = rateLimited(LOG_EVERY_MS, clock.wall);
  const logSend = rateLimited(LOG_EVERY_MS, clock.wall);

  const timer = setInterval(tick, intervalMs);
  timer.unref();

  function emit(reason: string): void {
    for (const fn of listeners) {
      queueMicrotask(() => {
        if (closed) return;
        try {
          fn(reason);
        } catch (err) {
          log.error({ err, reason }, 'gateway chooser: a change listener threw');
        }
      });
    }
  }

  function switchTo(st: PathState, host: string, why: 'failover' | 'draining' | 'removed'): void {
    const from = st.chosen;
    st.chosen = host;
    st.misses = 0;
    st.grace = st.graceBase + (why === 'failover' ? Math.floor(random() * (st.jitter + 1)) : 0);
    st.answered = false;
    st.sent = false;
    forgetProbes(st.datacenter);
    emit(`gateway for ${st.datacenter}: ${from} -> ${host} (${why})`);
  }

  function forgetProbes(datacenter: string): void {
    for (const [seq, p] of outstanding) if (p.datacenter === datacenter) outstanding.delete(seq);
  }

  function judge(st: PathState): void {
    if (st.answered) st.misses = 0;
    else if (st.grace === 0) st.misses++;
    if (st.grace > 0) st.grace--;
    st.answered = false;
    if (st.misses < st.missLimit) return;
    const next = nextCandidate(st.candidates, st.chosen);
    if (next === undefined || next === st.chosen) {
      if (st.misses === st.missLimit) log.warn({ datacenter: st.datacenter, gateway: st.chosen, misses: st.misses }, 'gateway not answering probes and no other candidate');
      return;
    }
    st.failovers++;
    log.warn({ datacenter: st.datacenter, from: st.chosen, to: next, misses: st.misses, lastOkAt: st.lastOkAt, failovers: st.failovers }, 'gateway not answering probes: failing over');
    switchTo(st, next, 'failover');
  }

  function probe(st: PathState, s: ProbeSocket): void {
    const family = isIPv6(source ?? '') ? 6 : 4;
    for (const target of st.targets) {
      if ((family === 6 ? !isIPv6(target) : !isIPv4(target))) continue;
      sequence = (sequence + 1) >>> 0;
      const sentAtUs = BigInt(Math.round(clock.mono() * 1000));
      outstanding.set(sequence, { datacenter: st.datacenter, chosen: st.chosen, tick: tickNo, sentAtUs });
      const msg = encodeProbe({ kind: KIND_REQUEST, sequence, nonce, sentAtUs });
      try {
        s.send(msg, port, target, (err) => {
          if (err) logSend((suppressed) => log.debug({ err, datacenter: st.datacenter, target, suppressed }, 'probe not sent'));
        });
      } catch (err) {
        logSend((suppressed) => log.debug({ err, datacenter: st.datacenter, target, suppressed }, 'probe not sent'));
      }
      st.sent = true;
    }
  }

  function tick(): void {
    if (closed) return;
    tickNo++;
    if (!sock) {
      if (source !== undefined && !binding) bindSource();
      return;
    }
    // Replies to probes older than the previous interval are late.
    for (const [seq, p] of outstanding) if (p.tick < tickNo - 1) outstanding.delete(seq);
    for (const st of paths.values()) {
      if (st.targets.length === 0) continue;
      if (st.sent) judge(st);
      probe(st, sock);
    }
  }

  function onMessage(msg: Buffer, from: { address: string; port: number }): void {
    if (closed || from.port !== port) return;
    const p = decodeProbe(msg);
    if (p?.kind !== KIND_REPLY || !p.nonce.equals(nonce)) return;
    const sent = outstanding.get(p.sequence);
    if (!sent || sent.sentAtUs !== p.sentAtUs) return;
    outstanding.delete(p.sequence);
    const st = paths.get(sent.datacenter);
    if (!st || st.chosen !== sent.chosen) return;
    st.answered = true;
    st.lastOkAt = clock.wall();
    st.rttMs = Math.max(0, clock.mono() - Number(p.sentAtUs) / 1000);
  }

  function bindSource(): void {
    const want = source;
    if (want === undefined) return;
    const gen = generation;
    binding = true;
    openSocket(want, onMessage).then(
      (s) => {
        if (closed || gen !== generation) {
          s.close();
          return;
        }
        binding = false;
        sock = s;
        log.info({ source: want }, 'gateway chooser: probing from the bridge address');
      },
      (err) => {
        if (gen !== generation) return;
        binding = false;
        logBind((suppressed) => log.warn({ err, source: want, suppressed }, 'gateway chooser: cannot bind the probe socket; retrying'));
      },
    );
  }

  function rebind(next: string | undefined): void {
    generation++;
    sock?.close();
    sock = undefined;
    binding = false;
    source = next;
    outstanding.clear();
    // A new source is a new path: judge it afresh, after the grace.
    for (const st of paths.values()) {
      st.misses = 0;
      st.grace = st.graceBase;
      st.answered = false;
      st.sent = false;
    }
    if (next !== undefined) bindSource();
  }

  return {
    update(specs, nextSource) {
      if (closed) return;
      const seen = new Set<string>();
      for (const spec of specs) {
        const candidates = spec.candidates.filter((c, i) => spec.candidates.findIndex((d) => d.host === c.host) === i);
        if (candidates.length === 0 || seen.has(spec.datacenter)) continue;
        seen.add(spec.datacenter);
        const targets = [...new Set(spec.targets)];
        const st = paths.get(spec.datacenter);
        const pace = { missLimit: spec.misses ?? missLimit, graceBase: spec.graceIntervals ?? graceIntervals, jitter: spec.jitterIntervals ?? jitterIntervals };
        if (!st) {
          paths.set(spec.datacenter, {
            datacenter: spec.datacenter, candidates, targets, chosen: initialChoice(candidates, spec.initial), ...pace,
            misses: 0, grace: pace.graceBase, failovers: 0, lastOkAt: 0, rttMs: 0, answered: false, sent: false,
          });
          continue;
        }
        Object.assign(st, pace);
        const wasDraining = st.candidates.find((c) => c.host === st.chosen)?.draining ?? false;
        st.candidates = candidates;
        st.targets = targets;
        const current = candidates.find((c) => c.host === st.chosen);
        if (!current) {
          const to = initialChoice(candidates, undefined);
          log.info({ datacenter: st.datacenter, from: st.chosen, to }, 'chosen gateway removed');
          switchTo(st, to, 'removed');
        } else if (current.draining && !wasDraining) {
          const to = nextNonDraining(candidates, st.chosen);
          if (to !== undefined) {
            log.info({ datacenter: st.datacenter, from: st.chosen, to }, 'chosen gateway draining: moving');
            switchTo(st, to, 'draining');
          }
        }
      }
      for (const dc of paths.keys()) {
        if (seen.has(dc)) continue;
        paths.delete(dc);
        forgetProbes(dc);
      }
      if (nextSource !== source) rebind(nextSource);
    },
    choices: () => new Map([...paths.values()].map((st) => [st.datacenter, st.chosen])),
    health: () =>
      [...paths.values()].map((st) => ({
        datacenter: st.datacenter, chosen: st.chosen, lastOkAt: st.lastOkAt, consecutiveMisses: st.misses, failovers: st.failovers, rttMs: st.rttMs,
      })),
    onChange(fn) {
      listeners.push(fn);
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      generation++;
      sock?.close();
      sock = undefined;
      outstanding.clear();
    },
  };
}

/** `initial` when it is a candidate and not draining (or all are); else the first non-draining; else the first. */
export function initialChoice(candidates: Candidate[], initial: string | undefined): string {
  const anyActive = candidates.some((c) => !c.draining);
  const given = candidates.find((c) => c.host === initial);
  if (given && (!given.draining || !anyActive)) return given.host;
  return (candidates.find((c) => !c.draining) ?? candidates[0]!).host;
}

/** The candidate after `current` in rank order with draining ones last, wrapping around. */
export function nextCandidate(candidates: Candidate[], current: string): string | undefined {
  const order = [...candidates.filter((c) => !c.draining), ...candidates.filter((c) => c.draining)];
  if (order.length === 0) return undefined;
  const i = order.findIndex((c) => c.host === current);
  return order[(i + 1) % order.length]!.host;
}

/** The first non-draining candidate after `current` in rank order, wrapping around. */
function nextNonDraining(candidates: Candidate[], current: string): string | undefined {
  const i = candidates.findIndex((c) => c.host === current);
  for (let k = 1; k <= candidates.length; k++) {
    const c = candidates[(i + k) % candidates.length]!;
    if (!c.draining && c.host !== current) return c.host;
  }
  return undefined;
}

/** A UDP socket bound to `source` on a port of the kernel's choice. */
const openUdpSocket: OpenProbeSocket = (source, onMessage) =>
  new Promise((resolve, reject) => {
    const s = createSocket({ type: isIPv6(source) ? 'udp6' : 'udp4' });
    const fail = (err: Error): void => {
      try {
        s.close();
      } catch {
        // never bound
      }
      reject(err);
    };
    s.once('error', fail);
    s.bind({ address: source, port: 0, exclusive: true }, () => {
      s.off('error', fail);
      // Like the chooser's timer, its socket alone does not keep the process alive.
      s.unref();
      // ICMP errors reflected on the socket are per datagram; probes simply go unanswered.
      s.on('error', () => {});
      s.on('message', (msg, rinfo) => onMessage(msg, { address: rinfo.address, port: rinfo.port }));
      resolve({
        send: (msg, port, address, done) => s.send(msg, port, address, (err) => done(err ?? null)),
        close: () => {
          try {
            s.close();
          } catch {
            // already closed
          }
        },
      });
    });
  });

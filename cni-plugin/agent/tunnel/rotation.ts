// WireGuard key rotation on the host (README.md, "Keys"), on a schedule
// (--wg-key-rotation, default 720h, with jitter) and when an operator asks
// (`weft host rotate-key`: the host's generation in the topology watch).
//
// One rotation, in this order, so no packet is lost on a datacenter with
// another gateway:
//   1. the new key pair is made on the host (wireguard.key.next; the old key
//      stays in use);
//   2. the gateway drains itself: every other agent moves its traffic to
//      another gateway, a planned switch. The last active gateway cannot
//      drain; it rotates in place, at a handshake's worth of packets;
//   3. wait until no traffic goes through it (bounded);
//   4. the new key becomes the key (an atomic rename) and a reconcile gives
//      it to the device;
//   5. the new public key is registered: the other datacenters' gateways
//      learn it in the topology watch and update their peer;
//   6. wait for a handshake with every remote gateway (bounded);
//   7. undrain.
// A host that is no gateway (full mesh) skips 2, 3 and 7.
//
// The private key is never logged, sent or put in an error: only the public
// key leaves the host, and logs name keys by their first characters.
import { type Logger } from '../../../controller/common/log';
import { sleep as defaultSleep } from '../../../controller/api/client/backoff';
import {
  commitNextWireGuardKeys, prepareNextWireGuardKeys, readRotationGeneration, wireGuardKeySince, writeRotationGeneration,
} from '../state/wireguard-keys';
import type { DatacenterInfo } from '../state/types';
import type { PeerReport } from '../state/tunnel';

export type GatewayState = 'active' | 'draining';

export type RotationDeps = {
  /** ms since the epoch. */
  now(): number;
  /** The agent's state dir: wireguard.key, wireguard.key.next, wireguard.rotation. */
  stateDir: string;
  /**
   * This host's own gateway entries to `state` (SetOwnGatewayState). Resolves
   * with the datacenters now in that state (none: not a gateway). Rejects
   * with `lastActive(err)` true when this is the datacenter's last active gateway.
   */
  setOwnGatewayState(state: GatewayState): Promise<{ datacenters: string[] }>;
  /** Tells the refusal "you are the last active gateway" from any other (client: isLastActiveGateway). */
  lastActive(err: unknown): boolean;
  /** Registers the new public key (SetWireGuardKey) and makes it the one a re-registration sends. */
  registerPublicKey(publicKey: string): Promise<void>;
  /**
   * This datacenter has another gateway. Refused as the last active one, a
   * gateway with a sibling waits for it to come back (it is draining: its own
   * rotation, say `weft host rotate-key --all`, or an operator's drain) rather
   * than rotating through in place; the topology may not show that drain yet.
   */
  hasOtherGateway?(): boolean;
  /** No traffic goes through this gateway any more (its forwarding counters stood still). */
  tunnelIdle(): Promise<boolean>;
  /** The remote gateways (host names) this gateway must have shaken hands with under its new key. */
  remoteGateways(): string[];
  /** Every one of `peers` has completed a handshake since `sinceMs` (the device's latest-handshake times). */
  handshakeWith(peers: string[], sinceMs: number): boolean | Promise<boolean>;
  /** A reconcile that starts after this call, done: the device takes the key file's key. */
  reconcileNow(): Promise<void>;
  log: Logger;
  /** Injectable for tests; resolves early when the signal aborts. */
  sleep?(ms: number, signal?: AbortSignal): Promise<void>;
  limits?: Partial<RotationLimits>;
};

export type RotationLimits = {
  /** How long to wait for traffic to stop after draining. */
  idleMs: number;
  /** How long to wait for another draining gateway of the datacenter to come back before rotating in place. */
  peerDrainMs: number;
  /** How long to wait for a handshake with every remote gateway under the new key. */
  handshakeMs: number;
  /** How often the two waits look. */
  pollMs: number;
  /** First retry delay of a registration or undrain the controller refused for now; doubles up to maxRetryMs. */
  retryMs: number;
  maxRetryMs: number;
};

export const ROTATION_LIMITS: RotationLimits = { idleMs: 10_000, peerDrainMs: 180_000, handshakeMs: 30_000, pollMs: 250, retryMs: 500, maxRetryMs: 30_000 };

/** Default --wg-key-rotation: 30 days. */
export const DEFAULT_ROTATION_INTERVAL_MS = 720 * 3_600_000;
/** Each host's schedule is spread by up to this share of the interval, so a fleet does not rotate at one moment. */
export const ROTATION_JITTER = 0.1;

export type RotationOutcome = {
  publicKey: string;
  /** false: not a gateway, or the last active one (rotated in place). */
  drained: boolean;
  lastActive: boolean;
  idle: boolean;
  handshakes: boolean;
};

/** What logs may say of a key: enough to tell keys apart, nothing to use. */
export const keyName = (publicKey: string): string => publicKey.slice(0, 8);

/** Calls `f` until it succeeds or `signal` aborts; each failure is logged and waited out with a growing delay. */
async function untilDone<T>(what: string, f: () => Promise<T>, d: Required<Pick<RotationDeps, 'sleep'>> & RotationDeps, l: RotationLimits, signal?: AbortSignal): Promise<T> {
  let delay = l.retryMs;
  for (;;) {
    try {
      return await f();
    } catch (err) {
      if (signal?.aborted) throw err;
      d.log.warn({ err, retryInMs: delay }, `key rotation: ${what} failed; retrying`);
      await d.sleep(delay, signal);
      delay = Math.min(l.maxRetryMs, delay * 2);
    }
  }
}

/** Polls `ok` every pollMs until it holds or `ms` has passed; true when it held. */
async function waitUntil(ok: () => boolean | Promise<boolean>, ms: number, d: Required<Pick<RotationDeps, 'sleep'>> & RotationDeps, l: RotationLimits, signal?: AbortSignal): Promise<boolean> {
  const end = d.now() + ms;
  for (;;) {
    if (await ok()) return true;
    if (d.now() >= end || signal?.aborted) return false;
    await d.sleep(Math.min(l.pollMs, Math.max(1, end - d.now())), signal);
  }
}

/**
 * One rotation (the steps above). Throws, with the old key still in use and
 * the pending key kept for the next attempt, when the drain fails for another
 * reason than being the last active gateway. Once the key has changed, the
 * registration and the undrain are retried until they succeed (or `signal`
 * aborts: the agent stops; at its next start it registers the key it has).
 */
export async function rotateKey(deps: RotationDeps, reason: string, signal?: AbortSignal): Promise<RotationOutcome> {
  const d = { ...deps, sleep: deps.sleep ?? defaultSleep };
  const l: RotationLimits = { ...ROTATION_LIMITS, ...deps.limits };
  const log = d.log;
  const next = await prepareNextWireGuardKeys(d.stateDir);
  log.info({ reason, newKey: keyName(next.publicKey) }, 'key rotation: new WireGuard key pair made');

  let drained = false;
  let lastActive = false;
  const drain = async () => (await d.setOwnGatewayState('draining')).datacenters.length > 0;
  try {
    drained = await drain();
  } catch (err) {
    if (!d.lastActive(err)) throw err;
    lastActive = true;
  }
  if (lastActive && d.hasOtherGateway?.()) {
    // gateways of one datacenter asked to rotate together take turns: wait for the other to come back, then drain
    log.info('key rotation: another gateway of this datacenter is draining; waiting for it to come back before draining this one');
    const end = d.now() + l.peerDrainMs;
    while (lastActive && d.now() < end && !signal?.aborted) {
      await d.sleep(l.pollMs * 4, signal);
      try {
        drained = await drain();
        lastActive = false;
      } catch (err) {
        if (!d.lastActive(err)) throw err;
      }
    }
  }
  if (lastActive) {
    log.warn('key rotation: this is its datacenter\'s last active gateway, so it cannot drain; rotating in place (traffic through it pauses for a handshake)');
  } else if (drained) log.info('key rotation: this gateway is draining; waiting for the traffic through it to stop');

  let idle = true;
  if (drained) {
    idle = await waitUntil(() => d.tunnelIdle(), l.idleMs, d, l, signal);
    if (!idle) log.warn({ waitedMs: l.idleMs }, 'key rotation: traffic still passes this gateway after draining; rotating anyway');
  }

  const swappedAt = d.now();
  const keys = await commitNextWireGuardKeys(d.stateDir, new Date(swappedAt));
  try {
    await d.reconcileNow();
  } catch (err) {
    // the key file is the truth now: the reconcile loop gives the device the new key at its next pass
    log.warn({ err }, 'key rotation: the reconcile after the key change failed; the next one applies the new key');
  }
  await untilDone('registering the new public key', () => d.registerPublicKey(keys.publicKey), d, l, signal);
  log.info({ key: keyName(keys.publicKey) }, 'key rotation: new public key registered; waiting for handshakes');

  const peers = d.remoteGateways();
  const handshakes = await waitUntil(() => d.handshakeWith(peers, swappedAt), l.handshakeMs, d, l, signal);
  if (!handshakes) log.warn({ peers, waitedMs: l.handshakeMs }, 'key rotation: not every remote gateway has shaken hands under the new key yet');

  if (drained) await untilDone('undraining', () => d.setOwnGatewayState('active'), d, l, signal);
  log.info({ key: keyName(keys.publicKey), drained, lastActive, idle, handshakes, tookMs: d.now() - swappedAt }, 'key rotation: done');
  return { publicKey: keys.publicKey, drained, lastActive, idle, handshakes };
}

// ---- when ------------------------------------------------------------------------

export type RotationScheduleOptions = RotationDeps & {
  /** --wg-key-rotation in ms; 0: no scheduled rotation (operator requests still rotate). */
  intervalMs: number;
  /** [0, 1); the schedule's jitter and the retry spread. */
  random?: () => number;
  /** The longest the scheduler sleeps before looking again (timers cannot wait 30 days). */
  maxSleepMs?: number;
};

export type RotationSchedule = {
  /** The host's rotation generation as the topology shows it; one above what it acted on asks for a rotation now. */
  requestGeneration(generation: number): void;
  /** A rotation now (tests, and the generation path). */
  rotateNow(reason: string): Promise<RotationOutcome | undefined>;
  /** ms since the epoch of the next scheduled rotation; Infinity when off. */
  nextDue(): number;
  stop(): Promise<void>;
};

/**
 * Rotates when the key is older than the interval (each host's interval
 * shortened by up to ROTATION_JITTER, fixed per run) or when the operator's
 * generation is above the one acted on (kept in the state dir, so a restart
 * does not rotate again). One rotation at a time; a failed one is retried
 * after a growing delay.
 */
export function startKeyRotation(o: RotationScheduleOptions): RotationSchedule {
  const random = o.random ?? Math.random;
  const sleepFor = o.sleep ?? defaultSleep;
  const maxSleep = o.maxSleepMs ?? 3_600_000;
  const stopping = new AbortController();
  // the share of the interval this host gives up, so rotations spread over 10% of it
  const interval = o.intervalMs > 0 ? Math.round(o.intervalMs * (1 - ROTATION_JITTER * random())) : 0;
  let requested = 0;
  let acted: number | undefined;
  let keySince = 0;
  let retryAt = 0;
  let retryDelay = 60_000;
  let wake: AbortController = new AbortController();
  let running: Promise<RotationOutcome | undefined> | undefined;

  const poke = () => wake.abort();

  async function run(reason: string): Promise<RotationOutcome | undefined> {
    if (running) return running;
    const want = requested;
    running = (async () => {
      try {
        const out = await rotateKey(o, reason, stopping.signal);
        keySince = await wireGuardKeySince(o.stateDir);
        if (want > (acted ?? 0)) {
          acted = want;
          await writeRotationGeneration(o.stateDir, want);
        }
        retryAt = 0;
        retryDelay = 60_000;
        return out;
      } catch (err) {
        if (stopping.signal.aborted) return undefined;
        retryAt = o.now() + Math.round(retryDelay * (0.5 + random() / 2));
        o.log.error({ err, retryAt: new Date(retryAt).toISOString() }, 'key rotation failed; the old key stays in use');
        retryDelay = Math.min(3_600_000, retryDelay * 2);
        return undefined;
      } finally {
        running = undefined;
      }
    })();
    return running;
  }

  const nextDue = () => (interval > 0 && keySince > 0 ? keySince + interval : Infinity);

  const loop = (async () => {
    acted = await readRotationGeneration(o.stateDir);
    keySince = await wireGuardKeySince(o.stateDir);
    while (!stopping.signal.aborted) {
      const now = o.now();
      const asked = requested > (acted ?? 0);
      const due = nextDue();
      if ((asked || now >= due) && now >= retryAt) {
        await run(asked ? `requested by an operator (generation ${requested})` : `scheduled: the key is older than ${Math.round(interval / 3_600_000)}h`);
        continue;
      }
      const until = Math.max(retryAt, asked ? now : due);
      wake = new AbortController();
      const both = AbortSignal.any([wake.signal, stopping.signal]);
      await sleepFor(Math.max(1, Math.min(until - now, maxSleep)), both);
    }
  })();

  return {
    requestGeneration(g) {
      if (!Number.isSafeInteger(g) || g <= requested) return;
      requested = g;
      if (g > (acted ?? 0)) poke();
    },
    rotateNow: (reason) => run(reason),
    nextDue,
    async stop() {
      stopping.abort();
      poke();
      await loop.catch((err) => o.log.error({ err }, 'key rotation scheduler failed'));
      await running;
    },
  };
}

// ---- helpers for the wiring --------------------------------------------------------

/** The gateways of every other datacenter that hold a key: the peers a rotated gateway must shake hands with. */
export function remoteGatewaysOf(datacenters: readonly DatacenterInfo[] | undefined, ownDatacenter: string): string[] {
  return (datacenters ?? [])
    .filter((d) => d.name !== ownDatacenter)
    .flatMap((d) => d.gateways.filter((g) => g.wgPublicKey !== '').map((g) => g.host))
    .sort();
}

/**
 * Every one of `peers` has completed a handshake since `sinceMs`, as the
 * device's peers say at `nowMs` (their handshake ages, -1: none). A peer the
 * device does not list has not.
 */
export function handshakesSince(reports: readonly PeerReport[], peers: readonly string[], sinceMs: number, nowMs: number): boolean {
  return peers.every((p) => {
    const r = reports.find((x) => x.host === p);
    return r !== undefined && r.handshakeAgeSeconds >= 0 && nowMs - r.handshakeAgeSeconds * 1000 >= sinceMs;
  });
}

// Keeping a client certificate fresh. Certificates are short-lived (24 h by
// default), so each client renews its own at about half its lifetime,
// through RenewCertificate, with a key pair made here: only the public key
// leaves the machine. The new certificate is stored (renewCredentials), then
// handed to every client built from `channelCredentials(initial)`, which
// moves its calls and open watches to it without a restart (client.ts).
//
// A renewal that fails is retried with backoff until the certificate
// expires; after that the same loop renews with a proof of possession of the
// old key (accepted within the controller's grace window). A refusal that
// will not change (revoked, deleted host) is logged as an error each time.
import { X509Certificate } from 'node:crypto';
import { type Logger, silentLogger } from '../../common/log';
import { backoff, type BackoffOptions } from './backoff';
import { type Credentials, renewCredentials } from './credentials';
import { type LiveSource, setLive } from './live-credentials';

export type RenewalOptions = {
  server: string;
  stateDir: string;
  /** The credentials clients were (or will be) built from: they follow each renewal. */
  credentials: Credentials;
  log?: Logger;
  /** Renew when this share of the lifetime is left; default 0.5. */
  renewAtRemaining?: number;
  /** Renew up to this share of the lifetime earlier, at random; default 0.02. */
  jitter?: number;
  /** Retries after a failed renewal; default 5 s doubling to 5 min. */
  retry?: BackoffOptions;
  timeoutMs?: number;
  /** Called after each renewal, once the new certificate is stored. */
  onRenewed?(c: Credentials): void;
};

export type Renewal = {
  current(): Credentials;
  /** When the next renewal is due (ms since the epoch). */
  dueAt(): number;
  /** Renews now, whatever the schedule; the schedule then restarts from the new certificate. */
  renewNow(): Promise<Credentials>;
  stop(): void;
};

/** When a certificate is due for renewal: when `remaining` of its lifetime is left. */
export function renewalDue(certPem: string, remaining = 0.5): number {
  const c = new X509Certificate(certPem);
  const from = Date.parse(c.validFrom);
  const to = Date.parse(c.validTo);
  return to - (to - from) * remaining;
}

export function keepRenewed(o: RenewalOptions): Renewal {
  const log = o.log ?? silentLogger;
  let current = o.credentials;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let running: Promise<Credentials> | undefined;
  const subscribers = new Set<(c: Credentials) => void>();
  const delays = backoff({ initialMs: 5000, maxMs: 5 * 60_000, ...o.retry });
  const source: LiveSource<Credentials> = {
    current: () => current,
    subscribe(fn) {
      subscribers.add(fn);
      return () => subscribers.delete(fn);
    },
  };
  setLive(o.credentials, source);

  // Up to 2% of the lifetime earlier, drawn once per certificate, so a fleet started together does not renew together.
  let jitterFor = '';
  let jitterMs = 0;
  const due = () => {
    if (jitterFor !== current.certPem) {
      const c = new X509Certificate(current.certPem);
      jitterFor = current.certPem;
      jitterMs = Math.random() * (o.jitter ?? 0.02) * (Date.parse(c.validTo) - Date.parse(c.validFrom));
    }
    return renewalDue(current.certPem, o.renewAtRemaining) - jitterMs;
  };

  function schedule(ms: number): void {
    if (stopped) return;
    clearTimeout(timer);
    // setTimeout holds at most 2^31-1 ms; a later date is reached in steps.
    timer = setTimeout(tick, Math.min(Math.max(0, ms), 2 ** 31 - 1));
    timer.unref();
  }

  function tick(): void {
    if (Date.now() < due()) return schedule(due() - Date.now());
    renew().then(
      () => undefined,
      (err) => {
        const ms = delays.next();
        const expired = current.certExpiresAt.getTime() <= Date.now();
        (expired ? log.error : log.warn).call(log, { err, retryInMs: ms, certExpiresAt: current.certExpiresAt.toISOString() },
          expired ? 'certificate expired and its renewal failed; the controller refuses this identity until it succeeds' : 'certificate renewal failed; retrying');
        schedule(ms);
      },
    );
  }

  function renew(): Promise<Credentials> {
    running ??= (async () => {
      try {
        const next = await renewCredentials({ server: o.server, stateDir: o.stateDir, current, timeoutMs: o.timeoutMs });
        if (stopped) return next;
        current = next;
        delays.reset();
        log.info({ [next.role]: next.hostName, certExpiresAt: next.certExpiresAt.toISOString() }, 'certificate renewed');
        for (const fn of [...subscribers]) {
          try {
            fn(next);
          } catch (err) {
            log.error({ err }, 'a client failed to take the renewed certificate');
          }
        }
        o.onRenewed?.(next);
        schedule(due() - Date.now());
        return next;
      } finally {
        running = undefined;
      }
    })();
    return running;
  }

  schedule(due() - Date.now());
  return {
    current: () => current,
    dueAt: due,
    renewNow: () => {
      clearTimeout(timer);
      return renew().catch((err) => {
        schedule(delays.next());
        throw err;
      });
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      subscribers.clear();
    },
  };
}

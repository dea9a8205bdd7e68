// Keeps this host's leases alive: a heartbeat at the interval the controller
// asks for, through any outage (log, back off, try again; never exit — the
// dataplane keeps working meanwhile and the lease TTL gives us time).
//
// When the controller no longer knows the host (record gone) or a lease was
// lost (reclaimed after expiry), the loop registers again. That may yield a
// different subnet, which the agent must hear about: containers then need
// addresses from the new subnet, so it is surfaced as an event, never hidden.
import * as grpc from '@grpc/grpc-js';
import { backoff, sleep, type BackoffOptions } from '../../../controller/api/client/backoff';
import { grpcCode } from '../../../controller/api/client/client';
import type { AgentClient, HostRegistration, Registration, Subnet } from './controller';
import type { HeartbeatReport } from '../state/types';
import { type Logger, silentLogger } from '../../../controller/common/log';

export type LeaseEvent = {
  /** reregistered: the loop called RegisterHost again; subnets-changed: the controller moved a subnet on its own. */
  kind: 'reregistered' | 'subnets-changed';
  reason: string;
  previous: Subnet[];
  subnets: Subnet[];
  /** Any network whose subnet differs from before. */
  changed: boolean;
};

export type HeartbeatOptions = {
  client: AgentClient;
  /** What to register again with; a function when it follows the cluster (networks added or deleted while running). */
  registration: HostRegistration | (() => HostRegistration);
  /** The reply of the registration the agent made at start. */
  registered: Registration;
  onLease?: (ev: LeaseEvent) => void;
  log?: Logger;
  /** What to tell the controller about this agent with each heartbeat (version, last overlay reconcile). */
  report?: () => Promise<HeartbeatReport> | HeartbeatReport;
  /** Retries after a failed heartbeat; capped by the heartbeat interval. */
  backoff?: BackoffOptions;
};

export type HeartbeatLoop = {
  /** ms since the epoch of the last heartbeat the controller accepted, or null. */
  lastSuccess(): number | null;
  /**
   * Register again now (instead of the next heartbeat), e.g. for a subnet in
   * a network just added to the cluster; the outcome is a lease event like
   * any other. Retried with the heartbeats' backoff until it succeeds;
   * requests made while one is pending share it.
   */
  refresh(reason: string): void;
  stop(): Promise<void>;
};

const key = (s: Subnet[]) => s.map((x) => `${x.network}=${x.subnet}`).sort().join(',');

export function subnetsDiffer(a: Subnet[], b: Subnet[]): boolean {
  return key(a) !== key(b);
}

export function runHeartbeats(o: HeartbeatOptions): HeartbeatLoop {
  const log = o.log ?? silentLogger;
  const stopping = new AbortController();
  const delays = backoff({ initialMs: 500, maxMs: 10_000, ...o.backoff });
  const registration = (): HostRegistration => (typeof o.registration === 'function' ? o.registration() : o.registration);
  let subnets = o.registered.subnets;
  let networks = wanted(registration(), o.registered);
  /** Why a refresh was asked for and not yet done. */
  let refreshFor: string | undefined;
  /** Ends the current wait between heartbeats early, for a refresh or stop. */
  let nap = new AbortController();
  // Until the controller tells us, a third of the lease TTL (what it answers anyway).
  let intervalMs = Math.max(1, Math.floor((o.registered.config?.lease_ttl_seconds || 30) / 3)) * 1000;
  let last: number | null = null;

  function wanted(r: HostRegistration, reg: Registration): string[] {
    return r.networks.length > 0 ? [...r.networks] : (reg.config?.networks ?? []).map((n) => n.name);
  }

  function emit(ev: LeaseEvent): void {
    log.warn({ kind: ev.kind, reason: ev.reason, previous: key(ev.previous), subnets: key(ev.subnets) }, 'host lease changed');
    try {
      o.onLease?.(ev);
    } catch (err) {
      log.error({ err }, 'lease event handler failed');
    }
  }

  async function reregister(reason: string): Promise<void> {
    const r = registration();
    const reg = await o.client.registerHost(r);
    const previous = subnets;
    subnets = reg.subnets;
    networks = wanted(r, reg);
    emit({ kind: 'reregistered', reason, previous, subnets, changed: subnetsDiffer(previous, subnets) });
  }

  /** The report, or none when making it fails: a report must never cost the host its leases. */
  async function report(): Promise<HeartbeatReport | undefined> {
    try {
      return await o.report?.();
    } catch (err) {
      log.warn({ err }, 'cannot make the heartbeat report; sending the heartbeat without it');
      return undefined;
    }
  }

  async function beat(): Promise<number> {
    try {
      const hb = await o.client.heartbeat(await report());
      last = Date.now();
      intervalMs = Math.max(1, hb.nextHeartbeatSeconds) * 1000;
      const missing = networks.filter((n) => !hb.subnets.some((s) => s.network === n));
      if (missing.length > 0) {
        await reregister(`no lease in ${missing.join(', ')} (reclaimed)`);
      } else if (subnetsDiffer(hb.subnets, subnets)) {
        const previous = subnets;
        subnets = hb.subnets;
        emit({ kind: 'subnets-changed', reason: 'the controller renewed a different subnet', previous, subnets, changed: true });
      }
      delays.reset();
      return intervalMs;
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === grpc.status.NOT_FOUND || code === grpc.status.ABORTED) {
        try {
          await reregister(code === grpc.status.NOT_FOUND ? 'the controller no longer knows this host' : 'lease lost');
          delays.reset();
          return intervalMs;
        } catch (again) {
          err = again;
        }
      }
      const wait = Math.min(delays.next(), intervalMs);
      log.warn({ code: grpcCode(err), err, retryInMs: wait }, 'heartbeat failed');
      return wait;
    }
  }

  /** A refresh asked for: register again; on failure it stays asked for and is retried after a backoff. */
  async function refreshNow(): Promise<number | undefined> {
    const reason = refreshFor;
    if (reason === undefined) return undefined;
    refreshFor = undefined;
    try {
      await reregister(reason);
      delays.reset();
      return undefined;
    } catch (err) {
      refreshFor ??= reason;
      const wait = Math.min(delays.next(), intervalMs);
      log.warn({ code: grpcCode(err), err, reason, retryInMs: wait }, 'registering again failed');
      return wait;
    }
  }

  const done = (async () => {
    while (!stopping.signal.aborted) {
      // the heartbeat goes on whatever a refresh does: it is what keeps the leases
      const retry = await refreshNow();
      const wait = Math.min(await beat(), retry ?? Infinity);
      const asked = refreshFor !== undefined && retry === undefined; // asked for during this turn
      nap = new AbortController();
      if (asked) continue;
      if (stopping.signal.aborted) break;
      await sleep(wait, nap.signal);
    }
  })();

  return {
    lastSuccess: () => last,
    refresh(reason) {
      refreshFor = refreshFor === undefined ? reason : refreshFor === reason ? reason : `${refreshFor}; ${reason}`;
      nap.abort();
    },
    async stop() {
      stopping.abort();
      nap.abort();
      await done;
    },
  };
}

// Prometheus metrics of one agent. What an operator asks of a host: does the
// kernel hold what the controller says (desired vs programmed, errors), how
// fresh is that view (revision, connection), how long do reconciles take,
// and are containers being wired (CNI requests, endpoints waiting to reach
// the controller).
//
// The CNI handlers are instrumented from the outside (wrapping them), so
// they stay free of metrics code.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CniError } from '../cni/types';
import type { ConnectionState } from '../../controller/api/client/client';
import type { ChangeKind, HostNetworkChange } from './host/host-network';
import type { ReconcileResult } from './host/overlay';
import type { CniHandlers } from '../cni/types';
import type { HeartbeatReport, OverlaySummary } from './state/types';

/** One overlay reconcile's outcome, as the agent reports it with its heartbeats (`weft hosts` shows it). */
/** link: the link monitor saw one of weft's devices (or the underlay) change, or lost notifications. */
export type ReconcileTrigger = 'topology' | 'resync' | 'lease' | 'start' | 'link';

export type AgentMetrics = {
  registry: Registry;
  /** A reconcile that ran, against the topology of `topologyRevision`. */
  reconciled(trigger: ReconcileTrigger, r: ReconcileResult, topologyRevision: number): void;
  reconcileFailed(trigger: ReconcileTrigger, seconds: number): void;
  /** One host network check (resync or link event): what it repaired, whether it failed, how long it took. */
  hostChecked(trigger: ReconcileTrigger, changes: HostNetworkChange[], failed: boolean, seconds: number): void;
  /** Link monitor notifications that asked for a repair, and overruns (lost notifications, answered with a full check). */
  linkNotification(kind: 'repair' | 'overrun'): void;
  setConnection(state: ConnectionState): void;
  instrumentCni<T extends CniHandlers>(h: T): T;
  /** The agent version and the last successful reconcile's summary (none before the first), for the heartbeat. */
  heartbeatReport(): HeartbeatReport;
};

const CONNECTION_STATES: ConnectionState[] = ['connected', 'connecting', 'disconnected'];

export function createAgentMetrics(deps: { hostName: string; version: string; outboxPending: () => number }): AgentMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  new Gauge({ name: 'weft_agent_info', help: 'Always 1; labels name this host and the agent version', labelNames: ['host', 'version'], registers })
    .set({ host: deps.hostName, version: deps.version }, 1);
  const desired = new Gauge({ name: 'weft_agent_overlay_desired_entries', help: 'Overlay entries (routes, neighbours, FDB) the topology asks for on this host', registers });
  const programmed = new Gauge({
    name: 'weft_agent_overlay_programmed_entries',
    help: 'Desired overlay entries the kernel holds after the last reconcile (desired minus those that failed)',
    registers,
  });
  const duration = new Histogram({
    name: 'weft_agent_reconcile_duration_seconds', help: 'Overlay reconcile time (render, list, diff, apply)', labelNames: ['trigger'], registers,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  });
  const reconciles = new Counter({ name: 'weft_agent_reconciles_total', help: 'Overlay reconciles run', labelNames: ['trigger'], registers });
  const errors = new Counter({
    name: 'weft_agent_reconcile_errors_total', help: 'Overlay entries the kernel refused, and reconciles that failed as a whole (kind="reconcile")',
    labelNames: ['kind'], registers,
  });
  const requests = new Counter({
    name: 'weft_agent_overlay_requests_total', help: 'Netlink write requests sent by reconciles (none when the kernel already agrees)', registers,
  });
  const lastRequests = new Gauge({ name: 'weft_agent_last_reconcile_requests', help: 'Netlink write requests the last reconcile sent', registers });
  const revision = new Gauge({ name: 'weft_agent_topology_revision', help: 'Controller revision of the topology the agent last reconciled', registers });
  const connection = new Gauge({
    name: 'weft_agent_controller_connection', help: '1 for the current state of the connection to the controller', labelNames: ['state'], registers,
  });
  const cni = new Counter({ name: 'weft_agent_cni_requests_total', help: 'CNI requests by verb and result (ok or the CNI error code)', labelNames: ['verb', 'result'], registers });
  new Gauge({
    name: 'weft_agent_endpoint_outbox_pending', help: 'Container endpoints queued for the controller', registers,
    collect() {
      this.set(deps.outboxPending());
    },
  });

  const hostChecks = new Counter({
    name: 'weft_agent_host_checks_total', help: 'Host network checks (devices, addresses, sysctls, iptables) by trigger: resync or link', labelNames: ['trigger'], registers,
  });
  const hostRepairs = new Counter({
    name: 'weft_agent_host_repairs_total', help: 'Things a host network check found wrong and put back, by kind (device, address, offload, sysctl, iptables)',
    labelNames: ['kind'], registers,
  });
  for (const kind of ['device', 'address', 'offload', 'sysctl', 'iptables'] satisfies ChangeKind[]) hostRepairs.inc({ kind }, 0);
  const hostCheckErrors = new Counter({ name: 'weft_agent_host_check_errors_total', help: 'Host network checks that failed (the next link change or resync retries)', registers });
  const hostCheckSeconds = new Histogram({
    name: 'weft_agent_host_check_duration_seconds', help: 'Host network check time (list, compare, repair)', labelNames: ['trigger'], registers,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  });
  const linkNotes = new Counter({
    name: 'weft_agent_link_notifications_total', help: 'Link monitor notifications that asked for a host network check (kind="repair"), and overruns that lost some (kind="overrun")',
    labelNames: ['kind'], registers,
  });

  // the last reconcile that ran, kept for the heartbeat report
  let last: OverlaySummary | undefined;

  function heartbeatReport(): HeartbeatReport {
    return last ? { agentVersion: deps.version, overlay: last } : { agentVersion: deps.version };
  }

  function setConnection(state: ConnectionState): void {
    for (const s of CONNECTION_STATES) connection.set({ state: s }, s === state ? 1 : 0);
  }
  setConnection('connecting');

  function instrumentCni<T extends CniHandlers>(h: T): T {
    const wrap = <A extends unknown[], R>(verb: string, fn: (...a: A) => Promise<R>) => async (...a: A): Promise<R> => {
      try {
        const r = await fn(...a);
        cni.inc({ verb, result: 'ok' });
        return r;
      } catch (e) {
        cni.inc({ verb, result: e instanceof CniError ? String(e.cniCode) : 'error' });
        throw e;
      }
    };
    return { ...h, add: wrap('ADD', h.add), del: wrap('DEL', h.del), check: wrap('CHECK', h.check), status: wrap('STATUS', h.status), gc: wrap('GC', h.gc) };
  }

  return {
    registry,
    reconciled(trigger, r, topologyRevision) {
      reconciles.inc({ trigger });
      duration.observe({ trigger }, r.durationMs / 1000);
      const held = Math.max(0, r.desired - r.errors.filter((e) => e.action !== 'delete').length);
      desired.set(r.desired);
      programmed.set(held);
      revision.set(topologyRevision);
      last = { desired: r.desired, programmed: held, failed: r.failed, skipped: r.skipped.length, reconciledAt: Date.now(), topologyRevision };
      requests.inc(r.requests);
      lastRequests.set(r.requests);
      for (const e of r.errors) errors.inc({ kind: e.kind });
    },
    reconcileFailed(trigger, seconds) {
      reconciles.inc({ trigger });
      duration.observe({ trigger }, seconds);
      errors.inc({ kind: 'reconcile' });
    },
    hostChecked(trigger, changes, failed, seconds) {
      hostChecks.inc({ trigger });
      hostCheckSeconds.observe({ trigger }, seconds);
      for (const c of changes) hostRepairs.inc({ kind: c.kind });
      if (failed) hostCheckErrors.inc();
    },
    linkNotification(kind) {
      linkNotes.inc({ kind });
    },
    setConnection,
    instrumentCni,
    heartbeatReport,
  };
}

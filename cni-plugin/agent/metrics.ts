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
import type { TunnelSummary } from './state/tunnel';

/** Where the tunnel metrics come from, read at each scrape (set once the tunnel part has started). */
export type TunnelSource = {
  summary(): TunnelSummary;
  /** Packets the fail-closed table dropped: to another datacenter by a wrong way, and VXLAN to another datacenter's hosts. */
  dropped(): { remote: number; vxlan: number };
};

/** One overlay reconcile's outcome, as the agent reports it with its heartbeats (`weft hosts` shows it). */
/** link: the link monitor saw one of weft's devices (or the underlay) change, or lost notifications. */
/** tunnel: the gateway chooser changed a choice, or key rotation asked for a reconcile. */
export type ReconcileTrigger = 'topology' | 'resync' | 'lease' | 'start' | 'link' | 'tunnel';

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
  /** Where the weft_tunnel_* metrics and the heartbeat's tunnel report come from. */
  setTunnel(source: TunnelSource): void;
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
  let tunnel: TunnelSource | undefined;
  createTunnelMetrics(registers, () => tunnel);

  function heartbeatReport(): HeartbeatReport {
    const r: HeartbeatReport = last ? { agentVersion: deps.version, overlay: last } : { agentVersion: deps.version };
    if (tunnel) r.tunnel = tunnel.summary();
    return r;
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
    setTunnel(source) {
      tunnel = source;
    },
  };
}

/**
 * weft_tunnel_*: read from the tunnel part at each scrape. Counters the
 * chooser and the WireGuard device keep themselves (failovers, bytes) are
 * carried over by their increase since the last scrape; a device that
 * started again (its counters back near zero) counts from its new values.
 */
function createTunnelMetrics(registers: Registry[], source: () => TunnelSource | undefined) {
  const seen = new Map<string, number>();
  const grow = (c: Counter<string>, labels: Record<string, string>, now: number) => {
    const key = JSON.stringify(labels);
    const before = seen.get(key) ?? 0;
    seen.set(key, now);
    const inc = now >= before ? now - before : now;
    if (inc > 0) c.inc(labels, inc);
  };
  const summary = () => source()?.summary();
  new Gauge({
    name: 'weft_tunnel_role', help: '1 for what this host is for traffic between datacenters: a gateway or a host', labelNames: ['role'], registers,
    collect() {
      const s = summary();
      if (!s) return;
      this.set({ role: 'gateway' }, s.role === 'gateway' ? 1 : 0);
      this.set({ role: 'host' }, s.role === 'host' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'weft_tunnel_active_gateway', help: '1 for the gateway that carries this host\'s traffic to each remote datacenter', labelNames: ['datacenter', 'gateway'], registers,
    collect() {
      this.reset();
      for (const p of summary()?.paths ?? []) if (p.chosen) this.set({ datacenter: p.datacenter, gateway: p.chosen }, 1);
    },
  });
  new Counter({
    name: 'weft_tunnel_failovers_total', help: 'Gateway changes after probes went unanswered, per remote datacenter', labelNames: ['datacenter'], registers,
    collect() {
      for (const p of summary()?.paths ?? []) grow(this, { datacenter: p.datacenter }, p.failovers);
    },
  });
  new Gauge({
    name: 'weft_tunnel_probe_rtt_seconds', help: 'Round trip of the last answered probe through the tunnel, per remote datacenter', labelNames: ['datacenter'], registers,
    collect() {
      this.reset();
      for (const p of summary()?.paths ?? []) if (p.lastOkAt > 0) this.set({ datacenter: p.datacenter }, p.rttMs / 1000);
    },
  });
  new Gauge({
    name: 'weft_tunnel_peer_handshake_age_seconds', help: 'Seconds since the last WireGuard handshake with each peer gateway (-1: none yet)', labelNames: ['peer'], registers,
    collect() {
      this.reset();
      for (const p of summary()?.peers ?? []) this.set({ peer: p.host }, p.handshakeAgeSeconds);
    },
  });
  new Counter({
    name: 'weft_tunnel_peer_bytes_total', help: 'Bytes through WireGuard per peer gateway and direction (rx, tx)', labelNames: ['peer', 'direction'], registers,
    collect() {
      for (const p of summary()?.peers ?? []) {
        grow(this, { peer: p.host, direction: 'rx' }, p.rxBytes);
        grow(this, { peer: p.host, direction: 'tx' }, p.txBytes);
      }
    },
  });
  new Gauge({
    name: 'weft_tunnel_mtu', help: 'MTU of the tunnel devices (weft.wg0, weft.xdc), labelled with where it came from', labelNames: ['device', 'source'], registers,
    collect() {
      this.reset();
      const s = summary();
      if (!s || s.role !== 'gateway' || s.wgMtu === 0) return;
      this.set({ device: 'weft.wg0', source: s.mtuSource }, s.wgMtu);
      this.set({ device: 'weft.xdc', source: s.mtuSource }, s.xdcMtu);
    },
  });
  new Gauge({
    name: 'weft_tunnel_dropped_packets', help: 'Packets the fail-closed table dropped since it was made: to another datacenter not through the tunnel (rule="remote"), VXLAN to another datacenter (rule="vxlan")',
    labelNames: ['rule'], registers,
    collect() {
      const src = source();
      if (!src) return;
      try {
        const d = src.dropped();
        this.set({ rule: 'remote' }, d.remote);
        this.set({ rule: 'vxlan' }, d.vxlan);
      } catch {
        // a scrape never fails for a table that cannot be read; the agent's log says why
      }
    },
  });
}

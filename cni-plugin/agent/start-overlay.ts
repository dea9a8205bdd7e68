// startAgent, sixth phase: the overlay. The topology watch feeds a
// coalescing reconcile loop, with a periodic resync against drift. Nothing is
// reconciled before the first snapshot (so a restart with nothing changed
// sends the kernel nothing), and with the controller away the watch keeps
// the last topology it had, so reconciles never run against an empty one.
//
// The same loop keeps this host's own network whole, since the overlay's
// entries live on its devices: every resync, and every link notification
// that touches weft's devices or the underlay (link monitor), first checks
// the host network (devices, addresses, forwarding, iptables) and repairs
// what differs, then reconciles the overlay onto it. A VXLAN device deleted
// by hand is back, with its routes, neighbours and FDB entries, well within a
// second; a flushed iptables table within one resync period.
import type { ClusterConfigMsg } from '../../controller/api/proto';
import type { Logger } from '../../controller/common/log';
import type { Handle } from '../../dataplane/netlink/handle';
import { openMonitor, type Monitor, type MonitorEvent } from '../../dataplane/netlink/monitor';
import type { AgentConfig } from './config';
import { reconcileOverlay } from './host/overlay';
import { repairReason } from './host/repair-triggers';
import type { AgentMetrics, ReconcileTrigger } from './metrics';
import { createReconcileLoop } from './reconcile-loop';
import type { HostNetwork } from './start-host-network';
import type { TunnelSync } from './start-tunnel';
import type { Undo } from './start-undo';
import type { AgentClient } from './sync/controller';
import { WG_DEVICE, XDC_DEVICE } from './state/tunnel';
import type { Topology } from './state/types';

export type OverlaySync = {
  /** Whether the first topology snapshot has arrived; nothing is reconciled before it. */
  readonly synced: boolean;
  /** The topology reconciles use: the last the watch had. */
  topology(): Topology;
  /** Ask for a reconcile; requests made close together share one. */
  request(trigger: ReconcileTrigger): void;
  /** Ask for a reconcile and wait for one that started after this call to finish (after the first snapshot). */
  reconcileNow(trigger: ReconcileTrigger): Promise<void>;
};

/** The loop, the watch and the resync timer each push their undo step. */
export function syncOverlay(
  config: AgentConfig,
  deps: {
    h: Handle; network: HostNetwork; client: Pick<AgentClient, 'watchTopology'>; metrics: AgentMetrics;
    /** Traffic between datacenters: its fail-closed adds and gateway run before the overlay, its removals after. */
    tunnel?: Pick<TunnelSync, 'before' | 'overlay' | 'after' | 'bind'>;
  },
  log: Logger,
  undo: Undo,
): OverlaySync {
  const { h, network, client, metrics, tunnel } = deps;
  /** Callers of reconcileNow waiting for the next run to finish. */
  let waiters: Array<() => void> = [];
  let synced = false;
  let reconciles = 0;
  /** Why the link monitor asked for the next check, deduplicated; taken by the run that does it. */
  let linkCauses: string[] = [];
  let monitor: Monitor | undefined;

  /** A resync checks everything (iptables too) whatever else joined it; a check for link causes alone leaves iptables to the resync. */
  function checkHostNetwork(resync: boolean): void {
    const trigger = resync ? 'resync' : 'link';
    const causes = resync ? [`periodic resync (every ${config.resyncIntervalMs / 1000}s)`, ...linkCauses] : linkCauses;
    linkCauses = [];
    const cause = causes.join('; ');
    const t0 = performance.now();
    const out = network.repair(trigger, cause);
    metrics.hostChecked(trigger, out.changes, out.error !== undefined, (performance.now() - t0) / 1000);
  }

  const loop = createReconcileLoop<ReconcileTrigger>({
    async run(triggers) {
      // act on everything the kernel has said so far: a port that joined a bridge just before the
      // bridge went, or a deletion racing this resync, is then part of this check
      monitor?.readPending();
      // a 'link' run whose causes an earlier run already took needs no second check
      if (linkCauses.length > 0 || triggers.includes('resync')) checkHostNetwork(triggers.includes('resync'));
      // the host network is kept before the first snapshot too; the overlay waits for it
      if (!synced) return;
      const waiting = waiters;
      waiters = [];
      const topology = watch.topology();
      const attachments = [...network.attachments.values()];
      const trigger = triggers[0];
      const t0 = performance.now();
      try {
        // the tunnel's part first: fail-closed adds before any route that needs them, the gateway's devices before routes into them
        if (tunnel) await tunnel.before(topology, attachments);
        const r = reconcileOverlay(h, topology, config.hostName, attachments, { log, datacenters: tunnel?.overlay() });
        tunnel?.after();
        metrics.reconciled(trigger, r, topology.revision);
        const fields = {
          trigger: triggers.join(','), revision: topology.revision, desired: r.desired, requests: r.requests,
          added: r.added, replaced: r.replaced, deleted: r.deleted, failed: r.failed, ms: Math.round(r.durationMs * 10) / 10,
        };
        if (reconciles++ === 0) log.info(fields, `first overlay reconcile after start: ${r.requests} requests`);
        else log.debug(fields, 'overlay reconciled');
      } catch (err) {
        metrics.reconcileFailed(trigger, (performance.now() - t0) / 1000);
        log.error({ err, trigger: triggers.join(',') }, 'overlay reconcile failed; the next one retries');
      } finally {
        for (const w of waiting) w();
      }
    },
  });
  undo.push(() => loop.stop());
  const watch = client.watchTopology({
    onEvent(ev, topology) {
      if (topology.vxlanPort > 0) network.clusterConfig = { ...network.clusterConfig, vxlan_port: topology.vxlanPort, networks: networksOf(network.clusterConfig, topology.networks) };
      if (!synced) {
        if (ev.kind !== 'SNAPSHOT') return;
        synced = true;
        log.info({ revision: topology.revision, hosts: topology.hosts.length }, 'topology snapshot received');
        loop.request('start');
        return;
      }
      loop.request('topology');
    },
  });
  undo.push(() => watch.stop());
  const resync = setInterval(() => loop.request('resync'), config.resyncIntervalMs);
  undo.push(() => clearInterval(resync));
  monitor = watchLinks(h, (cause, overrun) => {
    metrics.linkNotification(overrun ? 'overrun' : 'repair');
    if (!linkCauses.includes(cause)) linkCauses.push(cause);
    loop.request('link');
  }, network, log);
  if (monitor) undo.push(() => monitor?.close());
  const reconcileNow = (trigger: ReconcileTrigger) =>
    new Promise<void>((resolve) => {
      waiters.push(resolve);
      loop.request(trigger);
    });
  tunnel?.bind({ request: () => loop.request('tunnel'), reconcileNow: () => reconcileNow('tunnel') });
  return {
    get synced() {
      return synced;
    },
    topology: () => watch.topology(),
    request: (trigger) => loop.request(trigger),
    reconcileNow,
  };
}

/**
 * The link monitor, reporting the notifications that call for a host network
 * check. Without it (a kernel refusing the subscription) repairs still happen
 * at every resync, and the agent says so.
 */
function watchLinks(h: Handle, onCause: (cause: string, overrun: boolean) => void, network: HostNetwork, log: Logger): Monitor | undefined {
  try {
    return openMonitor({
      groups: ['link', 'ipv4-addr', 'ipv6-addr'],
      ...(h.netns ? { netns: h.netns } : {}),
      onEvents(events) {
        for (const ev of events) {
          network.observe(ev);
          const cause = repairReason(ev, network.watched()) ?? tunnelDeviceCause(ev);
          if (!cause) continue;
          log.debug({ cause }, 'link notification: checking the host network');
          onCause(cause, ev.kind === 'overrun');
        }
      },
      onError: (err) => log.warn({ err }, 'link monitor: a notification could not be read; checking everything'),
    });
  } catch (err) {
    log.error({ err }, 'cannot watch link changes: weft devices deleted or downed are repaired only at the next resync');
    return undefined;
  }
}

/** A gateway's tunnel devices deleted or downed (wireguard-go dying takes weft.wg0 with it): the next reconcile makes them again. */
function tunnelDeviceCause(ev: MonitorEvent): string | undefined {
  if (ev.kind !== 'link' || ev.bridgePort || (ev.link.name !== WG_DEVICE && ev.link.name !== XDC_DEVICE)) return undefined;
  if (ev.action === 'del') return `${ev.link.name} was deleted`;
  return ev.link.up ? undefined : `${ev.link.name} is down`;
}

function networksOf(cfg: ClusterConfigMsg, nets: Array<{ name: string; vni: number; cidr: string }>): ClusterConfigMsg['networks'] {
  return nets.map((n) => ({ ...n, host_prefix_length: cfg.networks.find((c) => c.name === n.name)?.host_prefix_length ?? 0 }));
}

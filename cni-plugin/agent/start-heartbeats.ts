// startAgent, seventh phase: keeping this host's leases. Heartbeats renew
// them; when the controller moves a subnet or lost the host, the loop
// registers again and reports a lease event, which ensures the host network
// for the new leases, saves them for the next start and asks for a
// reconcile. A host that started from its cached registration keeps
// registering in the background until the controller answers.
//
// Networks added to or deleted from the cluster while the agent runs reach
// it through the topology watch (HostNetwork.onNetworksChanged): a new
// network this host takes part in makes it register again at once, which
// leases a subnet there and so ensures its devices; a deleted network's
// containers lose their host ends and addresses here, and its devices go.
// Registration names only networks the cluster still has, so a host started
// with --networks a,b keeps its leases in a after b is deleted.
import { isTransient } from '../../controller/api/client/client';
import type { Logger } from '../../controller/common/log';
import { hostVethName } from './host/naming';
import type { AgentConfig } from './config';
import type { IpamStore } from './ipam-store';
import type { HostNetwork } from './start-host-network';
import type { OverlaySync } from './start-overlay';
import type { HostLeases } from './start-registration';
import { retrying, StartAborted } from './start-retrying';
import type { Undo } from './start-undo';
import type { AgentClient, HostRegistration } from './sync/controller';
import { runHeartbeats, subnetsDiffer, type HeartbeatLoop, type HeartbeatOptions, type LeaseEvent } from './sync/heartbeat';
import { saveRegistration } from './sync/registration-cache';

/** Runs until the undo step it pushes stops the heartbeats (or the background registration). */
export function keepLeases(
  config: AgentConfig,
  deps: HostLeases & {
    client: AgentClient; registration: HostRegistration; ipam: IpamStore; network: HostNetwork; overlay: OverlaySync;
    /** What each heartbeat tells the controller about this agent (metrics.heartbeatReport). */
    report?: HeartbeatOptions['report'];
  },
  log: Logger,
  undo: Undo,
): void {
  const { client, registration, registered, initial, ipam, network, overlay, report } = deps;
  /** What RegisterHost is sent now: the networks asked for (--networks) that the cluster still has; all of them when none is left. */
  const current = (): HostRegistration => {
    if (registration.networks.length === 0) return registration;
    const known = new Set(network.clusterConfig.networks.map((n) => n.name));
    const kept = registration.networks.filter((n) => known.has(n));
    return kept.length > 0 ? { ...registration, networks: kept } : registration;
  };
  const onLease = (ev: LeaseEvent) => {
    if (ev.changed) {
      const moved = ev.subnets.filter((s) => ev.previous.some((p) => p.network === s.network && p.subnet !== s.subnet));
      for (const s of moved) {
        const stranded = ipam.outsideSubnet(s.network, s.subnet);
        log.error(
          {
            network: s.network, previous: ev.previous.find((p) => p.network === s.network)?.subnet, subnet: s.subnet,
            containers: stranded.map((a) => `${a.containerId}/${a.ifname} ${a.ip}`),
          },
          `THIS HOST'S SUBNET IN ${s.network} CHANGED to ${s.subnet} (${ev.reason}): ${stranded.length} container(s) still hold addresses ` +
            'of the old subnet, which the cluster no longer routes here; restart them to get new addresses',
        );
      }
    }
    try {
      network.ensure(ev.subnets);
    } catch (err) {
      log.error({ err }, 'cannot ensure the host network for the new leases; will retry at the next lease event');
    }
    saveRegistration(config.stateDir, { subnets: ev.subnets, config: network.clusterConfig }).catch((err) =>
      log.warn({ err }, 'cannot save the registration'),
    );
    if (overlay.synced) overlay.request('lease');
  };
  let heartbeats: HeartbeatLoop | undefined;
  const stopRegistering = new AbortController();
  undo.push(async () => {
    stopRegistering.abort();
    await heartbeats?.stop();
  });
  /** A deleted network's containers: their host ends and addresses go with its devices. */
  const retire = (net: { name: string; vni: number }) => {
    const held = ipam.list(net.name);
    try {
      network.retire(net, held.map((a) => hostVethName(net.name, a.containerId, a.ifname)));
    } catch (err) {
      log.error({ err, network: net.name }, `cannot remove the devices of deleted network ${net.name}; they stay until the agent restarts`);
    }
    for (const a of held) ipam.release(a.network, a.containerId, a.ifname);
    if (held.length > 0) {
      log.warn(
        { network: net.name, containers: held.map((a) => `${a.containerId}/${a.ifname} ${a.ip}`) },
        `network ${net.name} was deleted: ${held.length} container(s) lost their interface in it`,
      );
    }
  };
  const stopWatchingNetworks = network.onNetworksChanged(({ added, deleted }) => {
    for (const net of deleted) retire(net);
    const wanted = registration.networks.length === 0 ? added : added.filter((n) => registration.networks.includes(n));
    const reasons = [...wanted.map((n) => `network ${n} added`), ...deleted.map((n) => `network ${n.name} deleted`)];
    if (reasons.length > 0) heartbeats?.refresh(reasons.join(', '));
    if (deleted.length > 0 && overlay.synced) overlay.request('lease');
  });
  undo.push(() => stopWatchingNetworks());
  // deleted while the agent was stopped: the watch never said so, the cached registration does
  for (const net of initial.deletedWhileAway ?? []) retire(net);
  if (registered) heartbeats = runHeartbeats({ client, registration: current, registered, onLease, log, report });
  else {
    // Keep registering in the background; the first answer may move a subnet, which is a lease event like any other.
    retrying('registering this host', () => client.registerHost(current()), isTransient, log, stopRegistering.signal).then(
      (reg) => {
        log.info({ subnets: reg.subnets.map((s) => `${s.network}=${s.subnet}`), revision: reg.revision }, 'host registered');
        network.clusterConfig = reg.config;
        onLease({ kind: 'reregistered', reason: 'registered once the controller answered', previous: initial.subnets, subnets: reg.subnets, changed: subnetsDiffer(initial.subnets, reg.subnets) });
        heartbeats = runHeartbeats({ client, registration: current, registered: reg, onLease, log, report });
      },
      (err) => {
        if (!(err instanceof StartAborted)) log.error({ err }, 'the controller refused this host; restart the agent once that is fixed');
      },
    );
  }
}

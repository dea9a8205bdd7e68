// startAgent, seventh phase: keeping this host's leases. Heartbeats renew
// them; when the controller moves a subnet or lost the host, the loop
// registers again and reports a lease event, which ensures the host network
// for the new leases, saves them for the next start and asks for a
// reconcile. A host that started from its cached registration keeps
// registering in the background until the controller answers.
import { isTransient } from '../../controller/api/client/client';
import type { Logger } from '../../controller/common/log';
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
  if (registered) heartbeats = runHeartbeats({ client, registration, registered, onLease, log, report });
  else {
    // Keep registering in the background; the first answer may move a subnet, which is a lease event like any other.
    retrying('registering this host', () => client.registerHost(registration), isTransient, log, stopRegistering.signal).then(
      (reg) => {
        log.info({ subnets: reg.subnets.map((s) => `${s.network}=${s.subnet}`), revision: reg.revision }, 'host registered');
        network.clusterConfig = reg.config;
        onLease({ kind: 'reregistered', reason: 'registered once the controller answered', previous: initial.subnets, subnets: reg.subnets, changed: subnetsDiffer(initial.subnets, reg.subnets) });
        heartbeats = runHeartbeats({ client, registration, registered: reg, onLease, log, report });
      },
      (err) => {
        if (!(err instanceof StartAborted)) log.error({ err }, 'the controller refused this host; restart the agent once that is fixed');
      },
    );
  }
}

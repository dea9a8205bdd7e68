// startAgent, fourth phase: this host's network devices for the leases it
// holds (a VXLAN device and a bridge per network, addresses, iptables). The
// record it returns stays live: the topology watch and a new registration
// update its cluster config, and every lease event ensures it again. Between
// those, repair() ensures it again for the same leases: the overlay's resync
// and the link monitor call it, so a device deleted or downed by hand, a
// flushed iptables table or a jump pushed down by another tool is put back,
// with one log line per thing repaired and nothing written when all is right.
import type { ClusterConfigMsg } from '../../controller/api/proto';
import type { Logger } from '../../controller/common/log';
import type { Handle } from '../../dataplane/netlink/handle';
import type { AgentConfig } from './config';
import { decideTxChecksum } from './host/checksum-policy';
import { ensureHostNetworkReport, type HostNetworkChange, type HostNetworkSpec } from './host/host-network';
import { trackPorts, type WatchedDevices } from './host/repair-triggers';
import type { MonitorEvent } from '../../dataplane/netlink/monitor';
import type { Registration, Subnet } from './sync/controller';
import type { NetworkAttachment } from './state/types';

export type HostNetwork = {
  /** The cluster config the devices are built from; later phases replace it as the controller changes it. */
  clusterConfig: ClusterConfigMsg;
  /** By network name: what the CNI handlers attach containers to. */
  readonly attachments: Map<string, NetworkAttachment>;
  /** Ensure the devices for these leases and replace the attachments; throws when the kernel refuses. */
  ensure(subnets: Subnet[]): void;
  /**
   * Ensure again for the leases last ensured (without iptables when the
   * trigger is 'link': notifications say nothing about rules); never throws. Each change is
   * logged as a repair naming the trigger and cause; a failure is logged
   * once per distinct error (a missing underlay fails the same way at every
   * resync) and again when it clears.
   */
  repair(trigger: string, cause: string): RepairOutcome;
  /** The devices as last ensured: what link notifications are matched against. */
  watched(): WatchedDevices;
  /** Follow ports joining and leaving weft's bridges between checks, so a re-created bridge gets them back. */
  observe(ev: MonitorEvent): void;
};

export type RepairOutcome = { changes: HostNetworkChange[]; error?: Error };

/** Throws when the devices for the initial leases cannot be made; nothing here is undone on stop, the dataplane stays. */
export function setUpHostNetwork(
  config: AgentConfig, host: { h: Handle; underlayIp: string; vtepMac: string }, initial: Registration, log: Logger,
): HostNetwork {
  const { h, underlayIp, vtepMac } = host;
  let subnets: Subnet[] = initial.subnets;
  let watched: WatchedDevices = { weft: new Map(), underlayIp };
  let lastFailure: string | undefined;
  let ports = new Map<string, string>();

  function ensureFor(leases: Subnet[], logger: Logger, skipIptables = false): HostNetworkChange[] {
    const spec = hostNetworkSpec(config, network.clusterConfig, leases, underlayIp, vtepMac, logger);
    const report = ensureHostNetworkReport(h, spec, { log: logger, skipIptables, ports });
    network.attachments.clear();
    for (const a of report.attachments) network.attachments.set(a.network, a);
    watched = { weft: report.devices, underlay: report.underlay, underlayIp };
    ports = report.ports;
    return report.changes;
  }

  const network: HostNetwork = {
    clusterConfig: initial.config,
    attachments: new Map(),
    ensure(leases) {
      // the watched names follow the leases at once, so a repair after a failed ensure tries the new ones
      subnets = leases;
      ensureFor(leases, log);
      lastFailure = undefined;
      const atts = [...network.attachments.values()];
      log.info({ attachments: atts.map((a) => `${a.network}: ${a.subnet} gw ${a.gateway} on ${a.bridge}/${a.vxlanDevice} mtu ${a.mtu}`) }, 'host network ensured');
    },
    repair(trigger, cause) {
      try {
        // a link notification cannot have changed iptables: the overlay waits for devices, not for iptables-save
        const changes = ensureFor(subnets, log.child({ repair: trigger, cause }), trigger === 'link');
        if (lastFailure !== undefined) log.info({ repair: trigger, cause }, `host network repaired again after: ${lastFailure}`);
        lastFailure = undefined;
        return { changes };
      } catch (err) {
        const msg = (err as Error).message;
        if (msg !== lastFailure) log.error({ err, repair: trigger, cause }, `cannot repair the host network (${cause}); retrying at the next link change or resync`);
        else log.debug({ err, repair: trigger, cause }, 'host network repair still failing');
        lastFailure = msg;
        return { changes: [], error: err as Error };
      }
    },
    watched: () => watched,
    observe(ev) {
      trackPorts(ev, watched, ports);
    },
  };
  network.ensure(initial.subnets);
  return network;
}

/** What ensureHostNetwork needs, from the cluster config and this host's leases. */
export function hostNetworkSpec(
  config: AgentConfig, cluster: ClusterConfigMsg, subnets: Subnet[], underlayIp: string, vtepMac: string, log: Pick<Logger, 'warn'>,
): HostNetworkSpec {
  const attachments: HostNetworkSpec['attachments'] = [];
  for (const s of subnets) {
    const n = cluster.networks.find((x) => x.name === s.network);
    if (!n) {
      log.warn({ network: s.network }, `lease in network ${s.network}, which the cluster config does not describe; skipped`);
      continue;
    }
    attachments.push({ network: n.name, vni: n.vni, networkCidr: n.cidr, subnet: s.subnet });
  }
  const mtu = config.mtu ?? (cluster.mtu > 0 ? cluster.mtu : undefined);
  return {
    self: { underlayIp, vtepMac, hostId: config.hostName },
    attachments,
    vxlanPort: cluster.vxlan_port,
    keepTxChecksumOffload: !decideTxChecksum(config.vxlanTxChecksum).disable,
    ...(mtu !== undefined ? { mtu } : {}),
  };
}

// startAgent, fourth phase: this host's network devices for the leases it
// holds (a VXLAN device and a bridge per network, addresses, iptables). The
// record it returns stays live: the topology watch and a new registration
// update its cluster config, and every lease event ensures it again. Between
// those, repair() ensures it again for the same leases: the overlay's resync
// and the link monitor call it, so a device deleted or downed by hand, a
// flushed iptables table or a jump pushed down by another tool is put back,
// with one log line per thing repaired and nothing written when all is right.
//
// Networks come and go while the agent runs (`weft network add/delete`): a
// cluster config whose network names differ from the last one is announced
// to onNetworksChanged listeners (the lease keeper, which registers again
// for a new network's subnet), and a network deleted from the cluster is
// retired here: its devices, addresses and container host ends removed, its
// attachment dropped, and a CNI ADD for it refused with the reason.
import type { ClusterConfigMsg } from '../../controller/api/proto';
import type { Logger } from '../../controller/common/log';
import type { Handle } from '../../dataplane/netlink/handle';
import { linkDel } from '../../dataplane/netlink/link';
import { isErrno } from '../../dataplane/netlink/errors';
import { updateConflistLabels } from '../cni/conflist-labels';
import type { AgentConfig } from './config';
import { decideTxChecksum } from './host/checksum-policy';
import { ensureHostNetworkReport, removeNetworkDevices, type HostNetworkChange, type HostNetworkSpec } from './host/host-network';
import { trackPorts, type WatchedDevices } from './host/repair-triggers';
import type { MonitorEvent } from '../../dataplane/netlink/monitor';
import type { Registration, Subnet } from './sync/controller';
import type { NetworkAttachment } from './state/types';

export type HostNetwork = {
  /** The cluster config the devices are built from; later phases replace it as the controller changes it. */
  clusterConfig: ClusterConfigMsg;
  /** By network name: what the CNI handlers attach containers to. */
  readonly attachments: Map<string, NetworkAttachment>;
  /**
   * This host's datacenter encrypts host-to-host traffic (tunnel/README.md,
   * "Full mesh"): the VXLAN devices send from the tunnel address. Setting a
   * new value ensures the devices again at once (a VXLAN device's source
   * cannot change in place: it is made again); throws when the kernel
   * refuses, and the next repair retries with the new value.
   */
  mesh: boolean;
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
  /** Called after clusterConfig is replaced by one whose networks differ in name; returns the unsubscribe function. */
  onNetworksChanged(fn: (change: NetworksChange) => void): () => void;
  /**
   * Remove a network deleted from the cluster: the container host ends
   * named, its devices (with their addresses and overlay entries), its
   * attachment, and its iptables rules. Refused (returns nothing) for a
   * network the cluster config still has. Throws when the kernel refuses.
   */
  retire(network: { name: string; vni: number }, hostEnds: string[]): string[];
  /** Why CNI cannot attach to `network` here: deleted from the cluster, not configured, or no subnet yet. */
  absence(network: string): NetworkAbsence;
};

export type NetworksChange = { added: string[]; deleted: Array<{ name: string; vni: number }> };

export type NetworkAbsence = { kind: 'deleted' | 'unknown' | 'pending'; message: string };

export type RepairOutcome = { changes: HostNetworkChange[]; error?: Error };

/** Throws when the devices for the initial leases cannot be made; nothing here is undone on stop, the dataplane stays. */
export function setUpHostNetwork(
  config: AgentConfig, host: { h: Handle; underlayIp: string; vtepMac: string; mesh: boolean }, initial: Registration, log: Logger,
): HostNetwork {
  const { h, underlayIp, vtepMac } = host;
  let mesh = host.mesh;
  let subnets: Subnet[] = initial.subnets;
  let watched: WatchedDevices = { weft: new Map(), underlayIp };
  let lastFailure: string | undefined;
  let ports = new Map<string, string>();

  function ensureFor(leases: Subnet[], logger: Logger, skipIptables = false): HostNetworkChange[] {
    const spec = { ...hostNetworkSpec(config, network.clusterConfig, leases, underlayIp, vtepMac, logger), ...(mesh ? { mesh } : {}) };
    const report = ensureHostNetworkReport(h, spec, { log: logger, skipIptables, ports });
    network.attachments.clear();
    for (const a of report.attachments) network.attachments.set(a.network, a);
    watched = { weft: report.devices, underlay: report.underlay, underlayIp };
    ports = report.ports;
    return report.changes;
  }

  let clusterConfig = initial.config;
  const listeners = new Set<(change: NetworksChange) => void>();
  /** Networks seen leaving the cluster config while this agent ran: name -> when. */
  const deleted = new Map<string, string>();

  /**
   * The conflists' labels (podman network inspect) follow the attachments:
   * written after every ensure, checked at every resync; never throws, a
   * conflist is the runtime's view, not the network.
   */
  function labelConflists(logger: Logger): void {
    try {
      const byNetwork = new Map([...network.attachments.values()].map((a) => [a.network, { subnet: a.subnet, gateway: a.gateway }]));
      const { written, failed } = updateConflistLabels(config.cniSocket, (n) => byNetwork.get(n));
      for (const path of written) logger.info({ conflist: path }, `${path}: labels set to this host's subnet and gateway (podman network inspect)`);
      for (const f of failed) logger.warn({ err: f.error, conflist: f.path }, `cannot update the subnet and gateway labels of ${f.path}`);
    } catch (err) {
      logger.warn({ err }, "cannot update the conflists' subnet and gateway labels");
    }
  }

  const network: HostNetwork = {
    get clusterConfig() {
      return clusterConfig;
    },
    set clusterConfig(next: ClusterConfigMsg) {
      const before = clusterConfig;
      clusterConfig = next;
      const had = new Map(before.networks.map((n) => [n.name, n.vni]));
      const has = new Set(next.networks.map((n) => n.name));
      const added = next.networks.filter((n) => !had.has(n.name)).map((n) => n.name);
      const gone = before.networks.filter((n) => !has.has(n.name)).map((n) => ({ name: n.name, vni: n.vni }));
      if (added.length === 0 && gone.length === 0) return;
      for (const n of added) deleted.delete(n);
      for (const n of gone) deleted.set(n.name, new Date().toISOString());
      log.info({ added, deleted: gone.map((n) => n.name) }, 'the cluster\'s networks changed');
      for (const fn of listeners) {
        try {
          fn({ added, deleted: gone });
        } catch (err) {
          log.error({ err }, 'a listener for network changes failed');
        }
      }
    },
    attachments: new Map(),
    get mesh() {
      return mesh;
    },
    set mesh(on: boolean) {
      if (on === mesh) return;
      mesh = on;
      ensureFor(subnets, log.child({ repair: 'mesh' }));
      labelConflists(log);
    },
    ensure(leases) {
      // the watched names follow the leases at once, so a repair after a failed ensure tries the new ones
      subnets = leases;
      ensureFor(leases, log);
      lastFailure = undefined;
      const atts = [...network.attachments.values()];
      log.info({ attachments: atts.map((a) => `${a.network}: ${a.subnet} gw ${a.gateway} on ${a.bridge}/${a.vxlanDevice} mtu ${a.mtu}`) }, 'host network ensured');
      labelConflists(log);
    },
    repair(trigger, cause) {
      try {
        // a link notification cannot have changed iptables: the overlay waits for devices, not for iptables-save
        const changes = ensureFor(subnets, log.child({ repair: trigger, cause }), trigger === 'link');
        if (trigger === 'resync') labelConflists(log);
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
    onNetworksChanged(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    retire(net, hostEnds) {
      if (clusterConfig.networks.some((n) => n.name === net.name)) return [];
      if (!deleted.has(net.name)) deleted.set(net.name, new Date().toISOString());
      const removed: string[] = [];
      for (const name of hostEnds) {
        try {
          linkDel(h, name);
          removed.push(name);
        } catch (e) {
          if (!isErrno(e, 'ENODEV')) throw e;
        }
      }
      // the attachment goes first: a CNI ADD between here and the end finds no bridge to join
      network.attachments.delete(net.name);
      subnets = subnets.filter((s) => s.network !== net.name);
      // a network added since under the same VNI owns those devices now
      if (!clusterConfig.networks.some((n) => n.vni === net.vni)) removed.push(...removeNetworkDevices(h, net.vni, log));
      // the other networks as they were; the deleted one's iptables rules go with this ensure
      ensureFor(subnets, log);
      labelConflists(log);
      log.info({ network: net.name, removed }, `network ${net.name} was deleted from the cluster: its devices and containers' host ends are removed`);
      return removed;
    },
    absence(name) {
      const when = deleted.get(name);
      if (when !== undefined) {
        return { kind: 'deleted', message: `weft network "${name}" was deleted from the cluster (weft network delete, seen here at ${when}); attach the container to another network and remove this network's CNI config` };
      }
      const known = clusterConfig.networks.map((n) => n.name);
      if (!known.includes(name)) {
        return { kind: 'unknown', message: `unknown weft network "${name}" (the cluster has: ${known.join(', ') || 'none'})` };
      }
      return { kind: 'pending', message: `weft network "${name}" has no subnet on this host yet (the agent is leasing one; try again)` };
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

// startAgent, fourth phase: this host's network devices for the leases it
// holds (a VXLAN device and a bridge per network, addresses, iptables). The
// record it returns stays live: the topology watch and a new registration
// update its cluster config, and every lease event ensures it again.
import type { ClusterConfigMsg } from '../../controller/api/proto';
import type { Logger } from '../../controller/common/log';
import type { Handle } from '../../dataplane/netlink/handle';
import type { AgentConfig } from './config';
import { decideTxChecksum } from './host/checksum-policy';
import { ensureHostNetwork, type HostNetworkSpec } from './host/host-network';
import type { Registration, Subnet } from './sync/controller';
import type { NetworkAttachment } from './state/types';

export type HostNetwork = {
  /** The cluster config the devices are built from; later phases replace it as the controller changes it. */
  clusterConfig: ClusterConfigMsg;
  /** By network name: what the CNI handlers attach containers to. */
  readonly attachments: Map<string, NetworkAttachment>;
  /** Ensure the devices for these leases and replace the attachments; throws when the kernel refuses. */
  ensure(subnets: Subnet[]): void;
};

/** Throws when the devices for the initial leases cannot be made; nothing here is undone on stop, the dataplane stays. */
export function setUpHostNetwork(
  config: AgentConfig, host: { h: Handle; underlayIp: string; vtepMac: string }, initial: Registration, log: Logger,
): HostNetwork {
  const { h, underlayIp, vtepMac } = host;
  const network: HostNetwork = {
    clusterConfig: initial.config,
    attachments: new Map(),
    ensure(subnets) {
      const spec = hostNetworkSpec(config, network.clusterConfig, subnets, underlayIp, vtepMac, log);
      const atts = ensureHostNetwork(h, spec, { log });
      network.attachments.clear();
      for (const a of atts) network.attachments.set(a.network, a);
      log.info({ attachments: atts.map((a) => `${a.network}: ${a.subnet} gw ${a.gateway} on ${a.bridge}/${a.vxlanDevice} mtu ${a.mtu}`) }, 'host network ensured');
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

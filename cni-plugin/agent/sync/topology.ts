// The agent's view of the cluster, folded from the controller's watch stream.
// Pure: the same events in the same order give the same topology, so the
// reconcile loop can trust it and tests need no controller.
//
// Revisions only move forward. The controller sends one message per store
// revision, so an event at or below the revision already applied is a
// replay (a resume overlapping what we have) and changes nothing. A SNAPSHOT
// replaces everything, but only if it is not older than what we have; a
// snapshot from a wiped store (revision going backwards) is the client's
// decision to make, not the reducer's (see client.ts).
import type { ClusterConfigMsg, Datacenter, Host, TopologyEvent } from '../../../controller/api/proto';
import type { DatacenterInfo, RemoteHost, Topology } from '../state/types';

export function emptyTopology(): Topology {
  // vxlanPort 0: no config seen yet, so nothing may be programmed from it.
  return { revision: 0, hosts: [], networks: [], vxlanPort: 0, datacenters: [] };
}

/** Plain data for the WireGuard side; nothing is programmed from it yet. */
export function datacenterFromMessage(d: Datacenter): DatacenterInfo {
  return {
    name: d.name,
    gateways: (d.gateways ?? []).map((g) => ({
      host: g.host, wanEndpoint: g.wan_endpoint, state: g.state === 'draining' ? 'draining' : 'active', wgPublicKey: g.wg_public_key,
    })),
    listenPort: d.listen_port,
    mtu: d.mtu,
    mesh: d.mesh,
    subnets: (d.subnets ?? []).map((s) => ({ network: s.network, subnet: s.subnet, host: s.host })),
    pools: { ...(d.pools ?? {}) },
  };
}

const byDcName = (a: DatacenterInfo, b: DatacenterInfo) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** The datacenters a non-snapshot message carries (changed at its revision) applied over what we have. */
function withDatacenters(t: Topology, ev: TopologyEvent): DatacenterInfo[] {
  const have = t.datacenters ?? [];
  const put = new Map((ev.datacenters ?? []).map((d) => [d.name, datacenterFromMessage(d)]));
  const gone = ev.kind === 'DATACENTER_DELETE' ? ev.datacenter_name : undefined;
  if (put.size === 0 && gone === undefined) return have;
  return have.filter((d) => !put.has(d.name) && d.name !== gone).concat([...put.values()]).sort(byDcName);
}

export function remoteHostFromMessage(h: Host): RemoteHost {
  const subnets: Record<string, string> = {};
  for (const s of h.subnets ?? []) subnets[s.network] = s.subnet;
  return {
    name: h.name, underlayIp: h.underlay_ip, vtepMac: h.vtep_mac, rack: h.rack, datacenter: h.datacenter, subnets,
    ...(h.wg_key_rotation ? { wgKeyRotation: Number(h.wg_key_rotation) } : {}),
    ...(h.wg_public_key ? { wgPublicKey: h.wg_public_key } : {}),
  };
}

function withConfig(t: Topology, c: ClusterConfigMsg | null | undefined): Pick<Topology, 'networks' | 'vxlanPort'> {
  if (!c) return { networks: t.networks, vxlanPort: t.vxlanPort };
  return { networks: (c.networks ?? []).map((n) => ({ name: n.name, vni: n.vni, cidr: n.cidr })), vxlanPort: c.vxlan_port };
}

const byName = (a: RemoteHost, b: RemoteHost) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

export function applyTopologyEvent(state: Topology, ev: TopologyEvent): Topology {
  if (!(ev.revision > state.revision)) {
    // A snapshot at exactly our revision is the same state (one message per revision); take it anyway so
    // a resume that the controller answered with a snapshot never leaves us with less than it sent.
    if (!(ev.kind === 'SNAPSHOT' && ev.revision === state.revision)) return state;
  }
  switch (ev.kind) {
    case 'SNAPSHOT':
      return {
        revision: ev.revision,
        hosts: (ev.hosts ?? []).map(remoteHostFromMessage).sort(byName),
        ...withConfig(state, ev.config),
        datacenters: (ev.datacenters ?? []).map(datacenterFromMessage).sort(byDcName),
      };
    case 'HOST_PUT': {
      const put = new Map((ev.hosts ?? []).map((h) => [h.name, remoteHostFromMessage(h)]));
      const hosts = state.hosts.filter((h) => !put.has(h.name)).concat([...put.values()]).sort(byName);
      return { ...state, revision: ev.revision, hosts, datacenters: withDatacenters(state, ev) };
    }
    case 'HOST_DELETE':
      return { ...state, revision: ev.revision, hosts: state.hosts.filter((h) => h.name !== ev.host_name), datacenters: withDatacenters(state, ev) };
    case 'CONFIG':
      return { ...state, revision: ev.revision, ...withConfig(state, ev.config), datacenters: withDatacenters(state, ev) };
    case 'DATACENTER_PUT':
    case 'DATACENTER_DELETE':
      return { ...state, revision: ev.revision, datacenters: withDatacenters(state, ev) };
    default:
      // A kind this agent does not know (a newer controller): keep what we have rather than guess.
      return state;
  }
}

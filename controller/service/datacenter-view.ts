// What hosts and operators are told about a datacenter: its record joined
// with what other records say of it. The gateways' WireGuard public keys come
// from the gateway hosts' own records (the one place a key is kept), the
// host count and subnets from the hosts that name the datacenter and their
// leases, the pools from the cluster config. Pure: the topology watch
// (topology.ts) and ListDatacenters build the same message from the same data.
import type { ClusterConfig } from '../ipam';
import type { DatacenterRecord } from '../registry/datacenters';
import type { HostRecord } from '../registry/hosts';
import type { Datacenter, DatacenterSubnet } from '../api/proto';

/** network -> datacenter -> pool CIDR, from the cluster config's datacenterPools. */
export type PoolsByDatacenter = Map<string, Record<string, string>>;

export function poolsByDatacenter(config: Pick<ClusterConfig, 'networks'>): PoolsByDatacenter {
  const out: PoolsByDatacenter = new Map();
  for (const n of config.networks) {
    for (const [dc, cidr] of Object.entries(n.datacenterPools ?? {})) {
      const m = out.get(dc) ?? {};
      m[n.name] = cidr;
      out.set(dc, m);
    }
  }
  return out;
}

export type DatacenterFacts = {
  /** Registered hosts by name (gateways' keys are looked up here). */
  host(name: string): HostRecord | undefined;
  /** Hosts whose record names the datacenter. */
  members: HostRecord[];
  /** A host's subnets: network and CIDR. */
  subnetsOf(host: string): Array<{ network: string; subnet: string }>;
  pools: Record<string, string> | undefined;
};

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function datacenterMessage(dc: DatacenterRecord, facts: DatacenterFacts): Datacenter {
  const subnets: DatacenterSubnet[] = [];
  for (const h of facts.members) for (const s of facts.subnetsOf(h.name)) subnets.push({ network: s.network, subnet: s.subnet, host: h.name });
  subnets.sort((a, b) => cmp(a.network, b.network) || cmp(a.subnet, b.subnet));
  return {
    name: dc.name,
    gateways: dc.gateways.map((g) => {
      const h = facts.host(g.host);
      // A gateway host that left or moved to another datacenter carries no key: no one may tunnel to it.
      const key = h && h.datacenter === dc.name ? h.wgPublicKey : '';
      return { host: g.host, wan_endpoint: g.wanEndpoint, state: g.state, wg_public_key: key };
    }),
    listen_port: dc.listenPort,
    mtu: dc.mtu,
    mesh: dc.mesh,
    allow_single_gateway: dc.allowSingleGateway,
    host_count: facts.members.length,
    subnets,
    pools: { ...(facts.pools ?? {}) },
  };
}

/** One comparable form of a message (maps with sorted keys), for telling whether a client already has it. */
export function datacenterMessageKey(d: Datacenter): string {
  const pools = Object.keys(d.pools).sort().map((k) => [k, d.pools[k]]);
  return JSON.stringify({ ...d, pools });
}

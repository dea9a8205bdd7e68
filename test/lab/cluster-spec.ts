// What `npm run lab -- up` reads beyond the netns lab's own spec. The file is
// a LabSpec (plan.ts) with two optional additions, so every existing spec
// (vagrant/topology.json too) is still valid and means the same topology:
//
//   datacenters[i].gateways: ["h1", "h2"]   the datacenter's WireGuard gateways
//                                           (default: its first two hosts)
//   ingress: "edge" | false                 the edge host running `weft ingress`
//                                           (default: a host named "edge", if any)
//
// Gateways are named only when the spec has two datacenters or more: with one
// there is nothing to tunnel to.
import { LabSpecError, type DatacenterSpec, type LabSpec } from './plan';

export interface ClusterDatacenterSpec extends DatacenterSpec {
  gateways?: string[];
}

export interface ClusterSpec extends LabSpec {
  datacenters: ClusterDatacenterSpec[];
  ingress?: string | false;
}

/** The host name that makes a spec run the ingress without saying so (vagrant/topology.json's edge host). */
export const DEFAULT_EDGE = 'edge';

export interface ClusterLayout {
  /** datacenter -> its gateways; empty with a single datacenter */
  gateways: Map<string, string[]>;
  /** the ingress host, or null for none */
  edge: string | null;
}

export function clusterLayout(spec: ClusterSpec): ClusterLayout {
  const hostsOf = (dc: ClusterDatacenterSpec) => dc.racks.flatMap((r) => r.hosts);
  const all = new Set(spec.datacenters.flatMap(hostsOf));
  const gateways = new Map<string, string[]>();
  if (spec.datacenters.length > 1) {
    for (const dc of spec.datacenters) {
      const named = dc.gateways ?? hostsOf(dc).slice(0, 2);
      for (const g of named) {
        if (!hostsOf(dc).includes(g)) throw new LabSpecError(`gateway "${g}" of datacenter "${dc.name}" is not one of its hosts`);
      }
      if (named.length === 0) throw new LabSpecError(`datacenter "${dc.name}" has no host to be its gateway`);
      gateways.set(dc.name, named);
    }
  }
  let edge: string | null;
  if (spec.ingress === false) edge = null;
  else if (typeof spec.ingress === 'string') {
    if (!all.has(spec.ingress)) throw new LabSpecError(`ingress host "${spec.ingress}" is not a host of the lab`);
    edge = spec.ingress;
  } else if (spec.ingress === undefined) edge = all.has(DEFAULT_EDGE) ? DEFAULT_EDGE : null;
  else throw new LabSpecError('ingress must be a host name or false');
  if (!spec.controller) throw new LabSpecError('a weft cluster needs the controller namespace ("controller": true)');
  return { gateways, edge };
}

// Gathering the facts for one path and judging them: the controller first
// (who owns each address; optional: a controller that cannot be asked is a
// fact the verdicts report), then this host's agent DB and kernel, and the
// tunnel's devices when the path goes through this host's weft.xdc or weft.wg0.
import { canonicalIp } from '../../../dataplane/netlink/ip';
import type { AgentConfig } from '../config';
import { readCredentials } from '../doctor/controller';
import type { ExplainFacts, NetworkFact } from './facts';
import { readKernel } from './hops';
import { askCluster, localAllocations, ownerOf, tunnelReportsOf, type AdminFiles, type ClusterView } from './locate';
import { gatewaysOf, readTunnel } from './tunnel-hops';
import { emptyTopology } from '../sync/topology';
import { explainPath, type Explanation } from './verdicts';

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export type ExplainRequest = { src: string; dst: string; size?: number; admin?: AdminFiles };

export async function runExplain(config: AgentConfig, req: ExplainRequest): Promise<Explanation> {
  const src = canonicalIp(req.src);
  const dst = canonicalIp(req.dst);
  const server = config.server;
  let view: ClusterView | undefined;
  let controller: ExplainFacts['controller'];
  try {
    const r = await askCluster(server, config.stateDir, req.admin);
    view = r.view;
    controller = { ok: true, server, identity: r.identity };
  } catch (e) {
    controller = { ok: false, server, error: message(e) };
  }
  const creds = await readCredentials(config.stateDir);
  const selfName = 'credentials' in creds ? creds.credentials.hostName : config.hostName;
  const topology = view?.topology ?? emptyTopology();
  const networks: NetworkFact[] = topology.networks.map((n) => ({ name: n.name, vni: n.vni, cidr: n.cidr }));
  const selfHost = topology.hosts.find((h) => h.name === selfName);
  const gateways = gatewaysOf(topology);
  const facts: ExplainFacts = {
    src, dst, ...(req.size !== undefined ? { size: req.size } : {}),
    self: { name: selfName, datacenter: selfHost?.datacenter ?? config.datacenter, ...(gateways.some((g) => g.host === selfName) ? { gateway: true } : {}) },
    controller, networks, devices: {}, gateways,
  };
  const reports = view ? tunnelReportsOf(view) : {};
  if (Object.keys(reports).length > 0) facts.tunnelReports = reports;
  if (view) {
    facts.srcOwner = ownerOf(src, view, networks);
    facts.dstOwner = ownerOf(dst, view, networks);
  }
  const allocs = localAllocations(config.stateDir);
  const held = (ip: string) => allocs.find((a) => canonicalIp(a.ip) === ip);
  readKernel(facts, { topology, networks, src: held(src), dst: held(dst) });
  await readTunnel(facts, { topology, networks, gateways });
  return explainPath(facts);
}

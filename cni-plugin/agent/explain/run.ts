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
import { INGRESS_TABLE, readIngressL4 } from './ingress-hops';
import { emptyTopology } from '../sync/topology';
import { explainPath, type Explanation } from './verdicts';

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** ingress: dst is an address the ingress listens on, port and protocol its L4 service's; src the outside client. */
export type ExplainRequest = { src: string; dst: string; size?: number; admin?: AdminFiles; ingress?: { port: number; protocol: 'tcp' | 'udp'; table?: string } };

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
  if (req.ingress) {
    // the path goes on to the backend the ingress DNATs to (the first by buckets held)
    const { port, protocol } = req.ingress;
    const table = req.ingress.table ?? INGRESS_TABLE;
    const l4 = readIngressL4(table, dst, port, protocol);
    const backend = l4.backends[0] ? { ip: canonicalIp(l4.backends[0].ip), port: l4.backends[0].port } : undefined;
    facts.ingress = { client: src, listen: dst, port, protocol, table, clientRoute: { ok: false, errno: 'ENOENT', message: 'not read' }, l4, ...(backend ? { backend } : {}) };
    if (backend) {
      facts.dst = backend.ip;
      if (view) facts.dstOwner = ownerOf(backend.ip, view, networks);
    }
    readKernel(facts, { topology, networks, ...(backend && held(backend.ip) ? { dst: held(backend.ip) } : {}) });
    await readTunnel(facts, { topology, networks, gateways });
    return { ...explainPath(facts), dst: `${dst}:${port}/${protocol}` };
  }
  readKernel(facts, { topology, networks, src: held(src), dst: held(dst) });
  await readTunnel(facts, { topology, networks, gateways });
  return explainPath(facts);
}

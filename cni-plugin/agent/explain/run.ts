// Gathering the facts for one path and judging them: the controller first
// (who owns each address; optional: a controller that cannot be asked is a
// fact the verdicts report), then this host's agent DB and kernel, and the
// tunnel's devices when the path goes through this host's weft.xdc or weft.wg0.
import { canonicalIp } from '../../../dataplane/netlink/ip';
import type { AgentConfig } from '../config';
import { readCredentials } from '../doctor/controller';
import type { ExplainFacts, IngressFact, NetworkFact } from './facts';
import { readKernel } from './hops';
import { askCluster, localAllocations, ownerOf, tunnelReportsOf, type AdminFiles, type ClusterView } from './locate';
import { gatewaysOf, readTunnel } from './tunnel-hops';
import { INGRESS_TABLE, readIngressL4, tcpListener } from './ingress-hops';
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
  // through the ingress: the kernel's L4 table first; a TCP port it does not DNAT may be the L7 proxy's (the controller's http services)
  const table = req.ingress?.table ?? INGRESS_TABLE;
  const l4 = req.ingress ? readIngressL4(table, dst, req.ingress.port, req.ingress.protocol) : undefined;
  const l7Wanted = !!req.ingress && req.ingress.protocol === 'tcp' && !l4?.chain;
  try {
    const r = await askCluster(server, config.stateDir, req.admin, undefined, l7Wanted);
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
    const l7 = l7Wanted ? l7Of(view, dst, port) : undefined;
    const first = l7 ? l7.services.flatMap((x) => x.backends.map((b) => ({ ip: b.ip, port: x.targetPort })))[0] : l4!.backends[0];
    const backend = first ? { ip: canonicalIp(first.ip), port: first.port } : undefined;
    facts.ingress = {
      client: src, listen: dst, port, protocol, table, clientRoute: { ok: false, errno: 'ENOENT', message: 'not read' }, l4: l4!,
      ...(l7 ? { l7 } : {}), ...(backend ? { backend } : {}),
    };
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

/** The controller's http services on `port` with their backends (by address), and this host's listening socket for it. */
function l7Of(view: ClusterView | undefined, listen: string, port: number): NonNullable<IngressFact['l7']> {
  const services = (view?.services ?? []).flatMap((st) => {
    const svc = st.service;
    if (!svc) return [];
    return svc.ports.filter((p) => p.protocol === 'http' && p.port === port).map((p) => ({
      name: svc.name, targetPort: p.target_port, route: `${svc.hostnames.length > 0 ? svc.hostnames.join(',') : '*'}${svc.path_prefix || '/'}`,
      backends: st.backends.map((b) => ({ ip: b.ip, host: b.host })).sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0)),
    }));
  });
  const listening = tcpListener(listen, port);
  return { services, ...(listening ? { listening } : {}) };
}

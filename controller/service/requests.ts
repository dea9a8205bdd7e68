// Whole-request checks: every field of a request is checked (first problem
// wins) and turned into the registry's record before any handler writes.
// Pure: the cluster's networks are passed in.
import type { EndpointRecord } from '../registry/endpoints';
import type { HostRecord } from '../registry/hosts';
import type { ServicePortRecord, ServiceRecord } from '../registry/services';
import type {
  CreateServiceRequest, JoinRequest, ListEndpointsRequest, RegisterEndpointRequest, RegisterHostRequest,
  ReleaseEndpointRequest,
} from '../api/proto';
import {
  type NetworkRef, type Protocol, canonicalIp, checkAffinity, checkAgentVersion, checkContainerId, checkHostName, checkHostnames,
  checkIfname, checkLabels, checkMac, checkName, checkNetworkExists, checkOptionalName, checkPort, checkProtocol, checkRackPolicy,
  checkRole, checkUnderlayIp, checkUnicastIp, checkUrlPath, checkWgPublicKey, fail, must, show, transportOf,
} from '../api/validate';

/** The host record less what only the controller knows (the heartbeat time), like the other checks' results. */
export type HostInput = Omit<HostRecord, 'lastHeartbeat'> & {
  /** Networks to lease a subnet in: the request's, or every configured one. */
  networks: string[];
};

export function checkJoin(req: JoinRequest): JoinRequest {
  if (typeof req.token !== 'string' || !/^[^.\s]+\.[^.\s]+$/.test(req.token)) fail('token: must be "<id>.<secret>" as printed by `weft token create`');
  must(checkHostName(req.host_name, 'host_name'));
  must(checkRole(req.role ?? '', 'role'));
  if (typeof req.public_key_pem !== 'string' || !req.public_key_pem.includes('-----BEGIN PUBLIC KEY-----')) {
    fail('public_key_pem: must be the host\'s public key as an SPKI PEM ("-----BEGIN PUBLIC KEY-----")');
  }
  return req;
}

/** `networks` with their CIDRs, so an underlay address inside the overlay is refused; without, only its form is checked. */
export function checkRegisterHost(req: RegisterHostRequest, networks: Array<NetworkRef & { cidr?: string }>): HostInput {
  must(checkHostName(req.name, 'name'));
  must(checkUnderlayIp(req.underlay_ip, 'underlay_ip', networks.filter((n): n is NetworkRef & { cidr: string } => n.cidr !== undefined)));
  must(checkMac(req.vtep_mac, 'vtep_mac'));
  must(checkOptionalName(req.rack, 'rack'));
  must(checkOptionalName(req.datacenter, 'datacenter'));
  must(checkWgPublicKey(req.wg_public_key, 'wg_public_key'));
  must(checkAgentVersion(req.agent_version, 'agent_version'));
  const wanted = req.networks ?? [];
  wanted.forEach((n, i) => must(checkNetworkExists(n, `networks[${i}]`, networks)));
  return {
    name: req.name,
    underlayIp: canonicalIp(req.underlay_ip)!,
    vtepMac: req.vtep_mac.toLowerCase(),
    rack: req.rack,
    datacenter: req.datacenter,
    wgPublicKey: req.wg_public_key,
    agentVersion: req.agent_version,
    networks: wanted.length > 0 ? [...new Set(wanted)] : networks.map((n) => n.name),
  };
}

/** The endpoint, minus the subnet check, which needs the host's leases (see checkIpInSubnet). */
export function checkRegisterEndpoint(req: RegisterEndpointRequest, networks: NetworkRef[]): EndpointRecord {
  const e = req.endpoint;
  if (!e) fail('endpoint: is required');
  const ep = e;
  must(checkNetworkExists(ep.network, 'endpoint.network', networks));
  must(checkUnicastIp(ep.ip, 'endpoint.ip'));
  must(checkContainerId(ep.container_id, 'endpoint.container_id'));
  must(checkHostName(ep.host, 'endpoint.host'));
  must(checkLabels(ep.labels ?? {}, 'endpoint.labels'));
  must(checkIfname(ep.ifname, 'endpoint.ifname'));
  return { network: ep.network, ip: canonicalIp(ep.ip)!, containerId: ep.container_id, host: ep.host, labels: { ...(ep.labels ?? {}) }, ifname: ep.ifname };
}

export function checkReleaseEndpoint(req: ReleaseEndpointRequest): { network: string; ip: string; containerId?: string } {
  // The network may have been removed from the config since: releasing must still work.
  must(checkName(req.network, 'network'));
  must(checkUnicastIp(req.ip, 'ip'));
  if (req.container_id !== '') must(checkContainerId(req.container_id, 'container_id'));
  return { network: req.network, ip: canonicalIp(req.ip)!, containerId: req.container_id || undefined };
}

export function checkListEndpoints(req: ListEndpointsRequest): { network?: string; host?: string } {
  if (req.network !== '') must(checkName(req.network, 'network'));
  if (req.host !== '') must(checkName(req.host, 'host'));
  return { network: req.network || undefined, host: req.host || undefined };
}

export const MAX_SERVICE_PORTS = 64;

/**
 * Defaults: protocol "" is "tcp", target_port 0 is the port itself,
 * rack_policy "" is "prefer-local", affinity "" is "none". Host names and a
 * path prefix route http ports only, so a service without one may not set them.
 */
export function checkCreateService(req: CreateServiceRequest, networks: NetworkRef[]): ServiceRecord {
  const s = req.service;
  if (!s) fail('service: is required');
  const svc = s;
  must(checkName(svc.name, 'service.name'));
  const ports = svc.ports ?? [];
  if (ports.length === 0) fail('service.ports: at least one port is required');
  if (ports.length > MAX_SERVICE_PORTS) fail(`service.ports: has ${ports.length} entries (at most ${MAX_SERVICE_PORTS})`);
  const seenPorts = new Map<string, number>();
  const seenNames = new Map<string, number>();
  const out: ServicePortRecord[] = ports.map((p, i) => {
    const at = `service.ports[${i}]`;
    if (p.name !== '') must(checkName(p.name, `${at}.name`));
    must(checkPort(p.port, `${at}.port`));
    if (p.target_port !== 0) must(checkPort(p.target_port, `${at}.target_port`));
    const protocol = (p.protocol === '' ? 'tcp' : p.protocol) as Protocol;
    must(checkProtocol(protocol, `${at}.protocol`));
    const transport = transportOf(protocol);
    const dupPort = seenPorts.get(`${transport}/${p.port}`);
    if (dupPort !== undefined) fail(`${at}.port: ${transport} port ${p.port} is already used by service.ports[${dupPort}] (http and tcp are both tcp)`);
    seenPorts.set(`${transport}/${p.port}`, i);
    if (p.name !== '') {
      const dupName = seenNames.get(p.name);
      if (dupName !== undefined) fail(`${at}.name: ${show(p.name)} is already used by service.ports[${dupName}]`);
      seenNames.set(p.name, i);
    }
    return { name: p.name, port: p.port, targetPort: p.target_port || p.port, protocol };
  });
  must(checkLabels(svc.selector ?? {}, 'service.selector', { nonEmpty: true }));
  must(checkNetworkExists(svc.network, 'service.network', networks));
  const rackPolicy = svc.rack_policy === '' ? 'prefer-local' : svc.rack_policy;
  must(checkRackPolicy(rackPolicy, 'service.rack_policy'));
  const hostnames = svc.hostnames ?? [];
  must(checkHostnames(hostnames, 'service.hostnames'));
  // Fields a client built before they existed may leave out: their defaults.
  const pathPrefix = svc.path_prefix ?? '';
  const healthPath = svc.health_path ?? '';
  const proxyProtocol = svc.proxy_protocol ?? false;
  must(checkUrlPath(pathPrefix, 'service.path_prefix'));
  const http = out.some((p) => p.protocol === 'http');
  if (!http && hostnames.length > 0) fail('service.hostnames: only http ports are routed by host name, and this service has none');
  if (!http && pathPrefix !== '') fail('service.path_prefix: only http ports are routed by path, and this service has none');
  const affinity = (svc.affinity ?? '') === '' ? 'none' : svc.affinity;
  must(checkAffinity(affinity, 'service.affinity'));
  must(checkUrlPath(healthPath, 'service.health_path'));
  if (typeof proxyProtocol !== 'boolean') fail('service.proxy_protocol: must be true or false');
  return {
    name: svc.name, ports: out, selector: { ...svc.selector }, network: svc.network, rackPolicy: rackPolicy as ServiceRecord['rackPolicy'],
    hostnames: [...hostnames], pathPrefix, affinity: affinity as ServiceRecord['affinity'], healthPath, proxyProtocol,
  };
}

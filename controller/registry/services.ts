// Service records at /weft/services/<name>: what the ingress exposes and
// which endpoints (by label selector) serve it.
import { WeftError } from '../common/errors';
import type { Store } from '../store/types';
import { CAS_ATTEMPTS, deleteRecord, listNamed, num, parseNamedRecord, str, strList, strMap } from './json';
import { RegistryContentionError } from './errors';
import { SERVICES_PREFIX, serviceKey } from './keys';

export type ServiceProtocol = 'tcp' | 'udp' | 'http';
export type ServicePortRecord = { name: string; port: number; targetPort: number; protocol: ServiceProtocol };

export type ServiceRecord = {
  name: string;
  ports: ServicePortRecord[];
  selector: Record<string, string>;
  network: string;
  rackPolicy: 'prefer-local' | 'any';
  /** L7: Host header names (lower case, "*.x.y" wildcards); empty matches any host. */
  hostnames: string[];
  /** L7: '' or a path starting with '/'. */
  pathPrefix: string;
  affinity: 'none' | 'client-ip';
  /** '' = TCP connect check. */
  healthPath: string;
  proxyProtocol: boolean;
};

/**
 * Every service write moves this key, and compares it with what it read
 * before checking the other services' ports: two creates racing for one tcp
 * port cannot both pass the check. Outside SERVICES_PREFIX, so watchers of
 * services never see it.
 */
export const SERVICES_GUARD_KEY = '/weft/service-ports-guard';

/** A port number, or an http route, that another service already has (ALREADY_EXISTS). */
export class ServicePortConflictError extends WeftError {
  constructor(message: string, readonly field: string, readonly other: string) {
    super('WEFT_SERVICE_PORT_CONFLICT', message);
    this.name = 'ServicePortConflictError';
  }
}

export function encodeService(s: ServiceRecord): string {
  return JSON.stringify({
    name: s.name,
    ports: s.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort, protocol: p.protocol })),
    selector: s.selector,
    network: s.network,
    rackPolicy: s.rackPolicy,
    hostnames: s.hostnames,
    pathPrefix: s.pathPrefix,
    affinity: s.affinity,
    healthPath: s.healthPath,
    proxyProtocol: s.proxyProtocol,
  });
}

const protocolOf = (v: unknown): ServiceProtocol => (v === 'http' || v === 'udp' ? v : 'tcp');

/** Records written before a field existed read as its default. */
export function decodeService(key: string, value: string): ServiceRecord {
  const { name, r } = parseNamedRecord(SERVICES_PREFIX, key, value);
  const ports = Array.isArray(r.ports) ? r.ports : [];
  return {
    name,
    ports: ports.map((p: Record<string, unknown>) => ({
      name: str(p?.name), port: num(p?.port), targetPort: num(p?.targetPort), protocol: protocolOf(p?.protocol),
    })),
    selector: strMap(r.selector),
    network: str(r.network),
    rackPolicy: r.rackPolicy === 'any' ? 'any' : 'prefer-local',
    hostnames: strList(r.hostnames),
    pathPrefix: str(r.pathPrefix),
    affinity: r.affinity === 'client-ip' ? 'client-ip' : 'none',
    healthPath: str(r.healthPath),
    proxyProtocol: r.proxyProtocol === true,
  };
}

/** Every selector label present on the endpoint with the same value; an empty selector matches nothing. */
export function selectorMatches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => Object.prototype.hasOwnProperty.call(labels, k) && labels[k] === v);
}

/** '' and '/' both route every path. */
const routePath = (p: string): string => (p === '' ? '/' : p);

/**
 * What `s` would clash with among `others` (a service of the same name is
 * the one being replaced and does not count): a tcp or udp port number
 * another service has on that transport (http counts as tcp, and a tcp port
 * cannot share a number with another service's http port either, as the
 * ingress listens once per number), or an http route (port, host name, path
 * prefix) another service already serves, which the ingress could not tell apart.
 */
export function servicePortConflict(s: ServiceRecord, others: ServiceRecord[]): ServicePortConflictError | undefined {
  const hostsOf = (x: ServiceRecord) => (x.hostnames.length > 0 ? x.hostnames : ['']);
  for (const [i, p] of s.ports.entries()) {
    const field = `service.ports[${i}].port`;
    for (const o of others) {
      if (o.name === s.name) continue;
      for (const q of o.ports) {
        if (q.port !== p.port) continue;
        const udp = p.protocol === 'udp';
        if (udp !== (q.protocol === 'udp')) continue;
        if (p.protocol === 'http' && q.protocol === 'http') {
          if (routePath(s.pathPrefix) !== routePath(o.pathPrefix)) continue;
          const host = hostsOf(s).find((h) => hostsOf(o).includes(h));
          if (host === undefined) continue;
          const what = `${host === '' ? 'any host' : `host "${host}"`}, path prefix "${routePath(s.pathPrefix)}"`;
          return new ServicePortConflictError(
            `${field}: http port ${p.port} for ${what} is already routed to service "${o.name}"; give this service other hostnames or another path_prefix`,
            field, o.name,
          );
        }
        return new ServicePortConflictError(
          `${field}: ${udp ? 'udp' : 'tcp'} port ${p.port} is already used by service "${o.name}" (${q.protocol}); ` +
            'a tcp or udp port number belongs to one service (only http ports are shared, routed by host name and path)',
          field, o.name,
        );
      }
    }
  }
  return undefined;
}

/**
 * Creates or replaces the service, refusing a port another service has
 * (servicePortConflict). The check and the write are one compare-and-swap on
 * SERVICES_GUARD_KEY, so concurrent writers on any controller are ordered:
 * the loser re-reads and sees the winner. A record written by a controller
 * that predates the guard is not ordered this way; deletes need no guard, as
 * they only free ports.
 */
export async function putService(store: Store, s: ServiceRecord): Promise<{ revision: number; created: boolean }> {
  const key = serviceKey(s.name);
  for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
    const guard = await store.get(SERVICES_GUARD_KEY);
    const { services } = await listServices(store);
    const conflict = servicePortConflict(s, services);
    if (conflict) throw conflict;
    const r = await store.txn(
      [{ key: SERVICES_GUARD_KEY, target: 'modRevision', op: '==', modRevision: guard?.modRevision ?? 0 }],
      [{ type: 'get', key }, { type: 'put', key, value: encodeService(s) }, { type: 'put', key: SERVICES_GUARD_KEY, value: s.name }],
    );
    if (r.succeeded) return { revision: r.revision, created: r.results[0] === undefined };
  }
  throw new RegistryContentionError(`service "${s.name}": other service writes kept winning after ${CAS_ATTEMPTS} attempts; retry`);
}

export async function listServices(store: Store): Promise<{ services: ServiceRecord[]; revision: number }> {
  const { records, revision } = await listNamed(store, SERVICES_PREFIX, decodeService);
  return { services: records, revision };
}

export function deleteService(store: Store, name: string): Promise<{ deleted: boolean; revision: number }> {
  return deleteRecord(store, serviceKey(name));
}

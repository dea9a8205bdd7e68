// What WatchServices tells an ingress: every service with its backends, the
// endpoints whose labels match the service's selector in its network, each
// joined with its host's rack and datacenter. Kept up to date one revision at
// a time; a revision that changes no service's backends (a heartbeat, an
// endpoint nobody selects) sends nothing.
import { type EndpointRecord, decodeEndpoint } from '../registry/endpoints';
import { decodeHost } from '../registry/hosts';
import { ENDPOINTS_PREFIX, HOSTS_PREFIX, SERVICES_PREFIX, nameFromKey, parseEndpointKey } from '../registry/keys';
import { type ServiceRecord, decodeService, selectorMatches } from '../registry/services';
import type { Backend, Service, ServiceEvent, ServiceState } from '../api/proto';
import type { KeyChange } from './watch-core';

/** The keys the services' state is made of. */
export const SERVICES_KEYS = [SERVICES_PREFIX, ENDPOINTS_PREFIX, HOSTS_PREFIX];

type Place = { rack: string; datacenter: string };

export type ServicesState = {
  services: Map<string, ServiceRecord>;
  /** network -> endpoint key -> endpoint */
  endpoints: Map<string, Map<string, EndpointRecord>>;
  places: Map<string, Place>;
  /** What the clients have: service name -> JSON of the ServiceState last sent. */
  sent: Map<string, string>;
};

export function serviceMessage(s: ServiceRecord): Service {
  return {
    name: s.name,
    ports: s.ports.map((p) => ({ name: p.name, port: p.port, target_port: p.targetPort, protocol: p.protocol })),
    selector: s.selector,
    network: s.network,
    rack_policy: s.rackPolicy,
    hostnames: s.hostnames,
    path_prefix: s.pathPrefix,
    affinity: s.affinity,
    health_path: s.healthPath,
    proxy_protocol: s.proxyProtocol,
  };
}

function attempt<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined; // an unreadable record serves nothing; the registry reports it where it is read directly
  }
}

function stateOf(s: ServicesState, svc: ServiceRecord): ServiceState {
  const backends: Backend[] = [];
  for (const [, e] of [...(s.endpoints.get(svc.network) ?? new Map<string, EndpointRecord>())].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!selectorMatches(svc.selector, e.labels)) continue;
    const place = s.places.get(e.host) ?? { rack: '', datacenter: '' };
    backends.push({ ip: e.ip, host: e.host, rack: place.rack, datacenter: place.datacenter, container_id: e.containerId });
  }
  return { service: serviceMessage(svc), backends };
}

function apply(s: ServicesState, key: string, value: string | undefined): { service?: string; endpoint?: EndpointRecord[]; host?: string } {
  if (key.startsWith(SERVICES_PREFIX)) {
    const name = nameFromKey(SERVICES_PREFIX, key);
    if (!name) return {};
    const rec = value === undefined ? undefined : attempt(() => decodeService(key, value));
    if (rec) s.services.set(name, rec);
    else s.services.delete(name);
    return { service: name };
  }
  if (key.startsWith(ENDPOINTS_PREFIX)) {
    const at = parseEndpointKey(key);
    if (!at) return {};
    let net = s.endpoints.get(at.network);
    const old = net?.get(key);
    const rec = value === undefined ? undefined : attempt(() => decodeEndpoint(key, value));
    if (rec) {
      if (!net) s.endpoints.set(at.network, (net = new Map()));
      net.set(key, rec);
    } else {
      net?.delete(key);
    }
    return { endpoint: [old, rec].filter((e): e is EndpointRecord => e !== undefined) };
  }
  if (key.startsWith(HOSTS_PREFIX)) {
    const name = nameFromKey(HOSTS_PREFIX, key);
    if (!name) return {};
    const old = s.places.get(name);
    const rec = value === undefined ? undefined : attempt(() => decodeHost(key, value));
    if (rec) s.places.set(name, { rack: rec.rack, datacenter: rec.datacenter });
    else s.places.delete(name);
    const now = s.places.get(name);
    // Only where a host sits matters to backends; its heartbeats do not.
    return old?.rack !== now?.rack || old?.datacenter !== now?.datacenter ? { host: name } : {};
  }
  return {};
}

export function servicesFromKvs(kvs: Map<string, string>): ServicesState {
  const s: ServicesState = { services: new Map(), endpoints: new Map(), places: new Map(), sent: new Map() };
  for (const [key, value] of kvs) apply(s, key, value);
  for (const svc of s.services.values()) s.sent.set(svc.name, JSON.stringify(stateOf(s, svc)));
  return s;
}

/** Every service at `revision`; `sent` already equals it (every revision's changes are sent in full). */
export function servicesSnapshot(s: ServicesState, revision: number): ServiceEvent {
  const services = [...s.services.keys()].sort().map((n) => stateOf(s, s.services.get(n)!));
  return { revision, kind: 'SNAPSHOT', services, service_name: '' };
}

/** Nothing a client is told of changed up to `revision`: where to resume from. */
export function servicesProgress(revision: number): ServiceEvent {
  return { revision, kind: 'PROGRESS', services: [], service_name: '' };
}

function resend(s: ServicesState, revision: number): ServiceEvent {
  const snap = servicesSnapshot(s, revision);
  s.sent = new Map(snap.services.map((st) => [st.service!.name, JSON.stringify(st)]));
  return snap;
}

/** One message per revision at most, as for the topology: SERVICE_PUT (every changed service), SERVICE_DELETE, or SNAPSHOT for a mix. */
export function servicesChanges(s: ServicesState, revision: number, changes: KeyChange[]): ServiceEvent[] {
  const touched = new Set<string>();
  for (const c of changes) {
    const r = apply(s, c.key, c.after);
    if (r.service) touched.add(r.service);
    for (const e of r.endpoint ?? []) {
      for (const svc of s.services.values()) {
        if (svc.network === e.network && selectorMatches(svc.selector, e.labels)) touched.add(svc.name);
      }
    }
    if (r.host) {
      for (const svc of s.services.values()) {
        const mine = [...(s.endpoints.get(svc.network)?.values() ?? [])].some((e) => e.host === r.host && selectorMatches(svc.selector, e.labels));
        if (mine) touched.add(svc.name);
      }
    }
  }
  const puts: ServiceState[] = [];
  const deletes: string[] = [];
  for (const name of [...touched].sort()) {
    const svc = s.services.get(name);
    if (!svc) {
      if (s.sent.has(name)) deletes.push(name);
      continue;
    }
    const st = stateOf(s, svc);
    if (s.sent.get(name) !== JSON.stringify(st)) puts.push(st);
  }
  if (puts.length === 0 && deletes.length === 0) return [];
  if (deletes.length > 1 || (deletes.length > 0 && puts.length > 0)) return [resend(s, revision)];
  for (const st of puts) s.sent.set(st.service!.name, JSON.stringify(st));
  if (puts.length > 0) return [{ revision, kind: 'SERVICE_PUT', services: puts, service_name: '' }];
  s.sent.delete(deletes[0]);
  return [{ revision, kind: 'SERVICE_DELETE', services: [], service_name: deletes[0] }];
}

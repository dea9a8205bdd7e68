// Service records at /weft/services/<name>: what the ingress exposes and
// which endpoints (by label selector) serve it.
import type { Store } from '../store/types';
import { deleteRecord, listNamed, num, parseNamedRecord, str, strMap } from './json';
import { SERVICES_PREFIX, serviceKey } from './keys';

export type ServicePortRecord = { name: string; port: number; targetPort: number; protocol: 'tcp' | 'http' };

export type ServiceRecord = {
  name: string;
  ports: ServicePortRecord[];
  selector: Record<string, string>;
  network: string;
  rackPolicy: 'prefer-local' | 'any';
};

export function encodeService(s: ServiceRecord): string {
  return JSON.stringify({
    name: s.name,
    ports: s.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort, protocol: p.protocol })),
    selector: s.selector,
    network: s.network,
    rackPolicy: s.rackPolicy,
  });
}

export function decodeService(key: string, value: string): ServiceRecord {
  const { name, r } = parseNamedRecord(SERVICES_PREFIX, key, value);
  const ports = Array.isArray(r.ports) ? r.ports : [];
  return {
    name,
    ports: ports.map((p: Record<string, unknown>) => ({
      name: str(p?.name), port: num(p?.port), targetPort: num(p?.targetPort), protocol: p?.protocol === 'http' ? 'http' : 'tcp',
    })),
    selector: strMap(r.selector),
    network: str(r.network),
    rackPolicy: r.rackPolicy === 'any' ? 'any' : 'prefer-local',
  };
}

/** Every selector label present on the endpoint with the same value; an empty selector matches nothing. */
export function selectorMatches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => Object.prototype.hasOwnProperty.call(labels, k) && labels[k] === v);
}

export async function putService(store: Store, s: ServiceRecord): Promise<{ revision: number; created: boolean }> {
  const { revision, prev } = await store.put(serviceKey(s.name), encodeService(s));
  return { revision, created: prev === undefined };
}

export async function listServices(store: Store): Promise<{ services: ServiceRecord[]; revision: number }> {
  const { records, revision } = await listNamed(store, SERVICES_PREFIX, decodeService);
  return { services: records, revision };
}

export function deleteService(store: Store, name: string): Promise<{ deleted: boolean; revision: number }> {
  return deleteRecord(store, serviceKey(name));
}

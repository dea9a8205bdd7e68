// Service records at /weft/services/<name>: what the ingress exposes and
// which endpoints (by label selector) serve it.
import type { Store } from '../store/types';
import { CorruptRecordError } from './errors';
import { num, parseRecord, str, strMap } from './json';
import { SERVICES_PREFIX, nameFromKey, serviceKey } from './keys';

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
  const r = parseRecord(key, value);
  const name = nameFromKey(SERVICES_PREFIX, key);
  if (!name || r.name !== name) throw new CorruptRecordError(key, `name ${JSON.stringify(r.name)} does not match the key`);
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
  const { kvs, revision } = await store.range(SERVICES_PREFIX);
  return {
    services: kvs.filter((kv) => nameFromKey(SERVICES_PREFIX, kv.key)).map((kv) => decodeService(kv.key, kv.value)),
    revision,
  };
}

export async function deleteService(store: Store, name: string): Promise<{ deleted: boolean; revision: number }> {
  const { deleted, revision } = await store.delete(serviceKey(name));
  return { deleted: deleted > 0, revision };
}

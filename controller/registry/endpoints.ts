// Container endpoints at /weft/endpoints/<net>/<ip>. Registration is a
// compare-and-swap on the address key, so one address has one owner even
// when two agents (or two controllers) race for it.
import type { EndpointRecord } from '../api/proto';
import type { Store } from '../store/types';
import { CorruptRecordError, EndpointConflictError, EndpointMismatchError, RegistryContentionError } from './errors';
import { CAS_ATTEMPTS, parseRecord, str, strMap } from './json';
import { ENDPOINTS_PREFIX, endpointKey, endpointPrefix, parseEndpointKey } from './keys';

/** The stored record is the contract's endpoint record: one shape on the wire, in the store and in the agent. */
export type { EndpointRecord };

export function encodeEndpoint(e: EndpointRecord): string {
  return JSON.stringify({ network: e.network, ip: e.ip, containerId: e.containerId, host: e.host, labels: e.labels, ifname: e.ifname });
}

export function decodeEndpoint(key: string, value: string): EndpointRecord {
  const at = parseEndpointKey(key);
  if (!at) throw new CorruptRecordError(key, 'not an endpoint key');
  const r = parseRecord(key, value);
  return { network: at.network, ip: at.ip, containerId: str(r.containerId), host: str(r.host), labels: strMap(r.labels), ifname: str(r.ifname) };
}

/** Labels in key order, so equal label sets encode to equal JSON. */
function sortedLabels(l: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(l).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Claims `e.ip` for `e.containerId`. The same container registering again
 * (an agent retrying, or updating labels) succeeds; another container, or
 * the same id on another host, gets EndpointConflictError.
 */
export async function registerEndpoint(store: Store, e: EndpointRecord): Promise<{ endpoint: EndpointRecord; revision: number; created: boolean }> {
  const key = endpointKey(e.network, e.ip);
  const record = { ...e, labels: sortedLabels(e.labels) };
  const value = encodeEndpoint(record);
  for (let i = 0; i < CAS_ATTEMPTS; i++) {
    const res = await store.txn(
      [{ key, target: 'createRevision', op: '==', createRevision: 0 }],
      [{ type: 'put', key, value }],
      [{ type: 'get', key }],
    );
    if (res.succeeded) return { endpoint: record, revision: res.revision, created: true };
    const cur = res.results[0];
    if (!cur) continue; // released between our compare and get: try to create again
    const held = decodeEndpoint(key, cur.value);
    if (held.containerId !== e.containerId || held.host !== e.host) throw new EndpointConflictError(e.network, e.ip, held);
    if (encodeEndpoint({ ...held, labels: sortedLabels(held.labels) }) === value) return { endpoint: held, revision: res.revision, created: false };
    const upd = await store.txn(
      [{ key, target: 'modRevision', op: '==', modRevision: cur.modRevision }],
      [{ type: 'put', key, value }],
    );
    if (upd.succeeded) return { endpoint: record, revision: upd.revision, created: false };
  }
  throw new RegistryContentionError(`endpoint ${e.ip} in network "${e.network}" kept changing under concurrent writers`);
}

export async function getEndpoint(store: Store, network: string, ip: string): Promise<EndpointRecord | undefined> {
  const kv = await store.get(endpointKey(network, ip));
  return kv && decodeEndpoint(kv.key, kv.value);
}

/**
 * Releases the address. `expect` guards against releasing someone else's
 * endpoint: the host must match, and the container id when given.
 * Idempotent: nothing there returns released=false.
 */
export async function releaseEndpoint(
  store: Store,
  network: string,
  ip: string,
  expect: { host?: string; containerId?: string },
): Promise<{ released: boolean; revision: number; endpoint?: EndpointRecord }> {
  const key = endpointKey(network, ip);
  for (let i = 0; i < CAS_ATTEMPTS; i++) {
    const kv = await store.get(key);
    if (!kv) return { released: false, revision: await store.revision() };
    const held = decodeEndpoint(key, kv.value);
    if (expect.containerId && held.containerId !== expect.containerId) {
      throw new EndpointMismatchError(`address ${ip} in network "${network}" is held by container "${held.containerId}", not "${expect.containerId}"`);
    }
    if (expect.host !== undefined && held.host !== expect.host) {
      throw new EndpointMismatchError(`address ${ip} in network "${network}" belongs to host "${held.host}", not "${expect.host}"`);
    }
    const res = await store.txn(
      [{ key, target: 'modRevision', op: '==', modRevision: kv.modRevision }],
      [{ type: 'delete', key }],
    );
    if (res.succeeded) return { released: true, revision: res.revision, endpoint: held };
  }
  throw new RegistryContentionError(`endpoint ${ip} in network "${network}" kept changing under concurrent writers`);
}

/** Endpoints, optionally of one network and/or one host, sorted by key. */
export async function listEndpoints(
  store: Store,
  filter: { network?: string; host?: string } = {},
): Promise<{ endpoints: EndpointRecord[]; revision: number }> {
  const { kvs, revision } = await store.range(filter.network ? endpointPrefix(filter.network) : ENDPOINTS_PREFIX);
  const endpoints = kvs
    .filter((kv) => parseEndpointKey(kv.key))
    .map((kv) => decodeEndpoint(kv.key, kv.value))
    .filter((e) => !filter.host || e.host === filter.host);
  return { endpoints, revision };
}

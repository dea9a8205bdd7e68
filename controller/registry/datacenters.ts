// Datacenter records at /weft/datacenters/<dc>: how the datacenter is
// reached from the others (gateways, their WAN endpoints and WireGuard keys).
import type { Store } from '../store/types';
import { deleteRecord, listNamed, parseNamedRecord, strList } from './json';
import { DATACENTERS_PREFIX, datacenterKey } from './keys';

export type DatacenterRecord = {
  name: string;
  /** Host names acting as this datacenter's WireGuard gateways. */
  gateways: string[];
  /** "ip:port" the other datacenters send WireGuard traffic to. */
  wanEndpoints: string[];
  wgPublicKeys: string[];
};

export function encodeDatacenter(d: DatacenterRecord): string {
  return JSON.stringify({ name: d.name, gateways: d.gateways, wanEndpoints: d.wanEndpoints, wgPublicKeys: d.wgPublicKeys });
}

export function decodeDatacenter(key: string, value: string): DatacenterRecord {
  const { name, r } = parseNamedRecord(DATACENTERS_PREFIX, key, value);
  return { name, gateways: strList(r.gateways), wanEndpoints: strList(r.wanEndpoints), wgPublicKeys: strList(r.wgPublicKeys) };
}

export async function putDatacenter(store: Store, d: DatacenterRecord): Promise<{ revision: number }> {
  const { revision } = await store.put(datacenterKey(d.name), encodeDatacenter(d));
  return { revision };
}

export async function getDatacenter(store: Store, name: string): Promise<DatacenterRecord | undefined> {
  const kv = await store.get(datacenterKey(name));
  return kv && decodeDatacenter(kv.key, kv.value);
}

export async function listDatacenters(store: Store): Promise<{ datacenters: DatacenterRecord[]; revision: number }> {
  const { records, revision } = await listNamed(store, DATACENTERS_PREFIX, decodeDatacenter);
  return { datacenters: records, revision };
}

export function deleteDatacenter(store: Store, name: string): Promise<{ deleted: boolean; revision: number }> {
  return deleteRecord(store, datacenterKey(name));
}

// Datacenter records at /weft/datacenters/<dc>: how the datacenter is
// reached from the others (gateways, their WAN endpoints and WireGuard keys).
import type { Store } from '../store/types';
import { CorruptRecordError } from './errors';
import { parseRecord, strList } from './json';
import { DATACENTERS_PREFIX, datacenterKey, nameFromKey } from './keys';

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
  const r = parseRecord(key, value);
  const name = nameFromKey(DATACENTERS_PREFIX, key);
  if (!name || r.name !== name) throw new CorruptRecordError(key, `name ${JSON.stringify(r.name)} does not match the key`);
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
  const { kvs, revision } = await store.range(DATACENTERS_PREFIX);
  return {
    datacenters: kvs.filter((kv) => nameFromKey(DATACENTERS_PREFIX, kv.key)).map((kv) => decodeDatacenter(kv.key, kv.value)),
    revision,
  };
}

export async function deleteDatacenter(store: Store, name: string): Promise<{ deleted: boolean; revision: number }> {
  const { deleted, revision } = await store.delete(datacenterKey(name));
  return { deleted: deleted > 0, revision };
}

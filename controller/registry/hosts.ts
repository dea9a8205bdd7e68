// Host records at /weft/hosts/<name>: what other hosts need to reach this
// one over the overlay. Subnets are not here; they live in the IPAM leases.
import type { Store } from '../store/types';
import { RecordNotFoundError, RegistryContentionError } from './errors';
import { CAS_ATTEMPTS, deleteRecord, num, parseNamedRecord, str } from './json';
import { HOSTS_PREFIX, hostKey } from './keys';

export type HostRecord = {
  name: string;
  underlayIp: string;
  vtepMac: string;
  rack: string;
  datacenter: string;
  wgPublicKey: string;
  agentVersion: string;
  /** ms since the epoch. */
  lastHeartbeat: number;
};

export function encodeHost(h: HostRecord): string {
  return JSON.stringify({
    name: h.name, underlayIp: h.underlayIp, vtepMac: h.vtepMac, rack: h.rack, datacenter: h.datacenter,
    wgPublicKey: h.wgPublicKey, agentVersion: h.agentVersion, lastHeartbeat: h.lastHeartbeat,
  });
}

export function decodeHost(key: string, value: string): HostRecord {
  const { name, r } = parseNamedRecord(HOSTS_PREFIX, key, value);
  return {
    name, underlayIp: str(r.underlayIp), vtepMac: str(r.vtepMac), rack: str(r.rack), datacenter: str(r.datacenter),
    wgPublicKey: str(r.wgPublicKey), agentVersion: str(r.agentVersion), lastHeartbeat: num(r.lastHeartbeat),
  };
}

export async function putHost(store: Store, h: HostRecord): Promise<{ revision: number }> {
  const { revision } = await store.put(hostKey(h.name), encodeHost(h));
  return { revision };
}

export async function getHost(store: Store, name: string): Promise<(HostRecord & { modRevision: number }) | undefined> {
  const kv = await store.get(hostKey(name));
  return kv && { ...decodeHost(kv.key, kv.value), modRevision: kv.modRevision };
}

/**
 * Records a heartbeat. A compare-and-swap, so a heartbeat racing a LeaveHost
 * cannot bring the host record back after it was deleted.
 */
export async function touchHost(store: Store, name: string, now: number): Promise<{ host: HostRecord; revision: number }> {
  const key = hostKey(name);
  for (let i = 0; i < CAS_ATTEMPTS; i++) {
    const kv = await store.get(key);
    if (!kv) throw new RecordNotFoundError(`host "${name}" is not registered (call RegisterHost first)`);
    const host = { ...decodeHost(key, kv.value), lastHeartbeat: now };
    const res = await store.txn(
      [{ key, target: 'modRevision', op: '==', modRevision: kv.modRevision }],
      [{ type: 'put', key, value: encodeHost(host) }],
    );
    if (res.succeeded) return { host, revision: res.revision };
  }
  throw new RegistryContentionError(`host record of "${name}" kept changing under concurrent writers`);
}

export function deleteHost(store: Store, name: string): Promise<{ deleted: boolean; revision: number }> {
  return deleteRecord(store, hostKey(name));
}

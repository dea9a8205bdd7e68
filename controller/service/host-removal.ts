// Ending a host: what a host's leave and an operator's `weft host delete`
// both do. The host record goes first, so watchers see one HOST_DELETE
// rather than the host shrinking lease by lease; a host that is gone has no
// containers, so its endpoints go too (or the ingress would keep sending to
// them); its leases go back to the pool; and every certificate issued to
// its name is revoked, so neither a leaving host nor whoever holds its key
// can call in with it again.
import { type ClusterConfig, loadClusterConfig, releaseLease } from '../ipam';
import { hostLeases } from '../ipam/leases';
import { deleteHost } from '../registry/hosts';
import { listEndpoints, releaseEndpoint } from '../registry/endpoints';
import { type RevokedCertRecord, revokeIdentity } from '../registry/certificates';
import type { Store } from '../store/types';

export type RemoveHostOptions = {
  now: number;
  /** How long past expiry a revocation is kept: the renewal grace window. */
  keepMs: number;
  reason: string;
  releaseLease?: typeof releaseLease;
  loadConfig?: (store: Store) => Promise<ClusterConfig>;
};

export type RemovedHost = { existed: boolean; endpoints: number; leases: number; revoked: RevokedCertRecord[] };

export async function removeHost(store: Store, name: string, o: RemoveHostOptions): Promise<RemovedHost> {
  const release = o.releaseLease ?? releaseLease;
  const { deleted } = await deleteHost(store, name);
  const { endpoints } = await listEndpoints(store, { host: name });
  for (const e of endpoints) await releaseEndpoint(store, e.network, e.ip, { host: name, containerId: e.containerId });
  // Leases exist only in configured networks: saveClusterConfig refuses a change that would orphan one.
  const networks = (await (o.loadConfig ?? loadClusterConfig)(store)).networks.map((n) => n.name);
  const leases = await hostLeases(store, name, networks);
  for (const l of leases) await release(store, { network: l.network, subnet: l.subnet, host: l.host });
  const revoked = await revokeIdentity(store, 'host', name, { now: o.now, keepMs: o.keepMs, reason: o.reason });
  return { existed: deleted, endpoints: endpoints.length, leases: leases.length, revoked };
}

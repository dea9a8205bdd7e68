// Deleting a network from the cluster config (`weft network delete`). The
// config, every subnet lease of the network and its host index go in one
// transaction that compares the config's revision, so no host can claim a
// subnet of the network after it is gone (every claim compares the same
// revision) and no lease is left behind to be renewed. Agents learn of it
// from the topology watch and remove the network's devices themselves.
//
// Containers still attached are the operator's to decide about: the delete
// is refused while the network has endpoints, unless forced, which removes
// their records in the same transaction (the agents then take the
// containers' interfaces away).
import { endpointPrefix } from '../registry/keys';
import type { Store, TxnOp } from '../store/types';
import { readClusterConfig, validateClusterConfig } from '../ipam/cluster-config';
import { ClusterConfigError, LeaseContentionError, UnknownNetworkError } from '../ipam/errors';
import { CONFIG_KEY, LEASE_HOSTS_PREFIX, leasePrefix, parseLeaseKey } from '../ipam/records';
import { formatCidr } from '../common/cidr';

export type NetworkDeleteResult =
  | {
      deleted: true;
      /** Subnet leases released with the network, one per host that held one. */
      leases: Array<{ subnet: string; host: string }>;
      /** Endpoint records removed with it (only when forced). */
      endpoints: number;
      revision: number;
    }
  | {
      deleted: false;
      /** The network has endpoints and the delete was not forced: the first few, as "ip (host, container)". */
      endpoints: number;
      sample: string[];
    };

/** How many endpoint records a refusal names. */
const SAMPLE = 5;

export async function deleteNetwork(store: Store, name: string, opts: { force?: boolean } = {}): Promise<NetworkDeleteResult> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const current = await store.get(CONFIG_KEY);
    const { config } = await readClusterConfig(store, { kv: current });
    const net = config.networks.find((n) => n.name === name);
    if (!net) throw new UnknownNetworkError(name, config.networks.map((n) => n.name));
    if (config.networks.length === 1) {
      throw new ClusterConfigError('networks', `cannot delete "${name}": it is the cluster's only network (add another first)`);
    }
    const [eps, leases] = await Promise.all([store.range(endpointPrefix(name)), store.range(leasePrefix(name))]);
    if (eps.kvs.length > 0 && !opts.force) {
      return { deleted: false, endpoints: eps.kvs.length, sample: eps.kvs.slice(0, SAMPLE).map((kv) => describeEndpoint(kv.key, kv.value)) };
    }
    const next = validateClusterConfig({ ...config, networks: config.networks.filter((n) => n.name !== name) });
    const ops: TxnOp[] = [
      { type: 'put', key: CONFIG_KEY, value: JSON.stringify(next) },
      { type: 'deletePrefix', prefix: leasePrefix(name) },
      { type: 'deletePrefix', prefix: `${LEASE_HOSTS_PREFIX}${name}/` },
    ];
    if (opts.force) ops.push({ type: 'deletePrefix', prefix: endpointPrefix(name) });
    const res = await store.txn([{ key: CONFIG_KEY, target: 'modRevision', op: '==', modRevision: current?.modRevision ?? 0 }], ops);
    if (!res.succeeded) continue; // another writer changed the config: judge again against what it saved
    return {
      deleted: true,
      leases: leases.kvs.map((kv) => ({ subnet: subnetOf(kv.key), host: hostOf(kv.value) })),
      endpoints: opts.force ? eps.kvs.length : 0,
      revision: res.revision,
    };
  }
  throw new LeaseContentionError(`could not delete network "${name}": ${CONFIG_KEY} kept changing under concurrent writers`);
}

function subnetOf(key: string): string {
  try {
    return formatCidr(parseLeaseKey(key).subnet);
  } catch {
    return key;
  }
}

function hostOf(value: string): string {
  try {
    const h = (JSON.parse(value) as { host?: unknown }).host;
    return typeof h === 'string' ? h : '?';
  } catch {
    return '?';
  }
}

function describeEndpoint(key: string, value: string): string {
  const ip = key.slice(key.lastIndexOf('/') + 1);
  try {
    const r = JSON.parse(value) as { host?: unknown; containerId?: unknown };
    return `${ip} (host ${String(r.host)}, container ${String(r.containerId).slice(0, 12)})`;
  } catch {
    return ip;
  }
}

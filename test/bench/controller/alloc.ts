// Subnet allocation through IPAM (acquireLease: read config and host index,
// then a compare-and-swap claiming the subnet and the host index together)
// against the store's own raw put on a fresh key, on the same store in the
// same repetition, so the ratio shows what IPAM costs on top of one write.
import { acquireLease, listLeases, saveClusterConfig } from '../../../controller/ipam';
import { LEASES_PREFIX, LEASE_HOSTS_PREFIX } from '../../../controller/ipam/records';
import type { Store } from '../../../controller/store/types';

export const ALLOC_NETWORK = 'bench';
/** 4,096 /24s: the bench's allocations never fill more than half the pool. */
export const ALLOC_CONFIG = {
  networks: [{ name: ALLOC_NETWORK, vni: 1, cidr: '10.0.0.0/12', hostPrefixLength: 24 }],
  leaseTtlSeconds: 3600,
};

const PUT_PREFIX = '/bench/put/';

export type Op = 'alloc' | 'put';

export async function prepareAllocStore(store: Store): Promise<void> {
  await clearRound(store);
  await saveClusterConfig(store, ALLOC_CONFIG);
}

/** Each repetition starts from an empty pool, so every one measures the same fill level. */
export async function clearRound(store: Store): Promise<void> {
  await store.deletePrefix(LEASES_PREFIX);
  await store.deletePrefix(LEASE_HOSTS_PREFIX);
  await store.deletePrefix(PUT_PREFIX);
}

/** Runs `ops` operations with `inFlight` at a time; returns operations per second. */
async function timed(ops: number, inFlight: number, op: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < ops) await op(next++);
  }));
  return ops / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/** One timed round, then a check that every operation landed (a run that lost writes does not count). */
export async function measureRound(store: Store, op: Op, ops: number, inFlight: number, rep: number): Promise<number> {
  await clearRound(store);
  if (op === 'alloc') {
    const rate = await timed(ops, inFlight, (i) => acquireLease(store, { network: ALLOC_NETWORK, host: `r${rep}-h${i}` }));
    await verifyLeases(store, ops, rep);
    return rate;
  }
  const rate = await timed(ops, inFlight, (i) => store.put(`${PUT_PREFIX}r${rep}/k${i}`, `host r${rep}-h${i}`));
  const { kvs } = await store.range(`${PUT_PREFIX}r${rep}/`);
  if (kvs.length !== ops) throw new Error(`${store.kind} put x${inFlight}: ${kvs.length} keys stored, ${ops} written`);
  return rate;
}

async function verifyLeases(store: Store, ops: number, rep: number): Promise<void> {
  const { leases } = await listLeases(store, ALLOC_NETWORK);
  const hosts = new Set(leases.map((l) => l.host));
  const subnets = new Set(leases.map((l) => l.subnet));
  const ours = leases.filter((l) => l.host.startsWith(`r${rep}-`)).length;
  if (leases.length !== ops || hosts.size !== ops || subnets.size !== ops || ours !== ops) {
    throw new Error(`${store.kind} alloc: ${leases.length} leases for ${hosts.size} hosts in ${subnets.size} subnets, expected ${ops} distinct of each`);
  }
}

// One controller of the HA allocation test, as its own OS process with its
// own store client. Usage: node --import tsx ipam-ha-worker.ts '<json spec>'
// Prints "ready" once connected, waits for "go" on stdin (so all
// controllers start allocating at the same moment), then prints one JSON
// line with what it leased.
import { createInterface } from 'node:readline';
import { openStore } from '../../controller/store';
import type { Store } from '../../controller/store/types';
import { acquireLease } from '../../controller/ipam';

type Spec = { storeUrl: string; worker: number; hosts: string[]; network: string; concurrency: number };

const spec = JSON.parse(process.argv[2] ?? '') as Spec;
const store = await openStore(spec.storeUrl);

// Count lost compare-and-swaps, to report how hard the controllers fought.
let failedTxns = 0;
const counting: Store = Object.assign({}, store, {
  async txn(...args: Parameters<Store['txn']>) {
    const res = await store.txn(...args);
    if (!res.succeeded) failedTxns++;
    return res;
  },
});

process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) if (line.trim() === 'go') break;
lines.close();

const leases: Array<{ host: string; subnet: string }> = [];
const errors: Array<{ host: string; error: string }> = [];
const started = performance.now();
let next = 0;
async function lane(): Promise<void> {
  while (next < spec.hosts.length) {
    const host = spec.hosts[next++];
    try {
      const l = await acquireLease(counting, { network: spec.network, host });
      leases.push({ host: l.host, subnet: l.subnet });
    } catch (err) {
      errors.push({ host, error: `${(err as Error).name}: ${(err as Error).message}` });
    }
  }
}
await Promise.all(Array.from({ length: spec.concurrency }, lane));
const ms = performance.now() - started;
await store.close();
process.stdout.write(`${JSON.stringify({ worker: spec.worker, pid: process.pid, ms, failedTxns, leases, errors })}\n`);

// Quick throughput of the two Store backends: puts/s and CAS txns/s, one at
// a time (what a single controller loop sees) and 32 in flight (what a busy
// controller sees). SQLite runs with synchronous=FULL: every write is fsynced.
// A first look, not the final benchmark: one machine, median of 3 runs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../controller/store/sqlite';
import { openEtcdStore } from '../../controller/store/etcd';
import type { Store } from '../../controller/store/types';
import { startEtcd } from '../helpers/etcd';
import { median } from './weft/stats';

const OPS = Number(process.env.WEFT_BENCH_OPS ?? 2000);
const REPS = 3;

async function rate(store: Store, inFlight: number, op: (s: Store, i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < OPS) await op(store, next++);
  }));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return OPS / s;
}

let round = 0;
const put = (s: Store, i: number) => s.put(`/bench/${round}/k${i % 500}`, `v${i}`);
// CAS-create on a fresh key each time: the IPAM pattern
const cas = async (s: Store, i: number) => {
  const key = `/bench/${round}/lease${i}`;
  const r = await s.txn([{ key, target: 'version', op: '==', version: 0 }], [{ type: 'put', key, value: 'host' }], [{ type: 'get', key }]);
  if (!r.succeeded) throw new Error(`CAS on fresh key ${key} failed`);
};

async function measure(name: string, store: Store): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [label, op] of [['put', put], ['cas', cas]] as const) {
    for (const inFlight of [1, 32]) {
      const runs: number[] = [];
      for (let r = 0; r < REPS; r++) {
        round++;
        runs.push(await rate(store, inFlight, op));
      }
      const key = `${label}_x${inFlight}_per_s`;
      out[key] = Math.round(median(runs));
      console.log(`${name.padEnd(7)} ${label.padEnd(4)} in-flight ${String(inFlight).padStart(2)}: ${out[key]} ops/s (runs ${runs.map(Math.round).join(', ')})`);
    }
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'weft-bench-store-'));
const etcd = await startEtcd();
try {
  const sqlite = openSqliteStore(join(dir, 'weft.db'));
  const sqliteResult = await measure('sqlite', sqlite);
  await sqlite.close();
  const etcdStore = await openEtcdStore(etcd.endpoint);
  const etcdResult = await measure('etcd', etcdStore);
  await etcdStore.close();
  console.log(JSON.stringify({ bench: 'store', date: new Date().toISOString(), ops: OPS, sqlite: sqliteResult, etcd: etcdResult }));
} finally {
  await etcd.stop();
  rmSync(dir, { recursive: true, force: true });
}

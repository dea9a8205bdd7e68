// The HA proof: three controllers, each its own OS process with its own
// store client, allocate subnets for distinct hosts at the same moment.
// Compare-and-swap on the lease keys must give no duplicate and lose no
// host, on a real etcd and on one SQLite file shared by the processes.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../controller/store';
import type { Store } from '../../controller/store/types';
import { listLeases, parseCidr, saveClusterConfig } from '../../controller/ipam';
import { cidrContains } from '../../controller/common/cidr';
import { startEtcd } from '../helpers/etcd';

const WORKER = join(import.meta.dirname, 'ipam-ha-worker.ts');
const CIDR = '10.64.0.0/14'; // 1024 /24s for 1000 hosts: the last claims fight over the few left

type WorkerResult = {
  worker: number;
  pid: number;
  ms: number;
  failedTxns: number;
  leases: Array<{ host: string; subnet: string }>;
  errors: Array<{ host: string; error: string }>;
};

const children = new Set<ChildProcess>();
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
});

function startWorker(spec: object): { child: ChildProcess; ready: Promise<void>; result: Promise<WorkerResult> } {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(spec)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    cwd: join(import.meta.dirname, '../..'),
  });
  children.add(child);
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  const out = createInterface({ input: child.stdout! });
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  let last = '';
  out.on('line', (line) => {
    if (line === 'ready') onReady();
    else last = line;
  });
  const result = new Promise<WorkerResult>((resolve, reject) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      if (code !== 0) return reject(new Error(`controller process ${child.pid} exited ${code ?? signal}: ${stderr.trim()}`));
      try {
        resolve(JSON.parse(last) as WorkerResult);
      } catch {
        reject(new Error(`controller process ${child.pid} printed no result: ${last} ${stderr.trim()}`));
      }
    });
  });
  // A worker that dies before "ready" must fail the test, not hang it.
  const readyOrDead = Promise.race([ready, result.then(() => { throw new Error('exited before ready'); })]);
  return { child, ready: readyOrDead, result };
}

async function runControllers(storeUrl: string, hostCount: number, concurrency: number) {
  const hosts = Array.from({ length: hostCount }, (_, i) => `host-${String(i).padStart(4, '0')}`);
  const workers = [0, 1, 2].map((w) =>
    startWorker({ storeUrl, worker: w, network: 'default', concurrency, hosts: hosts.filter((_, i) => i % 3 === w) }),
  );
  try {
    await Promise.all(workers.map((w) => w.ready));
    const t0 = performance.now();
    for (const w of workers) w.child.stdin!.end('go\n');
    const results = await Promise.all(workers.map((w) => w.result));
    const wallMs = performance.now() - t0;
    return { hosts, results, wallMs };
  } finally {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null && w.child.pid) process.kill(w.child.pid, 'SIGKILL');
  }
}

async function checkOutcome(store: Store, hosts: string[], results: WorkerResult[]): Promise<void> {
  expect(results.flatMap((r) => r.errors)).toEqual([]);
  expect(new Set(results.map((r) => r.pid)).size).toBe(3);
  const claimed = results.flatMap((r) => r.leases);
  expect(claimed).toHaveLength(hosts.length);
  expect(new Set(claimed.map((l) => l.host)).size).toBe(hosts.length);
  expect(new Set(claimed.map((l) => l.subnet)).size).toBe(hosts.length);
  for (const l of claimed) expect(cidrContains(parseCidr(CIDR), parseCidr(l.subnet)), l.subnet).toBe(true);

  // The store agrees with what the controllers reported: one lease per host, none extra, none lost.
  const { leases } = await listLeases(store, 'default');
  expect(leases).toHaveLength(hosts.length);
  const stored = new Map(leases.map((l) => [l.host, l.subnet]));
  expect(stored.size).toBe(hosts.length);
  for (const l of claimed) expect(stored.get(l.host)).toBe(l.subnet);
  expect((await store.range('/weft/lease-hosts/default/')).kvs).toHaveLength(hosts.length);
}

function report(kind: string, hostCount: number, wallMs: number, results: WorkerResult[]): void {
  const rate = (hostCount / wallMs) * 1000;
  const conflicts = results.reduce((n, r) => n + r.failedTxns, 0);
  console.log(
    `[ipam-ha] ${kind}: ${hostCount} allocations by 3 processes in ${wallMs.toFixed(0)} ms = ${rate.toFixed(0)} leases/s; ` +
      `lost CAS ${conflicts}; per process ${results.map((r) => `${r.leases.length} in ${r.ms.toFixed(0)} ms`).join(', ')}`,
  );
}

const config = { networks: [{ name: 'default', vni: 1, cidr: CIDR, hostPrefixLength: 24 }] };

describe('three controllers allocating at once', () => {
  it('etcd: 1,000 concurrent allocations, no duplicate subnet, none lost', async () => {
    const etcd = await startEtcd();
    let store: Store | undefined;
    try {
      store = await openStore(`etcd:${etcd.endpoint}`);
      await saveClusterConfig(store, config);
      const { hosts, results, wallMs } = await runControllers(`etcd:${etcd.endpoint}`, 1000, 32);
      report('etcd', hosts.length, wallMs, results);
      await checkOutcome(store, hosts, results);
    } finally {
      await store?.close();
      await etcd.stop();
    }
  }, 180_000);

  it('sqlite: one file shared by three processes, 1,000 concurrent allocations', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-ipam-ha-'));
    const url = `sqlite:${join(dir, 'weft.db')}`;
    let store: Store | undefined;
    try {
      store = await openStore(url);
      await saveClusterConfig(store, config);
      const { hosts, results, wallMs } = await runControllers(url, 1000, 16);
      report('sqlite', hosts.length, wallMs, results);
      await checkOutcome(store, hosts, results);
    } finally {
      await store?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

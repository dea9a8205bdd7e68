// A 3-member etcd cluster loses its raft leader to SIGKILL in the middle of
// an allocation burst through a controller that knows all three members:
// allocations (new hosts acknowledged with a new lease) resume within 5 s,
// and afterwards nothing acknowledged is lost or duplicated (definitions in
// controller-burst.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCa } from '../../controller/pki';
import { openStore } from '../../controller/store';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd';
import { waitFor } from '../helpers/wait';
import { killAllDaemons, startDaemon } from '../controller/daemon-process';
import { auditStore, ControllerPort, hostIdentities, startBurst } from './controller-burst';

const HOSTS = 150;
const LANES = 4;
const RESUME_WITHIN_MS = 5000;

let dataDir: string | undefined;
let cluster: EtcdCluster | undefined;
afterAll(async () => {
  await killAllDaemons();
  await cluster?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('the etcd leader SIGKILLed under an allocation burst', () => {
  it('allocations resume within 5 s; no lease or endpoint lost or duplicated', async () => {
    cluster = await startEtcdCluster(3);
    dataDir = mkdtempSync(join(tmpdir(), 'weft-fault-etcd-leader-'));
    const d = await startDaemon({ dataDir, args: ['--store', `etcd:${cluster.endpoints}`] });
    const hosts = await hostIdentities(await loadCa(dataDir), 'lead', HOSTS);
    const burst = startBurst(hosts, new ControllerPort(d.grpcPort).get, LANES);
    let audit;
    let resumedMs = 0;
    let electedMs = 0;
    try {
      await waitFor('20 hosts with a lease before the kill', () => burst.acks.size >= 20, 30_000, 10);
      const leader = await cluster.leader();
      const t0 = performance.now();
      await cluster.kill(leader);
      const resumed = await waitFor('a new lease acknowledged after the kill', () => burst.newLeaseAckedAt.find((t) => t > t0), { ms: 20_000, everyMs: 10 });
      resumedMs = resumed - t0;
      const next = await waitFor('a new etcd leader', async () => {
        const l = await cluster!.leader().catch(() => undefined);
        return l && l !== leader ? l : undefined;
      }, 20_000, 50);
      electedMs = performance.now() - t0;
      expect(next.alive).toBe(true);
      const acked = burst.acks.size;
      await waitFor('20 more hosts with a lease after the kill', () => burst.acks.size >= Math.min(HOSTS, acked + 20), 30_000, 10);
      console.log(
        `[fault] etcd leader ${leader.name} SIGKILLed with ${burst.inFlight()} calls in flight: first new lease acknowledged ${resumedMs.toFixed(0)} ms later; ` +
          `new leader ${next.name} seen after ${electedMs.toFixed(0)} ms; ${burst.failedCalls} calls failed and were retried`,
      );
    } finally {
      await burst.stop();
    }
    d.kill('SIGTERM');
    await d.exited;
    const store = await openStore(`etcd:${cluster.members.filter((m) => m.alive).map((m) => m.endpoint).join(',')}`);
    try {
      audit = await auditStore(store, burst.acks.values());
    } finally {
      await store.close();
    }
    expect(resumedMs).toBeLessThan(RESUME_WITHIN_MS);
    expect(audit.lost).toEqual([]);
    expect(audit.duplicates).toEqual([]);
    expect(burst.changed).toEqual([]);
    // every lease in the store belongs to a host that was told about it or was still asking
    expect(audit.leases).toBeGreaterThanOrEqual(burst.acks.size);
    expect(audit.leases).toBeLessThanOrEqual(burst.acks.size + LANES);
  }, 90_000);
});

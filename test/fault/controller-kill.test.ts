// SIGKILL storms that change nothing: the controller is killed 50 times
// while clients allocate through its gRPC API, and restarted on the same
// store each time. Afterwards every lease and endpoint the controller
// acknowledged is in the store, no subnet has two holders and no host two
// subnets (the definitions are in controller-burst.ts), on SQLite and on etcd.
//
// A kill lands during the burst: after each restart the killer waits until
// the restarted controller has acknowledged a call (so clients are talking
// to it again), then a random 0-150 ms more, then sends SIGKILL.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCa } from '../../controller/pki';
import { openStore } from '../../controller/store';
import { startEtcd } from '../helpers/etcd';
import { GiveUp, waitFor } from '../helpers/wait';
import { type Daemon, killAllDaemons, startDaemon } from '../controller/daemon-process';
import { auditStore, ControllerPort, hostIdentities, startBurst } from './controller-burst';

const KILLS = 50;
const HOSTS = 120;
const LANES = 8;

const dirs: string[] = [];
afterAll(async () => {
  await killAllDaemons();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function storm(storeUrl: string, label: string): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), `weft-fault-kill-${label}-`));
  dirs.push(dataDir);
  const args = ['--store', storeUrl];
  let d: Daemon = await startDaemon({ dataDir, args });
  const ca = await loadCa(dataDir);
  const hosts = await hostIdentities(ca, `kill-${label}`, HOSTS);
  const port = new ControllerPort(d.grpcPort);
  const burst = startBurst(hosts, port.get, LANES);
  const t0 = performance.now();
  const inFlightAtKill: number[] = [];
  const restartMs: number[] = [];
  try {
    for (let k = 0; k < KILLS; k++) {
      const acked = burst.okCalls;
      // (a controller that never answers fails the waitLog of the next restart, or this wait's deadline)
      await waitForProgress(() => burst.okCalls > acked, d);
      await new Promise((r) => setTimeout(r, Math.random() * 150));
      inFlightAtKill.push(burst.inFlight());
      port.down();
      d.kill('SIGKILL');
      expect((await d.exited).signal).toBe('SIGKILL');
      const ts = performance.now();
      d = await startDaemon({ dataDir, args });
      restartMs.push(performance.now() - ts);
      port.up(d.grpcPort);
    }
    await burst.allAcked;
  } finally {
    await burst.stop();
  }
  const stormMs = performance.now() - t0;
  d.kill('SIGTERM');
  await d.exited;
  const store = await openStore(storeUrl);
  try {
    const audit = await auditStore(store, burst.acks.values());
    console.log(
      `[fault] ${label}: ${KILLS} SIGKILLs in ${(stormMs / 1000).toFixed(1)} s, ${burst.acks.size} hosts acknowledged, ` +
        `${burst.okCalls} calls OK, ${burst.failedCalls} failed and retried, calls in flight at the kills: ` +
        `median ${median(inFlightAtKill)}, max ${Math.max(...inFlightAtKill)}; restart to listening: median ${median(restartMs).toFixed(0)} ms; store: ${audit.leases} leases, ${audit.endpoints} endpoints`,
    );
    expect(burst.acks.size).toBe(HOSTS);
    expect(audit.lost).toEqual([]);
    expect(audit.duplicates).toEqual([]);
    expect(burst.changed).toEqual([]);
    // nothing beyond the acknowledged: a lease per host, an endpoint per host
    expect(audit.leases).toBe(HOSTS);
    expect(audit.endpoints).toBe(HOSTS);
    // the kills did land on calls in progress
    expect(inFlightAtKill.filter((n) => n > 0).length).toBeGreaterThan(KILLS / 2);
  } finally {
    await store.close();
  }
}

/** Waits until `moved`, failing at once if the controller exits meanwhile. */
async function waitForProgress(moved: () => boolean, d: Daemon): Promise<void> {
  let gone = false;
  void d.exited.then(() => (gone = true));
  await waitFor('the restarted controller to acknowledge a call', () => {
    if (gone) throw new GiveUp(`the controller exited by itself: ${d.stderr().slice(-2000)}`);
    return moved();
  }, { ms: 15_000, everyMs: 5 });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

describe('the controller SIGKILLed 50 times during an allocation burst', () => {
  it('sqlite: no duplicate and no lost lease or endpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-fault-kill-db-'));
    dirs.push(dir);
    await storm(`sqlite:${join(dir, 'weft.db')}`, 'sqlite');
  }, 180_000);

  it('etcd: no duplicate and no lost lease or endpoint', async () => {
    const etcd = await startEtcd();
    try {
      await storm(`etcd:${etcd.endpoint}`, 'etcd');
    } finally {
      await etcd.stop();
    }
  }, 180_000);
});

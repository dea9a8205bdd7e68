// /readyz of three `weft controller` processes on one etcd, about the leader:
// the leader names itself; the followers name it healthy while it renews its
// lease. After the leader is SIGKILLed its key stays until the lease expires
// (5 s), and in that time the followers must not call it a healthy leader:
// they say it is silent and when its lease expires, then name the new one.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdInstance } from '../helpers/etcd';
import { waitFor } from '../helpers/wait';
import { type Daemon, httpGet, killAllDaemons, startDaemon } from './daemon-process';

let tmp: string;
let etcd: EtcdInstance;
let ds: Daemon[] = [];

type Ready = { ready: boolean; checks: Record<string, string>; leader?: { id?: string; self: boolean; healthy: boolean; silentSeconds?: number; expiresInSeconds?: number } };
const readyz = async (d: Daemon): Promise<{ status: number; body: Ready }> => {
  const r = await httpGet(d.metricsPort, '/readyz');
  return { status: r.status, body: JSON.parse(r.body) };
};
const idOf = (d: Daemon) => d.logs.find((l) => l.msg === 'controller listening')!.id as string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'weft-readyz-'));
  etcd = await startEtcd();
  const store = ['--store', `etcd:${etcd.endpoint}`];
  const first = await startDaemon({ dataDir: join(tmp, 'c0'), args: store });
  for (const i of [1, 2]) {
    const dir = join(tmp, `c${i}`);
    mkdirSync(dir, { mode: 0o700 });
    copyFileSync(join(first.dataDir, 'ca.key'), join(dir, 'ca.key'));
    copyFileSync(join(first.dataDir, 'ca.crt'), join(dir, 'ca.crt'));
  }
  ds = [first, ...(await Promise.all([1, 2].map((i) => startDaemon({ dataDir: join(tmp, `c${i}`), args: store }))))];
}, 60_000);

afterAll(async () => {
  await killAllDaemons();
  await etcd?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('/readyz about the leader', () => {
  it('names the live leader healthy everywhere; after SIGKILL calls it silent, never healthy, until another leads', async () => {
    const all = await waitFor('every controller to know one leader', async () => {
      const rs = await Promise.all(ds.map(readyz));
      return rs.every((r) => r.body.leader?.id && r.body.leader.healthy) && new Set(rs.map((r) => r.body.leader!.id)).size === 1 ? rs : undefined;
    }, 15_000, 100);
    const leaderIdx = all.findIndex((r) => r.body.leader!.self);
    expect(leaderIdx).toBeGreaterThanOrEqual(0);
    const leader = ds[leaderIdx]!;
    const deadId = idOf(leader);
    expect(all[leaderIdx]!.body.checks.leader).toMatch(new RegExp(`^${deadId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(this controller; lease renewed`));
    const rest = ds.filter((d) => d !== leader);
    for (const d of rest) {
      const r = all[ds.indexOf(d)]!;
      expect(r.status).toBe(200);
      expect(r.body.leader).toMatchObject({ id: deadId, self: false, healthy: true });
      expect(r.body.checks.leader).toContain(`${deadId} (lease renewed within`);
    }

    const killedAt = Date.now();
    leader.kill('SIGKILL');
    expect((await leader.exited).signal).toBe('SIGKILL');
    // Ask the survivors every 100 ms until both name a new, healthy leader.
    const seen: Array<{ at: number; r: Ready }> = [];
    await waitFor('a new healthy leader on both survivors', async () => {
      const at = Date.now();
      const rs = await Promise.all(rest.map(readyz));
      for (const r of rs) {
        seen.push({ at: at - killedAt, r: r.body });
        expect(r.status).toBe(200); // a follower serves with or without a leader
      }
      return rs.every((r) => r.body.leader?.healthy && r.body.leader.id !== deadId);
    }, 15_000, 100);
    // The dead leader renewed at most a keepalive (1 s) before the kill; by 2.2 s it is more than
    // a keepalive plus etcd's whole second late, and no survivor may call it healthy from then on.
    const lies = seen.filter((s) => s.at > 2200 && s.r.leader?.id === deadId && s.r.leader.healthy);
    expect(lies).toEqual([]);
    // And they said so while its key was still there, not only once it had gone.
    const silent = seen.filter((s) => s.r.leader?.id === deadId && !s.r.leader.healthy);
    expect(silent.length).toBeGreaterThan(0);
    expect(silent[0]!.r.checks.leader).toMatch(new RegExp(`silent for \\d+(\\.\\d)? s; its lease expires within \\d+(\\.\\d)? s`));
    console.log(`after SIGKILL: first "silent" at ${silent[0]!.at} ms, new leader named by ${seen[seen.length - 1]!.at} ms`);
  }, 40_000);
});

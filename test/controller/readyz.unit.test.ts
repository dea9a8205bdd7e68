// What a controller says about the leader (/readyz): itself with how recently
// it renewed; another controller as healthy only while its lease is being
// renewed; a leader that went silent (as after SIGKILL: the key stays until
// the lease expires) as silent, with when its lease expires; and nothing
// written to find out.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LEADER_KEY, startElection, type Election } from '../../controller/daemon/election';
import { openSqliteStore } from '../../controller/store/sqlite';
import type { Store } from '../../controller/store/types';
import { waitFor } from '../helpers/wait';

let dir: string | undefined;
let store: Store | undefined;
const elections: Election[] = [];
afterEach(async () => {
  for (const e of elections.splice(0)) await e.stop();
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  store = dir = undefined;
});

function open(): Store {
  dir = mkdtempSync(join(tmpdir(), 'weft-readyz-'));
  return (store = openSqliteStore(join(dir, 'store.db'), { leaseSweepIntervalMs: 50, pollIntervalMs: 20 }));
}

describe('leaderStatus', () => {
  it('the store reports a lease time to live: full after a renewal, undefined once revoked', async () => {
    const s = open();
    const lease = await s.leaseGrant(5);
    const ttl = await s.leaseTimeToLive(lease);
    expect(ttl!.grantedSeconds).toBe(5);
    expect(ttl!.remainingSeconds).toBeGreaterThan(4.5);
    expect(ttl!.remainingSeconds).toBeLessThanOrEqual(5);
    await s.leaseRevoke(lease);
    expect(await s.leaseTimeToLive(lease)).toBeUndefined();
  });

  it('the leader names itself; a follower names a renewing leader healthy and a silent one silent, without writing', async () => {
    const s = open();
    const a = startElection(s, 'ctl-a', { ttlSeconds: 3, keepAliveMs: 200 });
    elections.push(a);
    await waitFor('ctl-a leads', () => a.isLeader(), 5000, 20);
    const b = startElection(s, 'ctl-b', { ttlSeconds: 3, keepAliveMs: 200 });
    elections.push(b);
    await waitFor('ctl-b follows ctl-a', () => b.leader() === 'ctl-a', 5000, 20);

    const self = await a.leaderStatus();
    expect(self).toMatchObject({ id: 'ctl-a', self: true, healthy: true });
    expect(self.text).toMatch(/^ctl-a \(this controller; lease renewed \d+(\.\d)? s ago\)$/);
    const rev = await s.revision();
    const followed = await b.leaderStatus();
    expect(followed).toMatchObject({ id: 'ctl-a', self: false, healthy: true });
    expect(followed.silentSeconds!).toBeLessThan(1.2);
    expect(followed.text).toMatch(/^ctl-a \(lease renewed within/);
    // Asking is a read: no revision moved.
    expect(await s.revision()).toBe(rev);
  });

  it('a leader that stops renewing is reported silent long before its lease expires, then the follower takes over', async () => {
    const s = open();
    // A leader that died without a word: its key on a 4 s lease nobody renews.
    const ghost = await s.leaseGrant(4);
    await s.put(LEADER_KEY, 'ctl-dead', { lease: ghost });
    const diedAt = Date.now();
    const b = startElection(s, 'ctl-b', { ttlSeconds: 3, keepAliveMs: 200 });
    elections.push(b);
    await waitFor('ctl-b follows the dead leader', () => b.leader() === 'ctl-dead', 5000, 20);
    // On time while within a keepalive interval plus a second.
    expect(await b.leaderStatus()).toMatchObject({ id: 'ctl-dead', healthy: true });
    const silent = await waitFor('ctl-b to report ctl-dead silent', async () => {
      const st = await b.leaderStatus();
      return st.healthy ? undefined : st;
    }, 5000, 50);
    expect(Date.now() - diedAt).toBeLessThan(2500);
    expect(silent).toMatchObject({ id: 'ctl-dead', self: false, healthy: false });
    expect(silent.silentSeconds!).toBeGreaterThan(1.2);
    expect(silent.expiresInSeconds!).toBeGreaterThan(0);
    expect(silent.text).toMatch(/^ctl-dead silent for \d+(\.\d)? s; its lease expires within \d+(\.\d)? s, then a controller takes over$/);
    await waitFor('ctl-b leads once the lease expired', () => b.isLeader(), 6000, 50);
    expect(await b.leaderStatus()).toMatchObject({ id: 'ctl-b', self: true, healthy: true });
  });
});

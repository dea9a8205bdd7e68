// Leader election on both stores: one leader among candidates, a fast
// hand-over when the leader steps down, and a leader that loses the store
// demotes itself before its lease could expire there, so no two ever lead.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LEADER_KEY, startElection, type Election } from '../../controller/daemon/election';
import { openEtcdStore } from '../../controller/store/etcd';
import { openSqliteStore } from '../../controller/store/sqlite';
import type { Store } from '../../controller/store/types';
import { startEtcd, type EtcdInstance } from '../helpers/etcd';
import { waitFor } from '../helpers/wait';

const TTL = 2;
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});

/** Waits for `pred`, checking every 10 ms (these tests time hand-overs); resolves with the ms it took. */
async function until(pred: () => boolean, ms: number, what: string): Promise<number> {
  const t0 = Date.now();
  await waitFor(what, pred, ms, 10);
  return Date.now() - t0;
}

/** A store call a candidate made: which, when it settled, and whether the store accepted it. */
type Call = { method: string; at: number; ok: boolean };

/** The store, with every call that returns a promise recorded in `calls` once it settles. */
function observed(store: Store, calls: Call[]): Store {
  return new Proxy(store, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        const r = v.apply(target, args);
        if (r instanceof Promise) {
          r.then(() => calls.push({ method: String(prop), at: Date.now(), ok: true }), () => calls.push({ method: String(prop), at: Date.now(), ok: false }));
        }
        return r;
      };
    },
  });
}

type Candidate = { id: string; e: Election; events: string[]; calls: Call[] };

function candidates(stores: Store[], opts: { keepAliveMs?: number } = {}): Candidate[] {
  return stores.map((store, i) => {
    const c: Candidate = { id: `c${i}`, e: undefined as unknown as Election, events: [], calls: [] };
    c.e = startElection(observed(store, c.calls), c.id, { ttlSeconds: TTL, ...opts, onElected: () => c.events.push('elected'), onDemoted: () => c.events.push('demoted') });
    cleanups.push(() => c.e.stop());
    return c;
  });
}

const leaders = (cs: Candidate[]) => cs.filter((c) => c.e.isLeader()).map((c) => c.id);

const backends: Array<[string, () => Promise<{ open: () => Promise<Store>; etcd?: EtcdInstance }>]> = [
  ['sqlite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-election-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    // One file, several handles: as several controller processes on one machine would share it.
    return { open: async () => openSqliteStore(join(dir, 'weft.db'), { pollIntervalMs: 20, leaseSweepIntervalMs: 50 }) };
  }],
  ['etcd', async () => {
    const etcd = await startEtcd();
    cleanups.push(() => etcd.stop());
    return { etcd, open: () => openEtcdStore([etcd.endpoint]) };
  }],
];

describe.each(backends)('election on %s', (_name, backend) => {
  it('elects exactly one leader, which every candidate names, and hands over on stop', async () => {
    const { open } = await backend();
    const stores = await Promise.all([open(), open(), open()]);
    for (const s of stores) cleanups.push(() => s.close());
    const cs = candidates(stores);
    await until(() => leaders(cs).length === 1, 5000, 'a leader');
    const first = cs.find((c) => c.e.isLeader())!;
    await until(() => cs.every((c) => c.e.leader() === first.id), 5000, 'everyone to name the leader');
    expect((await stores[0].get(LEADER_KEY))?.value).toBe(first.id);
    // Its lease outlives its TTL through keepalives the store accepts, and it stays the only leader.
    const granted = first.calls.filter((k) => k.method === 'leaseGrant' && k.ok).pop()!.at;
    await until(() => first.calls.some((k) => k.method === 'leaseKeepAlive' && k.ok && k.at > granted + TTL * 1000), TTL * 3000,
      'a keepalive accepted after the lease would have run out without one');
    expect(leaders(cs)).toEqual([first.id]);
    expect(cs.filter((c) => c !== first).flatMap((c) => c.events)).toEqual([]);

    await first.e.stop();
    expect(first.events).toEqual(['elected', 'demoted']);
    const rest = cs.filter((c) => c !== first);
    // The key is deleted on stop, so the hand-over does not wait for the TTL.
    const took = await until(() => leaders(rest).length === 1, TTL * 1000, 'a new leader');
    expect(took).toBeLessThan(TTL * 1000);
    expect(leaders(cs)).toHaveLength(1);
  });

  it('takes over from a leader whose lease is revoked behind its back, and the old one demotes itself', async () => {
    const { open } = await backend();
    const stores = await Promise.all([open(), open()]);
    for (const s of stores) cleanups.push(() => s.close());
    const cs = candidates(stores);
    await until(() => leaders(cs).length === 1, 5000, 'a leader');
    const old = cs.find((c) => c.e.isLeader())!;
    const kv = await stores[0].get(LEADER_KEY);
    await stores[0].leaseRevoke(kv!.lease!);
    await until(() => !old.e.isLeader(), TTL * 1000, 'the old leader to demote');
    await until(() => leaders(cs).length === 1, TTL * 2000, 'a leader again');
    expect(old.events[0]).toBe('elected');
    expect(old.events[1]).toBe('demoted');
  });
});

describe('election when the store goes away (etcd)', () => {
  it('the leader demotes itself before its lease can expire at the store; nobody leads until the store returns', async () => {
    const etcd = await startEtcd();
    cleanups.push(() => etcd.stop());
    const stores = await Promise.all([0, 1].map(() => openEtcdStore([etcd.endpoint], { requestTimeoutMs: 500 })));
    for (const s of stores) cleanups.push(() => s.close());
    const keepAliveMs = 100;
    const cs = candidates(stores, { keepAliveMs });
    await until(() => leaders(cs).length === 1, 5000, 'a leader');
    const lead = cs.find((c) => c.e.isLeader())!;
    const killedAt = Date.now();
    await etcd.kill();
    // The last keepalive etcd took was sent at most one interval before the kill, so at etcd the lease lives
    // until at least killedAt + TTL - interval; the leader must have given up before then (it aims for
    // a fifth of the TTL earlier, which leaves room for timer latency).
    await until(() => !lead.e.isLeader(), TTL * 1000, 'the leader to demote');
    expect(Date.now() - killedAt).toBeLessThan(TTL * 1000 - keepAliveMs);
    // isLeader() turns false on the clock itself; the demotion callback follows on the next timer turn.
    await until(() => lead.events.length === 2, 1000, 'the onDemoted callback');
    expect(lead.events).toEqual(['elected', 'demoted']);
    // Once the old lease could have run out at etcd, each candidate has tried the store again and been refused,
    // and nobody leads.
    const expired = killedAt + TTL * 1000;
    await until(() => cs.every((c) => c.calls.some((k) => !k.ok && k.at > expired)), TTL * 5000, 'both candidates refused by the store after the lease would have expired');
    expect(leaders(cs)).toEqual([]);
    expect(cs.filter((c) => c !== lead).flatMap((c) => c.events)).toEqual([]);
    await etcd.restart();
    await until(() => leaders(cs).length === 1, 15_000, 'a leader after etcd returned');
  }, 40_000);
});

afterAll(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});

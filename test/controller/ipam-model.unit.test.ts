// Model-based test of the lease manager: random sequences of acquire,
// renew, release, clock jumps and reclaims against a real SQLite store, each
// step checked against a plain in-memory model of who holds which subnet.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openSqliteStore } from '../../controller/store/sqlite';
import type { Store } from '../../controller/store/types';
import {
  LeaseLostError, PoolExhaustedError, acquireLease, listLeases, parseCidr, reclaimExpired, releaseLease, renewLease,
  saveClusterConfig,
} from '../../controller/ipam';
import { cidrContains } from '../../controller/common/cidr';

const POOL = '10.77.0.0/22'; // four /24s for six hosts: exhaustion happens often
const TTL = 60_000;
const GRACE = 120_000;
const HOSTS = ['h0', 'h1', 'h2', 'h3', 'h4', 'h5'];

type Op =
  | { op: 'acquire' | 'renew' | 'release'; host: string }
  | { op: 'advance'; ms: number }
  | { op: 'reclaim' };

const arbOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('acquire' as const), host: fc.constantFrom(...HOSTS) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('renew' as const), host: fc.constantFrom(...HOSTS) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('release' as const), host: fc.constantFrom(...HOSTS) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 200_000 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'reclaim' as const }) },
);

let dir: string;
let store: Store;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'weft-ipam-model-'));
  store = openSqliteStore(join(dir, 'weft.db'));
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('lease manager against a model', () => {
  it('agrees with the model on every step of random histories', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(arbOp, { minLength: 1, maxLength: 40 }), fc.integer({ min: 0, max: 2 ** 31 }), async (ops, seed) => {
        await store.deletePrefix('/weft/');
        await saveClusterConfig(store, {
          networks: [{ name: 'default', vni: 1, cidr: POOL, hostPrefixLength: 24 }],
          leaseTtlSeconds: TTL / 1000,
          reclaimGraceSeconds: GRACE / 1000,
        });
        let t = 1_000_000;
        let s = seed;
        const opts = { now: () => t, random: () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) };
        const model = new Map<string, { subnet: string; expiresAt: number }>();

        for (const step of ops) {
          if (step.op === 'acquire') {
            const held = model.get(step.host);
            if (!held && model.size === 4) {
              await expect(acquireLease(store, { network: 'default', host: step.host }, opts)).rejects.toThrow(PoolExhaustedError);
              continue;
            }
            const l = await acquireLease(store, { network: 'default', host: step.host }, opts);
            if (held) expect(l.subnet).toBe(held.subnet); // sticky, even when expired but not reclaimed
            else expect([...model.values()].map((m) => m.subnet)).not.toContain(l.subnet);
            expect(cidrContains(parseCidr(POOL), parseCidr(l.subnet))).toBe(true);
            expect(l.expiresAt).toBe(t + TTL);
            model.set(step.host, { subnet: l.subnet, expiresAt: l.expiresAt });
          } else if (step.op === 'renew') {
            const held = model.get(step.host);
            const subnet = held?.subnet ?? '10.77.0.0/24';
            const p = renewLease(store, { network: 'default', subnet, host: step.host }, opts);
            if (!held) {
              await expect(p).rejects.toThrow(LeaseLostError);
              continue;
            }
            expect((await p).expiresAt).toBe(t + TTL);
            held.expiresAt = t + TTL;
          } else if (step.op === 'release') {
            const held = model.get(step.host);
            const subnet = held?.subnet ?? '10.77.1.0/24';
            expect(await releaseLease(store, { network: 'default', subnet, host: step.host })).toBe(held !== undefined);
            model.delete(step.host);
          } else if (step.op === 'advance') {
            t += step.ms;
          } else {
            const due = [...model].filter(([, m]) => m.expiresAt + GRACE <= t).map(([h]) => h).sort();
            const { reclaimed, malformed } = await reclaimExpired(store, t);
            expect(malformed).toEqual([]);
            expect(reclaimed.map((l) => l.host).sort()).toEqual(due);
            for (const h of due) model.delete(h);
          }
        }
        const { leases } = await listLeases(store);
        expect(Object.fromEntries(leases.map((l) => [l.host, l.subnet]))).toEqual(
          Object.fromEntries([...model].map(([h, m]) => [h, m.subnet])),
        );
        // The host index holds exactly one entry per lease.
        expect((await store.range('/weft/lease-hosts/default/')).kvs.map((kv) => kv.key.split('/').pop()).sort()).toEqual([...model.keys()].sort());
      }),
      { numRuns: 200 },
    );
  }, 120_000);
});

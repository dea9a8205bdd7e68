// Maglev table properties: balance, small disruption on removal and
// addition, order independence, weights.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { flowHash, maglevLookup, maglevSize, maglevTable } from '../../../ingress/balance/maglev';
import { InvalidArgumentError } from '../../../controller/common/errors';

/** Distinct backend keys: 1..max of them. */
const keySet = (min: number, max: number) => fc.uniqueArray(fc.string({ minLength: 1, maxLength: 24 }), { minLength: min, maxLength: max });

function counts(table: Int32Array, n: number): number[] {
  const c = new Array<number>(n).fill(0);
  for (const e of table) c[e]++;
  return c;
}

/** Fraction of slots whose backend (by key) differs between two tables of the same size. */
function changed(a: Int32Array, ka: readonly string[], b: Int32Array, kb: readonly string[]): number {
  let c = 0;
  for (let i = 0; i < a.length; i++) if (ka[a[i]] !== kb[b[i]]) c++;
  return c / a.length;
}

describe('maglevSize', () => {
  it('is the smallest prime ≥ 100·n, at least 101', () => {
    expect(maglevSize(0)).toBe(101);
    expect(maglevSize(1)).toBe(101);
    expect(maglevSize(2)).toBe(211);
    expect(maglevSize(10)).toBe(1009);
    expect(maglevSize(100)).toBe(10007);
    expect(maglevSize(1000)).toBe(100003);
  });

  it('refuses a count that is not a non-negative integer', () => {
    expect(() => maglevSize(-1)).toThrow(InvalidArgumentError);
    expect(() => maglevSize(1.5)).toThrow(InvalidArgumentError);
  });
});

describe('maglevTable', () => {
  it('is all -1 for no keys, all 0 for one key', () => {
    expect([...maglevTable([], 101)].every((e) => e === -1)).toBe(true);
    expect([...maglevTable(['a'], 101)].every((e) => e === 0)).toBe(true);
  });

  it('refuses duplicate keys, bad sizes and bad weights', () => {
    expect(() => maglevTable(['a', 'a'], 101)).toThrow(InvalidArgumentError);
    expect(() => maglevTable(['a'], 0)).toThrow(InvalidArgumentError);
    expect(() => maglevTable(['a', 'b'], 101, [1])).toThrow(InvalidArgumentError);
    expect(() => maglevTable(['a', 'b'], 101, [1, 0])).toThrow(InvalidArgumentError);
    expect(() => maglevTable(['a', 'b'], 101, [1, Number.NaN])).toThrow(InvalidArgumentError);
  });

  // Backends take turns, one slot per turn, every round until the table is
  // full (a prime M makes every preference list cover the table, so a turn
  // always finds a slot). Every backend therefore holds floor(M/N) or
  // ceil(M/N) slots: |count - M/N| < 1 slot, and since M ≥ 100·N one slot is
  // at most 1% of the fair share M/N. The test asserts the exact < 1 bound.
  it('gives every backend M/N slots to within one slot (so within 1% of its share)', () => {
    fc.assert(
      fc.property(keySet(1, 60), (keys) => {
        const m = maglevSize(keys.length);
        const fair = m / keys.length;
        for (const c of counts(maglevTable(keys, m), keys.length)) {
          expect(Math.abs(c - fair)).toBeLessThan(1);
          expect(Math.abs(c - fair) / fair).toBeLessThanOrEqual(0.01);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('depends only on the set of keys, not their order', () => {
    fc.assert(
      fc.property(keySet(1, 40).chain((keys) => fc.tuple(fc.constant(keys), fc.shuffledSubarray(keys, { minLength: keys.length, maxLength: keys.length }))), ([keys, shuffled]) => {
        const m = maglevSize(keys.length);
        const a = maglevTable(keys, m);
        const b = maglevTable(shuffled, m);
        for (let i = 0; i < m; i++) expect(shuffled[b[i]]).toBe(keys[a[i]]);
      }),
      { numRuns: 60 },
    );
  });

  it('is the same table in every process and version (pinned)', () => {
    // A change of hash or fill order would split affinity between an old and
    // a new ingress, and between the proxy and the kernel path: pin both.
    const t = maglevTable(['10.0.0.1:80', '10.0.0.2:80', '10.0.1.7:80'], maglevSize(3));
    expect(Array.from(t.slice(0, 16))).toEqual([0, 0, 1, 0, 2, 0, 2, 1, 0, 2, 0, 1, 1, 0, 2, 2]);
    expect(flowHash('192.0.2.1')).toBe(1941296713);
  });

  // Removing backend r from N (same M) must move r's slots (1/N of the table,
  // to within a slot); Maglev then also moves some slots between survivors,
  // because survivors fill with different timing. Measured with M = smallest
  // prime ≥ 100·N over random key sets: 1.8-2.5% of the table on average,
  // p99 ≈ 4-6%, and up to ~24% in the rare set where two backends draw the
  // same skip (probability ≈ N/1000 per set: their preference lists are
  // shifts of each other). So the "1/N + 1%" goal holds on average only with
  // a bigger table (≈ 0.6% at M ≈ 1000·N), not at M ≈ 100·N. Asserted here:
  // every slot of r moves; the mean extra movement over the runs is under
  // 3%; and in every case survivors keep at least half of their slots.
  it('moves the removed backend’s slots and, on average, under 3% of the others', () => {
    const extras: number[] = [];
    fc.assert(
      fc.property(keySet(2, 60), fc.nat(), (keys, pick) => {
        const r = pick % keys.length;
        const m = maglevSize(keys.length);
        const before = maglevTable(keys, m);
        const rest = keys.filter((_, i) => i !== r);
        const after = maglevTable(rest, m);
        let survivorsKept = 0;
        let survivorsHad = 0;
        for (let i = 0; i < m; i++) {
          if (before[i] === r) expect(rest[after[i]]).not.toBe(keys[r]);
          else {
            survivorsHad++;
            if (rest[after[i]] === keys[before[i]]) survivorsKept++;
          }
        }
        expect(survivorsKept / survivorsHad).toBeGreaterThan(0.5);
        extras.push(changed(before, keys, after, rest) - counts(before, keys.length)[r] / m);
      }),
      { numRuns: 120 },
    );
    const mean = extras.reduce((a, b) => a + b, 0) / extras.length;
    expect(mean).toBeLessThan(0.03);
  });

  it('adding a backend is the mirror image: it takes about 1/(N+1), and on average under 3% more moves', () => {
    const extras: number[] = [];
    fc.assert(
      fc.property(keySet(2, 60), (all) => {
        const keys = all.slice(0, -1);
        const m = maglevSize(all.length);
        const before = maglevTable(keys, m);
        const after = maglevTable(all, m);
        const added = all.length - 1;
        const took = counts(after, all.length)[added] / m;
        expect(Math.abs(took - 1 / all.length)).toBeLessThan(1 / m + 1e-12);
        extras.push(changed(before, keys, after, all) - took);
      }),
      { numRuns: 120 },
    );
    expect(extras.reduce((a, b) => a + b, 0) / extras.length).toBeLessThan(0.03);
  });

  // With integer weights the turns are exact: after R full rounds backend j
  // has floor(R·w_j/wmax) slots, plus at most one in the unfinished round;
  // summing to M gives |count_j - M·w_j/W| ≤ N·w_j/W + 1.
  it('gives weighted backends M·w/W slots, within N·w/W + 1', () => {
    fc.assert(
      fc.property(
        keySet(1, 30).chain((keys) => fc.tuple(fc.constant(keys), fc.array(fc.integer({ min: 1, max: 10 }), { minLength: keys.length, maxLength: keys.length }))),
        ([keys, weights]) => {
          const m = maglevSize(keys.length);
          const total = weights.reduce((a, b) => a + b, 0);
          const c = counts(maglevTable(keys, m, weights), keys.length);
          c.forEach((got, j) => {
            const want = (m * weights[j]) / total;
            expect(Math.abs(got - want)).toBeLessThanOrEqual((keys.length * weights[j]) / total + 1);
          });
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('flowHash', () => {
  it('is a stable unsigned 32-bit value', () => {
    expect(flowHash('192.0.2.1')).toBe(flowHash('192.0.2.1'));
    expect(flowHash('192.0.2.1')).not.toBe(flowHash('192.0.2.2'));
    fc.assert(fc.property(fc.string(), (s) => Number.isInteger(flowHash(s)) && flowHash(s) >= 0 && flowHash(s) < 2 ** 32));
  });

  it('spreads neighbouring addresses evenly over a table', () => {
    const keys = ['a', 'b', 'c', 'd'];
    const table = maglevTable(keys, maglevSize(keys.length));
    const hits = [0, 0, 0, 0];
    for (let i = 0; i < 40_000; i++) hits[maglevLookup(table, flowHash(`10.1.${i >> 8}.${i & 255}`))]++;
    for (const h of hits) expect(Math.abs(h - 10_000)).toBeLessThan(600);
  });
});

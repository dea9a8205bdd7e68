import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { maglevRebalance, maglevSize, maglevTable } from '../../../ingress/balance/maglev';

const keysOf = (n: number, salt: number) => Array.from({ length: n }, (_, i) => `10.${salt % 250}.${i >> 8}.${i & 255}:8080`);
const named = (keys: readonly string[], t: Int32Array) => Array.from(t, (i) => (i < 0 ? undefined : keys[i]));

function shares(t: Int32Array, n: number): number[] {
  const c = new Array<number>(n).fill(0);
  for (const i of t) c[i]++;
  return c;
}

describe('maglevRebalance', () => {
  it('removing 1 of N backends moves exactly its own slots, and the rest stay balanced within one slot', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 40 }), fc.integer({ min: 0, max: 1000 }), fc.nat(), (n, salt, pick) => {
        const keys = keysOf(n, salt);
        const size = maglevSize(n);
        const before = named(keys, maglevTable(keys, size));
        const gone = keys[pick % n];
        const rest = keys.filter((k) => k !== gone);
        const after = named(rest, maglevRebalance(before, rest));
        let moved = 0;
        for (let s = 0; s < size; s++) if (before[s] !== after[s]) moved++;
        const own = before.filter((k) => k === gone).length;
        expect(moved).toBe(own); // remap excess 0: only the removed backend's flows move
        expect(moved / size).toBeLessThanOrEqual(1 / n + 0.01);
        const c = shares(maglevRebalance(before, rest), rest.length);
        expect(Math.max(...c) - Math.min(...c)).toBeLessThanOrEqual(1);
      }),
      { numRuns: 200 },
    );
  });

  it('adding a backend moves only the slots it takes, and it takes its fair share', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 1000 }), (n, salt) => {
        const keys = keysOf(n, salt);
        const size = maglevSize(n + 1);
        const before = named(keys, maglevTable(keys, size));
        const more = [...keys, `192.0.2.1:${1000 + salt}`];
        const t = maglevRebalance(before, more);
        const after = named(more, t);
        let moved = 0;
        for (let s = 0; s < size; s++) if (before[s] !== after[s]) {
          moved++;
          expect(after[s]).toBe(more[n]); // every moved slot went to the newcomer
        }
        const c = shares(t, n + 1);
        expect(Math.max(...c) - Math.min(...c)).toBeLessThanOrEqual(1);
        expect(moved).toBe(c[n]);
      }),
      { numRuns: 200 },
    );
  });

  it('fills an empty table completely and leaves an unchanged set exactly as it was', () => {
    const keys = keysOf(7, 3);
    const size = maglevSize(7);
    const fresh = maglevRebalance(new Array(size).fill(undefined), keys);
    expect(fresh.every((i) => i >= 0)).toBe(true);
    const c = shares(fresh, 7);
    expect(Math.max(...c) - Math.min(...c)).toBeLessThanOrEqual(1);
    const again = maglevRebalance(named(keys, fresh), [...keys].reverse());
    expect(named([...keys].reverse(), again)).toEqual(named(keys, fresh));
  });

  it('refuses a table whose size is not prime, where a preference walk could miss free slots', () => {
    expect(() => maglevRebalance(new Array(100).fill(undefined), ['a'])).toThrow(/not prime/);
  });
});

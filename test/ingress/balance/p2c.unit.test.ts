// Power of two choices: two distinct candidates, the less loaded per weight wins.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pickP2C } from '../../../ingress/balance/p2c';

/** An rng that returns the given values in turn. */
const seq = (...xs: number[]) => {
  let i = 0;
  return () => xs[i++ % xs.length];
};

describe('pickP2C', () => {
  it('handles empty and single pools', () => {
    expect(pickP2C([], Math.random)).toBeUndefined();
    const only = { inFlight: 9, weight: 1 };
    expect(pickP2C([only], Math.random)).toBe(only);
  });

  it('takes the less loaded of the two drawn', () => {
    const items = [{ inFlight: 5, weight: 1 }, { inFlight: 1, weight: 1 }, { inFlight: 0, weight: 1 }];
    expect(pickP2C(items, seq(0.0, 0.0))).toBe(items[1]); // draws 0 then 1 (0 shifted past 0)
    expect(pickP2C(items, seq(0.5, 0.9))).toBe(items[2]); // draws 1 then 2
  });

  it('weighs in-flight by weight, counting the request being placed', () => {
    const heavy = { inFlight: 3, weight: 4 }; // (3+1)/4 = 1
    const light = { inFlight: 1, weight: 1 }; // (1+1)/1 = 2
    expect(pickP2C([light, heavy], seq(0.0, 0.0))).toBe(heavy);
    // idle both: the weight still decides
    expect(pickP2C([{ inFlight: 0, weight: 1 }, { inFlight: 0, weight: 3 }], seq(0.0, 0.0))).toEqual({ inFlight: 0, weight: 3 });
  });

  it('never compares an endpoint with itself, and never picks the most loaded of three or more distinct loads', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.nat(100), { minLength: 2, maxLength: 20 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (loads, a, b) => {
        const items = loads.map((inFlight) => ({ inFlight, weight: 1 }));
        const got = pickP2C(items, seq(a, b))!;
        expect(got.inFlight).toBeLessThan(Math.max(...loads));
      }),
    );
  });

  it('spreads load: under sustained picks with no completions, loads stay within a few of each other', () => {
    let s = 42;
    const rng = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const items = Array.from({ length: 10 }, () => ({ inFlight: 0, weight: 1 }));
    for (let i = 0; i < 10_000; i++) pickP2C(items, rng)!.inFlight++;
    const loads = items.map((x) => x.inFlight);
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(6);
  });
});

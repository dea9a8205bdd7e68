// The rack rule: local first while the rack is ≥ 72% healthy, the deficit to
// other racks below that, panic below 50% overall, and a proportional spill
// when the local rack is much busier than the others.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Choice, type RackCounts, choose, defaultLocality, inPanic, loadSpill, localHealthShare } from '../../../ingress/balance/locality';

const rc = (total: number, healthy: number, inFlight = 0): RackCounts => ({ total, healthy, inFlight });

/** How often each choice comes up over evenly spaced draws. */
function shares(local: RackCounts, remote: RackCounts, policy: 'prefer-local' | 'any' = 'prefer-local'): Record<Choice, number> {
  const out: Record<Choice, number> = { local: 0, 'spill-health': 0, 'spill-load': 0, any: 0, panic: 0, none: 0 };
  const n = 10_000;
  for (let i = 0; i < n; i++) out[choose(local, remote, policy, (i + 0.5) / n)] += 1 / n;
  return out;
}

describe('by health', () => {
  it('keeps everything local while the local rack is at least 1/1.4 ≈ 72% healthy', () => {
    expect(localHealthShare(rc(10, 10), rc(10, 10))).toBe(1);
    expect(localHealthShare(rc(10, 8), rc(10, 10))).toBe(1); // 1.4 × 0.8 = 1.12
    expect(shares(rc(100, 72), rc(10, 10)).local).toBeCloseTo(1, 5); // 1.4 × 0.72 = 1.008
    expect(shares(rc(10, 7), rc(10, 10)).local).toBeCloseTo(0.98, 2); // 1.4 × 0.7
  });

  it('spills the deficit to the other racks as the local rack degrades', () => {
    const s = shares(rc(10, 5), rc(10, 10)); // 1.4 × 0.5 = 0.7
    expect(s.local).toBeCloseTo(0.7, 2);
    expect(s['spill-health']).toBeCloseTo(0.3, 2);
    expect(s['spill-load']).toBe(0);
  });

  it('sends everything out when the local rack has no healthy endpoint, or none at all', () => {
    expect(shares(rc(4, 0), rc(10, 10))['spill-health']).toBeCloseTo(1, 5);
    expect(shares(rc(0, 0), rc(3, 3))['spill-health']).toBeCloseTo(1, 5);
  });

  it('normalises when both sides are degraded (Envoy): 0.7 local vs 0.14 remote', () => {
    // local 5/10 → 0.7; remote 12/20 = 0.6 healthy → 0.84, capped at the 0.3 deficit: no normalising
    expect(localHealthShare(rc(10, 5), rc(20, 12))).toBeCloseTo(0.7, 10);
    // remote 1/10 → 0.14 < the 0.3 deficit: 0.7 / 0.84
    expect(localHealthShare(rc(10, 5), rc(10, 1))).toBeCloseTo(0.7 / 0.84, 10);
  });

  it('panics below 50% healthy overall, not at 50%', () => {
    expect(inPanic(rc(10, 4), rc(10, 5))).toBe(true);
    expect(inPanic(rc(10, 5), rc(10, 5))).toBe(false);
    expect(choose(rc(2, 0), rc(2, 1), 'prefer-local', 0.1)).toBe('panic');
    expect(choose(rc(2, 0), rc(2, 1), 'any', 0.1)).toBe('panic');
    expect(choose(rc(0, 0), rc(0, 0), 'any', 0.1)).toBe('none');
  });

  it("with policy 'any' ignores racks", () => {
    expect(shares(rc(10, 2), rc(10, 10), 'any').any).toBeCloseTo(1, 5);
  });

  it('always gives a valid choice, and never spills by health from a whole rack', () => {
    const counts = fc.integer({ min: 0, max: 50 }).chain((t) => fc.tuple(fc.constant(t), fc.integer({ min: 0, max: t }), fc.integer({ min: 0, max: 500 })));
    fc.assert(
      fc.property(counts, counts, fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), ([lt, lh, lf], [rt, rh, rf], draw) => {
        const l = rc(lt, lh, lf);
        const r = rc(rt, rh, rf);
        const c = choose(l, r, 'prefer-local', draw);
        if (lt + rt === 0) return c === 'none';
        if ((lh + rh) / (lt + rt) < 0.5) return c === 'panic';
        if (c === 'local') return lh > 0;
        if (c === 'spill-health') return rh > 0 && lh / Math.max(lt, 1) < 1 / 1.4;
        return c === 'spill-load' && rh > 0 && lh > 0;
      }),
    );
  });
});

describe('by load', () => {
  it('spills nothing while the local rack is within the ratio or under the floor', () => {
    expect(loadSpill(rc(2, 2, 16), rc(2, 2, 8))).toBe(0); // 8 vs 4 per endpoint: exactly 2×
    expect(loadSpill(rc(2, 2, 6), rc(2, 2, 0))).toBe(0); // 3 per endpoint < floor 4
  });

  it('spills in proportion to how far the local rack is over the ratio', () => {
    // local 10 per endpoint, remote 2: 1 - 2×2/10 = 0.6
    expect(loadSpill(rc(2, 2, 20), rc(4, 4, 8))).toBeCloseTo(0.6, 10);
    const s = shares(rc(2, 2, 20), rc(4, 4, 8));
    expect(s.local).toBeCloseTo(0.4, 2);
    expect(s['spill-load']).toBeCloseTo(0.6, 2);
    // 5 vs 2 per endpoint: only 1 - 4/5 = 0.2 moves
    expect(loadSpill(rc(2, 2, 10), rc(4, 4, 8))).toBeCloseTo(0.2, 10);
  });

  it('is capped, and needs healthy endpoints elsewhere', () => {
    expect(loadSpill(rc(2, 2, 100), rc(4, 4, 0))).toBe(defaultLocality.maxLoadSpill);
    expect(loadSpill(rc(2, 2, 100), rc(4, 0, 0))).toBe(0);
    expect(loadSpill(rc(2, 2, 100), rc(4, 4, 0), { ...defaultLocality, maxLoadSpill: 1 })).toBe(1);
  });

  it('composes with health: load moves part of the local share, health the rest', () => {
    // health: 0.7 local; load: 0.6 of that out → local 0.28, spill-load 0.42, spill-health 0.3
    const s = shares(rc(4, 2, 20), rc(4, 4, 8));
    expect(s.local).toBeCloseTo(0.28, 2);
    expect(s['spill-load']).toBeCloseTo(0.42, 2);
    expect(s['spill-health']).toBeCloseTo(0.3, 2);
  });
});

// Passive ejection: five failures in a row, growing ejections that decay, the
// cap on how much of the pool is out at once.
import { describe, expect, it } from 'vitest';
import { OutlierDetector } from '../../../ingress/balance/outlier';
import { InvalidArgumentError } from '../../../controller/common/errors';
import type { Outcome } from '../../../ingress/model';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function fail(d: OutlierDetector, key: string, times: number, pool = 100, outcome: Outcome = 'http-5xx'): boolean {
  let ejected = false;
  for (let i = 0; i < times; i++) ejected = d.record(key, outcome, pool) || ejected;
  return ejected;
}

describe('OutlierDetector', () => {
  it('ejects on the fifth failure in a row, of any failing kind', () => {
    const d = new OutlierDetector({}, clock().now);
    const kinds: Outcome[] = ['http-5xx', 'connect-error', 'timeout', 'reset'];
    for (const k of kinds) expect(d.record('a', k, 100)).toBe(false);
    expect(d.isEjected('a')).toBe(false);
    expect(d.record('a', 'timeout', 100)).toBe(true);
    expect(d.isEjected('a')).toBe(true);
    expect(d.totalEjections).toBe(1);
  });

  it("an 'ok' resets the run", () => {
    const d = new OutlierDetector({}, clock().now);
    fail(d, 'a', 4);
    d.record('a', 'ok', 100);
    expect(fail(d, 'a', 4)).toBe(false);
    expect(d.record('a', 'reset', 100)).toBe(true);
  });

  it('ejects for 30 s × n, and decays n while the endpoint stays in rotation', () => {
    const c = clock();
    const d = new OutlierDetector({}, c.now);
    fail(d, 'a', 5);
    expect(d.nextExpiry()).toBe(c.now() + 30_000);
    c.advance(29_999);
    expect(d.expire()).toEqual([]);
    c.advance(1);
    expect(d.expire()).toEqual(['a']);
    expect(d.isEjected('a')).toBe(false);

    // back at once: the second ejection is twice as long
    fail(d, 'a', 5);
    expect(d.nextExpiry()).toBe(c.now() + 60_000);
    c.advance(60_000);
    d.expire();
    expect(d.ejectionCount('a')).toBe(2);

    // 30 s healthy forgets one ejection: the next is 30 s × 2 again, not × 3
    c.advance(30_000);
    expect(d.ejectionCount('a')).toBe(1);
    fail(d, 'a', 5);
    expect(d.nextExpiry()).toBe(c.now() + 60_000);
  });

  it('caps an ejection at maxEjectionMs', () => {
    const c = clock();
    const d = new OutlierDetector({ baseEjectionMs: 100, maxEjectionMs: 250, decayMs: 0 }, c.now);
    for (const want of [100, 200, 250, 250]) {
      fail(d, 'a', 5);
      expect(d.nextExpiry()! - c.now()).toBe(want);
      c.advance(want);
      d.expire();
    }
  });

  it('ejects at most 10% of the pool at once; the others wait for a slot', () => {
    const c = clock();
    const d = new OutlierDetector({}, c.now);
    const pool = 30; // cap 3
    for (const k of ['a', 'b', 'c', 'd', 'e']) fail(d, k, 5, pool);
    expect(d.ejectedCount).toBe(3);
    expect(['a', 'b', 'c', 'd', 'e'].filter((k) => d.isEjected(k))).toEqual(['a', 'b', 'c']);
    // a slot frees up: the next failure of a waiting endpoint ejects it
    c.advance(30_000);
    d.expire();
    expect(d.record('d', 'http-5xx', pool)).toBe(true);
    expect(d.ejectedCount).toBe(1);
  });

  it('allows one ejection in a pool under 10, and only one', () => {
    const d = new OutlierDetector({}, clock().now);
    expect(d.cap(3)).toBe(1);
    expect(d.cap(9)).toBe(1);
    expect(d.cap(20)).toBe(2);
    expect(fail(d, 'a', 5, 3)).toBe(true);
    expect(fail(d, 'b', 5, 3)).toBe(false);
  });

  it('ignores outcomes of requests that were in flight when it was ejected', () => {
    const c = clock();
    const d = new OutlierDetector({}, c.now);
    fail(d, 'a', 5);
    const until = d.nextExpiry();
    fail(d, 'a', 10);
    expect(d.nextExpiry()).toBe(until);
    expect(d.totalEjections).toBe(1);
  });

  it('forget frees its slot', () => {
    const d = new OutlierDetector({}, clock().now);
    fail(d, 'a', 5, 5);
    d.forget('a');
    expect(d.ejectedCount).toBe(0);
    expect(fail(d, 'b', 5, 5)).toBe(true);
  });

  it('refuses nonsense options', () => {
    expect(() => new OutlierDetector({ consecutiveFailures: 0 })).toThrow(InvalidArgumentError);
    expect(() => new OutlierDetector({ baseEjectionMs: -1 })).toThrow(InvalidArgumentError);
  });
});

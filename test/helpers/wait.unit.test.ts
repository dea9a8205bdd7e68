// The shared waitFor, on vitest's fake clock: what it returns, when it gives
// up and what it says then, and that an event wakes it without the clock
// moving at all.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GiveUp, TimedOut, waitFor } from './wait';

describe('waitFor', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('calls at once, then again until the value is truthy, and returns it', async () => {
    const values = [undefined, 0, 'ready'];
    let calls = 0;
    const p = waitFor('the value', () => values[calls++]);
    await vi.advanceTimersByTimeAsync(1000);
    await expect(p).resolves.toBe('ready');
    expect(calls).toBe(3);
  });

  it('backs off from 10 ms to everyMs between calls', async () => {
    const at: number[] = [];
    const start = Date.now();
    const p = waitFor('never', () => void at.push(Date.now() - start), 1000, 40).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(200);
    expect(at.slice(0, 6)).toEqual([0, 10, 30, 70, 110, 150]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await p).toBeInstanceOf(TimedOut);
  });

  it('stops at once on GiveUp', async () => {
    let calls = 0;
    const p = waitFor('the agent', () => {
      calls++;
      throw new GiveUp('the agent exited');
    });
    await expect(p).rejects.toThrow(new GiveUp('the agent exited'));
    expect(calls).toBe(1);
  });

  it('times out naming what it waited for, the last value and the last error, after a last call at the deadline', async () => {
    let calls = 0;
    const p = waitFor('the thing', () => {
      calls++;
      if (calls === 1) throw new Error('boom');
      return false;
    }, 100).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(100);
    const e = (await p) as Error;
    expect(e).toBeInstanceOf(TimedOut);
    expect(e.message).toBe('timed out after 100 ms waiting for the thing; last: false; last error: boom');
    expect(calls).toBe(5); // at 0, 10, 30 and 70 ms, and at the deadline
  });

  it('is woken by an event without the clock moving, and unsubscribes when done', async () => {
    const checks = new Set<() => void>();
    const unsubscribed = vi.fn();
    let ready = false;
    const p = waitFor('the message', () => ready && 'got it', {
      everyMs: 60_000,
      wake: (check) => {
        checks.add(check);
        return () => {
          checks.delete(check);
          unsubscribed();
        };
      },
    });
    await vi.advanceTimersByTimeAsync(0);
    ready = true;
    for (const c of checks) c();
    await expect(p).resolves.toBe('got it');
    expect(unsubscribed).toHaveBeenCalledTimes(1);
    expect(checks.size).toBe(0);
  });
});

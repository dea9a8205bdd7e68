// The one way tests and benchmarks wait for something: poll a condition
// until it holds, with a deadline, and fail naming what was awaited, the last
// value seen and the last error. Never wait a fixed time and hope.

/** Thrown inside a waitFor callback to stop waiting at once (a process that exited will not come back). */
export class GiveUp extends Error {
  override name = 'GiveUp';
}

/** What waitFor throws when the deadline passes. */
export class TimedOut extends Error {
  override name = 'TimedOut';
}

export type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

export type WaitOptions = {
  /** Give up after this long (default 20 s). */
  ms?: number;
  /** The longest pause between two calls of `fn` (default 250 ms). */
  everyMs?: number;
  /**
   * Subscribes `check` to the events that can make `fn` true (a log line, a
   * stream message) and returns the unsubscribe: `fn` is then called again
   * as soon as such an event happens instead of at the next poll.
   */
  wake?: (check: () => void) => () => void;
};

/**
 * Calls `fn` until it returns a truthy value, and returns that value. The
 * first call is at once, then the pause between calls grows from 10 ms to
 * `everyMs`, so a condition that is about to hold is seen quickly and an
 * expensive one (spawning `ip` or `ping`) is not run in a tight loop; with
 * `wake`, an event cuts the pause short. An error from `fn` counts as "not
 * yet" (it is reported if time runs out), except GiveUp, which fails at
 * once. After `ms` it throws TimedOut; a last call is made at the deadline.
 * `limit` is `ms` or the options; a fourth argument is `everyMs`.
 */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, limit: number | WaitOptions = 20_000, everyMs = 250): Promise<Truthy<T>> {
  const o = typeof limit === 'number' ? { ms: limit, everyMs } : { ms: 20_000, everyMs: 250, ...limit };
  const start = Date.now();
  const deadline = start + o.ms;
  let pause = Math.min(10, o.everyMs);
  let last: T | undefined;
  let lastErr: unknown;
  let woken = false;
  let cutShort: (() => void) | undefined;
  const unsubscribe = o.wake?.(() => {
    woken = true;
    cutShort?.();
  });
  try {
    for (;;) {
      woken = false;
      try {
        last = await fn();
        if (last) return last as Truthy<T>;
      } catch (e) {
        if (e instanceof GiveUp) throw e;
        lastErr = e;
      }
      const left = deadline - Date.now();
      if (left <= 0) break;
      if (!woken) await pauseUnlessWoken(Math.min(pause, left), (wake) => (cutShort = wake));
      cutShort = undefined;
      pause = Math.min(pause * 2, o.everyMs);
    }
  } finally {
    unsubscribe?.();
  }
  const seen = lastErr === undefined ? '' : `; last error: ${lastErr instanceof Error ? lastErr.message : String(lastErr)}`;
  throw new TimedOut(`timed out after ${Date.now() - start} ms waiting for ${what}; last: ${shown(last)}${seen}`);
}

/** Resolves after `ms`, or earlier when the function handed to `onWake` is called. */
function pauseUnlessWoken(ms: number, onWake: (wake: () => void) => void): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    onWake(() => {
      clearTimeout(t);
      resolve();
    });
  });
}

function shown(v: unknown): string {
  try {
    return (JSON.stringify(v) ?? String(v)).slice(0, 2000);
  } catch {
    return String(v);
  }
}

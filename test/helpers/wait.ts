// The one way tests and benchmarks wait for something: poll a condition
// until it holds, with a deadline, and fail naming what was awaited, the last
// value seen and the last error. Never wait a fixed time and hope.
import { setTimeout as sleep } from 'node:timers/promises';

/** Thrown inside a waitFor callback to stop waiting at once (a process that exited will not come back). */
export class GiveUp extends Error {
  override name = 'GiveUp';
}

/** What waitFor throws when the deadline passes. */
export class TimedOut extends Error {
  override name = 'TimedOut';
}

export type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

/**
 * Calls `fn` until it returns a truthy value, and returns that value. The
 * first call is at once, then the pause between calls grows from 10 ms to
 * `everyMs` (default 250), so a condition that is about to hold is seen
 * quickly and an expensive one (spawning `ip` or `ping`) is not run in a
 * tight loop. An error from `fn` counts as "not yet" (it is reported if
 * time runs out), except GiveUp, which fails at once. After `ms` (default
 * 20 s) it throws TimedOut. A last call is made at the deadline.
 */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, ms = 20_000, everyMs = 250): Promise<Truthy<T>> {
  const start = Date.now();
  const deadline = start + ms;
  let pause = Math.min(10, everyMs);
  let last: T | undefined;
  let lastErr: unknown;
  for (;;) {
    try {
      last = await fn();
      if (last) return last as Truthy<T>;
    } catch (e) {
      if (e instanceof GiveUp) throw e;
      lastErr = e;
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(pause, left));
    pause = Math.min(pause * 2, everyMs);
  }
  const seen = lastErr === undefined ? '' : `; last error: ${lastErr instanceof Error ? lastErr.message : String(lastErr)}`;
  throw new TimedOut(`timed out after ${Date.now() - start} ms waiting for ${what}; last: ${shown(last)}${seen}`);
}

function shown(v: unknown): string {
  try {
    return (JSON.stringify(v) ?? String(v)).slice(0, 2000);
  } catch {
    return String(v);
  }
}

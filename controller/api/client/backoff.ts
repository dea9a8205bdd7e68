// Retry delays for everything that talks to the controller. Exponential so a
// long outage costs few attempts; jittered so a fleet of agents that lost the
// controller at the same moment does not come back at the same moment.

export type BackoffOptions = {
  /** First delay; default 250 ms. */
  initialMs?: number;
  /** Ceiling; default 10 s. */
  maxMs?: number;
};

export type Backoff = {
  /** The delay before the next attempt; each call doubles the ceiling up to maxMs. */
  next(): number;
  /** After a success: the next failure starts again from initialMs. */
  reset(): void;
};

/** "Equal jitter": half the current ceiling fixed, half random, so delays never collapse to zero. */
export function backoff(o: BackoffOptions = {}, random: () => number = Math.random): Backoff {
  const initial = Math.max(1, o.initialMs ?? 250);
  const max = Math.max(initial, o.maxMs ?? 10_000);
  let attempt = 0;
  return {
    next() {
      const ceiling = Math.min(max, initial * 2 ** Math.min(attempt, 30));
      attempt++;
      return Math.round(ceiling / 2 + random() * (ceiling / 2));
    },
    reset() {
      attempt = 0;
    },
  };
}

/** Resolves after `ms`, or early (without error) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

// One worker for a stream of states of which only the newest matters: the
// state saver writes the newest state, and the process applies the newest
// state to the runtime, each one at a time and in order, so a burst of watch
// events that arrives during one run costs one more run, not one per event.

export type LatestOnly<T> = {
  /** Runs `work` on `v` once the run in progress (if any) is over; replaces a value still waiting. */
  push(v: T): void;
  /** Resolves once nothing runs and nothing waits. */
  settled(): Promise<void>;
};

/** `work` must not reject: it handles (logs) its own failures. */
export function latestOnly<T>(work: (v: T) => Promise<void>): LatestOnly<T> {
  let waiting: { v: T } | undefined;
  let running: Promise<void> | undefined;
  const run = async () => {
    while (waiting) {
      const { v } = waiting;
      waiting = undefined;
      await work(v);
    }
    running = undefined;
  };
  return {
    push(v) {
      waiting = { v };
      running ??= run();
    },
    async settled() {
      while (running) await running;
    },
  };
}

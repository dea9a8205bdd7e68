// When the overlay is reconciled: never two at once, and a burst of
// requests (a controller resending fifty hosts after an outage, a lease
// change arriving with a topology event) folded into one run after a short
// settle. A request made while a run is going starts exactly one more run
// after it, so the last request always sees a reconcile that began after it.
export type ReconcileLoop<T extends string> = {
  /** Ask for a reconcile; merged with every other request made before it starts. */
  request(trigger: T): void;
  /** Runs started so far. */
  runs(): number;
  /** No more runs; waits for the one in flight. */
  stop(): Promise<void>;
};

export type ReconcileLoopOptions<T extends string> = {
  /** The reconcile; gets every trigger merged into this run, in request order. */
  run(triggers: T[]): void | Promise<void>;
  /** How long a request waits for others to join it; default 20 ms. */
  settleMs?: number;
  onError?(err: unknown): void;
};

export function createReconcileLoop<T extends string>(o: ReconcileLoopOptions<T>): ReconcileLoop<T> {
  const settleMs = o.settleMs ?? 20;
  let queued: T[] = [];
  let timer: NodeJS.Timeout | undefined;
  let inflight: Promise<void> | undefined;
  let stopped = false;
  let runs = 0;

  function arm(): void {
    if (timer || inflight || stopped || queued.length === 0) return;
    timer = setTimeout(fire, settleMs);
  }

  function fire(): void {
    timer = undefined;
    if (stopped) return;
    const triggers = queued;
    queued = [];
    runs++;
    inflight = (async () => {
      try {
        await o.run(triggers);
      } catch (err) {
        o.onError?.(err);
      }
    })().finally(() => {
      inflight = undefined;
      arm();
    });
  }

  return {
    request(trigger) {
      if (stopped) return;
      if (!queued.includes(trigger)) queued.push(trigger);
      arm();
    },
    runs: () => runs,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      await inflight;
    },
  };
}

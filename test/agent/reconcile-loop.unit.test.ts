// The agent's reconcile scheduling: one run at a time, bursts merged, and a
// request made during a run always followed by one more run. The settle
// timer runs on vitest's fake clock and every run ends when the test says
// so, so what happens when is decided by the test, never by the machine's
// speed.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createReconcileLoop } from '../../cni-plugin/agent/reconcile-loop';

/** A promise the test resolves when it wants: the end of one run. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/** Moves the fake clock on, running the timers due and the promise callbacks they lead to. */
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

describe('createReconcileLoop', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('merges a burst into one run, triggers in request order without repeats', async () => {
    const runs: string[][] = [];
    const loop = createReconcileLoop<string>({ settleMs: 10, run: (t) => void runs.push(t) });
    for (let i = 0; i < 50; i++) loop.request(i % 7 === 0 ? 'lease' : 'topology');
    await advance(9);
    expect(runs).toEqual([]); // still settling
    await advance(1);
    expect(runs).toEqual([['lease', 'topology']]);
    await advance(1000);
    expect(runs).toHaveLength(1);
    await loop.stop();
  });

  it('never overlaps runs, and runs once more for requests made during a run', async () => {
    let active = 0;
    let maxActive = 0;
    const runs: string[][] = [];
    const ends = [gate(), gate()];
    const loop = createReconcileLoop<string>({
      settleMs: 5,
      async run(t) {
        const end = ends[runs.length];
        active++;
        maxActive = Math.max(maxActive, active);
        runs.push(t);
        await end.promise;
        active--;
      },
    });
    loop.request('a');
    await advance(5);
    expect(runs).toEqual([['a']]); // the first run is in flight
    loop.request('b');
    loop.request('c');
    await advance(100);
    loop.request('d');
    await advance(100);
    expect(runs).toEqual([['a']]); // nothing starts while a run is going
    ends[0].open();
    await advance(5);
    expect(runs).toEqual([['a'], ['b', 'c', 'd']]);
    ends[1].open();
    await advance(1000);
    expect(maxActive).toBe(1);
    expect(loop.runs()).toBe(2);
    await loop.stop();
  });

  it('keeps going after a failed run and reports the error', async () => {
    const errors: unknown[] = [];
    let n = 0;
    const loop = createReconcileLoop<string>({
      settleMs: 1,
      run() {
        if (n++ === 0) throw new Error('kernel said no');
      },
      onError: (e) => errors.push(e),
    });
    loop.request('x');
    await advance(1);
    expect(n).toBe(1);
    loop.request('y');
    await advance(1);
    expect(n).toBe(2);
    expect(errors.map((e) => (e as Error).message)).toEqual(['kernel said no']);
    await loop.stop();
  });

  it('stop waits for the run in flight and ignores later requests', async () => {
    let finished = false;
    const end = gate();
    const loop = createReconcileLoop<string>({
      settleMs: 1,
      async run() {
        await end.promise;
        finished = true;
      },
    });
    loop.request('x');
    await advance(1);
    expect(loop.runs()).toBe(1);
    let stopped = false;
    const stopping = loop.stop().then(() => (stopped = true));
    await advance(1000);
    expect(stopped).toBe(false); // still waiting for the run
    end.open();
    await stopping;
    expect(finished).toBe(true);
    loop.request('y');
    await advance(1000);
    expect(loop.runs()).toBe(1);
  });
});

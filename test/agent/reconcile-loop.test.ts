// The agent's reconcile scheduling: one run at a time, bursts merged, and a
// request made during a run always followed by one more run.
import { describe, expect, it } from 'vitest';
import { createReconcileLoop } from '../../cni-plugin/agent/reconcile-loop';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('createReconcileLoop', () => {
  it('merges a burst into one run, triggers in request order without repeats', async () => {
    const runs: string[][] = [];
    const loop = createReconcileLoop<string>({ settleMs: 10, run: (t) => void runs.push(t) });
    for (let i = 0; i < 50; i++) loop.request(i % 7 === 0 ? 'lease' : 'topology');
    await sleep(40);
    expect(runs).toEqual([['lease', 'topology']]);
    await loop.stop();
  });

  it('never overlaps runs, and runs once more for requests made during a run', async () => {
    let active = 0;
    let maxActive = 0;
    const runs: string[][] = [];
    const loop = createReconcileLoop<string>({
      settleMs: 5,
      async run(t) {
        active++;
        maxActive = Math.max(maxActive, active);
        runs.push(t);
        await sleep(30);
        active--;
      },
    });
    loop.request('a');
    await sleep(15); // first run in flight
    loop.request('b');
    loop.request('c');
    await sleep(15);
    loop.request('d');
    await sleep(120);
    expect(maxActive).toBe(1);
    expect(runs).toEqual([['a'], ['b', 'c', 'd']]);
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
    await sleep(20);
    loop.request('y');
    await sleep(20);
    expect(n).toBe(2);
    expect(errors.map((e) => (e as Error).message)).toEqual(['kernel said no']);
    await loop.stop();
  });

  it('stop waits for the run in flight and ignores later requests', async () => {
    let finished = false;
    const loop = createReconcileLoop<string>({
      settleMs: 1,
      async run() {
        await sleep(30);
        finished = true;
      },
    });
    loop.request('x');
    await sleep(10);
    await loop.stop();
    expect(finished).toBe(true);
    loop.request('y');
    await sleep(20);
    expect(loop.runs()).toBe(1);
  });
});

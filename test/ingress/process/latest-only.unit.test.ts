import { describe, expect, it } from 'vitest';
import { latestOnly } from '../../../ingress/latest-only';

describe('latestOnly', () => {
  it('runs one value at a time, in order, and only the newest of those pushed during a run', async () => {
    const ran: number[] = [];
    let release!: () => void;
    const q = latestOnly(async (v: number) => {
      ran.push(v);
      if (v === 1) await new Promise<void>((r) => (release = r));
    });
    q.push(1);
    q.push(2);
    q.push(3);
    q.push(4);
    expect(ran).toEqual([1]);
    release();
    await q.settled();
    expect(ran).toEqual([1, 4]);
    q.push(5);
    await q.settled();
    expect(ran).toEqual([1, 4, 5]);
  });
});

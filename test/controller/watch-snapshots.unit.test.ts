// Snapshots are the largest watch messages and each stream holds its own
// framed copy until its client has read it, so the hub writes a few at a
// time: a client's turn ends when grpc-js reports its snapshot written (the
// write callback, which the daemon's metrics wrapper must pass through), not
// when a timeout gives the turn up. One snapshot object, encoded once, serves
// every client while only heartbeats move the revision.
import { afterEach, describe, expect, it } from 'vitest';
import { controllerServiceDefinition } from '../../controller/api/proto';
import { createMetrics, instrumentService } from '../../controller/daemon/metrics';
import { type Harness, registerHost, startHarness } from './api-harness';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(): Promise<Harness> {
  const h = await startHarness({
    deps: { watchSnapshotsInFlight: 1, watchStreams: { host: 40 } },
    instrument: (impl, store) =>
      instrumentService(impl, controllerServiceDefinition(), createMetrics({ store, isLeader: () => true, controllerId: 'test', version: 'test' })),
  });
  cleanups.push(() => h.close());
  return h;
}

describe('watch snapshots', () => {
  it('gives 40 clients their snapshots one at a time, each turn ended by the write, not by the turn timeout', async () => {
    const h = await harness();
    for (let i = 1; i <= 20; i++) await registerHost(h, `h${i}`, i);
    const t0 = Date.now();
    const streams = Array.from({ length: 40 }, () => h.open('WatchTopology', { from_revision: 0 }, 'host:h1'));
    const snaps = await Promise.all(streams.map((s) => s.waitFor((m) => m.kind === 'SNAPSHOT', 30_000)));
    // A lost write callback would cost each turn the 5 s timeout: 40 turns, over 3 minutes.
    expect(Date.now() - t0).toBeLessThan(5000);
    for (const s of snaps) expect(s.hosts).toHaveLength(20);
  });

  it('serves one snapshot to every client while only heartbeats move the revision, and joins them from its revision', async () => {
    const h = await harness();
    await registerHost(h, 'h1', 1);
    const a = h.open('WatchTopology', { from_revision: 0 }, 'host:h1');
    const first = await a.waitFor((m) => m.kind === 'SNAPSHOT');
    await h.call('Heartbeat', { name: 'h1' }, 'host:h1');
    const b = h.open('WatchTopology', { from_revision: 0 }, 'host:h1');
    const second = await b.waitFor((m) => m.kind === 'SNAPSHOT');
    expect(second.revision).toBe(first.revision);
    expect(await h.store.revision()).toBeGreaterThan(first.revision);

    // A change after it: a new snapshot, and both earlier clients get the change once.
    const r2 = await registerHost(h, 'h2', 2);
    for (const s of [a, b]) {
      await s.waitFor((m) => m.revision === r2.revision);
      expect(s.msgs.map((m) => m.kind)).toEqual(['SNAPSHOT', 'HOST_PUT']);
    }
    const c = h.open('WatchTopology', { from_revision: 0 }, 'host:h1');
    const third = await c.waitFor((m) => m.kind === 'SNAPSHOT');
    expect(third.revision).toBeGreaterThanOrEqual(r2.revision);
    expect(third.hosts.map((x: { name: string }) => x.name)).toEqual(['h1', 'h2']);
  });
});

// A controller restart with every agent connected, on both stores: agents
// that asked for progress messages hold a resume revision near the present
// (heartbeats move the store's revision without a message), and when they
// come back to a controller whose hub has an empty log, they are answered
// from one shared read of the store's history rather than with one snapshot
// each. Needs etcd (a system package), so it is not a unit test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveClusterConfig } from '../../controller/ipam';
import { type HostRecord, putHost } from '../../controller/registry/hosts';
import type { Store } from '../../controller/store/types';
import { bothStores } from '../helpers/stores';
import { type Harness, TEST_CONFIG, WG_KEY, registerHost, startHarness } from './api-harness';

const CLIENTS = 20;

/** The store, counting the reads of its whole history (prefix ''), which only resumes older than a hub's log make. */
function countHistoryReads(store: Store): { store: Store; reads: () => number } {
  let reads = 0;
  return {
    store: {
      ...store,
      watch(prefix, opts) {
        if (prefix === '') reads++;
        return store.watch(prefix, opts);
      },
    },
    reads: () => reads,
  };
}

const record = (name: string, n: number): HostRecord => ({
  name, underlayIp: `192.168.7.${n}`, vtepMac: '02:00:00:00:07:01', rack: 'r1', datacenter: 'dc1',
  wgPublicKey: WG_KEY, agentVersion: '0.1.0', lastHeartbeat: 1,
});

describe.each(bothStores('watch-restart'))('watch resume across a controller restart: $name', (backend) => {
  beforeAll(() => backend.setup());
  afterAll(() => backend.teardown());

  it('clients resume from their last progress revision without a snapshot, sharing one read of the history', async () => {
    const tag = `r${process.pid}${backend.name}`;
    const harnesses: Harness[] = [];
    const stores: Store[] = [];
    try {
      const first = await backend.open();
      stores.push(first);
      await saveClusterConfig(first, TEST_CONFIG);
      const h1 = await startHarness({ deps: { store: first, watchProgressMs: 50, watchStreams: { host: CLIENTS + 1 } } });
      harnesses.push(h1);
      await registerHost(h1, `${tag}a`, 1);
      const before = Array.from({ length: CLIENTS }, () => h1.open('WatchTopology', { from_revision: 0, progress: true }, `host:${tag}a`));
      await Promise.all(before.map((s) => s.waitFor((m) => m.kind === 'SNAPSHOT')));
      // A stream that did not ask is never sent one.
      const plain = h1.open('WatchTopology', { from_revision: 0 }, `host:${tag}a`);
      await plain.waitFor((m) => m.kind === 'SNAPSHOT');

      // Heartbeats: the store's revision moves, no client is sent a change, those that asked are told the revision.
      for (let i = 0; i < 3; i++) await h1.call('Heartbeat', { name: `${tag}a` }, `host:${tag}a`);
      const quiet = await first.revision();
      const told = await Promise.all(before.map((s) => s.waitFor((m) => m.kind === 'PROGRESS' && m.revision >= quiet)));
      expect(before.every((s) => s.msgs.every((m) => m.kind === 'SNAPSHOT' || m.kind === 'PROGRESS'))).toBe(true);
      expect(plain.msgs.map((m) => m.kind)).toEqual(['SNAPSHOT']);
      const resumeFrom = Math.min(...told.map((m) => m.revision));

      // The controller goes away; meanwhile another writer changes a host and heartbeats go on.
      for (const s of [...before, plain]) s.cancel();
      await h1.close();
      harnesses.length = 0;
      await first.close();
      stores.length = 0;
      const second = await backend.open();
      stores.push(second);
      const joined = await putHost(second, record(`${tag}b`, 2));
      for (let i = 0; i < 5; i++) await putHost(second, { ...record(`${tag}b`, 2), lastHeartbeat: 2 + i });

      // A new controller: every client resumes from where it was told, none gets a snapshot.
      const counted = countHistoryReads(second);
      const h2 = await startHarness({ deps: { store: counted.store, watchProgressMs: 50, watchStreams: { host: CLIENTS } } });
      harnesses.push(h2);
      const after = Array.from({ length: CLIENTS }, () => h2.open('WatchTopology', { from_revision: resumeFrom, progress: true }, `host:${tag}a`));
      const puts = await Promise.all(after.map((s) => s.waitFor((m) => m.kind === 'HOST_PUT')));
      for (const p of puts) expect(p).toMatchObject({ revision: joined.revision, hosts: [{ name: `${tag}b` }] });
      expect(after.flatMap((s) => s.msgs).filter((m) => m.kind === 'SNAPSHOT')).toEqual([]);
      expect(counted.reads()).toBe(1);

      // One more client from the same revision, after the others: served from memory.
      const late = h2.open('WatchTopology', { from_revision: resumeFrom, progress: true }, `host:${tag}b`);
      await late.waitFor((m) => m.kind === 'HOST_PUT');
      expect(late.msgs.filter((m) => m.kind !== 'PROGRESS')).toEqual([puts[0]]);
      expect(counted.reads()).toBe(1);
    } finally {
      for (const h of harnesses) await h.close();
      for (const s of stores) await s.close();
    }
  });
});

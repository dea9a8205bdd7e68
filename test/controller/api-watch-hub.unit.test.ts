// The watch hubs over real gRPC and SQLite: many streams of a kind share one
// store watch, a resume inside the hub's log is served from memory and one
// older than the log through the store's history (both exactly what an
// unbroken stream got), a client that stops reading is ended without holding
// up the others, and a failing store watch is resumed without a gap.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { controllerClientConstructor } from '../../controller/api/proto';
import type { ControllerDeps } from '../../controller/service/service';
import { topologyMerge } from '../../controller/service/topology';
import { hostKey } from '../../controller/registry/keys';
import { saveClusterConfig } from '../../controller/ipam';
import { type HostRecord, putHost } from '../../controller/registry/hosts';
import { openSqliteStore } from '../../controller/store/sqlite';
import { StoreUnavailableError, type Store } from '../../controller/store/types';
import { waitFor } from '../helpers/wait';
import { type Harness, ID_HEADER, TEST_CONFIG, WG_KEY, countWatches, registerHost, startHarness } from './api-harness';

/**
 * A harness whose service reads a store we can watch closely: how many
 * ranges and watches it asks for, and a switch that makes the hubs' watches
 * (not the history reads of resumes, on prefix '') fail like a store that
 * went away, at their start and at every batch, until it is turned off.
 */
type Counted = {
  h: Harness;
  store: Store;
  ranges: () => number;
  watchesOpened: () => number;
  active: () => number;
  failWatches: (on: boolean) => void;
  /** History reads (prefix '') end at once, as when the store closes under them. */
  endHistory: (on: boolean) => void;
  close: () => Promise<void>;
};

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function counted(deps: Partial<ControllerDeps> = {}): Promise<Counted> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-hub-'));
  const raw = openSqliteStore(join(dir, 'store.db'), { pollIntervalMs: 20 });
  await saveClusterConfig(raw, TEST_CONFIG);
  const { store: watched, active } = countWatches(raw);
  let ranges = 0;
  let opened = 0;
  let fail = false;
  let endHistory = false;
  const store: Store = {
    ...watched,
    range: (prefix, opts) => {
      ranges++;
      return raw.range(prefix, opts);
    },
    watch: (prefix, opts) => {
      opened++;
      const inner = watched.watch(prefix, opts);
      const check = () => {
        if (fail && prefix !== '') throw new StoreUnavailableError('store went away (test)');
      };
      return {
        async *[Symbol.asyncIterator]() {
          check();
          if (endHistory && prefix === '') return;
          for await (const batch of inner) {
            check();
            yield batch;
          }
        },
      };
    },
  };
  // Unpaced unless a test says otherwise: these tests follow messages revision by revision.
  const h = await startHarness({ deps: { store, watchPace: { usPerStream: 0, maxMs: 0 }, ...deps } });
  const close = async () => {
    await h.close();
    await raw.close();
    rmSync(dir, { recursive: true, force: true });
  };
  cleanups.push(close);
  return { h, store: raw, ranges: () => ranges, watchesOpened: () => opened, active, failWatches: (on) => (fail = on), endHistory: (on) => (endHistory = on), close };
}

const hostRecord = (name: string, n: number): HostRecord => ({
  name, underlayIp: `192.168.${Math.floor(n / 250)}.${(n % 250) + 1}`, vtepMac: '02:00:00:00:00:01', rack: 'r1', datacenter: 'dc1',
  wgPublicKey: WG_KEY, agentVersion: '0.1.0', lastHeartbeat: 1,
});

describe('watch hub', () => {
  it('serves 200 streams of a kind from one store watch, each with every event', async () => {
    // One caller opens them all, so its per-caller cap is lifted to measure the hub alone.
    const c = await counted({ watchStreams: { host: 200 } });
    await registerHost(c.h, 'h1', 1);
    const streams = Array.from({ length: 200 }, () => c.h.open('WatchTopology', { from_revision: 0 }, 'host:h1'));
    const snaps = await Promise.all(streams.map((s) => s.waitFor((m) => m.kind === 'SNAPSHOT')));
    expect(new Set(snaps.map((m) => m.revision)).size).toBe(1);
    expect(c.active()).toBe(1);

    const r2 = await registerHost(c.h, 'h2', 2);
    const puts = await Promise.all(streams.map((s) => s.waitFor((m) => m.kind === 'HOST_PUT')));
    for (const p of puts) expect(p).toEqual(puts[0]);
    expect(puts[0]).toMatchObject({ revision: r2.revision, hosts: [{ name: 'h2' }] });

    // Another kind has its own watch; still one per kind.
    const svc = c.h.open('WatchServices', { from_revision: 0 }, 'host:h1');
    await svc.waitFor((m) => m.kind === 'SNAPSHOT');
    expect(c.active()).toBe(2);

    for (const s of streams) s.cancel();
    await waitFor('the topology store watch to stop', () => c.active() === 1, 10_000, 20);
    svc.cancel();
    await waitFor('the services store watch to stop', () => c.active() === 0, 10_000, 20);
  });

  it('resumes from inside its log without reading the store, and from older than the log through the store', async () => {
    const c = await counted({ watchLog: { messages: 3, bytes: 1 << 20 } });
    await registerHost(c.h, 'h1', 1);
    const full = c.h.open('WatchTopology', { from_revision: 0 }, 'host:h1');
    const snap = await full.waitFor((m) => m.kind === 'SNAPSHOT');
    for (let i = 2; i <= 7; i++) await registerHost(c.h, `h${i}`, i);
    await c.h.call('LeaveHost', { name: 'h3' }, 'host:h3');
    await full.waitFor((m) => m.kind === 'HOST_DELETE');
    const events = full.msgs.slice(1);
    expect(events.map((m) => m.kind)).toEqual(['HOST_PUT', 'HOST_PUT', 'HOST_PUT', 'HOST_PUT', 'HOST_PUT', 'HOST_PUT', 'HOST_DELETE']);

    // The log holds the last three messages: a resume from the revision of the fourth from last, or later, is replayed from memory.
    const inLog = events[events.length - 4].revision;
    const ranges = c.ranges();
    const opened = c.watchesOpened();
    const r = c.h.open('WatchTopology', { from_revision: inLog }, 'host:h1');
    await r.waitFor((m) => m.kind === 'HOST_DELETE');
    expect(r.msgs).toEqual(events.filter((m) => m.revision > inLog));
    expect(c.ranges()).toBe(ranges);
    expect(c.watchesOpened()).toBe(opened);
    r.cancel();

    // Older than the log: the store's history, then the hub; what an unbroken stream got, with the
    // replay's run of puts sent as one (topologyMerge: each host's latest message, at the run's last revision).
    for (const from of [snap.revision, events[0].revision, events[2].revision]) {
      const before = c.ranges();
      const o = c.h.open('WatchTopology', { from_revision: from }, 'host:h1');
      await o.waitFor((m) => m.kind === 'HOST_DELETE');
      const after = events.filter((m) => m.revision > from);
      const puts = after.filter((m) => m.kind === 'HOST_PUT');
      expect(o.msgs, `resume from ${from}`).toEqual([...(puts.length > 1 ? [topologyMerge(puts)] : puts), after[after.length - 1]]);
      expect(c.ranges()).toBeGreaterThan(before);
      // ... and it is on the hub now: live events arrive once.
      const next = await registerHost(c.h, `x${from}`, 100 + (from % 100));
      const live = await o.waitFor((m) => m.revision === next.revision);
      expect(live.kind).toBe('HOST_PUT');
      await full.waitFor((m) => m.revision === next.revision);
      expect(o.msgs.filter((m) => m.revision === next.revision)).toHaveLength(1);
      o.cancel();
    }
    expect(c.active()).toBe(1);

    // A history that ends before the store's revision is torn: the client is told to come back, not sent a made-up state.
    c.endHistory(true);
    const torn = c.h.open('WatchTopology', { from_revision: snap.revision }, 'host:h1');
    expect(await torn.ended).toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(torn.msgs).toEqual([]);
  });

  it('ends a client that stops reading, with the revision to resume from, and keeps serving the others', async () => {
    const c = await counted({ watchQueue: { messages: 300, bytes: 1 << 20 } });
    await registerHost(c.h, 'h1', 1);
    const fast = c.h.open('WatchTopology', { from_revision: 0 }, 'host:h1');
    await fast.waitFor((m) => m.kind === 'SNAPSHOT');

    // Its own channel and connection, so its unread data fills only its own flow-control windows.
    const Client = controllerClientConstructor();
    const client = new Client(`127.0.0.1:${c.h.port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    cleanups.push(async () => client.close());
    const md = new grpc.Metadata();
    md.set(ID_HEADER, 'host:h1');
    const slow: grpc.ClientReadableStream<any> = (client as any).WatchTopology({ from_revision: 0 }, md);
    cleanups.push(async () => slow.cancel());
    const slowStatus = new Promise<grpc.StatusObject>((resolve) => slow.on('status', resolve));
    slow.on('error', () => undefined);
    const got: any[] = [];
    slow.on('data', (m) => got.push(m));
    await waitFor('the slow client\'s snapshot', () => got.length > 0, 10_000, 20);
    slow.pause(); // it has its snapshot, and reads nothing more

    // Concurrent puts share a commit but each has its own revision, so each is a HOST_PUT. The
    // reading client is waited for after each commit: in this process a commit's fsync blocks
    // every socket, which a real controller's clients do not suffer.
    let last = 0;
    for (let i = 0; i < 3000; i += 25) {
      const revs = await Promise.all(Array.from({ length: 25 }, (_, j) => putHost(c.store, hostRecord('busy', i + j))));
      last = Math.max(last, ...revs.map((r) => r.revision));
      await fast.waitFor((m) => m.revision === last, 5000, fast.msgs.length - 1);
    }
    const done = await fast.waitFor((m) => m.revision === last, 20_000);
    expect(done.kind).toBe('HOST_PUT');
    const revs = fast.msgs.map((m) => m.revision);
    expect(fast.msgs.slice(1).every((m) => m.kind === 'HOST_PUT')).toBe(true);
    expect(revs.length).toBe(3001);
    expect(c.h.logs.filter((l) => l.msg.includes('fell behind'))).toHaveLength(1);

    // Reading again, the slow client gets what was already on its way, then the status naming where to resume.
    slow.resume();
    const status = await slowStatus;
    expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const resumeFrom = Number(/resume from revision (\d+)/.exec(status.details)?.[1]);
    expect(got.length).toBeGreaterThan(1);
    expect(got.length).toBeLessThan(3001);
    expect(got.map((m) => m.revision)).toEqual(revs.slice(0, got.length));
    expect(resumeFrom).toBe(got[got.length - 1].revision);

    // Resuming from there gives it the rest, exactly.
    const resumed = c.h.open('WatchTopology', { from_revision: resumeFrom }, 'host:h1');
    await resumed.waitFor((m) => m.revision === last, 20_000);
    expect(resumed.msgs.map((m) => m.revision)).toEqual(revs.filter((r) => r > resumeFrom));
  });

  it('resumes its store watch after a store error without a gap or a duplicate, and snapshots after a compaction it missed', async () => {
    const c = await counted();
    await registerHost(c.h, 'h1', 1);
    const w = c.h.open('WatchTopology', { from_revision: 0 }, 'host:h1');
    await w.waitFor((m) => m.kind === 'SNAPSHOT');

    const failures = () => c.h.logs.filter((l) => l.msg.includes('store watch failed')).length;
    c.failWatches(true);
    const r2 = await registerHost(c.h, 'h2', 2);
    await waitFor('the store watch to fail once', () => failures() === 1, 10_000, 20);
    c.failWatches(false);
    const r3 = await registerHost(c.h, 'h3', 3);
    await w.waitFor((m) => m.revision === r3.revision);
    expect(w.msgs.slice(1).map((m) => [m.kind, m.revision])).toEqual([['HOST_PUT', r2.revision], ['HOST_PUT', r3.revision]]);

    // Failing again, and the history it would resume from compacted meanwhile: a snapshot at the new revision.
    c.failWatches(true);
    await registerHost(c.h, 'h4', 4);
    await waitFor('the store watch to fail again', () => failures() === 2, 10_000, 20);
    await registerHost(c.h, 'h5', 5);
    const now = await c.store.revision();
    await c.store.compact(now);
    c.failWatches(false);
    const snap = await w.waitFor((m) => m.kind === 'SNAPSHOT', 10_000, 1);
    expect(snap.hosts.map((x: any) => x.name)).toEqual(['h1', 'h2', 'h3', 'h4', 'h5']);
    expect(snap.revision).toBeGreaterThanOrEqual(now);
    const revs = w.msgs.map((m) => m.revision);
    expect([...revs].sort((a, b) => a - b)).toEqual(revs);
    expect(new Set(revs).size).toBe(revs.length);
    expect(c.active()).toBe(1);
  });
  it('paces a burst of changes into fewer messages that leave every stream where the unpaced ones would', async () => {
    // 40 ms between fan-outs per stream, at most 60 ms: with two streams every burst below is paced.
    const c = await counted({ watchPace: { usPerStream: 40_000, maxMs: 60 }, watchStreams: { host: 3 } });
    await registerHost(c.h, 'h1', 1);
    const a = c.h.open('WatchTopology', { from_revision: 0 }, 'host:h1');
    const b = c.h.open('WatchTopology', { from_revision: 0 }, 'host:h1');
    const snap = await a.waitFor((m) => m.kind === 'SNAPSHOT');
    await b.waitFor((m) => m.kind === 'SNAPSHOT');

    // A change with no fan-out in the pacing window before it (here: the hub's first) is not held: it goes out as its own message.
    const lone = await putHost(c.store, hostRecord('lone', 0));
    expect(await a.waitFor((m) => m.revision >= lone.revision)).toMatchObject({ kind: 'HOST_PUT', revision: lone.revision, hosts: [{ name: 'lone' }] });

    // 300 hosts put 20 at a time, each in its own revision; two of them rewritten later in the burst.
    for (let i = 0; i < 300; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => putHost(c.store, hostRecord(`busy${i + j}`, i + j))));
    }
    await putHost(c.store, { ...hostRecord('busy7', 7), underlayIp: '192.168.200.7' });
    await c.store.delete(hostKey('busy9'));
    const end = await c.store.revision();

    for (const s of [a, b]) {
      await s.waitFor((m) => m.kind === 'HOST_DELETE' && m.host_name === 'busy9', 20_000);
      const after = s.msgs.filter((m) => m.revision > lone.revision);
      // far fewer messages than revisions, in revision order, each a merged run or a delete
      expect(after.length).toBeLessThan(100);
      expect(after.map((m) => m.revision)).toEqual([...after.map((m) => m.revision)].sort((x, y) => x - y));
      expect(new Set(after.map((m) => m.kind))).toEqual(new Set(['HOST_PUT', 'HOST_DELETE']));
      // what the stream's client now holds: every host once, with its latest record
      const hosts = new Map<string, any>(snap.hosts.map((h: any) => [h.name, h]));
      for (const m of s.msgs.slice(1)) {
        if (m.kind === 'HOST_PUT') for (const h of m.hosts) hosts.set(h.name, h);
        if (m.kind === 'HOST_DELETE') hosts.delete(m.host_name);
      }
      expect(hosts.size).toBe(1 + 1 + 300 - 1);
      expect(hosts.get('busy7').underlay_ip).toBe('192.168.200.7');
      expect(hosts.has('busy9')).toBe(false);
      expect(s.msgs[s.msgs.length - 1].revision).toBeLessThanOrEqual(end);
    }
    // both streams were sent the same shared messages
    expect(a.msgs.slice(1)).toEqual(b.msgs.slice(1));

    // A client resuming from inside the burst ends in the same place.
    // (its first merged run: the delete, at least, comes after it)
    const mid = a.msgs.filter((m) => m.revision > lone.revision)[0].revision;
    const r = c.h.open('WatchTopology', { from_revision: mid }, 'host:h1');
    await r.waitFor((m) => m.kind === 'HOST_DELETE' && m.host_name === 'busy9', 20_000);
    expect(r.msgs).toEqual(a.msgs.filter((m) => m.revision > mid));
  });
});

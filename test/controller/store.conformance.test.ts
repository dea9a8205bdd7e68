// One behaviour, two backends: every test below runs against the embedded
// SQLite store and a real etcd, so code written against Store works on both.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../controller/store/sqlite';
import { openEtcdStore } from '../../controller/store/etcd';
import { openStore, parseStoreUrl } from '../../controller/store/index';
import {
  CompactedError, LeaseNotFoundError, StoreUnavailableError,
  type Store, type WatchBatch, type WatchEvent,
} from '../../controller/store/types';
import { startEtcd, type EtcdInstance } from '../helpers/etcd';
import { GiveUp, waitFor } from '../helpers/wait';

const SQLITE_MODULE = fileURLToPath(new URL('../../controller/store/sqlite.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));

type Backend = {
  name: 'sqlite' | 'etcd';
  setup(): Promise<void>;
  /** A fresh store (a new file for SQLite; the file's etcd). */
  open(): Promise<Store>;
  /** A second, independent client of the store last opened: another connection to the file, another etcd client. */
  openSecond(): Promise<Store>;
  teardown(): Promise<void>;
};

const tempDirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'weft-store-'));
  tempDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

let etcd: EtcdInstance | undefined;
let lastSqlite = '';
const sqliteOpts = { pollIntervalMs: 50, leaseSweepIntervalMs: 100 };
const backends: Backend[] = [
  {
    name: 'sqlite',
    async setup() {},
    async open() {
      lastSqlite = join(tempDir(), 'weft.db');
      return openSqliteStore(lastSqlite, sqliteOpts);
    },
    async openSecond() { return openSqliteStore(lastSqlite, sqliteOpts); },
    async teardown() {},
  },
  {
    name: 'etcd',
    async setup() { etcd = await startEtcd(); },
    async open() { return openEtcdStore(etcd!.endpoint); },
    async openSecond() { return openEtcdStore(etcd!.endpoint); },
    async teardown() { await etcd?.stop(); },
  },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads batches until `n` events arrived; fails after `ms` rather than hanging. */
async function take(it: AsyncIterator<WatchBatch>, n: number, ms = 10_000): Promise<WatchEvent[]> {
  const events: WatchEvent[] = [];
  const deadline = Date.now() + ms;
  while (events.length < n) {
    const left = deadline - Date.now();
    const r = await Promise.race([it.next(), sleep(Math.max(0, left)).then(() => 'timeout' as const)]);
    if (r === 'timeout') throw new Error(`watch delivered ${events.length} of ${n} events in ${ms} ms: ${JSON.stringify(events)}`);
    if (r.done) throw new Error(`watch ended after ${events.length} of ${n} events`);
    expect(r.value.revision).toBe(r.value.events[r.value.events.length - 1].kv.modRevision);
    events.push(...r.value.events);
  }
  return events;
}

/** Asserts that nothing more arrives within `ms`. */
async function expectQuiet(it: AsyncIterator<WatchBatch>, ms: number): Promise<void> {
  const r = await Promise.race([it.next(), sleep(ms).then(() => 'quiet' as const)]);
  expect(r).toBe('quiet');
}

/** A watch read in the background: its events as they come, and a promise of its end. */
function collect(it: AsyncIterator<WatchBatch>): { events: WatchEvent[]; ended: Promise<void> } {
  const events: WatchEvent[] = [];
  const ended = (async () => {
    for (let r = await it.next(); !r.done; r = await it.next()) events.push(...r.value.events);
  })();
  return { events, ended };
}

/**
 * Puts `${prefix}poke` until the watch shows a change made after it was
 * started: only then is the watch certainly open (etcd creates its watch
 * stream after watch() returns; SQLite fixes "now" at watch()).
 */
async function untilWatching(store: Store, prefix: string, seen: WatchEvent[]): Promise<void> {
  let n = 0;
  await waitFor('the watch to deliver a change made after it started', async () => {
    await store.put(`${prefix}poke`, String(++n));
    return seen.length > 0;
  }, 10_000);
}

const brief = (e: WatchEvent) => `${e.type} ${e.kv.key}=${e.kv.value}@${e.kv.modRevision}`;

let seq = 0;
describe.each(backends)('Store conformance: $name', (backend) => {
  let store: Store;
  let p: string; // a key family of this test's own, since etcd is shared by the file's tests
  const extra: Store[] = [];

  beforeAll(() => backend.setup());
  afterAll(() => backend.teardown());
  beforeEach(async () => {
    store = await backend.open();
    p = `/t${process.pid}-${seq++}/`;
  });
  afterEach(async () => {
    await store.close();
    for (const s of extra.splice(0)) await s.close();
  });

  it('puts, gets and deletes, with a revision per write', async () => {
    expect(store.kind).toBe(backend.name);
    expect(await store.get(`${p}a`)).toBeUndefined();
    const r1 = await store.put(`${p}a`, '1');
    expect(r1.prev).toBeUndefined();
    const r2 = await store.put(`${p}a`, '2');
    expect(r2.revision).toBe(r1.revision + 1);
    expect(r2.prev).toMatchObject({ key: `${p}a`, value: '1', version: 1, modRevision: r1.revision });
    expect(await store.get(`${p}a`)).toEqual({ key: `${p}a`, value: '2', createRevision: r1.revision, modRevision: r2.revision, version: 2 });
    const d = await store.delete(`${p}a`);
    expect(d).toEqual({ revision: r2.revision + 1, deleted: 1 });
    expect(await store.get(`${p}a`)).toBeUndefined();
    // deleting nothing writes nothing
    expect(await store.delete(`${p}a`)).toEqual({ revision: d.revision, deleted: 0 });
    expect(await store.revision()).toBe(d.revision);
    // values are arbitrary strings, including empty and non-ASCII
    await store.put(`${p}ü/é`, '');
    expect((await store.get(`${p}ü/é`))?.value).toBe('');
    await store.put(`${p}json`, JSON.stringify({ a: [1, 'ü'] }));
    expect(JSON.parse((await store.get(`${p}json`))!.value)).toEqual({ a: [1, 'ü'] });
  });

  it('ranges by prefix in byte order, with limits, without leaking into a sibling key family', async () => {
    const keys = [`${p}a`, `${p}a/x`, `${p}a/y`, `${p}ab`, `${p}b`, `${p}\uffff`, `${p}\u{1f600}`, `${p.slice(0, -1)}x`];
    for (const k of [...keys].reverse()) await store.put(k, k);
    const all = await store.range(p);
    // UTF-8 byte order: U+FFFF (ef bf bf) sorts before U+1F600 (f0 ..), unlike JS's UTF-16 order
    expect(all.kvs.map((kv) => kv.key)).toEqual([`${p}a`, `${p}a/x`, `${p}a/y`, `${p}ab`, `${p}b`, `${p}\uffff`, `${p}\u{1f600}`]);
    expect(all.revision).toBe(await store.revision());
    expect((await store.range(`${p}a`)).kvs.map((kv) => kv.key)).toEqual([`${p}a`, `${p}a/x`, `${p}a/y`, `${p}ab`]);
    expect((await store.range(`${p}a/`)).kvs.map((kv) => kv.key)).toEqual([`${p}a/x`, `${p}a/y`]);
    expect((await store.range(`${p}a/`, { limit: 1 })).kvs.map((kv) => kv.key)).toEqual([`${p}a/x`]);
    expect((await store.range(p, { limit: 0 })).kvs).toHaveLength(7);
    expect((await store.range(`${p}zzz`)).kvs).toEqual([]);
    expect((await store.range(`${p}\uffff`)).kvs.map((kv) => kv.key)).toEqual([`${p}\uffff`]);

    const del = await store.deletePrefix(`${p}a/`);
    expect(del.deleted).toBe(2);
    expect((await store.range(`${p}a`)).kvs.map((kv) => kv.key)).toEqual([`${p}a`, `${p}ab`]);
    // one deletePrefix is one revision
    expect(await store.revision()).toBe(all.revision + 1);
    expect((await store.deletePrefix(`${p}nothing/`)).deleted).toBe(0);
    expect(await store.revision()).toBe(all.revision + 1);
  });

  it('shares one strictly increasing revision across keys; tracks version, createRevision, modRevision', async () => {
    const revs: number[] = [];
    for (let i = 0; i < 5; i++) revs.push((await store.put(`${p}k${i % 2}`, String(i))).revision);
    for (let i = 1; i < revs.length; i++) expect(revs[i]).toBe(revs[i - 1] + 1);
    const k0 = await store.get(`${p}k0`);
    expect(k0).toMatchObject({ createRevision: revs[0], modRevision: revs[4], version: 3, value: '4' });
    const k1 = await store.get(`${p}k1`);
    expect(k1).toMatchObject({ createRevision: revs[1], modRevision: revs[3], version: 2 });
    // a key deleted and written again starts over
    await store.delete(`${p}k0`);
    const again = await store.put(`${p}k0`, 'new');
    expect(await store.get(`${p}k0`)).toMatchObject({ createRevision: again.revision, modRevision: again.revision, version: 1 });
  });

  it('txn: compares on value, version, createRevision and modRevision choose the branch', async () => {
    const { revision: created } = await store.put(`${p}x`, 'b');
    const k = `${p}x`;
    const cases: Array<[Parameters<Store['txn']>[0][number], boolean]> = [
      [{ key: k, target: 'value', op: '==', value: 'b' }, true],
      [{ key: k, target: 'value', op: '!=', value: 'b' }, false],
      [{ key: k, target: 'value', op: '<', value: 'c' }, true],
      [{ key: k, target: 'value', op: '>', value: 'c' }, false],
      [{ key: k, target: 'version', op: '==', version: 1 }, true],
      [{ key: k, target: 'version', op: '>', version: 1 }, false],
      [{ key: k, target: 'createRevision', op: '==', createRevision: created }, true],
      [{ key: k, target: 'createRevision', op: '<', createRevision: created }, false],
      [{ key: k, target: 'modRevision', op: '<', modRevision: created + 1 }, true],
      [{ key: k, target: 'modRevision', op: '!=', modRevision: created }, false],
      // a missing key: version/createRevision/modRevision 0, and a value compare always fails
      [{ key: `${p}missing`, target: 'version', op: '==', version: 0 }, true],
      [{ key: `${p}missing`, target: 'createRevision', op: '==', createRevision: 0 }, true],
      [{ key: `${p}missing`, target: 'modRevision', op: '<', modRevision: 1 }, true],
      [{ key: `${p}missing`, target: 'value', op: '==', value: '' }, false],
      [{ key: `${p}missing`, target: 'value', op: '!=', value: 'x' }, false],
    ];
    for (const [cmp, expected] of cases) {
      const r = await store.txn([cmp], [{ type: 'get', key: k }], [{ type: 'get', key: `${p}missing` }]);
      expect({ cmp, succeeded: r.succeeded }).toEqual({ cmp, succeeded: expected });
      // read-only branches write nothing
      expect(r.revision).toBe(created);
      expect(r.results).toEqual(expected ? [expect.objectContaining({ key: k, value: 'b' })] : [undefined]);
    }
    // all compares must hold
    const both = await store.txn(
      [{ key: k, target: 'value', op: '==', value: 'b' }, { key: k, target: 'version', op: '==', version: 9 }],
      [{ type: 'put', key: k, value: 'won' }],
      [{ type: 'put', key: `${p}lost`, value: 'yes' }, { type: 'get', key: `${p}lost` }],
    );
    expect(both.succeeded).toBe(false);
    expect(both.revision).toBe(created + 1);
    expect(both.results[0]).toBeUndefined();
    // a txn sees its own writes
    expect(both.results[1]).toMatchObject({ value: 'yes', modRevision: created + 1 });
    expect((await store.get(k))?.value).toBe('b');
  });

  it('txn: several writes are one revision, and the watch shows them together', async () => {
    await store.put(`${p}old1`, '1');
    await store.put(`${p}old2`, '2');
    const before = await store.revision();
    const w = store.watch(p, { fromRevision: before + 1 })[Symbol.asyncIterator]();
    const r = await store.txn([], [
      { type: 'put', key: `${p}n1`, value: 'a' },
      { type: 'put', key: `${p}n2`, value: 'b' },
      { type: 'deletePrefix', prefix: `${p}old` },
      { type: 'get', key: `${p}n1` },
    ]);
    expect(r).toMatchObject({ succeeded: true, revision: before + 1 });
    expect(r.results[3]).toMatchObject({ key: `${p}n1`, createRevision: before + 1, version: 1 });
    expect((await store.get(`${p}n2`))?.modRevision).toBe(before + 1);
    const evs = await take(w, 4);
    expect(evs.map(brief).sort()).toEqual([
      `delete ${p}old1=@${before + 1}`, `delete ${p}old2=@${before + 1}`, `put ${p}n1=a@${before + 1}`, `put ${p}n2=b@${before + 1}`,
    ].sort());
    await w.return?.();
  });

  it('CAS-create: of many concurrent creators of one key, exactly one wins', async () => {
    const key = `${p}subnet-10.1.7.0`;
    const rounds = await Promise.all(Array.from({ length: 24 }, (_, i) =>
      store.txn([{ key, target: 'version', op: '==', version: 0 }], [{ type: 'put', key, value: `host${i}` }], [{ type: 'get', key }])));
    const winners = rounds.filter((r) => r.succeeded);
    expect(winners).toHaveLength(1);
    const winner = `host${rounds.indexOf(winners[0])}`;
    const kv = await store.get(key);
    expect(kv).toMatchObject({ value: winner, version: 1 });
    // every loser saw the winner's value in its failure branch
    for (const r of rounds.filter((x) => !x.succeeded)) expect(r.results[0]?.value).toBe(winner);

    // two clients (two controllers) racing with CAS on modRevision: one update wins
    const other = await backend.openSecond();
    extra.push(other);
    const clients = [store, other];
    const bumps = await Promise.all(Array.from({ length: 10 }, (_, i) =>
      clients[i % clients.length].txn([{ key, target: 'modRevision', op: '==', modRevision: kv!.modRevision }], [{ type: 'put', key, value: `bump${i}` }])));
    expect(bumps.filter((r) => r.succeeded)).toHaveLength(1);
    expect((await store.get(key))?.version).toBe(2);
  });

  it('rejects bad input with clear errors', async () => {
    await expect(store.put('', 'x')).rejects.toThrow(/key must be a non-empty string/);
    await expect(store.put(`${p}a`, 5 as unknown as string)).rejects.toThrow(/value must be a string/);
    await expect(store.range(p, { limit: -1 })).rejects.toThrow(/limit must be a non-negative integer/);
    await expect(store.leaseGrant(0)).rejects.toThrow(/TTL must be a positive integer/);
    await expect(store.leaseKeepAlive('abc')).rejects.toThrow(/lease id must be a positive decimal string/);
    await expect(store.txn([{ key: `${p}a`, target: 'version', op: '=' as '==', version: 0 }], [])).rejects.toThrow(/compare op/);
    await expect(store.txn([], [{ type: 'put', key: `${p}a`, value: '1' }, { type: 'put', key: `${p}a`, value: '2' }]))
      .rejects.toThrow(/more than once/);
    await expect(store.txn([], [{ type: 'put', key: `${p}a/b`, value: '1' }, { type: 'deletePrefix', prefix: `${p}a/` }]))
      .rejects.toThrow(/both puts and deletes/);
    expect(() => store.watch(p, { fromRevision: -3 })).toThrow(/fromRevision/);
    await expect(store.compact((await store.revision()) + 100)).rejects.toThrow(/future/);
    expect(await store.get(`${p}a`)).toBeUndefined();
  });

  it('watch from now delivers only later changes', async () => {
    await store.put(`${p}before`, 'old');
    const ac = new AbortController();
    const w = collect(store.watch(p, { signal: ac.signal })[Symbol.asyncIterator]());
    await untilWatching(store, p, w.events);
    await store.put(`${p}after`, 'new');
    await store.put(`${p.slice(0, -1)}-sibling`, 'not ours');
    await store.delete(`${p}before`);
    await waitFor('the delete of before', () => w.events.some((e) => e.type === 'delete'), 10_000);
    const evs = w.events.filter((e) => e.kv.key !== `${p}poke`);
    expect(evs.map((e) => e.type + ' ' + e.kv.key)).toEqual([`put ${p}after`, `delete ${p}before`]);
    expect(evs[1].kv).toMatchObject({ value: '', version: 0, createRevision: 0 });
    expect(evs[1].prevKv).toBeUndefined();
    ac.abort();
    await w.ended; // the abort ends the watch
  });

  it('watch from an old revision replays the history, with prevKv on request', async () => {
    const r1 = (await store.put(`${p}a`, '1')).revision;
    await store.put(`${p}b`, 'x');
    await store.put(`${p}a`, '2');
    await store.delete(`${p}a`);
    const w = store.watch(`${p}a`, { fromRevision: r1, prevKv: true })[Symbol.asyncIterator]();
    const evs = await take(w, 3);
    expect(evs.map(brief)).toEqual([`put ${p}a=1@${r1}`, `put ${p}a=2@${r1 + 2}`, `delete ${p}a=@${r1 + 3}`]);
    expect(evs[0].prevKv).toBeUndefined();
    expect(evs[1].prevKv).toMatchObject({ value: '1', modRevision: r1, version: 1 });
    expect(evs[2].prevKv).toMatchObject({ value: '2', modRevision: r1 + 2, version: 2 });
    expect(evs[1].kv).toMatchObject({ createRevision: r1, version: 2 });
    await w.return?.();

    const plain = store.watch(`${p}a`, { fromRevision: r1 })[Symbol.asyncIterator]();
    const again = await take(plain, 3);
    expect(again.every((e) => e.prevKv === undefined)).toBe(true);
    await plain.return?.();
  });

  it('a watch resumed from the last seen revision + 1 has no gap and no duplicate', async () => {
    const start = (await store.revision()) + 1;
    const ac = new AbortController();
    const w1 = store.watch(p, { fromRevision: start, signal: ac.signal })[Symbol.asyncIterator]();
    const writes = (async () => {
      for (let i = 0; i < 40; i++) {
        if (i % 3 === 2) await store.delete(`${p}k${i - 1}`);
        else await store.put(`${p}k${i}`, String(i));
      }
    })();
    const seen = await take(w1, 5);
    ac.abort();
    expect((await w1.next()).done).toBe(true);
    await writes;
    const last = seen[seen.length - 1].kv.modRevision;
    const w2 = store.watch(p, { fromRevision: last + 1 })[Symbol.asyncIterator]();
    const rest = await take(w2, 40 - seen.length);
    const revs = [...seen, ...rest].map((e) => e.kv.modRevision);
    expect(revs).toEqual(Array.from({ length: 40 }, (_, i) => start + i));
    await expectQuiet(w2, 300);
    // return() ends the watch even with a next() still waiting
    expect(await w2.return!()).toEqual({ done: true, value: undefined });
  });

  it('a watch from a compacted revision fails with CompactedError; from the compaction point it works', async () => {
    const r1 = (await store.put(`${p}a`, '1')).revision;
    await store.put(`${p}a`, '2');
    const r3 = (await store.put(`${p}a`, '3')).revision;
    await store.compact(r3);
    await store.compact(r1); // already compacted past: nothing to do
    const w = store.watch(p, { fromRevision: r1 })[Symbol.asyncIterator]();
    const err = await w.next().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(CompactedError);
    expect((err as CompactedError).compactRevision).toBe(r3);
    expect((err as Error).message).toMatch(/compacted/);
    const ok = store.watch(p, { fromRevision: r3 })[Symbol.asyncIterator]();
    expect((await take(ok, 1)).map(brief)).toEqual([`put ${p}a=3@${r3}`]);
    await ok.return?.();
    // the current state is untouched by compaction
    expect(await store.get(`${p}a`)).toMatchObject({ value: '3', version: 3, createRevision: r1 });
  });

  it('an expiring lease deletes its keys and the watch sees the deletes', async () => {
    const lease = await store.leaseGrant(1);
    expect(lease).toMatch(/^[1-9][0-9]*$/);
    const { revision } = await store.put(`${p}host1`, 'up', { lease });
    await store.put(`${p}host2`, 'up', { lease });
    await store.put(`${p}stays`, 'up');
    expect((await store.get(`${p}host1`))?.lease).toBe(lease);
    expect((await store.get(`${p}stays`))?.lease).toBeUndefined();
    const w = store.watch(p, { fromRevision: revision + 3, prevKv: true })[Symbol.asyncIterator]();
    const t0 = Date.now();
    const evs = await take(w, 2, 15_000);
    expect(Date.now() - t0).toBeGreaterThan(500);
    expect(evs.map((e) => e.type + ' ' + e.kv.key).sort()).toEqual([`delete ${p}host1`, `delete ${p}host2`]);
    expect(evs[0].prevKv?.lease).toBe(lease);
    expect(await store.get(`${p}host1`)).toBeUndefined();
    expect(await store.get(`${p}stays`)).toBeDefined();
    await expect(store.leaseKeepAlive(lease)).rejects.toBeInstanceOf(LeaseNotFoundError);
    await expect(store.put(`${p}late`, 'x', { lease })).rejects.toBeInstanceOf(LeaseNotFoundError);
    await w.return?.();
  });

  it('keepalive extends a lease past its TTL', async () => {
    const lease = await store.leaseGrant(1);
    await store.put(`${p}hb`, 'alive', { lease });
    const ttl = await store.leaseKeepAlive(lease);
    expect(ttl).toBeGreaterThanOrEqual(1); // etcd raises tiny TTLs to its minimum
    const until = Date.now() + ttl * 1000 * 2 + 500;
    while (Date.now() < until) {
      expect(await store.leaseKeepAlive(lease)).toBe(ttl);
      await sleep(300); // the renewal interval: renewing is what this test does, not a wait
    }
    expect((await store.get(`${p}hb`))?.value).toBe('alive');
    // stop renewing: it goes
    await waitFor('the lease to expire and take its key', async () => (await store.get(`${p}hb`)) === undefined, 15_000);
  });

  it('revoke deletes attached keys in one revision; unknown leases are reported or ignored as documented', async () => {
    const lease = await store.leaseGrant(60);
    await store.put(`${p}a`, '1', { lease });
    await store.txn([], [{ type: 'put', key: `${p}b`, value: '2', lease }]);
    // re-putting without the lease detaches the key
    await store.put(`${p}c`, '3', { lease });
    await store.put(`${p}c`, '3');
    const before = await store.revision();
    const w = store.watch(p, { fromRevision: before + 1 })[Symbol.asyncIterator]();
    await store.leaseRevoke(lease);
    const evs = await take(w, 2);
    expect(evs.map(brief).sort()).toEqual([`delete ${p}a=@${before + 1}`, `delete ${p}b=@${before + 1}`]);
    expect((await store.range(p)).kvs.map((kv) => kv.key)).toEqual([`${p}c`]);
    await store.leaseRevoke(lease); // already gone: ignored
    await store.leaseRevoke('123456789');
    await expect(store.leaseKeepAlive(lease)).rejects.toBeInstanceOf(LeaseNotFoundError);
    await expect(store.leaseKeepAlive('123456789')).rejects.toThrow(/lease 123456789 not found/);
    await expect(store.put(`${p}d`, 'x', { lease: '123456789' })).rejects.toBeInstanceOf(LeaseNotFoundError);
    await expect(store.txn([], [{ type: 'put', key: `${p}d`, value: 'x', lease: '123456789' }])).rejects.toBeInstanceOf(LeaseNotFoundError);
    expect(await store.get(`${p}d`)).toBeUndefined();
    await w.return?.();
  });

  it('close ends open watches and later calls fail as unavailable', async () => {
    const s = await backend.open();
    const w = collect(s.watch(p)[Symbol.asyncIterator]());
    await untilWatching(s, p, w.events);
    await s.close();
    await w.ended; // close ended the open watch
    await expect(s.get(`${p}a`)).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});

describe('SQLite store across processes', () => {
  function child(dbPath: string, body: string): ReturnType<typeof spawn> {
    const code = `import { openSqliteStore } from ${JSON.stringify(SQLITE_MODULE)};
      const store = openSqliteStore(${JSON.stringify(dbPath)});
      ${body}`;
    return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  }
  const children: Array<ReturnType<typeof spawn>> = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  it('keeps every acknowledged write after the writer is killed with SIGKILL', async () => {
    const db = join(tempDir(), 'weft.db');
    const writer = child(db, `
      for (let i = 0; ; i++) {
        const { revision } = await store.txn([], [{ type: 'put', key: '/crash/' + String(i).padStart(6, '0'), value: 'v' + i }]);
        process.stdout.write(i + ' ' + revision + '\\n');
      }`);
    children.push(writer);
    let acked = -1;
    let ackedRev = 0;
    let errText = '';
    writer.stderr!.on('data', (b: Buffer) => { errText += b.toString(); });
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      writer.stdout!.on('data', (b: Buffer) => {
        buf += b.toString();
        const lines = buf.split('\n');
        buf = lines.pop()!;
        for (const l of lines) {
          const [i, rev] = l.split(' ').map(Number);
          acked = i;
          ackedRev = rev;
        }
        if (acked >= 300) {
          writer.kill('SIGKILL');
          resolve();
        }
      });
      writer.once('exit', (code) => reject(new Error(`writer exited early (${code}): ${errText}`)));
    });
    await new Promise((r) => (writer.exitCode !== null || writer.signalCode !== null ? r(undefined) : writer.once('exit', r)));
    expect(writer.signalCode).toBe('SIGKILL');

    const store = openSqliteStore(db);
    try {
      const { kvs, revision } = await store.range('/crash/');
      expect(kvs.length).toBeGreaterThanOrEqual(acked + 1);
      expect(revision).toBeGreaterThanOrEqual(ackedRev);
      for (let i = 0; i <= acked; i++) expect(kvs[i]).toMatchObject({ key: `/crash/${String(i).padStart(6, '0')}`, value: `v${i}` });
      // the log survived too: history replays from the first write
      const w = store.watch('/crash/', { fromRevision: 2 })[Symbol.asyncIterator]();
      const evs = await take(w, acked + 1);
      expect(evs[acked].kv.key).toBe(`/crash/${String(acked).padStart(6, '0')}`);
      await w.return?.();
      // and the store keeps going from where it was
      expect((await store.put('/crash/after', 'x')).revision).toBe(revision + 1);
    } finally {
      await store.close();
    }
  });

  it("a watcher sees a second process's writes to the same file", async () => {
    const db = join(tempDir(), 'weft.db');
    const store = openSqliteStore(db, { pollIntervalMs: 50 });
    try {
      await store.put('/shared/mine', '0');
      const w = store.watch('/shared/')[Symbol.asyncIterator]();
      const writer = child(db, `
        for (let i = 0; i < 5; i++) await store.put('/shared/theirs' + i, String(i));
        await store.delete('/shared/mine');
        await store.close();`);
      children.push(writer);
      const evs = await take(w, 6);
      expect(evs.map((e) => e.type + ' ' + e.kv.key)).toEqual([
        ...Array.from({ length: 5 }, (_, i) => `put /shared/theirs${i}`), 'delete /shared/mine',
      ]);
      // and the two processes share one revision sequence
      expect(evs[5].kv.modRevision).toBe(await store.revision());
      await w.return?.();
    } finally {
      await store.close();
    }
  });
});

describe('openStore URLs', () => {
  it('accepts sqlite: and etcd: forms and rejects others with the accepted forms named', () => {
    expect(parseStoreUrl('sqlite:/var/lib/weft/weft.db')).toEqual({ kind: 'sqlite', path: '/var/lib/weft/weft.db' });
    expect(parseStoreUrl('sqlite:///var/lib/weft/weft.db')).toEqual({ kind: 'sqlite', path: '/var/lib/weft/weft.db' });
    expect(parseStoreUrl('sqlite:data/weft.db', '/srv')).toEqual({ kind: 'sqlite', path: '/srv/data/weft.db' });
    expect(parseStoreUrl('etcd:http://127.0.0.1:2379,https://10.0.0.2:2379')).toEqual({
      kind: 'etcd', endpoints: ['http://127.0.0.1:2379', 'https://10.0.0.2:2379'],
    });
    for (const bad of ['', 'sqlite:', 'sqlite:/var/lib/', 'mysql://x', '/var/lib/weft.db', 'etcd:', 'etcd:127.0.0.1:2379', 'etcd:http://a:1,,http://b:2', 'etcd:http://h']) {
      expect(() => parseStoreUrl(bad), bad).toThrow(/accepted forms: sqlite:.*etcd:http/);
    }
  });

  it('opens a working store from a URL, and reports an unreachable etcd as unavailable', async () => {
    const dir = tempDir();
    const s = await openStore(`sqlite:${dir}/sub/weft.db`);
    expect(s.kind).toBe('sqlite');
    expect((await s.put('/x', 'y')).revision).toBe(2);
    await s.close();
    // port 1 on loopback: nothing listens there
    await expect(openStore('etcd:http://127.0.0.1:1', { etcd: { dialTimeoutMs: 1000, requestTimeoutMs: 2000 } }))
      .rejects.toBeInstanceOf(StoreUnavailableError);
  });
});

describe('etcd store through an outage', () => {
  it('reports StoreUnavailableError while etcd is down, and a watch resumes without gap or duplicate after it returns', async () => {
    const node = await startEtcd();
    const store = await openEtcdStore(node.endpoint, { requestTimeoutMs: 2000, maxWatchBackoffMs: 300 });
    try {
      const from = (await store.put('/outage/a', '1')).revision;
      const w = store.watch('/outage/', { fromRevision: from })[Symbol.asyncIterator]();
      expect((await take(w, 1)).map(brief)).toEqual([`put /outage/a=1@${from}`]);

      await node.kill();
      await expect(store.get('/outage/a')).rejects.toBeInstanceOf(StoreUnavailableError);
      await node.restart();

      // the client may hold off for a moment after the failures; retry like a controller would
      for (const [k, v] of [['b', '2'], ['c', '3']]) {
        await waitFor(`the put of /outage/${k} after etcd returned`, async () => {
          try {
            await store.put(`/outage/${k}`, v);
            return true;
          } catch (err) {
            if (err instanceof StoreUnavailableError) throw err; // not yet
            throw new GiveUp(`put /outage/${k}: ${(err as Error).message}`);
          }
        }, 20_000);
      }
      const evs = await take(w, 2, 20_000);
      expect(evs.map(brief)).toEqual([`put /outage/b=2@${from + 1}`, `put /outage/c=3@${from + 2}`]);
      await expectQuiet(w, 300);
      await w.return!();
    } finally {
      await store.close();
      await node.stop();
    }
  });
});

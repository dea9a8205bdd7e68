// The two stores a registry test runs against, one shared SQLite file and one
// etcd on loopback (started in setup, stopped in teardown), and the temp dir
// removed after the file's tests. The store conformance suite has its own,
// richer pair (fresh files, second clients).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { openEtcdStore } from '../../controller/store/etcd';
import { openSqliteStore } from '../../controller/store/sqlite';
import type { Store } from '../../controller/store/types';
import { type EtcdInstance, startEtcd } from './etcd';

export type Backend = { name: string; setup(): Promise<void>; open(): Promise<Store>; teardown(): Promise<void> };

export function bothStores(tag: string): Backend[] {
  const dir = mkdtempSync(join(tmpdir(), `weft-${tag}-`));
  let etcd: EtcdInstance | undefined;
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return [
    {
      name: 'sqlite',
      async setup() {},
      async open() { return openSqliteStore(join(dir, 'weft.db'), { pollIntervalMs: 50 }); },
      async teardown() {},
    },
    {
      name: 'etcd',
      async setup() { etcd = await startEtcd(); },
      async open() { return openEtcdStore(etcd!.endpoint); },
      async teardown() { await etcd?.stop(); },
    },
  ];
}

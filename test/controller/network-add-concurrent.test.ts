// Sixteen operators run `weft network add` at the same moment against one
// store: every one that reports success must find its network stored. (Each
// used to save the config it read, compared against a fresh copy, so 3 to 7
// of 8 survived while all 8 printed "added network".)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initClusterConfig, readClusterConfig } from '../../controller/ipam/cluster-config';
import { openSqliteStore } from '../../controller/store/sqlite';
import { weft } from './daemon-process';

let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'weft-net-add-'));
  const store = openSqliteStore(join(dir, 'weft.db'));
  await initClusterConfig(store);
  await store.close();
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('weft network add, sixteen at once', () => {
  it('stores every network it reports as added', async () => {
    const runs = await Promise.all(
      Array.from({ length: 16 }, (_, i) => weft(['network', 'add', `n${i}`, '--vni', String(10 + i), '--cidr', `10.${100 + i}.0.0/16`, '--data-dir', dir], { timeoutMs: 60_000 })),
    );
    const store = openSqliteStore(join(dir, 'weft.db'));
    try {
      const stored = new Set((await readClusterConfig(store)).config.networks.map((n) => n.name));
      // none of these collide, so every one succeeds, says so, and is stored
      runs.forEach((r, i) => {
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toMatch(new RegExp(`^added network n${i} `));
        expect(stored.has(`n${i}`), `n${i} was reported added but is not stored`).toBe(true);
      });
    } finally {
      await store.close();
    }
  }, 120_000);
});

// Read-modify-write of the cluster config: an edit is saved only against the
// config it was made from; when another writer saved in between, the edit is
// applied again to what that writer saved, so neither change is lost.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  defaultClusterConfig, initClusterConfig, readClusterConfig, saveClusterConfig, updateClusterConfig,
} from '../../controller/ipam/cluster-config';
import { openSqliteStore } from '../../controller/store/sqlite';
import type { Store } from '../../controller/store/types';

let dir: string;
let store: Store;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'weft-cc-update-'));
  store = openSqliteStore(join(dir, 'weft.db'));
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const net = (name: string, vni: number, second: number) => ({ name, vni, cidr: `10.${second}.0.0/16`, hostPrefixLength: 24 });

describe('updateClusterConfig', () => {
  it('applies the edit again to a config another writer saved in between, keeping both changes', async () => {
    await initClusterConfig(store);
    let calls = 0;
    const saved = await updateClusterConfig(store, async (cc) => {
      calls++;
      // The first time, another writer adds its network after this edit read the config.
      if (calls === 1) await saveClusterConfig(store, { ...cc, networks: [...cc.networks, net('other', 20, 120)] });
      return { ...cc, networks: [...cc.networks, net('mine', 21, 121)] };
    });
    expect(calls).toBe(2);
    expect(saved.config.networks.map((n) => n.name)).toEqual(['default', 'other', 'mine']);
    expect((await readClusterConfig(store)).config.networks.map((n) => n.name)).toEqual(['default', 'other', 'mine']);
  });

  it('lands every one of many concurrent edits', async () => {
    await initClusterConfig(store);
    await Promise.all(Array.from({ length: 8 }, (_, i) => updateClusterConfig(store, (cc) => ({ ...cc, networks: [...cc.networks, net(`n${i}`, 30 + i, 130 + i)] }))));
    const names = (await readClusterConfig(store)).config.networks.map((n) => n.name).sort();
    expect(names).toEqual(['default', ...Array.from({ length: 8 }, (_, i) => `n${i}`)].sort());
  });

  it('reports an edit the concurrent result makes invalid, and saves nothing for it', async () => {
    await initClusterConfig(store);
    let calls = 0;
    await expect(
      updateClusterConfig(store, async (cc) => {
        if (++calls === 1) await saveClusterConfig(store, { ...cc, networks: [...cc.networks, net('taken', 40, 140)] });
        return { ...cc, networks: [...cc.networks, net('mine', 40, 141)] }; // same VNI as what was saved meanwhile
      }),
    ).rejects.toThrow(/vni/i);
    expect((await readClusterConfig(store)).config.networks.map((n) => n.name)).toEqual(['default', 'taken']);
  });
});

describe('initClusterConfig', () => {
  it('stores the default once and leaves a stored config alone', async () => {
    expect((await initClusterConfig(store))?.config).toEqual(defaultClusterConfig());
    await updateClusterConfig(store, (cc) => ({ ...cc, networks: [...cc.networks, net('blue', 2, 245)] }));
    expect(await initClusterConfig(store)).toBeNull();
    expect((await readClusterConfig(store)).config.networks.map((n) => n.name)).toEqual(['default', 'blue']);
  });
});

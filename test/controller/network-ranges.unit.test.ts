// What `weft network add` (updateClusterConfig) and a config file
// (saveClusterConfig) may store as an overlay network's range: nothing
// overlapping loopback, multicast, link-local, unspecified, broadcast or
// IPv4-mapped addresses, nothing wider than /8 (IPv4) or /16 (IPv6), and no
// overlap with another network. A range already stored before these rules
// keeps loading, so an upgrade does not stop a running cluster.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClusterConfigError, saveClusterConfig } from '../../controller/ipam';
import { MIN_NETWORK_PREFIX, loadClusterConfig, networkRangeProblem, updateClusterConfig } from '../../controller/ipam/cluster-config';
import { CONFIG_KEY } from '../../controller/ipam/records';
import { parseCidr } from '../../controller/common/cidr';
import { openSqliteStore } from '../../controller/store/sqlite';
import type { Store } from '../../controller/store/types';

let dir: string;
let store: Store;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'weft-ranges-'));
  store = openSqliteStore(join(dir, 'store.db'), { pollIntervalMs: 20 });
  await saveClusterConfig(store, { networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/16', hostPrefixLength: 24 }] });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** What `weft network add NAME --vni VNI --cidr CIDR` does to the stored config. */
const networkAdd = (cidr: string, hostPrefixLength = Math.max(cidr.includes(':') ? 64 : 24, Number(cidr.split('/')[1]))) =>
  updateClusterConfig(store, (cc) => ({ ...cc, networks: [...cc.networks, { name: 'added', vni: 99, cidr, hostPrefixLength }] }));

async function refusedAdd(cidr: string, why: RegExp): Promise<void> {
  const before = await store.get(CONFIG_KEY);
  const err = await networkAdd(cidr).then(
    () => {
      throw new Error(`network add accepted ${cidr}`);
    },
    (e) => e,
  );
  expect(err, cidr).toBeInstanceOf(ClusterConfigError);
  expect((err as ClusterConfigError).field).toBe('networks[1].cidr');
  expect((err as Error).message, cidr).toMatch(why);
  expect(await store.get(CONFIG_KEY), `${cidr}: the stored config must not change`).toEqual(before);
}

const REFUSED: Array<[string, RegExp]> = [
  ['127.0.0.0/8', /loopback/],
  ['127.1.0.0/16', /loopback/],
  ['224.0.0.0/8', /multicast/],
  ['239.1.0.0/16', /multicast/],
  ['169.254.0.0/16', /link-local/],
  ['169.0.0.0/8', /link-local/],
  ['0.0.0.0/8', /unspecified/],
  ['255.255.255.0/24', /broadcast/],
  ['0.0.0.0/0', /overlaps network "default"/], // the existing overlap check comes first
  ['128.0.0.0/1', /too wide.*\/8 or narrower/],
  ['12.0.0.0/7', /too wide/],
  ['::/0', /too wide.*\/16 or narrower/],
  ['fc00::/7', /too wide/],
  ['::/16', /unspecified/],
  ['::ffff:0:0/96', /IPv4-mapped/],
  ['fe80::/64', /link-local/],
  ['ff02::/16', /multicast/],
  ['10.244.128.0/17', /overlaps network "default"/],
  ['10.0.0.0/8', /overlaps network "default"/],
];

describe('overlay network ranges', () => {
  it('network add refuses each range that cannot carry container addresses, naming why, and stores nothing', async () => {
    for (const [cidr, why] of REFUSED) await refusedAdd(cidr, why);
  });

  it('network add accepts private, shared and public ranges of a sane size', async () => {
    for (const cidr of ['10.245.0.0/16', '100.64.0.0/10', '172.16.0.0/12', '8.0.0.0/8', 'fd00:10::/48', '2001:db8::/32', 'fd00::/16']) {
      const saved = await networkAdd(cidr);
      expect(saved.config.networks.at(-1)?.cidr).toBe(cidr);
      await updateClusterConfig(store, (cc) => ({ ...cc, networks: cc.networks.filter((n) => n.name !== 'added') }));
    }
  });

  it('saving a whole config refuses the same ranges', async () => {
    const err = await saveClusterConfig(store, { networks: [{ name: 'lo', vni: 1, cidr: '127.0.0.0/8', hostPrefixLength: 24 }] }).catch((e) => e);
    expect(err).toBeInstanceOf(ClusterConfigError);
    expect((err as ClusterConfigError).field).toBe('networks[0].cidr');
  });

  it('keeps a range stored before the rules: the cluster still loads it and can add networks beside it', async () => {
    const old = { networks: [{ name: 'wide', vni: 5, cidr: 'fc00::/7', hostPrefixLength: 64 }], leaseTtlSeconds: 60 };
    await store.put(CONFIG_KEY, JSON.stringify(old));
    expect((await loadClusterConfig(store)).networks[0].cidr).toBe('fc00::/7');
    const saved = await networkAdd('10.245.0.0/16');
    expect(saved.config.networks.map((n) => n.cidr)).toEqual(['fc00::/7', '10.245.0.0/16']);
    // but a new network there is judged
    await expect(updateClusterConfig(store, (cc) => ({ ...cc, networks: [...cc.networks, { name: 'lo', vni: 7, cidr: '127.0.0.0/8', hostPrefixLength: 24 }] })))
      .rejects.toThrow(/networks\[2\]\.cidr: .*loopback/);
  });

  it('draws the width line at /8 for IPv4 and /16 for IPv6', () => {
    expect(MIN_NETWORK_PREFIX).toEqual({ 4: 8, 6: 16 });
    expect(networkRangeProblem(parseCidr('10.0.0.0/8'))).toBeUndefined();
    expect(networkRangeProblem(parseCidr('10.0.0.0/7'))).toMatch(/too wide/);
    expect(networkRangeProblem(parseCidr('fd00::/16'))).toBeUndefined();
    expect(networkRangeProblem(parseCidr('fd00::/15'))).toMatch(/too wide/);
  });
});

// The lease manager on the embedded SQLite store (a real file in a temp dir)
// and on a real etcd, with an injected clock so TTLs and grace periods pass without sleeping.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../controller/store/sqlite';
import { openEtcdStore } from '../../controller/store/etcd';
import { type EtcdInstance, startEtcd } from '../helpers/etcd';
import type { Store } from '../../controller/store/types';
import {
  type Lease, LeaseLostError, LeaseRequestError, OrphanedLeasesError, PoolExhaustedError, UnknownNetworkError,
  ClusterConfigError, acquireLease, listLeases, loadClusterConfig, parseCidr, reclaimExpired, releaseLease,
  renewLease, saveClusterConfig, watchLeases,
} from '../../controller/ipam';
import { cidrContains, cidrOverlaps } from '../../controller/common/cidr';

let dir: string | undefined;
let store: Store;
let t: number;
const clock = { now: () => t };
const T0 = Date.UTC(2025, 0, 1);

const inside = (lease: Lease, cidr: string) => cidrContains(parseCidr(cidr), parseCidr(lease.subnet));

// Same suite on both stores: the lease manager must not care which one it runs on.
describe.each(['sqlite', 'etcd'] as const)('on %s', (kind) => {
  let etcd: EtcdInstance | undefined;
  beforeAll(async () => {
    if (kind === 'etcd') etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.stop();
  });
  beforeEach(async () => {
    t = T0;
    if (kind === 'sqlite') {
      dir = mkdtempSync(join(tmpdir(), 'weft-ipam-'));
      store = openSqliteStore(join(dir, 'weft.db'));
    } else {
      store = await openEtcdStore(etcd!.endpoint);
      await store.deletePrefix('/weft/');
    }
  });
  afterEach(async () => {
    await store.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  describe('acquireLease', () => {
    it('leases a /24 of the default network and is sticky for the same host', async () => {
      const a = await acquireLease(store, { network: 'default', host: 'node-1' }, clock);
      expect(a).toMatchObject({ network: 'default', host: 'node-1', acquiredAt: T0, expiresAt: T0 + 60_000 });
      expect(a.subnet).toMatch(/^10\.244\.\d+\.0\/24$/);
      expect(a.revision).toBeGreaterThan(0);

      t += 30_000;
      const again = await acquireLease(store, { network: 'default', host: 'node-1' }, clock);
      expect(again.subnet).toBe(a.subnet);
      expect(again.acquiredAt).toBe(T0);
      expect(again.expiresAt).toBe(t + 60_000);
      expect(again.revision).toBeGreaterThan(a.revision);

      const b = await acquireLease(store, { network: 'default', host: 'node-2' }, clock);
      expect(b.subnet).not.toBe(a.subnet);
      const { leases } = await listLeases(store);
      expect(leases.map((l) => l.host).sort()).toEqual(['node-1', 'node-2']);
    });

    it('gives one lease to a host that asks many times at once', async () => {
      const got = await Promise.all(Array.from({ length: 8 }, () => acquireLease(store, { network: 'default', host: 'racer' }, clock)));
      expect(new Set(got.map((l) => l.subnet)).size).toBe(1);
      expect((await listLeases(store, 'default')).leases).toHaveLength(1);
    });

    it('ignores a stale host index and never takes another host\'s subnet', async () => {
      const a = await acquireLease(store, { network: 'default', host: 'a' }, clock);
      // b's index wrongly names a's subnet (a hand edit, or a crash of some older tool)
      await store.put('/weft/lease-hosts/default/b', a.subnet.replace('/', '-'));
      const b = await acquireLease(store, { network: 'default', host: 'b' }, clock);
      expect(b.subnet).not.toBe(a.subnet);
      expect((await store.get('/weft/lease-hosts/default/b'))?.value).toBe(b.subnet.replace('/', '-'));
      expect(await releaseLease(store, a)).toBe(true);
      expect((await store.get('/weft/lease-hosts/default/b'))?.value).toBe(b.subnet.replace('/', '-'));
      expect((await listLeases(store)).leases.map((l) => l.host)).toEqual(['b']);
    });

    it('never hands out a subnet twice under in-process concurrency', async () => {
      const got = await Promise.all(Array.from({ length: 100 }, (_, i) => acquireLease(store, { network: 'default', host: `h${i}` }, clock)));
      expect(new Set(got.map((l) => l.subnet)).size).toBe(100);
      expect((await listLeases(store)).leases).toHaveLength(100);
    });

    it('refuses bad requests clearly', async () => {
      await expect(acquireLease(store, { network: 'nope', host: 'h' })).rejects.toThrow(UnknownNetworkError);
      await expect(acquireLease(store, { network: 'nope', host: 'h' })).rejects.toThrow(/unknown network "nope" \(configured: "default"\)/);
      await expect(acquireLease(store, { network: 'default', host: 'a/b' })).rejects.toThrow(LeaseRequestError);
      await expect(acquireLease(store, { network: 'default', host: '' })).rejects.toThrow(/invalid host name ""/);
      await expect(acquireLease(store, { network: 'Default', host: 'h' })).rejects.toThrow(/invalid network name "Default"/);
      await expect(acquireLease(store, { network: 'default', host: 'h', datacenter: 'DC 1' })).rejects.toThrow(/invalid datacenter name/);
      await expect(renewLease(store, { network: 'default', subnet: '10.244.0.1/24', host: 'h' })).rejects.toThrow(/host bits set/);
    });

    it('names the pool when it is exhausted, and recovers after a release', async () => {
      await saveClusterConfig(store, { networks: [{ name: 'small', vni: 9, cidr: '10.9.0.0/22', hostPrefixLength: 24 }] });
      const got = [];
      for (let i = 0; i < 4; i++) got.push(await acquireLease(store, { network: 'small', host: `h${i}` }, clock));
      expect(new Set(got.map((l) => l.subnet))).toEqual(new Set(['10.9.0.0/24', '10.9.1.0/24', '10.9.2.0/24', '10.9.3.0/24']));
      const err = await acquireLease(store, { network: 'small', host: 'h4' }, clock).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PoolExhaustedError);
      expect((err as Error).message).toBe('network "small" pool 10.9.0.0/22 has no free /24 subnet (4 in use)');

      expect(await releaseLease(store, got[2])).toBe(true);
      expect(await releaseLease(store, got[2])).toBe(false); // idempotent
      const h4 = await acquireLease(store, { network: 'small', host: 'h4' }, clock);
      expect(h4.subnet).toBe(got[2].subnet);
    });
  });

  describe('renew, expiry and reclaim', () => {
    it('renews by CAS, refuses another host, and reports a lost lease', async () => {
      const a = await acquireLease(store, { network: 'default', host: 'node-1' }, clock);
      t += 50_000;
      const r = await renewLease(store, a, clock);
      expect(r).toMatchObject({ subnet: a.subnet, host: 'node-1', expiresAt: t + 60_000, acquiredAt: T0 });
      await expect(renewLease(store, { ...a, host: 'intruder' }, clock)).rejects.toThrow(/now belongs to host "node-1"/);
      await releaseLease(store, a);
      await expect(renewLease(store, a, clock)).rejects.toThrow(LeaseLostError);
      await expect(renewLease(store, a, clock)).rejects.toThrow(/released or reclaimed/);
    });

    it('keeps an expired lease through the grace period, then reclaims it; the host comes back and re-leases', async () => {
      const a = await acquireLease(store, { network: 'default', host: 'sleepy' }, clock);
      const b = await acquireLease(store, { network: 'default', host: 'awake' }, clock);

      // Expired but within grace (TTL 60 s, grace 600 s): nothing reclaimed, and the host gets the same subnet back.
      t = T0 + 60_000 + 300_000;
      expect((await reclaimExpired(store, t)).reclaimed).toEqual([]);
      const back = await acquireLease(store, { network: 'default', host: 'sleepy' }, clock);
      expect(back.subnet).toBe(a.subnet);

      // Only "awake" keeps renewing; "sleepy" disappears again.
      const expirySleepy = back.expiresAt;
      t = expirySleepy + 600_000 - 1;
      await renewLease(store, b, clock);
      expect((await reclaimExpired(store, t)).reclaimed).toEqual([]);
      t = expirySleepy + 600_000;
      const { reclaimed, malformed } = await reclaimExpired(store, t);
      expect(malformed).toEqual([]);
      expect(reclaimed).toHaveLength(1);
      expect(reclaimed[0]).toMatchObject({ host: 'sleepy', subnet: a.subnet, expiresAt: expirySleepy });
      expect((await listLeases(store)).leases.map((l) => l.host)).toEqual(['awake']);

      // The reclaimed host's heartbeat learns it lost the lease, then simply leases again.
      await expect(renewLease(store, back, clock)).rejects.toThrow(LeaseLostError);
      const fresh = await acquireLease(store, { network: 'default', host: 'sleepy' }, clock);
      expect(fresh.acquiredAt).toBe(t);
      expect(fresh.subnet).not.toBe(b.subnet);
    });

    it('a renewal that lands before the reclaim wins', async () => {
      const a = await acquireLease(store, { network: 'default', host: 'h' }, clock);
      t = a.expiresAt + 600_000 + 1;
      await renewLease(store, a, clock); // heartbeat arrives just in time
      expect((await reclaimExpired(store, t)).reclaimed).toEqual([]);
    });

    it('reports malformed lease records instead of throwing or deleting them', async () => {
      await store.put('/weft/leases/default/10.244.7.0-24', '{not json');
      const r = await reclaimExpired(store, t + 10 ** 9);
      expect(r.malformed).toHaveLength(1);
      expect(r.malformed[0].error.message).toMatch(/invalid JSON/);
      expect(await store.get('/weft/leases/default/10.244.7.0-24')).toBeDefined();
      // the subnet stays occupied: a /22 with one broken record leaves three
      await saveClusterConfig(store, { networks: [{ name: 'default', vni: 1, cidr: '10.244.4.0/22', hostPrefixLength: 24 }] });
      const got = new Set<string>();
      for (let i = 0; i < 3; i++) got.add((await acquireLease(store, { network: 'default', host: `h${i}` }, clock)).subnet);
      expect(got.has('10.244.7.0/24')).toBe(false);
      await expect(acquireLease(store, { network: 'default', host: 'h3' }, clock)).rejects.toThrow(PoolExhaustedError);
    });
  });

  describe('datacenter pools and networks', () => {
    const config = {
      networks: [
        { name: 'default', vni: 1, cidr: '10.244.0.0/16', hostPrefixLength: 24, datacenterPools: { 'dc-a': '10.244.0.0/23', 'dc-b': '10.244.128.0/24' } },
        { name: 'blue', vni: 2, cidr: '10.50.0.0/16', hostPrefixLength: 26 },
      ],
    };

    it('draws each host from its datacenter pool and says which pool ran dry', async () => {
      await saveClusterConfig(store, config);
      const a1 = await acquireLease(store, { network: 'default', host: 'a1', datacenter: 'dc-a' }, clock);
      const a2 = await acquireLease(store, { network: 'default', host: 'a2', datacenter: 'dc-a' }, clock);
      const b1 = await acquireLease(store, { network: 'default', host: 'b1', datacenter: 'dc-b' }, clock);
      expect(inside(a1, '10.244.0.0/23') && inside(a2, '10.244.0.0/23')).toBe(true);
      expect(b1.subnet).toBe('10.244.128.0/24');
      expect(b1.datacenter).toBe('dc-b');
      await expect(acquireLease(store, { network: 'default', host: 'a3', datacenter: 'dc-a' }, clock)).rejects.toThrow(
        'network "default" datacenter "dc-a" pool 10.244.0.0/23 has no free /24 subnet (2 in use)',
      );
      await expect(acquireLease(store, { network: 'default', host: 'x' }, clock)).rejects.toThrow(/must name the host's datacenter/);
      await expect(acquireLease(store, { network: 'default', host: 'x', datacenter: 'dc-z' }, clock)).rejects.toThrow(
        /no pool for datacenter "dc-z" \(pools: dc-a, dc-b\)/,
      );
    });

    it('moves a host that changed datacenter, freeing its old subnet in the same write', async () => {
      await saveClusterConfig(store, config);
      const a1 = await acquireLease(store, { network: 'default', host: 'mover', datacenter: 'dc-a' }, clock);
      const moved = await acquireLease(store, { network: 'default', host: 'mover', datacenter: 'dc-b' }, clock);
      expect(moved.subnet).toBe('10.244.128.0/24');
      const { leases } = await listLeases(store, 'default');
      expect(leases.map((l) => l.subnet)).toEqual([moved.subnet]);
      expect(leases.some((l) => l.subnet === a1.subnet)).toBe(false);
    });

    it('keeps networks apart: one host holds one lease per network, each from its own range', async () => {
      await saveClusterConfig(store, config);
      const d = await acquireLease(store, { network: 'default', host: 'h', datacenter: 'dc-a' }, clock);
      const b = await acquireLease(store, { network: 'blue', host: 'h' }, clock);
      expect(inside(b, '10.50.0.0/16')).toBe(true);
      expect(b.subnet.endsWith('/26')).toBe(true);
      expect(cidrOverlaps(parseCidr(d.subnet), parseCidr(b.subnet))).toBe(false);
      expect((await listLeases(store, 'blue')).leases.map((l) => l.subnet)).toEqual([b.subnet]);
      expect((await listLeases(store)).leases).toHaveLength(2);
      expect(await releaseLease(store, { network: 'blue', subnet: d.subnet, host: 'h' })).toBe(false);
    });
  });

  describe('saveClusterConfig', () => {
    it('stores a valid config, refuses an invalid one without touching the store', async () => {
      expect(await loadClusterConfig(store)).toMatchObject({ networks: [{ name: 'default' }] });
      await saveClusterConfig(store, { networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/16', hostPrefixLength: 25 }], mtu: 1400 });
      expect((await loadClusterConfig(store)).mtu).toBe(1400);
      await expect(saveClusterConfig(store, { vxlanPort: 70000 })).rejects.toThrow(ClusterConfigError);
      expect((await loadClusterConfig(store)).networks[0].hostPrefixLength).toBe(25);
    });

    it('refuses a change that would orphan live (even expired) leases, and allows it once they are gone', async () => {
      await saveClusterConfig(store, { networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/22', hostPrefixLength: 24 }] });
      const leases: Lease[] = [];
      for (let i = 0; i < 4; i++) leases.push(await acquireLease(store, { network: 'default', host: `h${i}` }, clock));
      const high = leases.filter((l) => !inside(l, '10.244.0.0/23'));
      expect(high).toHaveLength(2);
      t += 3_600_000; // all expired, none reclaimed yet: still live

      const shrink = { networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/23', hostPrefixLength: 24 }] };
      const err = await saveClusterConfig(store, shrink).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OrphanedLeasesError);
      expect((err as Error).message).toMatch(/would orphan 2 live lease\(s\)/);
      expect((err as Error).message).toMatch(/outside the network's CIDR 10\.244\.0\.0\/23/);
      expect((await loadClusterConfig(store)).networks[0].cidr).toBe('10.244.0.0/22');

      await expect(saveClusterConfig(store, { networks: [{ name: 'other', vni: 1, cidr: '10.244.0.0/16', hostPrefixLength: 24 }] })).rejects.toThrow(
        /network "default" would no longer exist/,
      );
      await expect(saveClusterConfig(store, { networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/22', hostPrefixLength: 25 }] })).rejects.toThrow(
        /hosts now get \/25/,
      );
      await expect(
        saveClusterConfig(store, { networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/22', hostPrefixLength: 24, datacenterPools: { dc1: '10.244.0.0/23' } }] }),
      ).rejects.toThrow(/datacenter pools but the lease has no datacenter/);

      // Growing is fine; shrinking works once the high leases are reclaimed.
      await saveClusterConfig(store, { networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/21', hostPrefixLength: 24 }] });
      for (const l of high) await releaseLease(store, l);
      await saveClusterConfig(store, shrink);
      expect((await loadClusterConfig(store)).networks[0].cidr).toBe('10.244.0.0/23');
    });

    // A real store whose first txn first runs `before` on the same store: a deterministic interleaving
    // of two writers, without a mock.
    function interleaved(before: () => Promise<unknown>): Store {
      let fired = false;
      return Object.assign({}, store, {
        async txn(...args: Parameters<Store['txn']>) {
          if (!fired) {
            fired = true;
            await before().catch(() => undefined);
          }
          return store.txn(...args);
        },
      });
    }
    const net22 = (cidr: string) => ({ networks: [{ name: 'default', vni: 1, cidr, hostPrefixLength: 24 }] });

    it('makes a claim that read the old config retry against the new one', async () => {
      await saveClusterConfig(store, net22('10.244.0.0/22'));
      const racing = interleaved(() => saveClusterConfig(store, net22('10.244.8.0/22')));
      const l = await acquireLease(racing, { network: 'default', host: 'h' }, clock);
      expect((await loadClusterConfig(store)).networks[0].cidr).toBe('10.244.8.0/22');
      expect(inside(l, '10.244.8.0/22')).toBe(true);
      expect((await listLeases(store)).leases).toHaveLength(1);
    });

    it('rolls back a config whose write raced a claim it would orphan', async () => {
      await saveClusterConfig(store, net22('10.244.0.0/22'));
      const racing = interleaved(() => acquireLease(store, { network: 'default', host: 'sneaky' }, clock));
      const err = await saveClusterConfig(racing, net22('10.244.8.0/22')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OrphanedLeasesError);
      expect((err as Error).message).toMatch(/host "sneaky"/);
      expect((await loadClusterConfig(store)).networks[0].cidr).toBe('10.244.0.0/22');
    });
  });

  describe('watchLeases', () => {
    it('streams added, renewed and removed leases from a listed revision', async () => {
      const { revision } = await listLeases(store);
      const ac = new AbortController();
      const seen: Array<[string, string]> = [];
      const done = (async () => {
        for await (const batch of watchLeases(store, { fromRevision: revision + 1, signal: ac.signal })) {
          for (const e of batch.events) seen.push([e.type, e.lease.host]);
          if (seen.length >= 3) ac.abort();
        }
      })().catch((err: unknown) => {
        if (!ac.signal.aborted) throw err;
      });
      const a = await acquireLease(store, { network: 'default', host: 'w' }, clock);
      await renewLease(store, a, clock);
      await releaseLease(store, a);
      await Promise.race([done, new Promise((_, rej) => setTimeout(() => rej(new Error(`watch saw only ${JSON.stringify(seen)}`)), 10_000))]);
      expect(seen).toEqual([
        ['added', 'w'],
        ['renewed', 'w'],
        ['removed', 'w'],
      ]);
    });
  });
});

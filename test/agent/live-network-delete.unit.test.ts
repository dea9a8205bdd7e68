// `weft network delete` in the store: the config, the network's leases and
// host index go in one write; endpoints make it refuse unless forced; and
// after it no host can hold or claim a subnet of the network.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initClusterConfig, readClusterConfig, updateClusterConfig } from '../../controller/ipam/cluster-config';
import { ClusterConfigError, UnknownNetworkError } from '../../controller/ipam/errors';
import { acquireLease, hostLeases, listLeases, renewLease } from '../../controller/ipam/leases';
import { deleteNetwork } from '../../controller/service/network-removal';
import { registerEndpoint, listEndpoints } from '../../controller/registry/endpoints';
import { openSqliteStore } from '../../controller/store/sqlite';
import type { Store } from '../../controller/store/types';

let dir: string;
let store: Store;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'weft-net-delete-'));
  store = openSqliteStore(join(dir, 'weft.db'));
  await initClusterConfig(store);
  await updateClusterConfig(store, (cc) => ({ ...cc, networks: [...cc.networks, { name: 'blue', vni: 2, cidr: '10.245.0.0/16', hostPrefixLength: 24 }] }));
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const endpoint = (ip: string, host: string) => ({ network: 'blue', ip, containerId: 'c'.repeat(64), host, labels: {}, ifname: 'eth0' });

describe('deleteNetwork', () => {
  it('removes the network with every lease and host index entry in it, and leaves the other networks alone', async () => {
    const a = await acquireLease(store, { network: 'blue', host: 'h1' });
    const b = await acquireLease(store, { network: 'blue', host: 'h2' });
    const d = await acquireLease(store, { network: 'default', host: 'h1' });
    const res = await deleteNetwork(store, 'blue');
    expect(res.deleted).toBe(true);
    if (!res.deleted) return;
    expect(res.leases.sort((x, y) => x.host.localeCompare(y.host))).toEqual([{ subnet: a.subnet, host: 'h1' }, { subnet: b.subnet, host: 'h2' }]);
    expect((await readClusterConfig(store)).config.networks.map((n) => n.name)).toEqual(['default']);
    expect((await listLeases(store)).leases.map((l) => `${l.network} ${l.host} ${l.subnet}`)).toEqual([`default h1 ${d.subnet}`]);
    expect((await store.range('/weft/lease-hosts/blue/')).kvs).toEqual([]);
    expect(await hostLeases(store, 'h1', ['blue'])).toEqual([]);
    // a host renewing or claiming in it now is told the network is unknown
    await expect(renewLease(store, { network: 'blue', subnet: a.subnet, host: 'h1' })).rejects.toBeInstanceOf(UnknownNetworkError);
    await expect(acquireLease(store, { network: 'blue', host: 'h3' })).rejects.toBeInstanceOf(UnknownNetworkError);
  });

  it('refuses while the network has endpoints, naming them, and with force removes them too', async () => {
    await acquireLease(store, { network: 'blue', host: 'h1' });
    await registerEndpoint(store, endpoint('10.245.9.2', 'h1'));
    const refused = await deleteNetwork(store, 'blue');
    expect(refused).toEqual({ deleted: false, endpoints: 1, sample: ['10.245.9.2 (host h1, container cccccccccccc)'] });
    // nothing changed
    expect((await readClusterConfig(store)).config.networks.map((n) => n.name)).toEqual(['default', 'blue']);
    expect((await listLeases(store, 'blue')).leases).toHaveLength(1);

    const forced = await deleteNetwork(store, 'blue', { force: true });
    expect(forced).toMatchObject({ deleted: true, endpoints: 1 });
    expect((await listEndpoints(store, { network: 'blue' })).endpoints).toEqual([]);
  });

  it('refuses an unknown network and the only network, changing nothing', async () => {
    await expect(deleteNetwork(store, 'green')).rejects.toThrow(UnknownNetworkError);
    expect((await deleteNetwork(store, 'blue')).deleted).toBe(true);
    const err = await deleteNetwork(store, 'default').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClusterConfigError);
    expect((err as Error).message).toBe('networks: cannot delete "default": it is the cluster\'s only network (add another first)');
    expect((await readClusterConfig(store)).config.networks.map((n) => n.name)).toEqual(['default']);
  });

  it('a network added again under the same name starts with no leases', async () => {
    await acquireLease(store, { network: 'blue', host: 'h1' });
    await deleteNetwork(store, 'blue');
    await updateClusterConfig(store, (cc) => ({ ...cc, networks: [...cc.networks, { name: 'blue', vni: 2, cidr: '10.245.0.0/16', hostPrefixLength: 24 }] }));
    expect((await listLeases(store, 'blue')).leases).toEqual([]);
    expect((await acquireLease(store, { network: 'blue', host: 'h2' })).host).toBe('h2');
  });
});

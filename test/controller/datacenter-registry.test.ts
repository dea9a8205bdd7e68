// Datacenter writes racing each other, against the embedded SQLite store and
// a real etcd, each writer on its own store client (as two controllers
// would be): every change reported as done is in the record, and no
// combination of changes that each kept the rules breaks them together.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveClusterConfig } from '../../controller/ipam/cluster-config';
import {
  DatacenterExistsError, GatewayRuleError, addGateway, createDatacenter, deleteDatacenter, drainGateway, getDatacenter, removeGateway,
} from '../../controller/registry/datacenters';
import { RecordNotFoundError } from '../../controller/registry/errors';
import { putHost } from '../../controller/registry/hosts';
import type { Store } from '../../controller/store/types';
import { bothStores } from '../helpers/stores';

let prefix = 0;
const backends = bothStores('dc-registry');

const key = (n: number) => Buffer.alloc(32, n).toString('base64');
const outcome = (p: Promise<unknown>) => p.then(() => 'ok' as const, (e: Error) => e);

for (const b of backends) {
  describe(`datacenter writes on ${b.name}`, () => {
    let one: Store;
    let two: Store;
    beforeAll(async () => {
      await b.setup();
      one = await b.open();
      two = await b.open();
      await saveClusterConfig(one, {});
    });
    afterAll(async () => {
      await one?.close();
      await two?.close();
      await b.teardown();
    });

    /** A fresh datacenter name with `n` registered hosts in it, h<dc>-0 .. h<dc>-(n-1). */
    async function site(n: number): Promise<{ dc: string; hosts: string[] }> {
      const dc = `dc${++prefix}`;
      const hosts: string[] = [];
      for (let i = 0; i < n; i++) {
        const name = `${dc}-h${i}`;
        const x = prefix * 16 + i;
        await putHost(one, {
          name, underlayIp: `192.168.${prefix}.${i + 1}`, vtepMac: `02:00:00:00:${prefix.toString(16).padStart(2, '0')}:${i.toString(16).padStart(2, '0')}`,
          rack: 'r1', datacenter: dc, wgPublicKey: key(x), agentVersion: 'test', lastHeartbeat: Date.now(),
        });
        hosts.push(name);
      }
      return { dc, hosts };
    }

    const input = (dc: string, gateways: string[]) => ({
      name: dc, gateways: gateways.map((host) => ({ host, wanEndpoint: '' })), listenPort: 51820, mtu: 0, mesh: false, allowSingleGateway: false,
    });

    it('keeps every concurrently added gateway', async () => {
      const { dc, hosts } = await site(10);
      await createDatacenter(one, input(dc, hosts.slice(0, 2)));
      const results = await Promise.all(hosts.slice(2).map((host, i) => addGateway(i % 2 ? one : two, dc, { host, wanEndpoint: `198.51.100.${i + 1}:51820` })));
      const stored = await getDatacenter(one, dc);
      expect(stored!.gateways.map((g) => g.host).sort()).toEqual([...hosts].sort());
      // each add saw the record as it was after the adds before it: the last one reports them all
      const revs = results.map((r) => r.revision);
      expect(new Set(revs).size).toBe(revs.length);
      expect(results.find((r) => r.revision === Math.max(...revs))!.datacenter.gateways).toHaveLength(10);
    });

    it('two removals that each keep two gateways cannot together leave one', async () => {
      for (let round = 0; round < 5; round++) {
        const { dc, hosts } = await site(3);
        await createDatacenter(one, input(dc, hosts));
        const [a, c] = await Promise.all([outcome(removeGateway(one, dc, hosts[0])), outcome(removeGateway(two, dc, hosts[1]))]);
        const results = [a, c];
        expect(results.filter((r) => r === 'ok'), `round ${round}: ${results}`).toHaveLength(1);
        const refused = results.find((r) => r !== 'ok');
        expect(refused).toBeInstanceOf(GatewayRuleError);
        expect((refused as GatewayRuleError).message).toMatch(/would have 1 gateway; it needs at least 2/);
        expect((await getDatacenter(one, dc))!.gateways).toHaveLength(2);
      }
    });

    it('two drains cannot together leave no active gateway', async () => {
      for (let round = 0; round < 5; round++) {
        const { dc, hosts } = await site(2);
        await createDatacenter(one, input(dc, hosts));
        const results = await Promise.all([outcome(drainGateway(one, dc, hosts[0])), outcome(drainGateway(two, dc, hosts[1]))]);
        expect(results.filter((r) => r === 'ok'), `round ${round}`).toHaveLength(1);
        expect((await getDatacenter(one, dc))!.gateways.filter((g) => g.state === 'active')).toHaveLength(1);
      }
    });

    it('of two datacenters taking one WAN endpoint at once exactly one gets it', async () => {
      for (let round = 0; round < 5; round++) {
        const a = await site(3);
        const b = await site(3);
        await createDatacenter(one, input(a.dc, a.hosts.slice(0, 2)));
        await createDatacenter(one, input(b.dc, b.hosts.slice(0, 2)));
        const wan = `198.51.100.${200 + round}:51820`;
        const results = await Promise.all([
          outcome(addGateway(one, a.dc, { host: a.hosts[2], wanEndpoint: wan })),
          outcome(addGateway(two, b.dc, { host: b.hosts[2], wanEndpoint: wan })),
        ]);
        expect(results.filter((r) => r === 'ok'), `round ${round}`).toHaveLength(1);
        expect((results.find((r) => r !== 'ok') as Error).message).toContain(`WAN endpoint ${wan} is already gateway`);
        const holders = [...(await getDatacenter(one, a.dc))!.gateways, ...(await getDatacenter(one, b.dc))!.gateways].filter((g) => g.wanEndpoint === wan);
        expect(holders).toHaveLength(1);
      }
    });

    it('of two creates of one name exactly one wins', async () => {
      const { dc, hosts } = await site(2);
      const results = await Promise.all([outcome(createDatacenter(one, input(dc, hosts))), outcome(createDatacenter(two, { ...input(dc, hosts), mesh: true }))]);
      expect(results.filter((r) => r === 'ok')).toHaveLength(1);
      expect(results.find((r) => r !== 'ok')).toBeInstanceOf(DatacenterExistsError);
    });

    it('a gateway change racing a delete never brings the datacenter back', async () => {
      const { dc, hosts } = await site(3);
      await createDatacenter(one, input(dc, hosts.slice(0, 2)));
      const [added, deleted] = await Promise.all([outcome(addGateway(two, dc, { host: hosts[2], wanEndpoint: '' })), deleteDatacenter(one, dc, { force: true })]);
      expect(deleted.deleted).toBe(true);
      expect(added === 'ok' || added instanceof RecordNotFoundError).toBe(true);
      expect(await getDatacenter(one, dc)).toBeUndefined();
    });
  });
}

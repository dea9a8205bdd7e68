// Key rotation's registry writes racing each other, against the embedded
// SQLite store and a real etcd, each writer on its own store client (as two
// controllers would be): two gateways of one datacenter draining themselves
// at once never leave it without an active one (the refused one gets the
// code a rotating agent matches), a new WireGuard key claimed by two hosts at
// once goes to exactly one, and rotation requests landing with heartbeats
// and re-registrations are neither lost nor undone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveClusterConfig } from '../../controller/ipam/cluster-config';
import { LastActiveGatewayError, createDatacenter, getDatacenter, setOwnGatewayState } from '../../controller/registry/datacenters';
import { HostConflictError } from '../../controller/registry/errors';
import { getHost, putHost, registerHost, requestKeyRotation, setHostWireGuardKey, touchHost } from '../../controller/registry/hosts';
import type { Store } from '../../controller/store/types';
import { bothStores } from '../helpers/stores';

let prefix = 0;
const backends = bothStores('tunnel-registry');

const key = (n: number) => Buffer.alloc(32, n % 256).toString('base64');
const outcome = (p: Promise<unknown>) => p.then(() => 'ok' as const, (e: Error) => e);

for (const b of backends) {
  describe(`key rotation writes on ${b.name}`, () => {
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

    /** A fresh datacenter with `n` registered hosts, all of them its gateways. */
    async function site(n: number): Promise<{ dc: string; hosts: string[] }> {
      const dc = `kr${++prefix}`;
      const hosts: string[] = [];
      for (let i = 0; i < n; i++) {
        const name = `${dc}-h${i}`;
        await putHost(one, {
          name, underlayIp: `192.168.${prefix}.${i + 1}`, vtepMac: `02:00:00:00:${prefix.toString(16).padStart(2, '0')}:${i.toString(16).padStart(2, '0')}`,
          rack: 'r1', datacenter: dc, wgPublicKey: key(prefix * 16 + i), agentVersion: 'test', lastHeartbeat: Date.now(),
        });
        hosts.push(name);
      }
      await createDatacenter(one, { name: dc, gateways: hosts.map((host) => ({ host, wanEndpoint: '' })), listenPort: 51820, mtu: 0, mesh: false, allowSingleGateway: false });
      return { dc, hosts };
    }

    it('two gateways draining themselves at once: one drains, the other is told it is the last active one', async () => {
      for (let round = 0; round < 5; round++) {
        const { dc, hosts } = await site(2);
        const results = await Promise.all([outcome(setOwnGatewayState(one, hosts[0], 'draining')), outcome(setOwnGatewayState(two, hosts[1], 'draining'))]);
        expect(results.filter((r) => r === 'ok'), `round ${round}`).toHaveLength(1);
        const refused = results.find((r) => r !== 'ok');
        expect(refused).toBeInstanceOf(LastActiveGatewayError);
        expect((refused as LastActiveGatewayError).code).toBe('WEFT_GATEWAY_LAST_ACTIVE');
        expect((await getDatacenter(one, dc))!.gateways.filter((g) => g.state === 'active')).toHaveLength(1);
      }
    });

    it('drain and undrain of one gateway from two clients end in the state written last, with every write its own revision', async () => {
      const { dc, hosts } = await site(3);
      const r1 = await setOwnGatewayState(one, hosts[0], 'draining');
      const r2 = await setOwnGatewayState(two, hosts[0], 'active');
      expect(r1.datacenters).toEqual([dc]);
      expect(r2.revision).toBeGreaterThan(r1.revision);
      expect((await getDatacenter(one, dc))!.gateways.map((g) => g.state)).toEqual(['active', 'active', 'active']);
      expect(await setOwnGatewayState(one, 'not-a-gateway', 'draining')).toEqual({ datacenters: [], revision: expect.any(Number) });
    });

    it('of two hosts claiming one new key at once exactly one gets it, and the loser keeps its own', async () => {
      for (let round = 0; round < 5; round++) {
        const { hosts } = await site(2);
        const fresh = key(200 + round);
        const opts = { now: Date.now() };
        const results = await Promise.all([outcome(setHostWireGuardKey(one, hosts[0], fresh, opts)), outcome(setHostWireGuardKey(two, hosts[1], fresh, opts))]);
        expect(results.filter((r) => r === 'ok'), `round ${round}`).toHaveLength(1);
        expect(results.find((r) => r !== 'ok')).toBeInstanceOf(HostConflictError);
        const keys = [(await getHost(one, hosts[0]))!.wgPublicKey, (await getHost(one, hosts[1]))!.wgPublicKey];
        expect(keys.filter((k) => k === fresh)).toHaveLength(1);
        expect(keys.every((k) => k !== '')).toBe(true);
      }
    });

    it('a rotation request landing between a key change\'s read and its write is kept (the write is retried, not made from the old read)', async () => {
      const { hosts } = await site(2);
      const [h] = hosts;
      await requestKeyRotation(one, [h]); // generation 1, which the key change reads
      // `one` as the key change's store: right after it reads the host record, another client asks for a rotation
      let injected = false;
      const racing: Store = {
        ...one,
        get: async (k: string) => {
          const kv = await one.get(k);
          if (!injected && k.endsWith(`/${h}`)) {
            injected = true;
            await requestKeyRotation(two, [h]);
          }
          return kv;
        },
      };
      await setHostWireGuardKey(racing, h, key(251), { now: Date.now() });
      expect(injected).toBe(true);
      const after = (await getHost(one, h))!;
      expect(after.wgPublicKey).toBe(key(251));
      expect(after.wgKeyRotation).toBe(2);
    });

    it('rotation requests racing heartbeats, key changes and re-registration are all kept', async () => {
      const { hosts } = await site(2);
      const [h] = hosts;
      const beats = Array.from({ length: 10 }, (_, i) => touchHost(i % 2 ? one : two, h, Date.now()));
      const asks = Array.from({ length: 6 }, (_, i) => requestKeyRotation(i % 2 ? one : two, [h]));
      const change = setHostWireGuardKey(two, h, key(250), { now: Date.now() });
      const res = await Promise.all([...asks, ...beats, change]);
      // six requests, six generations, none lost to another writer
      const gens = res.slice(0, 6).map((r) => (r as Awaited<ReturnType<typeof requestKeyRotation>>).hosts[0].generation).sort((a, c) => a - c);
      expect(gens).toEqual([1, 2, 3, 4, 5, 6]);
      const after = (await getHost(one, h))!;
      expect(after.wgKeyRotation).toBe(6);
      expect(after.wgPublicKey).toBe(key(250));
      // a re-registration says nothing of rotation: the generation stays
      const { modRevision: _, ...record } = after;
      await registerHost(one, { ...record, wgKeyRotation: undefined, lastHeartbeat: Date.now() }, { now: Date.now() });
      expect((await getHost(one, h))!.wgKeyRotation).toBe(6);
    });
  });
}

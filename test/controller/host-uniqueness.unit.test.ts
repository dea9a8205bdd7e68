// A host's VTEP MAC, underlay address and WireGuard key are its alone: the
// agents drop one of two hosts that share a MAC or an address, so a token
// holder registering another host's value would cut that host off the
// overlay. The controller refuses the second claimant (ALREADY_EXISTS, the
// field named, the holder not), leaves the holder's record alone, decides
// races in the store transaction, and frees a value when its holder leaves,
// changes it, is gone, or has been silent past the lease TTL and grace.
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type HostRecord, checkHostClaims, putHost, registerHost as registerRecord } from '../../controller/registry/hosts';
import { HostConflictError } from '../../controller/registry/errors';
import { HOST_INDEX_PREFIX, hostIndexKey, hostKey } from '../../controller/registry/keys';
import { LEASE_HOSTS_PREFIX } from '../../controller/ipam/records';
import { type Harness, TEST_CONFIG, hostRequest, registerHost, startHarness, wgKeyFor } from './api-harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

async function refused(p: Promise<unknown>, field: string): Promise<grpc.ServiceError> {
  const err = (await p.then(
    (v) => {
      throw new Error(`expected ALREADY_EXISTS on ${field}, got a reply: ${JSON.stringify(v).slice(0, 300)}`);
    },
    (e) => e,
  )) as grpc.ServiceError;
  expect(grpc.status[err.code], err.details).toBe('ALREADY_EXISTS');
  expect(err.details.startsWith(`${field}: `), err.details).toBe(true);
  expect(err.details).toMatch(/another registered host/);
  return err;
}

/** Host n's values, as hostRequest makes them. */
const values = (n: number) => {
  const r = hostRequest('x', n);
  return { underlay_ip: r.underlay_ip, vtep_mac: r.vtep_mac, wg_public_key: r.wg_public_key };
};

describe('RegisterHost keeps MACs, underlay addresses and WireGuard keys unique', () => {
  for (const wire of ['vtep_mac', 'underlay_ip', 'wg_public_key'] as const) {
    it(`refuses a second host that claims the first's ${wire}, leaving the first untouched`, async () => {
      await registerHost(h, 'victim', 1);
      const before = await h.store.get(hostKey('victim'));
      const revision = await h.store.revision();

      const err = await refused(registerHost(h, 'attacker', 2, { [wire]: values(1)[wire] }), wire);
      expect(err.details).not.toMatch(/victim/); // the caller learns that the value is taken, not by whom

      expect(await h.store.get(hostKey('victim'))).toEqual(before);
      expect(await h.store.get(hostKey('attacker'))).toBeUndefined();
      // Refused before any lease was taken: nothing was written at all.
      expect(await h.store.revision()).toBe(revision);
      expect((await h.store.range(`${LEASE_HOSTS_PREFIX}default/attacker`)).kvs).toEqual([]);
      // The refusal is logged with the holder, for the operator.
      expect(h.logs.some((l) => l.msg === 'refused: host claims a value another host holds' && l.holder === 'victim' && l.field === wire)).toBe(true);
      // And the victim keeps working.
      expect((await h.call('Heartbeat', { name: 'victim' }, 'host:victim')).subnets).toHaveLength(TEST_CONFIG.networks.length);
      expect((await registerHost(h, 'victim', 1)).host[wire]).toBe(values(1)[wire]);
    });
  }

  it('compares canonical values: another spelling of the same MAC or address is the same value', async () => {
    await registerHost(h, 'v6', 1, { underlay_ip: 'fd00::1:5' });
    await refused(registerHost(h, 'a', 2, { underlay_ip: 'FD00:0:0:0:0:0:1:5' }), 'underlay_ip');
    await refused(registerHost(h, 'b', 3, { vtep_mac: values(1).vtep_mac.toUpperCase() }), 'vtep_mac');
  });

  it('lets a host re-register its own values, and frees the values it changes or leaves behind', async () => {
    await registerHost(h, 'h1', 1);
    await registerHost(h, 'h1', 1); // an agent restart
    // h1 moves to new values: its old ones are free at once.
    await registerHost(h, 'h1', 1, values(11));
    expect((await registerHost(h, 'h2', 2, values(1))).host.name).toBe('h2');
    // and its new ones are held
    await refused(registerHost(h, 'h3', 3, { vtep_mac: values(11).vtep_mac }), 'vtep_mac');
    // A host that leaves frees everything.
    await h.call('LeaveHost', { name: 'h1' }, 'host:h1');
    expect((await registerHost(h, 'h3', 3, values(11))).host.name).toBe('h3');
    // No entry is left naming a host that is gone.
    const index = (await h.store.range(HOST_INDEX_PREFIX)).kvs.map((kv) => kv.value);
    expect(new Set(index)).toEqual(new Set(['h2', 'h3']));
    expect(index).toHaveLength(6);
  });

  it('a host without WireGuard claims no key, so many can register with none', async () => {
    await registerHost(h, 'h1', 1, { wg_public_key: '' });
    await registerHost(h, 'h2', 2, { wg_public_key: '' });
    expect((await h.store.range(hostIndexKey('wg-public-key', ''))).kvs).toEqual([]);
  });

  it('is not blocked for ever by a stale index entry', async () => {
    // An entry naming a host that no longer exists (deleted by hand, or an unreadable record).
    await h.store.put(hostIndexKey('vtep-mac', values(1).vtep_mac), 'ghost');
    // An entry naming a host that exists but no longer has that value.
    await registerHost(h, 'mover', 5);
    await h.store.put(hostIndexKey('underlay-ip', values(1).underlay_ip), 'mover');
    expect((await registerHost(h, 'h1', 1)).host.name).toBe('h1');
    expect((await h.store.get(hostIndexKey('vtep-mac', values(1).vtep_mac)))?.value).toBe('h1');
    expect((await h.store.get(hostIndexKey('underlay-ip', values(1).underlay_ip)))?.value).toBe('h1');
  });

  it('frees the values of a host silent past the lease TTL and reclaim grace (its subnets are reclaimable), not sooner', async () => {
    await registerHost(h, 'old', 1);
    const goneAfterMs = (TEST_CONFIG.leaseTtlSeconds + 600) * 1000; // the harness config keeps the default grace
    h.clock.now += goneAfterMs; // exactly at the horizon: still the holder's
    await refused(registerHost(h, 'new', 2, { underlay_ip: values(1).underlay_ip }), 'underlay_ip');
    h.clock.now += 1;
    expect((await registerHost(h, 'new', 2, { underlay_ip: values(1).underlay_ip })).host.underlay_ip).toBe(values(1).underlay_ip);
    // The old host coming back cannot take it back.
    await refused(registerHost(h, 'old', 1), 'underlay_ip');
  });

  it('refuses values held by hosts registered before the index existed', async () => {
    const legacy: HostRecord = {
      name: 'legacy', underlayIp: values(1).underlay_ip, vtepMac: values(1).vtep_mac, rack: 'r1', datacenter: 'dc1',
      wgPublicKey: values(1).wg_public_key, agentVersion: '0.0.9', lastHeartbeat: h.clock.now,
    };
    await putHost(h.store, legacy); // no index entries, as an older controller wrote it
    await refused(registerHost(h, 'h2', 2, { vtep_mac: legacy.vtepMac }), 'vtep_mac');
    await refused(registerHost(h, 'h2', 2, { underlay_ip: legacy.underlayIp }), 'underlay_ip');
    await refused(registerHost(h, 'h2', 2, { wg_public_key: legacy.wgPublicKey }), 'wg_public_key');
    // The legacy host itself re-registers and gets its entries.
    await registerHost(h, 'legacy', 1);
    expect((await h.store.get(hostIndexKey('vtep-mac', legacy.vtepMac)))?.value).toBe('legacy');
  });

  it('lets exactly one of many hosts registering the same MAC at once win', async () => {
    const mac = '02:aa:00:00:00:01';
    const n = 8;
    const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => registerHost(h, `racer${i}`, 20 + i, { vtep_mac: mac })));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect(grpc.status[(r.reason as grpc.ServiceError).code], String(r.reason)).toBe('ALREADY_EXISTS');
    }
    const holders = (await h.store.range('/weft/hosts/')).kvs.filter((kv) => JSON.parse(kv.value).vtepMac === mac);
    expect(holders).toHaveLength(1);
  });
});

describe('registerHost in the store', () => {
  const rec = (name: string, n: number, over: Partial<HostRecord> = {}): HostRecord => ({
    name, underlayIp: `192.168.7.${n}`, vtepMac: `02:00:00:00:07:${n.toString(16).padStart(2, '0')}`, rack: '', datacenter: '',
    wgPublicKey: wgKeyFor(n), agentVersion: '1', lastHeartbeat: 0, ...over,
  });

  it('decides concurrent claims of one value in the transaction: exactly one commits', async () => {
    // Many rounds, so the claims interleave between their reads and their commits.
    for (let round = 0; round < 10; round++) {
      const mac = `02:bb:00:00:00:${round.toString(16).padStart(2, '0')}`;
      const results = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => registerRecord(h.store, rec(`r${round}-${i}`, round * 6 + i + 1, { vtepMac: mac }), { now: 0 })),
      );
      expect(results.filter((r) => r.status === 'fulfilled'), `round ${round}`).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(HostConflictError);
    }
  });

  it('commits the early check\'s plan only while the store is as it was read, and reads again when not', async () => {
    const mac = '02:cc:00:00:00:01';
    const late = rec('late', 1, { vtepMac: mac });
    const plan = await checkHostClaims(h.store, late, { now: 0 });
    // Another host takes the MAC between the check and the write (RegisterHost takes leases in that gap).
    await registerRecord(h.store, rec('first', 2, { vtepMac: mac }), { now: 0 });
    await expect(registerRecord(h.store, late, { now: 0 }, plan)).rejects.toBeInstanceOf(HostConflictError);
    expect((await h.store.get(hostIndexKey('vtep-mac', mac)))?.value).toBe('first');
    expect(await h.store.get(hostKey('late'))).toBeUndefined();

    // Unchanged, the plan is what registers the host.
    const other = rec('other', 3);
    const fresh = await checkHostClaims(h.store, other, { now: 0 });
    await registerRecord(h.store, other, { now: 0 }, fresh);
    expect((await h.store.get(hostIndexKey('vtep-mac', other.vtepMac)))?.value).toBe('other');
  });
});

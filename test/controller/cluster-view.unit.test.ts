// ListHosts and what heartbeats report for it: admin only, every host with
// its subnets and health, the overlay summary its agent last sent, kept out
// of the topology watch and costing no extra revision.
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Harness, registerHost, startHarness } from './api-harness';
import { hostHealth } from '../../controller/service/cluster-view';

let h: Harness;

beforeEach(async () => {
  h = await startHarness({ deps: { leader: () => 'ctl-2' } });
});
afterEach(async () => {
  await h?.close();
});

async function statusOf(p: Promise<unknown>): Promise<{ code: string; details: string }> {
  try {
    await p;
    return { code: 'OK', details: '' };
  } catch (e) {
    const err = e as grpc.ServiceError;
    return { code: grpc.status[err.code], details: err.details };
  }
}

const report = (o: Partial<Record<string, number>> = {}) => ({
  desired: 12, programmed: 11, failed: 1, skipped: 2, reconciled_at_unix_ms: 1_700_000_000_000, topology_revision: 9, ...o,
});

describe('ListHosts', () => {
  it('is for administrators only: hosts, ingresses and the anonymous are refused, and nothing is written', async () => {
    await registerHost(h, 'h1', 1);
    const before = await h.store.revision();
    expect(await statusOf(h.call('ListHosts', {}))).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(await statusOf(h.call('ListHosts', {}, 'host:h1'))).toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(await statusOf(h.call('ListHosts', {}, 'ingress:edge1'))).toMatchObject({
      code: 'PERMISSION_DENIED', details: expect.stringMatching(/ListHosts is not open to ingress "edge1"/),
    });
    expect(await statusOf(h.call('ListHosts', {}, 'admin'))).toMatchObject({ code: 'OK' });
    expect(await h.store.revision()).toBe(before);
  });

  it('lists every host with its subnets, lease expiry, health and the report of its last heartbeat', async () => {
    await registerHost(h, 'h2', 2, { rack: 'r2', datacenter: 'dc2' });
    await registerHost(h, 'h1', 1);
    await h.call('Heartbeat', { name: 'h1', agent_version: '0.2.0', overlay: report() }, 'host:h1');
    const list = await h.call('ListHosts', {}, 'admin');
    expect(list).toMatchObject({ lease_ttl_seconds: 60, now_unix_ms: h.clock.now, revision: await h.store.revision() });
    expect(list.hosts.map((s: any) => s.host.name)).toEqual(['h1', 'h2']);
    const [h1, h2] = list.hosts;
    expect(h1).toMatchObject({
      health: 'alive', heartbeat_age_ms: 0, reported_agent_version: '0.2.0', reported_at_unix_ms: h.clock.now, overlay: report(),
      host: { name: 'h1', rack: 'r1', datacenter: 'dc1', underlay_ip: '192.168.1.1', vtep_mac: '02:00:00:00:00:01', agent_version: '0.1.0' },
    });
    expect(h1.host.subnets.map((s: any) => s.network)).toEqual(['blue', 'default']);
    for (const s of h1.host.subnets) expect(s.lease_expires_at_unix_ms).toBe(h.clock.now + 60_000);
    // h2 never heartbeat with a report: it has none
    expect(h2).toMatchObject({ health: 'alive', overlay: null, reported_agent_version: '', reported_at_unix_ms: 0, host: { rack: 'r2', datacenter: 'dc2' } });
  });

  it('judges health from the last heartbeat against the lease TTL', async () => {
    await registerHost(h, 'h1', 1);
    const at = h.clock.now;
    const healthAfter = async (ms: number) => {
      h.clock.now = at + ms;
      const [s] = (await h.call('ListHosts', {}, 'admin')).hosts;
      expect(s.heartbeat_age_ms).toBe(ms);
      return s.health;
    };
    expect(await healthAfter(40_000)).toBe('alive');
    expect(await healthAfter(40_001)).toBe('stale');
    expect(await healthAfter(60_000)).toBe('stale');
    expect(await healthAfter(60_001)).toBe('expired');
    // a heartbeat (at the clock's 60 001 ms) makes it alive again
    await h.call('Heartbeat', { name: 'h1' }, 'host:h1');
    expect((await h.call('ListHosts', {}, 'admin')).hosts[0]).toMatchObject({ health: 'alive', heartbeat_age_ms: 0 });
    expect([hostHealth(0, 30), hostHealth(20_000, 30), hostHealth(20_001, 30), hostHealth(30_001, 30)]).toEqual(['alive', 'alive', 'stale', 'expired']);
  });
});

describe('heartbeat reports', () => {
  it('cost no extra revision and reach no topology watcher', async () => {
    await registerHost(h, 'h1', 1);
    await registerHost(h, 'h2', 2);
    const watch = h.open('WatchTopology', { from_revision: 0 }, 'host:h2');
    await watch.waitFor((m) => m.kind === 'SNAPSHOT');
    const r0 = await h.store.revision();
    await h.call('Heartbeat', { name: 'h1' }, 'host:h1');
    const plain = (await h.store.revision()) - r0;
    const r1 = await h.store.revision();
    await h.call('Heartbeat', { name: 'h1', agent_version: '0.2.0', overlay: report() }, 'host:h1');
    await h.call('Heartbeat', { name: 'h1', agent_version: '0.2.0', overlay: report({ programmed: 12, failed: 0 }) }, 'host:h1');
    expect((await h.store.revision()) - r1).toBe(2 * plain);
    // a change that matters to the overlay comes next, and nothing before it
    await registerHost(h, 'h3', 3);
    await watch.waitFor((m) => m.kind === 'HOST_PUT' && m.hosts[0]?.name === 'h3');
    expect(watch.msgs.map((m) => m.kind)).toEqual(['SNAPSHOT', 'HOST_PUT']);
    const [s] = (await h.call('ListHosts', {}, 'admin')).hosts;
    expect(s.overlay).toMatchObject({ programmed: 12, failed: 0 });
  });

  it('a heartbeat without a report keeps the last one; leaving drops it', async () => {
    await registerHost(h, 'h1', 1);
    await h.call('Heartbeat', { name: 'h1', agent_version: '0.2.0', overlay: report() }, 'host:h1');
    h.clock.now += 5000;
    await h.call('Heartbeat', { name: 'h1' }, 'host:h1');
    let [s] = (await h.call('ListHosts', {}, 'admin')).hosts;
    expect(s).toMatchObject({ overlay: report(), reported_agent_version: '0.2.0', reported_at_unix_ms: h.clock.now - 5000 });
    // a version without an overlay (an agent before its first reconcile) replaces the report
    await h.call('Heartbeat', { name: 'h1', agent_version: '0.3.0' }, 'host:h1');
    [s] = (await h.call('ListHosts', {}, 'admin')).hosts;
    expect(s).toMatchObject({ overlay: null, reported_agent_version: '0.3.0', reported_at_unix_ms: h.clock.now });

    await h.call('LeaveHost', { name: 'h1' }, 'host:h1');
    expect(await h.store.get('/weft/host-status/h1')).toBeUndefined();
    await registerHost(h, 'h1', 1);
    [s] = (await h.call('ListHosts', {}, 'admin')).hosts;
    expect(s).toMatchObject({ overlay: null, reported_agent_version: '' });
  });

  it('refuses a bad report with INVALID_ARGUMENT naming the field, and writes nothing', async () => {
    await registerHost(h, 'h1', 1);
    const before = await h.store.revision();
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ overlay: report({ programmed: 13 }) }, /^overlay\.programmed: 13 is more than desired \(12\)/],
      [{ agent_version: 'has space' }, /^agent_version: /],
      [{ agent_version: 'x'.repeat(65) }, /^agent_version: /],
    ];
    for (const [extra, msg] of cases) {
      const st = await statusOf(h.call('Heartbeat', { name: 'h1', ...extra }, 'host:h1'));
      expect(st.code, JSON.stringify(extra)).toBe('INVALID_ARGUMENT');
      expect(st.details).toMatch(msg);
    }
    expect(await h.store.revision()).toBe(before);
    // a host reports for itself only
    expect(await statusOf(h.call('Heartbeat', { name: 'h1', overlay: report() }, 'host:h2'))).toMatchObject({ code: 'PERMISSION_DENIED' });
  });

  it('survives a hand-broken report record: the host shows as having reported nothing', async () => {
    await registerHost(h, 'h1', 1);
    await h.store.put('/weft/host-status/h1', '{not json');
    const [s] = (await h.call('ListHosts', {}, 'admin')).hosts;
    expect(s).toMatchObject({ overlay: null, reported_agent_version: '' });
  });
});

describe('GetStatus', () => {
  it('names the leader and counts datacenters', async () => {
    await registerHost(h, 'h1', 1);
    await registerHost(h, 'h2', 2);
    await h.call('CreateDatacenter', { name: 'dc1', gateways: [{ host: 'h1' }, { host: 'h2' }] }, 'admin');
    const st = await h.call('GetStatus', {}, 'admin');
    expect(st).toMatchObject({ controller_id: 'test-controller', leader_id: 'ctl-2', datacenters: 1, hosts: 2 });
  });
});

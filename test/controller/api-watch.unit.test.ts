// WatchTopology and WatchServices over real gRPC and SQLite: snapshot, live
// changes, heartbeats kept off the stream, exact resume from a revision,
// compaction falling back to a snapshot, backend joins, and cancellation
// leaving no store watch behind (each kind's streams share one).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { saveClusterConfig } from '../../controller/ipam';
import { waitFor } from '../helpers/wait';
import { type Harness, TEST_CONFIG, registerHost, startHarness } from './api-harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const subnetIp = (host: any, network: string, last: number) =>
  (host.subnets.find((s: any) => s.network === network).subnet as string).replace(/\.0\/24$/, `.${last}`);

describe('WatchTopology', () => {
  it('sends a snapshot, then host and config changes, and no heartbeat noise', async () => {
    await registerHost(h, 'h1', 1);
    const w = h.open('WatchTopology', { from_revision: 0 }, 'host:h1');
    const snap = await w.waitFor((m) => m.kind === 'SNAPSHOT');
    expect(snap.revision).toBe(await h.store.revision());
    expect(snap.hosts.map((x: any) => x.name)).toEqual(['h1']);
    expect(snap.hosts[0].subnets).toHaveLength(2);
    expect(snap.config.networks).toHaveLength(2);

    const r2 = await registerHost(h, 'h2', 2);
    const put = await w.waitFor((m) => m.kind === 'HOST_PUT');
    expect(put.revision).toBe(r2.revision);
    expect(put.hosts).toHaveLength(1);
    expect(put.hosts[0]).toMatchObject({ name: 'h2', underlay_ip: '192.168.1.2', subnets: r2.host.subnets });

    // Heartbeats: lastHeartbeat and lease expiry move, the overlay does not.
    const count = w.msgs.length;
    h.clock.now += 10_000;
    await h.call('Heartbeat', { name: 'h1' }, 'host:h1');
    await h.call('Heartbeat', { name: 'h2' }, 'host:h2');
    const moved = await registerHost(h, 'h2', 2, { underlay_ip: '192.168.1.22' });
    const next = await w.waitFor((m) => m.kind === 'HOST_PUT', 5000, count);
    expect(w.msgs.length).toBe(count + 1);
    expect(next.revision).toBe(moved.revision);
    expect(next.hosts[0]).toMatchObject({ name: 'h2', underlay_ip: '192.168.1.22', last_heartbeat_unix_ms: h.clock.now });
    expect(next.hosts[0].subnets[0].lease_expires_at_unix_ms).toBe(h.clock.now + 60_000);

    // Dropping a network is a subnet change: HOST_PUT with one subnet.
    await registerHost(h, 'h2', 2, { underlay_ip: '192.168.1.22', networks: ['default'] });
    const narrowed = await w.waitFor((m) => m.kind === 'HOST_PUT' && m.hosts[0].subnets.length === 1);
    expect(narrowed.hosts[0].subnets[0].network).toBe('default');

    const left = await h.call('LeaveHost', { name: 'h2' }, 'host:h2');
    const del = await w.waitFor((m) => m.kind === 'HOST_DELETE');
    expect(del.host_name).toBe('h2');
    // The host record goes first; its leases and endpoints follow without further topology events.
    expect(del.revision).toBeLessThan(left.revision);

    const saved = await saveClusterConfig(h.store, { ...TEST_CONFIG, mtu: 1400 });
    const cfg = await w.waitFor((m) => m.kind === 'CONFIG');
    expect(cfg.revision).toBe(saved.revision);
    expect(cfg.config.mtu).toBe(1400);
    // Revisions only go up.
    const revs = w.msgs.map((m) => m.revision);
    expect([...revs].sort((a, b) => a - b)).toEqual(revs);
    expect(new Set(revs).size).toBe(revs.length);
  });

  it('resumes from any revision with exactly the events an unbroken stream sent', async () => {
    await registerHost(h, 'h1', 1);
    const full = h.open('WatchTopology', { from_revision: 0 }, 'host:h1');
    const snap = await full.waitFor((m) => m.kind === 'SNAPSHOT');
    // A run of changes, heartbeats among them.
    await registerHost(h, 'h2', 2);
    h.clock.now += 1000;
    await h.call('Heartbeat', { name: 'h1' }, 'host:h1');
    await registerHost(h, 'h3', 3, { rack: 'r2' });
    await registerHost(h, 'h2', 2, { networks: ['blue'] });
    h.clock.now += 1000;
    await h.call('Heartbeat', { name: 'h2' }, 'host:h2');
    await h.call('LeaveHost', { name: 'h3' }, 'host:h3');
    await saveClusterConfig(h.store, { ...TEST_CONFIG, mtu: 1450 });
    await full.waitFor((m) => m.kind === 'CONFIG');
    const events = full.msgs.slice(1);
    expect(events.map((m) => m.kind)).toEqual(['HOST_PUT', 'HOST_PUT', 'HOST_PUT', 'HOST_DELETE', 'CONFIG']);

    // Resume from the snapshot and from every revision in between, including ones no event carries.
    const last = await h.store.revision();
    for (let from = snap.revision; from < last; from++) {
      const r = h.open('WatchTopology', { from_revision: from }, 'host:h1');
      const want = events.filter((m) => m.revision > from);
      await r.waitFor((m) => m.kind === 'CONFIG');
      expect(r.msgs, `resume from ${from}`).toEqual(want);
      r.cancel();
    }
    // Fully caught up: nothing until the next change, which arrives live.
    const r = h.open('WatchTopology', { from_revision: last }, 'host:h1');
    const rr = await registerHost(h, 'h4', 4);
    const m = await r.waitFor(() => true);
    expect(m).toMatchObject({ kind: 'HOST_PUT', revision: rr.revision });
    expect(r.msgs).toHaveLength(1);
  });

  it('starts over with a snapshot when the resume revision was compacted', async () => {
    await registerHost(h, 'h1', 1);
    const old = await h.store.revision();
    await registerHost(h, 'h2', 2);
    await registerHost(h, 'h3', 3);
    const now = await h.store.revision();
    await h.store.compact(now);
    const w = h.open('WatchTopology', { from_revision: old }, 'host:h1');
    const first = await w.waitFor(() => true);
    expect(first.kind).toBe('SNAPSHOT');
    expect(first.revision).toBe(now);
    expect(first.hosts.map((x: any) => x.name)).toEqual(['h1', 'h2', 'h3']);
    expect(h.logs.some((l) => l.msg.includes('compacted'))).toBe(true);
    // And a revision from the future (a wiped store) is no better than none.
    const f = h.open('WatchTopology', { from_revision: now + 100 }, 'host:h1');
    expect((await f.waitFor(() => true)).kind).toBe('SNAPSHOT');
  });

  it('stops its store watch when the client cancels', async () => {
    await registerHost(h, 'h1', 1);
    const streams = Array.from({ length: 3 }, (_, i) => h.open(i < 2 ? 'WatchTopology' : 'WatchServices', { from_revision: 0 }, 'host:h1'));
    for (const s of streams) await s.waitFor((m) => m.kind === 'SNAPSHOT');
    // One store watch per kind, shared by its streams: it outlives a stream while others remain.
    expect(h.activeWatches()).toBe(2);
    expect(h.openStreams()).toBe(3);
    streams[0].cancel();
    await waitFor('the server to see the cancel', () => h.openStreams() === 2, 5000, 20);
    expect(h.activeWatches()).toBe(2);
    streams[1].cancel();
    await waitFor('the topology store watch to stop', () => h.activeWatches() === 1, 5000, 20);
    streams[2].cancel();
    await waitFor('the services store watch to stop', () => h.activeWatches() === 0, 5000, 20);
    // A resume that was replaying history when cancelled leaves nothing either.
    await registerHost(h, 'h2', 2);
    const r = h.open('WatchTopology', { from_revision: 1 }, 'host:h1');
    await r.waitFor(() => true);
    r.cancel();
    await waitFor('the store watch to stop', () => h.activeWatches() === 0, 5000, 20);
  });
});

describe('WatchServices', () => {
  const web = { name: 'web', ports: [{ name: 'http', port: 80, target_port: 8080, protocol: 'http' }], selector: { app: 'web' }, network: 'default', rack_policy: '' };

  it('joins endpoints matching the selector with their host\'s rack and datacenter', async () => {
    const h1 = (await registerHost(h, 'h1', 1, { rack: 'r1', datacenter: 'dc1' })).host;
    const h2 = (await registerHost(h, 'h2', 2, { rack: 'r2', datacenter: 'dc2' })).host;
    await h.call('CreateService', { service: web }, 'admin');
    const ep = (host: any, name: string, last: number, labels: Record<string, string>, network = 'default') => ({
      endpoint: { network, ip: subnetIp(host, network, last), container_id: `c${last}`, host: name, labels, ifname: 'eth0' },
    });
    await h.call('RegisterEndpoint', ep(h1, 'h1', 10, { app: 'web', v: '1' }), 'host:h1');
    await h.call('RegisterEndpoint', ep(h1, 'h1', 11, { app: 'db' }), 'host:h1');

    const w = h.open('WatchServices', { from_revision: 0 }, 'host:h1');
    const snap = await w.waitFor((m) => m.kind === 'SNAPSHOT');
    expect(snap.services).toHaveLength(1);
    expect(snap.services[0].service).toMatchObject({ name: 'web', rack_policy: 'prefer-local', selector: { app: 'web' } });
    expect(snap.services[0].backends).toEqual([{ ip: subnetIp(h1, 'default', 10), host: 'h1', rack: 'r1', datacenter: 'dc1', container_id: 'c10' }]);

    // A matching endpoint on another host: SERVICE_PUT with both backends.
    const added = await h.call('RegisterEndpoint', ep(h2, 'h2', 20, { app: 'web' }), 'host:h2');
    const put = await w.waitFor((m) => m.kind === 'SERVICE_PUT');
    expect(put.services[0].backends.map((b: any) => [b.ip, b.rack, b.datacenter])).toEqual(
      [[subnetIp(h1, 'default', 10), 'r1', 'dc1'], [added.ip, 'r2', 'dc2']].sort(),
    );
    // Not selected (wrong label, or the right label in another network), heartbeats: no event.
    const count = w.msgs.length;
    await h.call('RegisterEndpoint', ep(h2, 'h2', 21, { app: 'cache' }), 'host:h2');
    await h.call('RegisterEndpoint', ep(h2, 'h2', 22, { app: 'web' }, 'blue'), 'host:h2');
    h.clock.now += 5000;
    await h.call('Heartbeat', { name: 'h2' }, 'host:h2');
    // The host moving racks is news to every service it backs.
    await registerHost(h, 'h2', 2, { rack: 'r3', datacenter: 'dc2' });
    const moved = await w.waitFor((m) => m.kind === 'SERVICE_PUT', 5000, count);
    expect(w.msgs.length).toBe(count + 1);
    expect(moved.services[0].backends.find((b: any) => b.host === 'h2').rack).toBe('r3');

    // Releasing a backend, then deleting the service.
    await h.call('ReleaseEndpoint', { network: 'default', ip: added.ip, container_id: '' }, 'host:h2');
    const shrunk = await w.waitFor((m) => m.kind === 'SERVICE_PUT' && m.services[0].backends.length === 1, 5000, count + 1);
    expect(shrunk.services[0].backends[0].host).toBe('h1');
    await h.call('DeleteService', { name: 'web' }, 'admin');
    expect(await w.waitFor((m) => m.kind === 'SERVICE_DELETE')).toMatchObject({ service_name: 'web' });

    // Resume replays exactly what the unbroken stream sent.
    const events = w.msgs.slice(1);
    const r = h.open('WatchServices', { from_revision: snap.revision }, 'host:h1');
    await r.waitFor((m) => m.kind === 'SERVICE_DELETE');
    expect(r.msgs).toEqual(events);
  });
});

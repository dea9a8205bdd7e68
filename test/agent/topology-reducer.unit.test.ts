// The agent's topology reducer against a plain model: whatever order and
// repetition the watch stream delivers events in, the topology is the one the
// controller's hosts describe at the highest revision seen.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ClusterConfigMsg, Datacenter, Host, TopologyEvent } from '../../controller/api/proto';
import { applyTopologyEvent, datacenterFromMessage, emptyTopology, remoteHostFromMessage } from '../../cni-plugin/agent/sync/topology';
import type { Topology } from '../../cni-plugin/agent/state/types';

const NAMES = ['h1', 'h2', 'h3', 'h4', 'h5'];

const hostArb: fc.Arbitrary<Host> = fc.record({
  name: fc.constantFrom(...NAMES),
  n: fc.integer({ min: 1, max: 250 }),
  rack: fc.constantFrom('r1', 'r2'),
  nets: fc.subarray(['default', 'blue']),
}).map(({ name, n, rack, nets }) => ({
  name,
  underlay_ip: `192.168.1.${n}`,
  vtep_mac: `02:00:00:00:00:${n.toString(16).padStart(2, '0')}`,
  rack,
  datacenter: 'dc1',
  wg_public_key: '',
  agent_version: '0.1.0',
  last_heartbeat_unix_ms: 0,
  wg_key_rotation: 0,
  subnets: nets.map((network) => ({ network, subnet: `10.${network === 'default' ? 244 : 250}.${n}.0/24`, lease_expires_at_unix_ms: 0 })),
}));

const configArb: fc.Arbitrary<ClusterConfigMsg> = fc.record({
  port: fc.constantFrom(4789, 8472),
  vni: fc.integer({ min: 1, max: 100 }),
}).map(({ port, vni }) => ({
  networks: [{ name: 'default', vni, cidr: '10.244.0.0/16', host_prefix_length: 24 }],
  vxlan_port: port,
  mtu: 0,
  lease_ttl_seconds: 60,
}));

const DCS = ['dc1', 'dc2', 'dc3'];

const dcArb: fc.Arbitrary<Datacenter> = fc.record({
  name: fc.constantFrom(...DCS),
  gw: fc.subarray(NAMES, { minLength: 1, maxLength: 3 }),
  draining: fc.boolean(),
  port: fc.constantFrom(51820, 51821),
  mesh: fc.boolean(),
  n: fc.integer({ min: 1, max: 250 }),
}).map(({ name, gw, draining, port, mesh, n }): Datacenter => ({
  name,
  gateways: gw.map((host, i) => ({
    host, wan_endpoint: `203.0.113.${i + 1}:${port}`, state: draining && i === 0 ? 'draining' : 'active', wg_public_key: Buffer.alloc(32, i + n).toString('base64'),
  })),
  listen_port: port,
  mtu: 0,
  mesh,
  allow_single_gateway: false,
  host_count: gw.length,
  subnets: [{ network: 'default', subnet: `10.244.${n}.0/24`, host: gw[0] }],
  pools: n % 2 === 0 ? { default: '10.244.0.0/17' } : {},
}));

const uniqueDcs = (ds: Datacenter[]) => [...new Map(ds.map((d) => [d.name, d])).values()];
const dcsArb = fc.array(dcArb, { maxLength: 2 }).map(uniqueDcs);

type Step =
  | { kind: 'SNAPSHOT'; hosts: Host[]; config: ClusterConfigMsg; datacenters: Datacenter[] }
  | { kind: 'HOST_PUT'; hosts: Host[]; datacenters: Datacenter[] }
  | { kind: 'HOST_DELETE'; name: string; datacenters: Datacenter[] }
  | { kind: 'CONFIG'; config: ClusterConfigMsg; datacenters: Datacenter[] }
  | { kind: 'DATACENTER_PUT'; datacenters: Datacenter[] }
  | { kind: 'DATACENTER_DELETE'; name: string };

const uniqueHosts = (hs: Host[]) => [...new Map(hs.map((h) => [h.name, h])).values()];

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('SNAPSHOT' as const), hosts: fc.array(hostArb, { maxLength: 5 }).map(uniqueHosts), config: configArb, datacenters: dcsArb }),
  fc.record({ kind: fc.constant('HOST_PUT' as const), hosts: fc.array(hostArb, { minLength: 1, maxLength: 3 }).map(uniqueHosts), datacenters: dcsArb }),
  fc.record({ kind: fc.constant('HOST_DELETE' as const), name: fc.constantFrom(...NAMES), datacenters: dcsArb }),
  fc.record({ kind: fc.constant('CONFIG' as const), config: configArb, datacenters: dcsArb }),
  fc.record({ kind: fc.constant('DATACENTER_PUT' as const), datacenters: fc.array(dcArb, { minLength: 1, maxLength: 2 }).map(uniqueDcs) }),
  fc.record({ kind: fc.constant('DATACENTER_DELETE' as const), name: fc.constantFrom(...DCS) }),
);

/** Numbers steps with strictly increasing revisions, as the controller does (gaps are revisions that sent nothing). */
const eventsArb: fc.Arbitrary<TopologyEvent[]> = fc.array(fc.tuple(stepArb, fc.integer({ min: 1, max: 3 })), { maxLength: 25 }).map((steps) => {
  let rev = 0;
  return steps.map(([s, gap]) => {
    rev += gap;
    const base = { revision: rev, hosts: [] as Host[], host_name: '', config: null as ClusterConfigMsg | null, datacenters: [] as Datacenter[], datacenter_name: '' };
    if (s.kind === 'SNAPSHOT') return { ...base, kind: 'SNAPSHOT', hosts: s.hosts, config: s.config, datacenters: s.datacenters };
    if (s.kind === 'HOST_PUT') return { ...base, kind: 'HOST_PUT', hosts: s.hosts, datacenters: s.datacenters };
    if (s.kind === 'HOST_DELETE') return { ...base, kind: 'HOST_DELETE', host_name: s.name, datacenters: s.datacenters };
    if (s.kind === 'DATACENTER_PUT') return { ...base, kind: 'DATACENTER_PUT', datacenters: s.datacenters };
    if (s.kind === 'DATACENTER_DELETE') return { ...base, kind: 'DATACENTER_DELETE', datacenter_name: s.name };
    return { ...base, kind: 'CONFIG', config: s.config, datacenters: s.datacenters };
  });
});

/** What the controller's hosts are after the events: an independent, mutable model. */
function model(events: TopologyEvent[]): Topology {
  const hosts = new Map<string, Host>();
  const dcs = new Map<string, Datacenter>();
  let config: ClusterConfigMsg | null = null;
  let revision = 0;
  for (const e of events) {
    revision = e.revision;
    if (e.kind === 'SNAPSHOT') {
      hosts.clear();
      dcs.clear();
      for (const h of e.hosts) hosts.set(h.name, h);
      config = e.config;
    } else if (e.kind === 'HOST_PUT') for (const h of e.hosts) hosts.set(h.name, h);
    else if (e.kind === 'HOST_DELETE') hosts.delete(e.host_name);
    else if (e.kind === 'CONFIG') config = e.config;
    else if (e.kind === 'DATACENTER_DELETE') dcs.delete(e.datacenter_name);
    // every kind but DATACENTER_DELETE carries the datacenters that changed with it
    for (const d of e.datacenters) dcs.set(d.name, d);
  }
  return {
    revision,
    hosts: [...hosts.keys()].sort().map((n) => remoteHostFromMessage(hosts.get(n)!)),
    networks: config ? config.networks.map((n) => ({ name: n.name, vni: n.vni, cidr: n.cidr })) : [],
    vxlanPort: config ? config.vxlan_port : 0,
    datacenters: [...dcs.keys()].sort().map((n) => datacenterFromMessage(dcs.get(n)!)),
  };
}

const fold = (events: TopologyEvent[], from: Topology = emptyTopology()) => events.reduce(applyTopologyEvent, from);

describe('applyTopologyEvent', () => {
  it('matches the model for any stream of events', () => {
    fc.assert(fc.property(eventsArb, (events) => {
      expect(fold(events)).toEqual(model(events));
    }), { numRuns: 500 });
  });

  it('replaying any event twice changes nothing', () => {
    fc.assert(fc.property(eventsArb, fc.nat(), (events, k) => {
      fc.pre(events.length > 0);
      const i = k % events.length;
      const once = fold(events);
      const twice = fold([...events.slice(0, i + 1), events[i], ...events.slice(i + 1)]);
      expect(twice).toEqual(once);
      const last = events[events.length - 1];
      expect(applyTopologyEvent(once, last)).toEqual(once);
    }), { numRuns: 300 });
  });

  it('revisions only move forward: older events are ignored, whatever they say', () => {
    fc.assert(fc.property(eventsArb, eventsArb, (events, stale) => {
      const now = fold(events);
      const old = stale.filter((e) => e.revision < now.revision);
      const after = fold(old, now);
      expect(after).toBe(now);
    }), { numRuns: 300 });
  });

  it('a resume that overlaps what was applied (the controller re-sends from an earlier revision) gives the same topology', () => {
    fc.assert(fc.property(eventsArb, fc.nat(), (events, k) => {
      const cut = events.length === 0 ? 0 : k % events.length;
      const resumed = fold(events.slice(cut), fold(events));
      expect(resumed).toEqual(fold(events));
    }), { numRuns: 300 });
  });

  it('a snapshot replaces everything before it', () => {
    fc.assert(fc.property(eventsArb, fc.array(hostArb, { maxLength: 5 }).map(uniqueHosts), configArb, (events, hosts, config) => {
      const before = fold(events);
      const snap: TopologyEvent = { revision: before.revision + 1, kind: 'SNAPSHOT', hosts, host_name: '', config, datacenters: [], datacenter_name: '' };
      expect(applyTopologyEvent(before, snap)).toEqual(applyTopologyEvent(emptyTopology(), snap));
    }), { numRuns: 300 });
  });

  it('HOST_PUT upserts only the hosts it names; HOST_DELETE removes only the one it names', () => {
    fc.assert(fc.property(eventsArb, hostArb, (events, host) => {
      const before = fold(events);
      const put = applyTopologyEvent(before, { revision: before.revision + 1, kind: 'HOST_PUT', hosts: [host], host_name: '', config: null, datacenters: [], datacenter_name: '' });
      expect(put.hosts.find((h) => h.name === host.name)).toEqual(remoteHostFromMessage(host));
      expect(put.hosts.filter((h) => h.name !== host.name)).toEqual(before.hosts.filter((h) => h.name !== host.name));
      expect(put.networks).toEqual(before.networks);
      expect(put.datacenters).toEqual(before.datacenters);
      const del = applyTopologyEvent(put, { revision: put.revision + 1, kind: 'HOST_DELETE', hosts: [], host_name: host.name, config: null, datacenters: [], datacenter_name: '' });
      expect(del.hosts.map((h) => h.name)).not.toContain(host.name);
      expect(del.hosts).toEqual(before.hosts.filter((h) => h.name !== host.name));
    }), { numRuns: 300 });
  });

  it('never mutates the state it is given', () => {
    fc.assert(fc.property(eventsArb, (events) => {
      const states = [emptyTopology()];
      for (const e of events) states.push(applyTopologyEvent(states[states.length - 1], e));
      const copies = states.map((s) => structuredClone(s));
      for (const e of events) applyTopologyEvent(states[0], e);
      expect(states).toEqual(copies);
      // every intermediate state must still equal the fold of its prefix
      states.forEach((s, i) => expect(s).toEqual(fold(events.slice(0, i))));
    }), { numRuns: 100 });
  });

  it('maps a host message to what the dataplane needs', () => {
    const t = applyTopologyEvent(emptyTopology(), {
      revision: 7, kind: 'SNAPSHOT', host_name: '', datacenters: [], datacenter_name: '',
      hosts: [{
        name: 'h1', underlay_ip: '192.168.1.1', vtep_mac: '02:00:00:00:00:01', rack: 'r1', datacenter: 'dc1', wg_public_key: '',
        agent_version: '', last_heartbeat_unix_ms: 1, wg_key_rotation: 0,
        subnets: [{ network: 'blue', subnet: '10.250.1.0/24', lease_expires_at_unix_ms: 2 }, { network: 'default', subnet: '10.244.1.0/24', lease_expires_at_unix_ms: 2 }],
      }],
      config: { networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/16', host_prefix_length: 24 }], vxlan_port: 4789, mtu: 0, lease_ttl_seconds: 60 },
    });
    expect(t).toEqual({
      revision: 7,
      hosts: [{ name: 'h1', underlayIp: '192.168.1.1', vtepMac: '02:00:00:00:00:01', rack: 'r1', datacenter: 'dc1', subnets: { blue: '10.250.1.0/24', default: '10.244.1.0/24' } }],
      networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/16' }],
      vxlanPort: 4789,
      datacenters: [],
    });
  });

  it('keeps datacenters as plain data: put, carried along with a host change, deleted', () => {
    const key = Buffer.alloc(32, 9).toString('base64');
    const dc1: Datacenter = {
      name: 'dc1', listen_port: 51820, mtu: 1380, mesh: true, allow_single_gateway: false, host_count: 2,
      gateways: [
        { host: 'h7', wan_endpoint: '203.0.113.7:51820', state: 'active', wg_public_key: key },
        { host: 'h8', wan_endpoint: '[2001:db8::8]:51820', state: 'draining', wg_public_key: '' },
      ],
      subnets: [{ network: 'default', subnet: '10.244.7.0/24', host: 'h7' }],
      pools: { default: '10.244.0.0/17' },
    };
    const none = { hosts: [] as Host[], host_name: '', config: null, datacenters: [] as Datacenter[], datacenter_name: '' };
    const put = applyTopologyEvent(emptyTopology(), { ...none, revision: 3, kind: 'DATACENTER_PUT', datacenters: [dc1] });
    expect(put.revision).toBe(3);
    expect(put.datacenters).toEqual([{
      name: 'dc1', listenPort: 51820, mtu: 1380, mesh: true,
      gateways: [
        { host: 'h7', wanEndpoint: '203.0.113.7:51820', state: 'active', wgPublicKey: key },
        { host: 'h8', wanEndpoint: '[2001:db8::8]:51820', state: 'draining', wgPublicKey: '' },
      ],
      subnets: [{ network: 'default', subnet: '10.244.7.0/24', host: 'h7' }],
      pools: { default: '10.244.0.0/17' },
    }]);
    // a host registering changes the datacenter's subnets in the same revision: one HOST_PUT carries both
    const dc1b = { ...dc1, subnets: [...dc1.subnets, { network: 'default', subnet: '10.244.8.0/24', host: 'h8' }] };
    const h8: Host = {
      name: 'h8', underlay_ip: '192.168.1.8', vtep_mac: '02:00:00:00:00:08', rack: 'r1', datacenter: 'dc1', wg_public_key: '', agent_version: '',
      last_heartbeat_unix_ms: 0, wg_key_rotation: 0, subnets: [{ network: 'default', subnet: '10.244.8.0/24', lease_expires_at_unix_ms: 0 }],
    };
    const both = applyTopologyEvent(put, { ...none, revision: 4, kind: 'HOST_PUT', hosts: [h8], datacenters: [dc1b] });
    expect(both.hosts.map((h) => h.name)).toEqual(['h8']);
    expect(both.datacenters![0].subnets.map((x) => x.host)).toEqual(['h7', 'h8']);
    const gone = applyTopologyEvent(both, { ...none, revision: 5, kind: 'DATACENTER_DELETE', datacenter_name: 'dc1' });
    expect(gone.datacenters).toEqual([]);
    expect(gone.hosts).toEqual(both.hosts);
    // a replay of the delete's revision changes nothing
    expect(applyTopologyEvent(gone, { ...none, revision: 5, kind: 'DATACENTER_PUT', datacenters: [dc1] })).toBe(gone);
  });
});

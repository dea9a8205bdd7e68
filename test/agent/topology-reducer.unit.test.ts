// The agent's topology reducer against a plain model: whatever order and
// repetition the watch stream delivers events in, the topology is the one the
// controller's hosts describe at the highest revision seen.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ClusterConfigMsg, Host, TopologyEvent } from '../../controller/api/proto';
import { applyTopologyEvent, emptyTopology, remoteHostFromMessage } from '../../cni-plugin/agent/sync/topology';
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

type Step =
  | { kind: 'SNAPSHOT'; hosts: Host[]; config: ClusterConfigMsg }
  | { kind: 'HOST_PUT'; hosts: Host[] }
  | { kind: 'HOST_DELETE'; name: string }
  | { kind: 'CONFIG'; config: ClusterConfigMsg };

const uniqueHosts = (hs: Host[]) => [...new Map(hs.map((h) => [h.name, h])).values()];

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('SNAPSHOT' as const), hosts: fc.array(hostArb, { maxLength: 5 }).map(uniqueHosts), config: configArb }),
  fc.record({ kind: fc.constant('HOST_PUT' as const), hosts: fc.array(hostArb, { minLength: 1, maxLength: 3 }).map(uniqueHosts) }),
  fc.record({ kind: fc.constant('HOST_DELETE' as const), name: fc.constantFrom(...NAMES) }),
  fc.record({ kind: fc.constant('CONFIG' as const), config: configArb }),
);

/** Numbers steps with strictly increasing revisions, as the controller does (gaps are revisions that sent nothing). */
const eventsArb: fc.Arbitrary<TopologyEvent[]> = fc.array(fc.tuple(stepArb, fc.integer({ min: 1, max: 3 })), { maxLength: 25 }).map((steps) => {
  let rev = 0;
  return steps.map(([s, gap]) => {
    rev += gap;
    const base = { revision: rev, hosts: [] as Host[], host_name: '', config: null as ClusterConfigMsg | null };
    if (s.kind === 'SNAPSHOT') return { ...base, kind: 'SNAPSHOT', hosts: s.hosts, config: s.config };
    if (s.kind === 'HOST_PUT') return { ...base, kind: 'HOST_PUT', hosts: s.hosts };
    if (s.kind === 'HOST_DELETE') return { ...base, kind: 'HOST_DELETE', host_name: s.name };
    return { ...base, kind: 'CONFIG', config: s.config };
  });
});

/** What the controller's hosts are after the events: an independent, mutable model. */
function model(events: TopologyEvent[]): Topology {
  const hosts = new Map<string, Host>();
  let config: ClusterConfigMsg | null = null;
  let revision = 0;
  for (const e of events) {
    revision = e.revision;
    if (e.kind === 'SNAPSHOT') {
      hosts.clear();
      for (const h of e.hosts) hosts.set(h.name, h);
      config = e.config;
    } else if (e.kind === 'HOST_PUT') for (const h of e.hosts) hosts.set(h.name, h);
    else if (e.kind === 'HOST_DELETE') hosts.delete(e.host_name);
    else if (e.kind === 'CONFIG') config = e.config;
  }
  return {
    revision,
    hosts: [...hosts.keys()].sort().map((n) => remoteHostFromMessage(hosts.get(n)!)),
    networks: config ? config.networks.map((n) => ({ name: n.name, vni: n.vni, cidr: n.cidr })) : [],
    vxlanPort: config ? config.vxlan_port : 0,
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
      const snap: TopologyEvent = { revision: before.revision + 1, kind: 'SNAPSHOT', hosts, host_name: '', config };
      expect(applyTopologyEvent(before, snap)).toEqual(applyTopologyEvent(emptyTopology(), snap));
    }), { numRuns: 300 });
  });

  it('HOST_PUT upserts only the hosts it names; HOST_DELETE removes only the one it names', () => {
    fc.assert(fc.property(eventsArb, hostArb, (events, host) => {
      const before = fold(events);
      const put = applyTopologyEvent(before, { revision: before.revision + 1, kind: 'HOST_PUT', hosts: [host], host_name: '', config: null });
      expect(put.hosts.find((h) => h.name === host.name)).toEqual(remoteHostFromMessage(host));
      expect(put.hosts.filter((h) => h.name !== host.name)).toEqual(before.hosts.filter((h) => h.name !== host.name));
      expect(put.networks).toEqual(before.networks);
      const del = applyTopologyEvent(put, { revision: put.revision + 1, kind: 'HOST_DELETE', hosts: [], host_name: host.name, config: null });
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
      revision: 7, kind: 'SNAPSHOT', host_name: '',
      hosts: [{
        name: 'h1', underlay_ip: '192.168.1.1', vtep_mac: '02:00:00:00:00:01', rack: 'r1', datacenter: 'dc1', wg_public_key: '',
        agent_version: '', last_heartbeat_unix_ms: 1,
        subnets: [{ network: 'blue', subnet: '10.250.1.0/24', lease_expires_at_unix_ms: 2 }, { network: 'default', subnet: '10.244.1.0/24', lease_expires_at_unix_ms: 2 }],
      }],
      config: { networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/16', host_prefix_length: 24 }], vxlan_port: 4789, mtu: 0, lease_ttl_seconds: 60 },
    });
    expect(t).toEqual({
      revision: 7,
      hosts: [{ name: 'h1', underlayIp: '192.168.1.1', vtepMac: '02:00:00:00:00:01', rack: 'r1', datacenter: 'dc1', subnets: { blue: '10.250.1.0/24', default: '10.244.1.0/24' } }],
      networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/16' }],
      vxlanPort: 4789,
    });
  });
});

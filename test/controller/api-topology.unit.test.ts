// The topology state on its own, without a store: which host changes are
// news to the overlay (a HOST_PUT) and which are only signs of life.
import { describe, expect, it } from 'vitest';
import { topologyChanges, topologyFromKvs } from '../../controller/service/topology';
import { CONFIG_KEY, encodeLeaseRecord, leaseKey } from '../../controller/ipam/records';
import { parseCidr } from '../../controller/common/cidr';
import { type HostRecord, encodeHost } from '../../controller/registry/hosts';
import { hostKey } from '../../controller/registry/keys';

const host: HostRecord = {
  name: 'h1', underlayIp: '192.168.1.1', vtepMac: '02:00:00:00:00:01', rack: 'r1', datacenter: 'dc1',
  wgPublicKey: '', agentVersion: '0.1.0', lastHeartbeat: 1000,
};
const lease = leaseKey('default', parseCidr('10.244.1.0/24'));
const leaseValue = (expiresAt: number) => encodeLeaseRecord({ host: 'h1', acquiredAt: 0, expiresAt });

function start() {
  return topologyFromKvs(new Map([[hostKey('h1'), encodeHost(host)], [lease, leaseValue(60_000)]]));
}

describe('topologyChanges', () => {
  it('sends nothing for a heartbeat: a new lastHeartbeat and a renewed lease', () => {
    const s = start();
    expect(topologyChanges(s, 10, [
      { key: hostKey('h1'), after: encodeHost({ ...host, lastHeartbeat: 2000 }) },
      { key: lease, after: leaseValue(120_000) },
    ])).toEqual([]);
  });

  const changed: Array<[string, Partial<HostRecord>]> = [
    ['underlayIp', { underlayIp: '192.168.1.2' }],
    ['vtepMac', { vtepMac: '02:00:00:00:00:02' }],
    ['rack', { rack: 'r2' }],
    ['datacenter', { datacenter: 'dc2' }],
    ['wgPublicKey', { wgPublicKey: Buffer.alloc(32, 1).toString('base64') }],
    ['agentVersion', { agentVersion: '0.2.0' }],
  ];
  for (const [field, patch] of changed) {
    it(`sends a HOST_PUT with the latest heartbeat when ${field} changes`, () => {
      const s = start();
      const [ev] = topologyChanges(s, 10, [{ key: hostKey('h1'), after: encodeHost({ ...host, ...patch, lastHeartbeat: 3000 }) }]);
      expect(ev).toMatchObject({ revision: 10, kind: 'HOST_PUT', hosts: [{ name: 'h1', last_heartbeat_unix_ms: 3000 }] });
      // Sent once: the same record again is no news.
      expect(topologyChanges(s, 11, [{ key: hostKey('h1'), after: encodeHost({ ...host, ...patch, lastHeartbeat: 4000 }) }])).toEqual([]);
    });
  }

  it('sends a HOST_PUT when a subnet goes, and a HOST_DELETE when the host does', () => {
    const s = start();
    expect(topologyChanges(s, 10, [{ key: lease }])).toMatchObject([{ kind: 'HOST_PUT', hosts: [{ name: 'h1', subnets: [] }] }]);
    expect(topologyChanges(s, 11, [{ key: hostKey('h1') }])).toMatchObject([{ kind: 'HOST_DELETE', host_name: 'h1' }]);
  });

  it('sends CONFIG for a new config only: not for the same one written again, nor for one that does not validate', () => {
    const s = start();
    const config = { networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/16', hostPrefixLength: 24 }, { name: 'blue', vni: 2, cidr: '10.250.0.0/16', hostPrefixLength: 24 }], leaseTtlSeconds: 30 };
    const [ev] = topologyChanges(s, 10, [{ key: CONFIG_KEY, after: JSON.stringify(config) }]);
    expect(ev).toMatchObject({ revision: 10, kind: 'CONFIG', config: { networks: [{ name: 'default' }, { name: 'blue' }], lease_ttl_seconds: 30 } });
    expect(topologyChanges(s, 11, [{ key: CONFIG_KEY, after: JSON.stringify(config) }])).toEqual([]);
    expect(topologyChanges(s, 12, [{ key: CONFIG_KEY, after: '{"networks": "oops"}' }])).toEqual([]);
    expect(topologyChanges(s, 13, [{ key: CONFIG_KEY, after: JSON.stringify({ ...config, mtu: 1400 }) }])).toMatchObject([{ kind: 'CONFIG', config: { mtu: 1400 } }]);
    // A config and a host change in one revision: one SNAPSHOT; after it, the config is no news.
    const [snap] = topologyChanges(s, 14, [
      { key: CONFIG_KEY, after: JSON.stringify({ ...config, mtu: 1300 }) },
      { key: hostKey('h1'), after: encodeHost({ ...host, rack: 'r9' }) },
    ]);
    expect(snap).toMatchObject({ kind: 'SNAPSHOT', config: { mtu: 1300 }, hosts: [{ rack: 'r9' }] });
    expect(topologyChanges(s, 15, [{ key: CONFIG_KEY, after: JSON.stringify({ ...config, mtu: 1300 }) }])).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import { maglevTable } from '../../../ingress/balance/maglev';
import { addrPortHex, decodeAddrPort, portKeyHex } from '../../../dataplane/nftables/keys';
import {
  bucketHex, chooseSize, diffBuckets, groupPrefix, legacyGroup, NO_BUCKETS, serviceNames, splitGroups, toBuckets, unchanged, programmedSizes, renderService, slotKeys,
  validateServices, type L4Service,
} from '../../../ingress/l4/render';

const ep = (ip: string, port = 8080) => ({ key: `${ip}:${port}`, ip, port, host: 'h', rack: 'r', datacenter: 'd', containerId: ip });
const svc = (over: Partial<L4Service> = {}): L4Service => ({ name: 's', port: 80, protocol: 'tcp', affinity: 'none', endpoints: [ep('10.0.0.1'), ep('10.0.0.2')], ...over });

describe('L4 render', () => {
  it('fills every bucket from the Maglev table, keys as host-order u32, data as address . port', () => {
    const keys = ['10.0.0.1:8080', '10.0.0.2:8080'];
    const r = renderService(svc(), 211, keys);
    const t = maglevTable(keys, 211);
    const { del, add } = diffBuckets(undefined, r.map.buckets);
    expect(del).toEqual([]);
    expect(add).toHaveLength(211);
    for (const [k, v] of add) expect(decodeAddrPort(v)).toEqual({ ip: keys[t[Buffer.from(k, 'hex').readUInt32LE(0)]].split(':')[0], port: 8080 });
    // listed back from the kernel, the same buckets diff to nothing
    expect(diffBuckets(toBuckets(new Map(add), 211), r.map.buckets)).toEqual({ del: [], add: [] });
    // one backend less: only buckets that change are deleted and added
    const one = renderService(svc(), 211, keys.slice(0, 1));
    const d = diffBuckets(r.map.buckets, one.map.buckets);
    expect(d.del.length).toBe(d.add.length);
    expect(d.add.length).toBe([...t].filter((x) => x === 1).length);
    expect(bucketHex(1)).toBe('01000000');
    expect(addrPortHex('10.0.0.1', 8080)).toBe('0a0000011f900000');
    expect(r.chain.rules[0]).toContain('dnat ip to tcp dport . jhash ip saddr . tcp sport mod 211');
    expect(renderService(svc({ affinity: 'client-ip' }), 211, keys).chain.rules[0]).toContain('tcp dport . jhash ip saddr mod 211');
  });

  it('puts every service of a class in one chain and one map, its buckets keyed port . bucket', () => {
    const keys = ['10.0.0.1:8080', '10.0.0.2:8080'];
    const a = renderService(svc({ port: 80 }), 211, keys);
    const b = renderService(svc({ port: 100 }), 211, keys);
    // one class: the same chain, map and rule; each port its own group
    expect(a.names).toEqual({ chain: 'lb_tcp_211_flow_64', map: 'be_tcp_211_flow_64', group: 'be_tcp_211_flow_64:80', prefix: '00500000' });
    expect(b.names.chain).toBe(a.names.chain);
    expect(b.names.map).toBe(a.names.map);
    expect(b.chain.rules).toEqual(a.chain.rules);
    expect(serviceNames('udp', 53, 307, 'client-ip')).toMatchObject({ chain: 'lb_udp_307_ip_0', map: 'be_udp_307_ip_0', group: 'be_udp_307_ip_0:53' });
    // another range of 64 ports: another map and chain of the same class
    expect(serviceNames('tcp', 443, 211, 'none')).toMatchObject({ chain: 'lb_tcp_211_flow_384', map: 'be_tcp_211_flow_384', group: 'be_tcp_211_flow_384:443' });
    expect(serviceNames('tcp', 65535, 211, 'none').map).toBe('be_tcp_211_flow_65472');
    expect(a.map.decl).toBe(`{ typeof tcp dport . numgen inc mod 2 : ip daddr . tcp dport; size ${64 * 211}; }`);
    expect(groupPrefix(b.names.group)).toBe(portKeyHex(100));
    // the elements of two ports in one map, split back into each port's buckets
    const addA = diffBuckets(undefined, a.map.buckets, a.names.prefix).add;
    const addB = diffBuckets(undefined, b.map.buckets, b.names.prefix).add;
    expect(addA[5][0]).toBe(`00500000${bucketHex(5)}`);
    const junk: [string, string] = ['0102', 'v:0a0000011f900000'];
    const groups = splitGroups('be_tcp_211_flow_64', new Map([...addA, ...addB, junk]), 211);
    expect([...groups.keys()].sort()).toEqual(['be_tcp_211_flow_64:0', 'be_tcp_211_flow_64:100', 'be_tcp_211_flow_64:80']);
    expect(diffBuckets(groups.get('be_tcp_211_flow_64:80'), a.map.buckets, a.names.prefix)).toEqual({ del: [], add: [] });
    expect(diffBuckets(groups.get('be_tcp_211_flow_64:100'), b.map.buckets, b.names.prefix)).toEqual({ del: [], add: [] });
    // a group nobody has: every one of its keys deleted, whole
    expect(diffBuckets(groups.get('be_tcp_211_flow_64:0'), NO_BUCKETS, groupPrefix('be_tcp_211_flow_64:0'))).toEqual({ del: [['0102']], add: [] });
    expect(diffBuckets(groups.get('be_tcp_211_flow_64:100'), NO_BUCKETS, b.names.prefix).del).toEqual(addB.map(([k]) => [k]));
    // a map of the per-service layout becomes the group of its port
    expect(legacyGroup('be_tcp_80_1009_flow')).toEqual({ group: 'be_tcp_1009_flow_64:80', size: 1009 });
    expect(legacyGroup('be_udp_5353_211_ip')).toEqual({ group: 'be_udp_211_ip_5312:5353', size: 211 });
    expect(legacyGroup('be_tcp_1009_flow_0')).toBeUndefined();
    expect(slotKeys(toBuckets(diffBuckets(undefined, a.map.buckets).add, 211))).toEqual(slotKeys(a.map.buckets));
    // buckets past one byte, in both key forms
    for (const k of [bucketHex(1000), portKeyHex(8080) + bucketHex(70000)]) {
      const b = toBuckets([[k, 'v:0a0000011f900000']], 70001);
      expect([...b.table.keys()].filter((i) => b.table[i] >= 0)).toEqual([k.length === 8 ? 1000 : 70000]);
      expect(b.extra).toEqual([]);
    }
    expect(toBuckets([[bucketHex(211), 'v:0a0000011f900000']], 211).extra).toEqual([bucketHex(211)]);
  });

  it('rebalances from the programmed buckets: a removed backend moves exactly its own, a newcomer takes only its share', () => {
    const all = Array.from({ length: 10 }, (_, i) => `10.0.0.${i + 1}:8080`);
    const size = 1009;
    const counts = (keys: string[], b: { table: Int32Array; values: string[] }) => {
      const c = new Map<string, number>();
      for (const k of slotKeys(b as never)) c.set(k!, (c.get(k!) ?? 0) + 1);
      return keys.map((k) => c.get(k) ?? 0);
    };
    const first = renderService(svc(), size, all);
    // read back from the kernel it is the same table
    expect(slotKeys(toBuckets(new Map(diffBuckets(undefined, first.map.buckets).add), size))).toEqual(slotKeys(first.map.buckets));
    let excessFresh = 0;
    let excessRebalanced = 0;
    for (let gone = 0; gone < all.length; gone++) {
      const left = all.filter((_, i) => i !== gone);
      const before = slotKeys(first.map.buckets);
      const after = slotKeys(renderService(svc(), size, left, [], first.map.buckets).map.buckets);
      const fresh = slotKeys(renderService(svc(), size, left).map.buckets);
      for (let i = 0; i < size; i++) {
        if (before[i] === all[gone]) continue;
        if (after[i] !== before[i]) excessRebalanced++;
        if (fresh[i] !== before[i]) excessFresh++;
      }
      const c = counts(left, renderService(svc(), size, left, [], first.map.buckets).map.buckets);
      expect(Math.max(...c) - Math.min(...c)).toBeLessThanOrEqual(1);
      expect(c.reduce((x, y) => x + y)).toBe(size);
    }
    expect(excessRebalanced).toBe(0);
    expect(excessFresh).toBeGreaterThan(0); // what the rebalance saves: a fresh table for the smaller set moves others too
    // a newcomer: only the slots it takes change, about 1/N of them, all to it
    const grown = [...all, '10.0.0.11:8080'];
    const before = slotKeys(first.map.buckets);
    const after = slotKeys(renderService(svc(), size, grown, [], first.map.buckets).map.buckets);
    const moved = after.filter((k, i) => k !== before[i]);
    expect(new Set(moved)).toEqual(new Set(['10.0.0.11:8080']));
    expect(moved.length).toBeGreaterThanOrEqual(Math.floor(size / 11));
    expect(moved.length).toBeLessThanOrEqual(Math.ceil(size / 11));
    // the same set again keeps every slot
    expect(slotKeys(renderService(svc(), size, all, [], first.map.buckets).map.buckets)).toEqual(before);
  });

  it('sees an unchanged service in any endpoint order, and a duplicate or swapped endpoint as a change', () => {
    const keys = ['10.0.0.1:8080', '10.0.0.2:8080'];
    const r = renderService(svc(), 211, keys);
    expect(unchanged(r, svc(), 211)).toBe(true);
    expect(unchanged(r, svc({ endpoints: [ep('10.0.0.2'), ep('10.0.0.1')] }), 211)).toBe(true);
    expect(unchanged(r, svc({ endpoints: [ep('10.0.0.2'), ep('10.0.0.2')] }), 211)).toBe(false);
    expect(unchanged(r, svc({ endpoints: [ep('10.0.0.1'), ep('10.0.0.3')] }), 211)).toBe(false);
    expect(unchanged(r, svc(), 307)).toBe(false);
    expect(unchanged(r, svc({ affinity: 'client-ip' }), 211)).toBe(false);
  });

  it('keeps the programmed table size while it still fits, so one backend less does not remap every flow', () => {
    expect(chooseSize(undefined, 10)).toBe(1009);
    expect(chooseSize(1009, 9)).toBe(1009);
    expect(chooseSize(1009, 11)).toBe(1009);
    expect(chooseSize(1009, 30)).toBe(3001);
    expect(programmedSizes(['be_tcp_1009_flow_0:80', 'be_udp_211_ip_0:80', 'tcp_svc']).get('tcp:80')).toBe(1009);
    expect(programmedSizes(['be_tcp_1009_flow_0:80', 'be_udp_211_ip_0:80']).get('udp:80')).toBe(211);
  });

  it('rejects bad services before anything is rendered', () => {
    expect(() => validateServices([svc({ endpoints: [ep('10.0.0.300')] })])).toThrow(/not IPv4/);
    expect(() => validateServices([svc({ port: 0 })])).toThrow(/not a port/);
    expect(() => validateServices([svc(), svc({ name: 'b' })])).toThrow(/both listen/);
    expect(() => validateServices([svc({ protocol: 'sctp' as 'tcp' })])).toThrow(/not tcp or udp/);
    expect(() => validateServices([svc(), svc({ name: 'u', protocol: 'udp' })])).not.toThrow();
  });
});

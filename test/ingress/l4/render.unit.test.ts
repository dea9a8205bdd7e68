import { describe, expect, it } from 'vitest';
import { maglevTable } from '../../../ingress/balance/maglev';
import { addrPortHex, bucketHex, chooseSize, diffBuckets, toBuckets, unchanged, decodeAddrPort, programmedSizes, renderService, slotKeys, validateServices, type L4Service } from '../../../ingress/l4/render';

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
    expect(r.chain.rules[0]).toContain('jhash ip saddr . tcp sport mod 211');
    expect(renderService(svc({ affinity: 'client-ip' }), 211, keys).chain.rules[0]).toContain('jhash ip saddr mod 211');
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
    expect(programmedSizes(['svc_tcp_80_1009_flow', 'prerouting']).get('tcp:80')).toBe(1009);
  });

  it('rejects bad services before anything is rendered', () => {
    expect(() => validateServices([svc({ endpoints: [ep('10.0.0.300')] })])).toThrow(/not IPv4/);
    expect(() => validateServices([svc({ port: 0 })])).toThrow(/not a port/);
    expect(() => validateServices([svc(), svc({ name: 'b' })])).toThrow(/both listen/);
    expect(() => validateServices([svc({ protocol: 'sctp' as 'tcp' })])).toThrow(/not tcp or udp/);
    expect(() => validateServices([svc(), svc({ name: 'u', protocol: 'udp' })])).not.toThrow();
  });
});

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { type Cidr, addressBits, cidrContains, cidrLast, cidrOverlaps, formatCidr, parseCidr } from '../../controller/common/cidr';
import {
  candidateOrder, keyToSubnet, randomBelow, subnetAt, subnetCount, subnetIndex, subnetToKey,
} from '../../controller/ipam/subnets';

// A pool (aligned network) plus a host prefix length such that it holds at most 2^10 subnets.
const arbPool = fc
  .record({
    family: fc.constantFrom<4 | 6>(4, 6),
    seed: fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
    poolLen: fc.integer({ min: 0, max: 128 }),
    extra: fc.integer({ min: 0, max: 10 }),
  })
  .map(({ family, seed, poolLen, extra }) => {
    const bits = addressBits(family);
    const prefixLength = Math.min(poolLen, bits);
    const hostLen = Math.min(prefixLength + extra, bits);
    const mask = ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - prefixLength)) - 1n);
    const pool: Cidr = { family, base: seed & mask, prefixLength };
    return { pool, hostLen };
  });

// Deterministic random source driven by fast-check, so failures shrink and replay.
const arbRandom = fc.infiniteStream(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })).map((s) => {
  const it = s[Symbol.iterator]();
  return () => it.next().value as number;
});

describe('subnet math', () => {
  it('candidates are inside the pool, aligned, distinct, non-overlapping and cover it exactly', () => {
    fc.assert(
      fc.property(arbPool, arbRandom, ({ pool, hostLen }, random) => {
        const count = subnetCount(pool, hostLen);
        const seen = new Set<bigint>();
        const subnets: Cidr[] = [];
        for (const i of candidateOrder(count, random)) {
          expect(seen.has(i)).toBe(false);
          seen.add(i);
          const s = subnetAt(pool, hostLen, i);
          expect(cidrContains(pool, s)).toBe(true);
          expect(s.prefixLength).toBe(hostLen);
          // aligned: host bits of the subnet's base are zero
          expect(parseCidr(formatCidr(s))).toEqual(s);
          expect(subnetIndex(pool, hostLen, s)).toBe(i);
          subnets.push(s);
        }
        expect(BigInt(seen.size)).toBe(count);
        // sorted by base, consecutive subnets touch without overlap: together they tile the pool
        subnets.sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : 0));
        expect(subnets[0].base).toBe(pool.base);
        expect(cidrLast(subnets[subnets.length - 1])).toBe(cidrLast(pool));
        for (let k = 1; k < subnets.length; k++) {
          expect(cidrOverlaps(subnets[k - 1], subnets[k])).toBe(false);
          expect(subnets[k].base).toBe(cidrLast(subnets[k - 1]) + 1n);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('overlap is symmetric and matches address-range intersection', () => {
    fc.assert(
      fc.property(arbPool, arbPool, ({ pool: a }, { pool: b }) => {
        const ranges = a.family === b.family && a.base <= cidrLast(b) && b.base <= cidrLast(a);
        expect(cidrOverlaps(a, b)).toBe(ranges);
        expect(cidrOverlaps(b, a)).toBe(ranges);
      }),
    );
  });

  it('formats and parses round-trip, also through store key segments', () => {
    fc.assert(
      fc.property(arbPool, ({ pool }) => {
        expect(parseCidr(formatCidr(pool))).toEqual(pool);
        const seg = subnetToKey(pool);
        expect(seg).not.toContain('/');
        expect(keyToSubnet(seg)).toEqual(pool);
      }),
    );
  });

  it('randomBelow stays in range', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 1n << 80n }), arbRandom, (n, random) => {
        const r = randomBelow(n, random);
        expect(r >= 0n && r < n).toBe(true);
      }),
    );
  });

  it('parses canonical forms and refuses bad CIDRs with a reason', () => {
    expect(parseCidr('10.244.0.0/16')).toEqual({ family: 4, base: 0x0af40000n, prefixLength: 16 });
    expect(formatCidr(parseCidr('fd00:0:0:0::/64'))).toBe('fd00::/64');
    expect(subnetToKey(parseCidr('10.244.3.0/24'))).toBe('10.244.3.0-24');
    const bad: Array<[string, RegExp]> = [
      ['10.244.1.0/16', /host bits set; did you mean 10\.244\.0\.0\/16/],
      ['10.244.0.0', /address\/prefix-length/],
      ['10.244.0.0/33', /prefix length 33 must be between 0 and 32/],
      ['10.244.0.0/', /address\/prefix-length/],
      ['010.244.0.0/16', /not an IPv4 or IPv6 address/],
      ['10.256.0.0/16', /not an IPv4 or IPv6 address/],
      ['fd00::/129', /prefix length 129 must be between 0 and 128/],
      ['fe80::%eth0/64', /not an IPv4 or IPv6 address/],
      ['hello/8', /not an IPv4 or IPv6 address/],
      ['10.0.0.0/8/8', /address\/prefix-length/],
    ];
    for (const [text, msg] of bad) expect(() => parseCidr(text), text).toThrow(msg);
  });

  it('refuses out-of-range subnet arithmetic', () => {
    const pool = parseCidr('10.244.0.0/16');
    expect(subnetCount(pool, 24)).toBe(256n);
    expect(formatCidr(subnetAt(pool, 24, 255n))).toBe('10.244.255.0/24');
    expect(() => subnetAt(pool, 24, 256n)).toThrow(/out of range/);
    expect(() => subnetCount(pool, 15)).toThrow(/between 16 and 32/);
    expect(subnetIndex(pool, 24, parseCidr('10.245.0.0/24'))).toBeUndefined();
    expect(subnetIndex(pool, 24, parseCidr('10.244.1.0/25'))).toBeUndefined();
    expect(() => [...candidateOrder(3n, Math.random)]).toThrow(/power of two/);
  });
});

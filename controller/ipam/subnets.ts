// Carving a pool into host subnets for the allocator: counting, indexing and
// the randomised order in which controllers try them, and the store key of a
// subnet. The CIDR arithmetic underneath is controller/common/cidr.ts.
import { type Cidr, CidrError, addressBits, cidrContains, formatAddress, formatCidr, parseCidr } from '../common/cidr';

/** How many /prefixLength subnets the pool holds. */
export function subnetCount(pool: Cidr, prefixLength: number): bigint {
  checkSubnetLength(pool, prefixLength);
  return 1n << BigInt(prefixLength - pool.prefixLength);
}

/** The index-th /prefixLength subnet of the pool, counting from its base. */
export function subnetAt(pool: Cidr, prefixLength: number, index: bigint): Cidr {
  const count = subnetCount(pool, prefixLength);
  if (index < 0n || index >= count) {
    throw new RangeError(`subnet index ${index} out of range for /${prefixLength} subnets of ${formatCidr(pool)} (0..${count - 1n})`);
  }
  const size = 1n << BigInt(addressBits(pool.family) - prefixLength);
  return { family: pool.family, base: pool.base + index * size, prefixLength };
}

/** Index of `subnet` among the pool's /prefixLength subnets, or undefined if it is not one of them. */
export function subnetIndex(pool: Cidr, prefixLength: number, subnet: Cidr): bigint | undefined {
  if (subnet.prefixLength !== prefixLength || !cidrContains(pool, subnet)) return undefined;
  const size = 1n << BigInt(addressBits(pool.family) - prefixLength);
  return (subnet.base - pool.base) / size;
}

function checkSubnetLength(pool: Cidr, prefixLength: number): void {
  if (!Number.isInteger(prefixLength) || prefixLength < pool.prefixLength || prefixLength > addressBits(pool.family)) {
    throw new RangeError(`subnet prefix length ${prefixLength} must be between ${pool.prefixLength} and ${addressBits(pool.family)} for pool ${formatCidr(pool)}`);
  }
}

/** A uniform bigint in [0, n), built from 32-bit draws of `random` (which returns [0, 1)). */
export function randomBelow(n: bigint, random: () => number): bigint {
  if (n <= 0n) throw new RangeError(`randomBelow needs a positive bound, got ${n}`);
  let r = 0n;
  let span = 1n;
  // Draw well past n so the modulo bias is below 2^-32.
  while (span < n << 32n) {
    r = (r << 32n) | BigInt(Math.floor(random() * 0x1_0000_0000) >>> 0);
    span <<= 32n;
  }
  return r % n;
}

/**
 * The order in which an allocator tries subnet indices: every index in
 * [0, count) exactly once, starting at a random index and stepping by a
 * random odd stride. count is a power of two, so any odd stride is coprime
 * with it and the walk is a permutation; O(1) memory even for IPv6 pools.
 * Many controllers allocating at once thus start far apart and walk
 * different paths instead of all fighting over the lowest free subnet.
 */
export function* candidateOrder(count: bigint, random: () => number): Generator<bigint> {
  if (count <= 0n) return;
  if ((count & (count - 1n)) !== 0n) throw new RangeError(`candidate count ${count} must be a power of two`);
  const start = randomBelow(count, random);
  const stride = count === 1n ? 1n : randomBelow(count / 2n, random) * 2n + 1n;
  for (let i = 0n; i < count; i++) yield (start + i * stride) % count;
}

/** "10.244.3.0/24" -> "10.244.3.0-24": store keys use one path segment per subnet. */
export function subnetToKey(c: Cidr): string {
  return `${formatAddress(c.family, c.base)}-${c.prefixLength}`;
}

export function keyToSubnet(segment: string): Cidr {
  const dash = segment.lastIndexOf('-');
  if (dash < 0) throw new CidrError(`invalid subnet key "${segment}" (expected address-prefixLength, e.g. "10.244.3.0-24")`);
  return parseCidr(`${segment.slice(0, dash)}/${segment.slice(dash + 1)}`);
}

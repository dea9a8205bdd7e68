// Pure CIDR math for the subnet allocator. Addresses are bigints so IPv4 and
// IPv6 pools share one code path; ip-address does the parsing and printing.
import { Address4, Address6 } from 'ip-address';
import { WeftError } from './errors';

export type IpFamily = 4 | 6;

/** A network: `base` is the first address (host bits zero). */
export type Cidr = { family: IpFamily; base: bigint; prefixLength: number };

export class CidrError extends WeftError {
  constructor(message: string) {
    super('WEFT_CIDR_INVALID', message);
    this.name = 'CidrError';
  }
}

// Leading zeros are refused: "010.1.1.1" is octal to some tools and decimal to others.
const IPV4_RE = /^(0|[1-9]\d{0,2})(\.(0|[1-9]\d{0,2})){3}$/;

export function addressBits(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

/** Parse "10.244.0.0/16" or "fd00:10::/48"; host bits must be zero so the text means one thing. */
export function parseCidr(text: string): Cidr {
  if (typeof text !== 'string') throw new CidrError(`invalid CIDR ${JSON.stringify(text)} (must be a string like "10.244.0.0/16")`);
  const parts = text.split('/');
  if (parts.length !== 2 || !/^\d{1,3}$/.test(parts[1])) {
    throw new CidrError(`invalid CIDR "${text}" (must be address/prefix-length, e.g. "10.244.0.0/16")`);
  }
  const [addr, lenText] = parts;
  const prefixLength = Number(lenText);
  let family: IpFamily;
  let value: bigint;
  if (IPV4_RE.test(addr) && Address4.isValid(addr)) {
    family = 4;
    value = new Address4(addr).bigInt();
  } else if (addr.includes(':') && !addr.includes('%') && Address6.isValid(addr)) {
    family = 6;
    value = new Address6(addr).bigInt();
  } else {
    throw new CidrError(`invalid CIDR "${text}" ("${addr}" is not an IPv4 or IPv6 address)`);
  }
  const bits = addressBits(family);
  if (prefixLength > bits) {
    throw new CidrError(`invalid CIDR "${text}" (prefix length ${prefixLength} must be between 0 and ${bits})`);
  }
  const hostMask = (1n << BigInt(bits - prefixLength)) - 1n;
  if ((value & hostMask) !== 0n) {
    const base = value & ~hostMask;
    throw new CidrError(`invalid CIDR "${text}" (host bits set; did you mean ${formatCidr({ family, base, prefixLength })}?)`);
  }
  return { family, base: value, prefixLength };
}

export function formatAddress(family: IpFamily, value: bigint): string {
  return family === 4 ? Address4.fromBigInt(value).correctForm() : Address6.fromBigInt(value).correctForm();
}

export function formatCidr(c: Cidr): string {
  return `${formatAddress(c.family, c.base)}/${c.prefixLength}`;
}

/** Number of addresses in the network. */
export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(addressBits(c.family) - c.prefixLength);
}

export function cidrLast(c: Cidr): bigint {
  return c.base + cidrSize(c) - 1n;
}

/** True when every address of `inner` is in `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    outer.prefixLength <= inner.prefixLength &&
    inner.base >= outer.base &&
    cidrLast(inner) <= cidrLast(outer)
  );
}

/** Aligned networks either nest or are disjoint, so overlap is containment either way. */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}

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

// CIDR parsing, printing and arithmetic for everyone who checks an address
// range (request rules, the cluster config, the allocator). Addresses are
// bigints so IPv4 and IPv6 share one code path; ip-address does the parsing
// and printing. Carving a pool into host subnets is the allocator's
// (controller/ipam/subnets.ts).
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

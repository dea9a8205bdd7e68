// Addresses as the kernel wants them: family + raw bytes, and back.
// Parsing is strict; every failure is an InvalidArgumentError naming the input.
import { isIPv4, isIPv6 } from 'node:net';
import { Address6 } from 'ip-address';
import { AF_INET, AF_INET6 } from './libc';
import { InvalidArgumentError } from './errors';

export type Cidr = { ip: string; prefixLen: number; family: number };

export function ipFamily(ip: string): number {
  if (isIPv4(ip)) return AF_INET;
  if (isIPv6(ip)) return AF_INET6;
  throw new InvalidArgumentError(`invalid IP address "${ip}"`);
}

export function ipToBytes(ip: string): Buffer {
  if (ipFamily(ip) === AF_INET) return Buffer.from(ip.split('.').map(Number));
  // canonicalForm() is always eight 4-digit groups, whatever the input's shorthand
  const groups = new Address6(ip).canonicalForm().split(':');
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export function bytesToIp(b: Buffer): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length === 16) return Address6.fromByteArray([...b]).correctForm();
  throw new InvalidArgumentError(`address of ${b.length} bytes is neither IPv4 nor IPv6`);
}

/**
 * An address in the form the kernel's replies decode to, for comparing
 * addresses written differently: IPv6 compressed and lower case
 * ("FD00:0::1" -> "fd00::1"); IPv4 text is already that form.
 */
export function canonicalIp(ip: string): string {
  return ipFamily(ip) === AF_INET6 ? bytesToIp(ipToBytes(ip)) : ip;
}

/** "10.0.0.1/24" -> { ip: "10.0.0.1", prefixLen: 24, family }; a bare address gets the full length. */
export function parseCidr(s: string): Cidr {
  const slash = s.indexOf('/');
  const ip = slash === -1 ? s : s.slice(0, slash);
  let family: number;
  try {
    family = ipFamily(ip);
  } catch {
    throw new InvalidArgumentError(`invalid CIDR "${s}"`);
  }
  const max = family === AF_INET ? 32 : 128;
  if (slash === -1) return { ip: canonicalIp(ip), prefixLen: max, family };
  const lenText = s.slice(slash + 1);
  const prefixLen = /^\d{1,3}$/.test(lenText) ? Number(lenText) : NaN;
  if (!(prefixLen >= 0 && prefixLen <= max)) {
    throw new InvalidArgumentError(`invalid CIDR "${s}": prefix length must be between 0 and ${max}`);
  }
  return { ip: canonicalIp(ip), prefixLen, family };
}

export function formatCidr(c: { ip: string; prefixLen: number }): string {
  return `${c.ip}/${c.prefixLen}`;
}

/** The network address of a CIDR: host bits cleared ("10.1.2.3/24" -> "10.1.2.0/24"). */
export function networkOf(c: Cidr): Cidr {
  const b = ipToBytes(c.ip);
  for (let bit = c.prefixLen; bit < b.length * 8; bit++) b[bit >> 3] &= ~(0x80 >> (bit & 7));
  return { ip: bytesToIp(b), prefixLen: c.prefixLen, family: c.family };
}

const MAC_RE = /^([0-9a-f]{2})(:[0-9a-f]{2}){5}$/i;

export function macToBytes(mac: string): Buffer {
  if (!MAC_RE.test(mac)) throw new InvalidArgumentError(`invalid MAC address "${mac}"`);
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

export function bytesToMac(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

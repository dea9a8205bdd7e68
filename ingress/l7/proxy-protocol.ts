// PROXY protocol (haproxy.org/download/2.9/doc/proxy-protocol.txt): the
// header a load balancer in front of us puts before the first HTTP byte to
// say who the client is (v2 binary; v1 text, accepted because it is cheap),
// and the v2 header we put before the first byte to a backend that wants to
// know. Pure functions over buffers; the sockets are accept.ts's business.
import { isIPv4, isIPv6 } from 'node:net';

export type SocketAddress = { ip: string; port: number };

export type ProxyHeader = {
  /** Bytes the header took: the HTTP stream starts after them. */
  length: number;
  /** Absent for LOCAL (the balancer's own health check) and UNKNOWN: the connection's own addresses stand. */
  source?: SocketAddress;
  destination?: SocketAddress;
};

export type ParseResult = { kind: 'ok'; header: ProxyHeader } | { kind: 'incomplete' } | { kind: 'invalid'; reason: string };

const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_SIG = Buffer.from('PROXY ', 'latin1');
/** v1 lines are at most 107 bytes with CRLF (spec section 2.1). */
const V1_MAX = 107;
/** v2 allows 64 KiB of TLVs; nobody sends more than a few hundred bytes, and a peer that does is not a balancer we know. */
const V2_MAX = 16 + 2048;

const INCOMPLETE: ParseResult = { kind: 'incomplete' };

/** Reads a PROXY v1 or v2 header at the start of `buf` (which may hold only part of it). */
export function parseProxyHeader(buf: Buffer): ParseResult {
  if (buf.length === 0) return INCOMPLETE;
  if (buf[0] === V2_SIG[0]) {
    const n = Math.min(buf.length, V2_SIG.length);
    if (buf.compare(V2_SIG, 0, n, 0, n) !== 0) return { kind: 'invalid', reason: 'not a PROXY protocol header' };
    return buf.length < 16 ? INCOMPLETE : parseV2(buf);
  }
  if (buf[0] === V1_SIG[0]) {
    const n = Math.min(buf.length, V1_SIG.length);
    if (buf.compare(V1_SIG, 0, n, 0, n) !== 0) return { kind: 'invalid', reason: 'not a PROXY protocol header' };
    return parseV1(buf);
  }
  return { kind: 'invalid', reason: 'not a PROXY protocol header' };
}

function parseV2(buf: Buffer): ParseResult {
  const verCmd = buf[12];
  if (verCmd >> 4 !== 2) return { kind: 'invalid', reason: `PROXY v2 version ${verCmd >> 4}` };
  const cmd = verCmd & 0x0f;
  const famProto = buf[13];
  const len = buf.readUInt16BE(14);
  const total = 16 + len;
  if (total > V2_MAX) return { kind: 'invalid', reason: `PROXY v2 header of ${total} bytes is too long` };
  if (buf.length < total) return INCOMPLETE;
  if (cmd === 0) return { kind: 'ok', header: { length: total } }; // LOCAL
  if (cmd !== 1) return { kind: 'invalid', reason: `PROXY v2 command ${cmd}` };
  const family = famProto >> 4;
  if (family === 1) {
    if (len < 12) return { kind: 'invalid', reason: 'PROXY v2 IPv4 address block too short' };
    return {
      kind: 'ok',
      header: {
        length: total,
        source: { ip: formatIPv4(buf, 16), port: buf.readUInt16BE(24) },
        destination: { ip: formatIPv4(buf, 20), port: buf.readUInt16BE(26) },
      },
    };
  }
  if (family === 2) {
    if (len < 36) return { kind: 'invalid', reason: 'PROXY v2 IPv6 address block too short' };
    return {
      kind: 'ok',
      header: {
        length: total,
        source: { ip: formatIPv6(buf, 16), port: buf.readUInt16BE(48) },
        destination: { ip: formatIPv6(buf, 32), port: buf.readUInt16BE(50) },
      },
    };
  }
  // AF_UNSPEC or AF_UNIX: no address we could use; the connection's own stands.
  return { kind: 'ok', header: { length: total } };
}

function parseV1(buf: Buffer): ParseResult {
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end < 0) return buf.length >= V1_MAX ? { kind: 'invalid', reason: 'PROXY v1 line too long' } : INCOMPLETE;
  if (end + 2 > V1_MAX) return { kind: 'invalid', reason: 'PROXY v1 line too long' };
  const parts = buf.toString('latin1', 0, end).split(' ');
  if (parts[1] === 'UNKNOWN') return { kind: 'ok', header: { length: end + 2 } };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) return { kind: 'invalid', reason: 'malformed PROXY v1 line' };
  const isFamily = parts[1] === 'TCP4' ? isIPv4 : isIPv6;
  const sport = portOf(parts[4]);
  const dport = portOf(parts[5]);
  if (!isFamily(parts[2]) || !isFamily(parts[3]) || sport < 0 || dport < 0) return { kind: 'invalid', reason: 'malformed PROXY v1 addresses' };
  return { kind: 'ok', header: { length: end + 2, source: { ip: canonicalIp(parts[2]), port: sport }, destination: { ip: canonicalIp(parts[3]), port: dport } } };
}

function portOf(s: string): number {
  if (!/^(0|[1-9]\d{0,4})$/.test(s)) return -1;
  const n = Number(s);
  return n <= 65535 ? n : -1;
}

/** A v2 PROXY header (command PROXY, TCP) saying `source` connected to `destination`. */
export function encodeProxyV2(source: SocketAddress, destination: SocketAddress): Buffer {
  let src = ipBytes(source.ip);
  let dst = ipBytes(destination.ip);
  // Both addresses must be of one family; an IPv4 one is written IPv4-mapped next to an IPv6 one.
  if (src.length !== dst.length) {
    if (src.length === 4) src = mapped(src);
    else dst = mapped(dst);
  }
  const v6 = src.length === 16;
  const addrLen = v6 ? 36 : 12;
  const out = Buffer.allocUnsafe(16 + addrLen);
  V2_SIG.copy(out, 0);
  out[12] = 0x21; // version 2, PROXY
  out[13] = v6 ? 0x21 : 0x11; // AF_INET6 or AF_INET, STREAM
  out.writeUInt16BE(addrLen, 14);
  out.set(src, 16);
  out.set(dst, 16 + src.length);
  out.writeUInt16BE(source.port, 16 + 2 * src.length);
  out.writeUInt16BE(destination.port, 18 + 2 * src.length);
  return out;
}

function mapped(v4: Uint8Array): Uint8Array {
  const b = new Uint8Array(16);
  b[10] = 0xff;
  b[11] = 0xff;
  b.set(v4, 12);
  return b;
}

/** 4 or 16 bytes of a textual IPv4 or IPv6 address (dotted IPv4 tails allowed); throws on anything else. */
export function ipBytes(ip: string): Uint8Array {
  if (isIPv4(ip)) return Uint8Array.from(ip.split('.'), Number);
  if (!isIPv6(ip)) throw new TypeError(`not an IP address: ${ip}`);
  const zone = ip.indexOf('%');
  let text = zone >= 0 ? ip.slice(0, zone) : ip;
  const out = new Uint8Array(16);
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tail = text.slice(lastColon + 1).split('.').map(Number);
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const dbl = text.indexOf('::');
  const head = dbl >= 0 ? text.slice(0, dbl) : text;
  const rest = dbl >= 0 ? text.slice(dbl + 2) : '';
  const hs = head === '' ? [] : head.split(':');
  const rs = rest === '' ? [] : rest.split(':');
  const groups = [...hs, ...new Array<string>(8 - hs.length - rs.length).fill('0'), ...rs];
  for (let i = 0; i < 8; i++) {
    const g = parseInt(groups[i], 16);
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  }
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

function formatIPv4(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** RFC 5952 text of 16 bytes at `at`; an IPv4-mapped address is printed as plain IPv4, as the rest of the proxy sees IPv4 clients. */
function formatIPv6(b: Uint8Array, at: number): string {
  let mappedV4 = b[at + 10] === 0xff && b[at + 11] === 0xff;
  for (let i = 0; i < 10 && mappedV4; i++) if (b[at + i] !== 0) mappedV4 = false;
  if (mappedV4) return formatIPv4(b, at + 12);
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[at + 2 * i] << 8) | b[at + 2 * i + 1]);
  // the longest run of two or more zero groups becomes '::' (the first such run on a tie)
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestAt < 0) return g.map((x) => x.toString(16)).join(':');
  const left = g.slice(0, bestAt).map((x) => x.toString(16)).join(':');
  const right = g.slice(bestAt + bestLen).map((x) => x.toString(16)).join(':');
  return `${left}::${right}`;
}

/** One spelling per address, so XFF, affinity and logs agree: IPv4-mapped IPv6 becomes IPv4, IPv6 is RFC 5952. */
export function canonicalIp(ip: string): string {
  if (ip.startsWith('::ffff:') && isIPv4(ip.slice(7))) return ip.slice(7);
  if (isIPv4(ip)) return ip;
  return isIPv6(ip) ? formatIPv6(ipBytes(ip), 0) : ip;
}

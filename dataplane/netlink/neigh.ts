// Neighbours (ARP/NDP entries) and bridge/VXLAN forwarding-database entries.
// Both are RTM_*NEIGH messages; the family tells them apart: AF_INET/AF_INET6
// is the neighbour table, AF_BRIDGE is an FDB (a bridge port's, NTF_MASTER, or
// a device's own, NTF_SELF — the VXLAN device keeps its remote VTEPs there).
import {
  encodeIfInfoMsg, encodeNdMsg, decodeNdMsg, nla, parseAttrs, read,
  NDMSG_LEN, RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_APPEND,
  type Message,
} from './codec';
import { InvalidArgumentError } from './errors';
import type { Handle, Request } from './handle';
import { bytesToIp, bytesToMac, canonicalIp, ipFamily, ipToBytes, macToBytes } from './ip';
import { AF_BRIDGE, AF_INET, AF_INET6, AF_UNSPEC } from './libc';
import { VNI_MAX } from './link';

// neighbour states (include/uapi/linux/neighbour.h)
export const NUD_NONE = 0x00;
export const NUD_INCOMPLETE = 0x01;
export const NUD_REACHABLE = 0x02;
export const NUD_STALE = 0x04;
export const NUD_DELAY = 0x08;
export const NUD_PROBE = 0x10;
export const NUD_FAILED = 0x20;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;

// ndm_flags
export const NTF_USE = 0x01;
export const NTF_SELF = 0x02;
export const NTF_MASTER = 0x04;
export const NTF_PROXY = 0x08;
export const NTF_EXT_LEARNED = 0x10;
export const NTF_OFFLOADED = 0x20;
export const NTF_STICKY = 0x40;
export const NTF_ROUTER = 0x80;

// attributes
export const NDA_DST = 1;
export const NDA_LLADDR = 2;
export const NDA_CACHEINFO = 3;
export const NDA_PROBES = 4;
export const NDA_VLAN = 5;
export const NDA_PORT = 6;
export const NDA_VNI = 7;
export const NDA_IFINDEX = 8;
export const NDA_MASTER = 9;

const IFLA_MASTER = 10;

/**
 * A neighbour or FDB entry, its fields mirroring the kernel's attributes.
 * Neighbour (AF_INET/AF_INET6): `ip` is the neighbour's address, `mac` its lladdr.
 * FDB (AF_BRIDGE): `mac` is the entry's address; `dst`, `vni`, `port` say where a
 * VXLAN device sends frames for it. The kernel reports `vni` and `port` only
 * when they differ from the device's own.
 */
export type Neigh = {
  linkIndex: number;
  family: number;
  ip?: string;
  mac?: string;
  state: number;
  flags: number;
  vni?: number;
  dst?: string;
  port?: number;
  vlan?: number;
  masterIndex?: number;
};

export type NeighFilter = { linkIndex?: number; family?: number };
export type FdbFilter = { linkIndex?: number; masterIndex?: number };

// ---- validation: everything is checked before a byte reaches the kernel ----

function fail(field: string, why: string, value: unknown): never {
  throw new InvalidArgumentError(`invalid neigh ${field} ${JSON.stringify(value) ?? String(value)}: ${why}`);
}

function checkInt(field: string, v: unknown, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(field, `must be an integer between ${min} and ${max}`, v);
  }
}

/** Parsed once: the bytes go straight into the request. */
function checkIp(field: string, v: unknown): { family: number; bytes: Buffer } {
  if (typeof v !== 'string') fail(field, 'must be an IP address string', v);
  try {
    return { family: ipFamily(v), bytes: ipToBytes(v) };
  } catch {
    return fail(field, 'not an IPv4 or IPv6 address', v);
  }
}

function checkMac(v: unknown): Buffer {
  if (typeof v !== 'string') fail('mac', 'must be a MAC address string', v);
  try {
    return macToBytes(v);
  } catch {
    return fail('mac', 'must be six hex octets separated by ":"', v);
  }
}

function familyName(f: number): string {
  return f === AF_INET ? 'AF_INET' : f === AF_INET6 ? 'AF_INET6' : f === AF_BRIDGE ? 'AF_BRIDGE' : String(f);
}

type Parsed = { mac?: Buffer; ip?: Buffer; dst?: Buffer };

/** Only the fields a delete needs are required; writes also need state and flags. */
function validate(n: Neigh, forWrite: boolean): Parsed {
  if (n === null || typeof n !== 'object') throw new InvalidArgumentError('invalid neigh: expected an object');
  if (n.linkIndex === undefined) fail('linkIndex', 'is required', n.linkIndex);
  checkInt('linkIndex', n.linkIndex, 1, 0x7fffffff);
  if (n.family !== AF_INET && n.family !== AF_INET6 && n.family !== AF_BRIDGE) {
    fail('family', 'must be AF_INET, AF_INET6 or AF_BRIDGE', n.family);
  }
  if (forWrite || n.state !== undefined) checkInt('state', n.state, 0, 0xffff);
  if (forWrite || n.flags !== undefined) checkInt('flags', n.flags, 0, 0xff);
  const p: Parsed = {};
  if (n.mac !== undefined) p.mac = checkMac(n.mac);
  if (n.masterIndex !== undefined) checkInt('masterIndex', n.masterIndex, 1, 0x7fffffff);
  if (n.vlan !== undefined) checkInt('vlan', n.vlan, 1, 4094);
  if (n.family === AF_BRIDGE) {
    if (n.ip !== undefined) fail('ip', 'an FDB entry (AF_BRIDGE) has no ip; the remote VTEP goes in dst', n.ip);
    if (n.mac === undefined) fail('mac', 'is required for an FDB entry', n.mac);
    if (n.dst !== undefined) p.dst = checkIp('dst', n.dst).bytes;
    if (n.vni !== undefined) checkInt('vni', n.vni, 0, VNI_MAX);
    if (n.port !== undefined) checkInt('port', n.port, 1, 0xffff);
  } else {
    if (n.ip === undefined) fail('ip', `is required for a ${familyName(n.family)} neighbour`, n.ip);
    const { family, bytes } = checkIp('ip', n.ip);
    if (family !== n.family) fail('ip', `family mismatch: address is ${familyName(family)}, entry is ${familyName(n.family)}`, n.ip);
    p.ip = bytes;
    for (const k of ['dst', 'vni', 'port'] as const) {
      if (n[k] !== undefined) fail(k, 'only FDB entries (AF_BRIDGE) carry it', n[k]);
    }
  }
  return p;
}

function requireBridge(n: Neigh): void {
  if (n && typeof n === 'object' && n.family !== AF_BRIDGE) {
    fail('family', 'an FDB entry must be AF_BRIDGE', n.family);
  }
}

// ---- encoding ----

function encode(n: Neigh, p: Parsed): Buffer {
  const parts = [encodeNdMsg({ family: n.family, index: n.linkIndex, state: n.state ?? 0, flags: n.flags ?? 0 })];
  if (p.ip) parts.push(nla.bytes(NDA_DST, p.ip));
  if (p.mac) parts.push(nla.bytes(NDA_LLADDR, p.mac));
  if (p.dst) parts.push(nla.bytes(NDA_DST, p.dst));
  if (n.vni !== undefined) parts.push(nla.u32(NDA_VNI, n.vni));
  if (n.port !== undefined) parts.push(nla.u16be(NDA_PORT, n.port));
  if (n.vlan !== undefined) parts.push(nla.u16(NDA_VLAN, n.vlan));
  if (n.masterIndex !== undefined) parts.push(nla.u32(NDA_MASTER, n.masterIndex));
  return Buffer.concat(parts);
}

/** Short text for logs and error messages, in `ip neigh` / `bridge fdb` words. */
export function neighString(n: Neigh): string {
  const s: string[] = [];
  if (n.family === AF_BRIDGE) {
    s.push(String(n.mac));
    if (n.dst !== undefined) s.push(`dst ${n.dst}`);
    if (n.vni !== undefined) s.push(`vni ${n.vni}`);
    if (n.port !== undefined) s.push(`port ${n.port}`);
  } else {
    s.push(String(n.ip));
    if (n.mac !== undefined) s.push(`lladdr ${n.mac}`);
  }
  if (n.vlan !== undefined) s.push(`vlan ${n.vlan}`);
  s.push(`dev #${n.linkIndex}`);
  if (n.masterIndex !== undefined) s.push(`master #${n.masterIndex}`);
  if (n.flags & NTF_SELF) s.push('self');
  if (n.flags & NTF_MASTER) s.push('master');
  if (n.state & NUD_PERMANENT) s.push('permanent');
  return s.join(' ');
}

function writeRequest(n: Neigh, verb: string, kind: 'neigh' | 'fdb', flags: number): Request {
  if (kind === 'fdb') requireBridge(n);
  const p = validate(n, true);
  return { type: RTM_NEWNEIGH, flags, body: encode(n, p), op: `${kind} ${verb} ${neighString(n)}` };
}

function deleteRequest(n: Neigh, kind: 'neigh' | 'fdb'): Request {
  if (kind === 'fdb') requireBridge(n);
  const p = validate(n, false);
  return { type: RTM_DELNEIGH, body: encode(n, p), op: `${kind} del ${neighString(n)}` };
}

// ---- neighbours ----

/** `ip neigh replace`: create or overwrite. What weft uses for each remote VTEP. */
export function neighSetRequest(n: Neigh): Request {
  return writeRequest(n, 'replace', 'neigh', NLM_F_CREATE | NLM_F_REPLACE);
}

/** `ip neigh add`: fails with EEXIST if the entry is already there. */
export function neighAddRequest(n: Neigh): Request {
  return writeRequest(n, 'add', 'neigh', NLM_F_CREATE | NLM_F_EXCL);
}

export function neighDelRequest(n: Neigh): Request {
  return deleteRequest(n, 'neigh');
}

export function neighSet(h: Handle, n: Neigh): void {
  h.exec(neighSetRequest(n));
}

export function neighAdd(h: Handle, n: Neigh): void {
  h.exec(neighAddRequest(n));
}

export function neighDel(h: Handle, n: Neigh): void {
  h.exec(neighDelRequest(n));
}

// ---- FDB ----

/** `bridge fdb append`: adds one more remote to an entry (e.g. the all-zero MAC's flood list). */
export function fdbAppendRequest(n: Neigh): Request {
  return writeRequest(n, 'append', 'fdb', NLM_F_CREATE | NLM_F_APPEND);
}

/** `bridge fdb replace`: create or overwrite (a VXLAN entry's dst is replaced). */
export function fdbReplaceRequest(n: Neigh): Request {
  return writeRequest(n, 'replace', 'fdb', NLM_F_CREATE | NLM_F_REPLACE);
}

/** `bridge fdb add`: fails with EEXIST if the entry is already there. */
export function fdbAddRequest(n: Neigh): Request {
  return writeRequest(n, 'add', 'fdb', NLM_F_CREATE | NLM_F_EXCL);
}

/** On a VXLAN device, a dst removes only that remote; without one the whole entry goes. */
export function fdbDelRequest(n: Neigh): Request {
  return deleteRequest(n, 'fdb');
}

export function fdbAppend(h: Handle, n: Neigh): void {
  h.exec(fdbAppendRequest(n));
}

export function fdbReplace(h: Handle, n: Neigh): void {
  h.exec(fdbReplaceRequest(n));
}

export function fdbAdd(h: Handle, n: Neigh): void {
  h.exec(fdbAddRequest(n));
}

export function fdbDel(h: Handle, n: Neigh): void {
  h.exec(fdbDelRequest(n));
}

// ---- listing ----

/** Decode one RTM_NEWNEIGH message; undefined for what is not a neighbour/FDB entry. */
export function neighDecode(m: Message): Neigh | undefined {
  if (m.type !== RTM_NEWNEIGH || m.body.length < NDMSG_LEN) return undefined;
  const hdr = decodeNdMsg(m.body);
  const a = parseAttrs(m.body, NDMSG_LEN);
  const n: Neigh = { linkIndex: hdr.index, family: hdr.family, state: hdr.state, flags: hdr.flags };
  const dst = a.get(NDA_DST);
  const ll = a.get(NDA_LLADDR);
  if (hdr.family === AF_BRIDGE) {
    if (ll) n.mac = bytesToMac(ll);
    if (dst && (dst.length === 4 || dst.length === 16)) n.dst = bytesToIp(dst);
    const vni = read.u32(a.get(NDA_VNI));
    if (vni !== undefined) n.vni = vni;
    const port = read.u16be(a.get(NDA_PORT));
    if (port !== undefined) n.port = port;
  } else {
    if (dst && (dst.length === 4 || dst.length === 16)) n.ip = bytesToIp(dst);
    // an unresolved neighbour has an empty lladdr
    if (ll && ll.length > 0) n.mac = bytesToMac(ll);
  }
  const vlan = read.u16(a.get(NDA_VLAN));
  if (vlan !== undefined) n.vlan = vlan;
  const master = read.u32(a.get(NDA_MASTER));
  if (master !== undefined && master > 0) n.masterIndex = master;
  return n;
}

function checkFilterIndex(field: string, v: unknown): void {
  if (v !== undefined) checkInt(field, v, 1, 0x7fffffff);
}

/** Neighbour-table entries (not FDB), optionally of one link and/or one family. */
export function neighList(h: Handle, filter: NeighFilter = {}): Neigh[] {
  checkFilterIndex('linkIndex', filter.linkIndex);
  const family = filter.family ?? AF_UNSPEC;
  if (family !== AF_UNSPEC && family !== AF_INET && family !== AF_INET6) {
    fail('family', 'a neighbour listing is AF_INET, AF_INET6 or unset (FDB entries: fdbList)', family);
  }
  // the kernel filters on NDA_IFINDEX itself, so a host with many links sends only the one asked for
  const parts = [encodeNdMsg({ family })];
  if (filter.linkIndex !== undefined) parts.push(nla.u32(NDA_IFINDEX, filter.linkIndex));
  const msgs = h.dump({ type: RTM_GETNEIGH, body: Buffer.concat(parts), op: 'neigh list' });
  const out: Neigh[] = [];
  for (const m of msgs) {
    const n = neighDecode(m);
    if (!n || n.family === AF_BRIDGE || n.ip === undefined) continue;
    if (n.flags & NTF_PROXY) continue;
    if (filter.linkIndex !== undefined && n.linkIndex !== filter.linkIndex) continue;
    if (family !== AF_UNSPEC && n.family !== family) continue;
    out.push(n);
  }
  return out;
}

/** FDB entries: a device's own (NTF_SELF) and bridge ports' (NTF_MASTER), optionally of one link / bridge. */
export function fdbList(h: Handle, filter: FdbFilter = {}): Neigh[] {
  checkFilterIndex('linkIndex', filter.linkIndex);
  checkFilterIndex('masterIndex', filter.masterIndex);
  // The FDB dump takes its filter in the older ifinfomsg shape (index = port,
  // IFLA_MASTER = bridge) on a socket without strict checking, as this one is.
  const parts = [encodeIfInfoMsg({ family: AF_BRIDGE, index: filter.linkIndex ?? 0 })];
  if (filter.masterIndex !== undefined) parts.push(nla.u32(IFLA_MASTER, filter.masterIndex));
  const msgs = h.dump({ type: RTM_GETNEIGH, body: Buffer.concat(parts), op: 'fdb list' });
  const out: Neigh[] = [];
  for (const m of msgs) {
    const n = neighDecode(m);
    if (!n || n.family !== AF_BRIDGE) continue;
    if (filter.linkIndex !== undefined && n.linkIndex !== filter.linkIndex) continue;
    if (filter.masterIndex !== undefined && n.masterIndex !== filter.masterIndex && n.linkIndex !== filter.masterIndex) continue;
    out.push(n);
  }
  return out;
}

// ---- comparing ----

function canonIp(ip: string | undefined): string | undefined {
  if (ip === undefined) return undefined;
  try {
    return canonicalIp(ip);
  } catch {
    return ip;
  }
}

function canonMac(mac: string | undefined): string | undefined {
  return mac?.toLowerCase();
}

const ZERO_MAC = '00:00:00:00:00:00';

/**
 * Identity of an entry, for diffing desired against listed state: two entries
 * with the same key are the same kernel object, and one replaces the other.
 * A neighbour is its link and address; an FDB entry its link, MAC and VLAN —
 * except the all-zero MAC, whose remotes are each their own (appended) entry.
 */
export function neighKey(n: Neigh): string {
  if (n.family === AF_BRIDGE) {
    const mac = canonMac(n.mac);
    const base = `fdb/${n.linkIndex}/${mac}/${n.vlan ?? ''}`;
    return mac === ZERO_MAC ? `${base}/${canonIp(n.dst) ?? ''}` : base;
  }
  return `neigh/${n.family}/${n.linkIndex}/${canonIp(n.ip)}`;
}

/** Same entry with the same content (addresses compared in canonical form). */
export function neighEqual(a: Neigh, b: Neigh): boolean {
  return (
    a.linkIndex === b.linkIndex &&
    a.family === b.family &&
    canonIp(a.ip) === canonIp(b.ip) &&
    canonMac(a.mac) === canonMac(b.mac) &&
    a.state === b.state &&
    a.flags === b.flags &&
    a.vni === b.vni &&
    canonIp(a.dst) === canonIp(b.dst) &&
    a.port === b.port &&
    a.vlan === b.vlan &&
    a.masterIndex === b.masterIndex
  );
}

// Interface addresses (RTM_NEWADDR / RTM_DELADDR / RTM_GETADDR).
//
// IFA_LOCAL and IFA_ADDRESS mean different things per family. IPv4: IFA_LOCAL
// is the interface's own address, IFA_ADDRESS the peer on point-to-point
// links (equal to IFA_LOCAL otherwise). IPv6: IFA_ADDRESS is the address and
// IFA_LOCAL only appears (as the own address) when there is a peer. Sending
// both with the same value when there is no peer is right for both families.
import {
  decodeIfAddrMsg, encodeIfAddrMsg, nla, parseAttrs, read,
  IFADDRMSG_LEN, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, RTM_DELADDR, RTM_GETADDR, RTM_NEWADDR,
} from './codec';
import { checkIntRange, InvalidArgumentError } from './errors';
import type { Handle, Request } from './handle';
import { bytesToIp, formatCidr, ipToBytes, networkOf, parseCidr, type Cidr } from './ip';
import { AF_INET, AF_INET6, AF_UNSPEC } from './libc';

export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_LABEL = 3;
export const IFA_BROADCAST = 4;
export const IFA_FLAGS = 8;

export const IFA_F_SECONDARY = 0x01;
export const IFA_F_NODAD = 0x02;
export const IFA_F_OPTIMISTIC = 0x04;
export const IFA_F_DADFAILED = 0x08;
export const IFA_F_HOMEADDRESS = 0x10;
export const IFA_F_DEPRECATED = 0x20;
export const IFA_F_TENTATIVE = 0x40;
export const IFA_F_PERMANENT = 0x80;
export const IFA_F_MANAGETEMPADDR = 0x100;
export const IFA_F_NOPREFIXROUTE = 0x200;
export const IFA_F_MCAUTOJOIN = 0x400;

const IFNAMSIZ = 16;

/**
 * An interface address as the kernel reports it. `cidr` is the own address
 * with its prefix length; `peer` (point-to-point) carries the same prefix
 * length, as the kernel stores one length for the pair.
 */
export type Addr = {
  linkIndex: number;
  cidr: string;
  family: number;
  scope?: number;
  label?: string;
  flags?: number;
  broadcast?: string;
  peer?: string;
};

/**
 * What a write takes: `family` may be left out (it follows from `cidr`);
 * `broadcast: '+'` asks for the IPv4 broadcast computed from the prefix, as
 * `ip addr add ... brd +` does.
 */
export type AddrSpec = Omit<Addr, 'family'> & { family?: number };

export type AddrFilter = { linkIndex?: number; family?: number };

type Checked = {
  linkIndex: number;
  local: Cidr;
  peer?: Cidr;
  prefixLen: number;
  scope?: number;
  label?: string;
  flags?: number;
  broadcast?: string;
};

function checkAddr(a: AddrSpec): Checked {
  checkIntRange('address linkIndex', a.linkIndex, 1, 0x7fffffff);
  if (typeof a.cidr !== 'string') throw new InvalidArgumentError('address cidr is required');
  const local = parseCidr(a.cidr);
  if (a.family !== undefined && a.family !== local.family) {
    throw new InvalidArgumentError(`address family ${a.family} does not match cidr "${a.cidr}" (family ${local.family})`);
  }
  let peer: Cidr | undefined;
  if (a.peer !== undefined) {
    peer = parseCidr(a.peer);
    if (peer.family !== local.family) throw new InvalidArgumentError(`address peer "${a.peer}" is not of the same family as "${a.cidr}"`);
  }
  if (a.scope !== undefined) checkIntRange('address scope', a.scope, 0, 255);
  if (a.flags !== undefined) checkIntRange('address flags', a.flags, 0, 0xffffffff);
  if (a.label !== undefined) {
    if (local.family !== AF_INET) throw new InvalidArgumentError('address label is only supported for IPv4');
    if (a.label.length === 0 || Buffer.byteLength(a.label) >= IFNAMSIZ) {
      throw new InvalidArgumentError(`invalid address label "${a.label}" (must be 1 to ${IFNAMSIZ - 1} bytes)`);
    }
  }
  let broadcast: string | undefined;
  if (a.broadcast !== undefined) {
    if (local.family !== AF_INET) throw new InvalidArgumentError('address broadcast is only supported for IPv4');
    if (a.broadcast === '+') broadcast = broadcastOf(local);
    else {
      const b = parseCidr(a.broadcast);
      if (b.family !== AF_INET || b.prefixLen !== 32) throw new InvalidArgumentError(`invalid address broadcast "${a.broadcast}" (must be an IPv4 address or "+")`);
      broadcast = b.ip;
    }
  }
  // With a peer the kernel's one prefix length belongs to the peer, as in `ip addr add A peer B/len`.
  const prefixLen = peer ? peer.prefixLen : local.prefixLen;
  return { linkIndex: a.linkIndex, local, peer, prefixLen, scope: a.scope, label: a.label, flags: a.flags, broadcast };
}

/** The directed broadcast of an IPv4 network; none for /31 and /32, which have no broadcast (RFC 3021). */
export function broadcastOf(c: Cidr): string | undefined {
  if (c.family !== AF_INET || c.prefixLen >= 31) return undefined;
  const b = ipToBytes(networkOf(c).ip);
  for (let bit = c.prefixLen; bit < 32; bit++) b[bit >> 3] |= 0x80 >> (bit & 7);
  return bytesToIp(b);
}

function encode(c: Checked, forDelete: boolean): Buffer {
  const parts = [
    encodeIfAddrMsg({
      family: c.local.family,
      prefixLen: c.prefixLen,
      flags: (c.flags ?? 0) & 0xff,
      scope: c.scope ?? 0,
      index: c.linkIndex,
    }),
    nla.bytes(IFA_LOCAL, ipToBytes(c.local.ip)),
    nla.bytes(IFA_ADDRESS, ipToBytes((c.peer ?? c.local).ip)),
  ];
  if (c.label !== undefined) parts.push(nla.str(IFA_LABEL, c.label));
  if (!forDelete) {
    if (c.broadcast !== undefined) parts.push(nla.bytes(IFA_BROADCAST, ipToBytes(c.broadcast)));
    // the header has room for 8 flag bits; IFA_FLAGS carries the rest (NOPREFIXROUTE, ...)
    if (c.flags !== undefined) parts.push(nla.u32(IFA_FLAGS, c.flags));
  }
  return Buffer.concat(parts);
}

function describe(verb: string, c: Checked): string {
  const peer = c.peer ? ` peer ${formatCidr(c.peer)}` : '';
  return `addr ${verb} ${formatCidr({ ip: c.local.ip, prefixLen: c.prefixLen })}${peer} dev #${c.linkIndex}`;
}

export function addrAddRequest(a: AddrSpec): Request {
  const c = checkAddr(a);
  return { type: RTM_NEWADDR, flags: NLM_F_CREATE | NLM_F_EXCL, body: encode(c, false), op: describe('add', c) };
}

export function addrReplaceRequest(a: AddrSpec): Request {
  const c = checkAddr(a);
  return { type: RTM_NEWADDR, flags: NLM_F_CREATE | NLM_F_REPLACE, body: encode(c, false), op: describe('replace', c) };
}

export function addrDelRequest(a: AddrSpec): Request {
  const c = checkAddr(a);
  return { type: RTM_DELADDR, body: encode(c, true), op: describe('del', c) };
}

/** Add an address; EEXIST (NetlinkError) when the link already has it. */
export function addrAdd(h: Handle, a: AddrSpec): void {
  h.exec(addrAddRequest(a));
}

/**
 * Add an address or update the one that is there. The kernel's update differs
 * by family: IPv6 takes the new flags; IPv4 keeps flags, label and broadcast
 * of the existing address (only lifetimes and metric change), so changing
 * those on IPv4 takes a delete and an add.
 */
export function addrReplace(h: Handle, a: AddrSpec): void {
  h.exec(addrReplaceRequest(a));
}

/** Remove an address; EADDRNOTAVAIL (NetlinkError) when the link does not have it. */
export function addrDel(h: Handle, a: AddrSpec): void {
  h.exec(addrDelRequest(a));
}

/** Decode one RTM_NEWADDR message. */
export function addrDecode(body: Buffer): Addr {
  const m = decodeIfAddrMsg(body);
  const at = parseAttrs(body, IFADDRMSG_LEN);
  const address = at.get(IFA_ADDRESS);
  const local = at.get(IFA_LOCAL);
  // IPv4 always sends IFA_LOCAL as the own address; IPv6 sends it only with a peer
  const own = local ?? address;
  const peerBytes = local && address && !local.equals(address) ? address : undefined;
  const out: Addr = {
    linkIndex: m.index,
    cidr: own ? formatCidr({ ip: bytesToIp(own), prefixLen: m.prefixLen }) : '',
    family: m.family,
    scope: m.scope,
    flags: read.u32(at.get(IFA_FLAGS)) ?? m.flags,
  };
  const label = read.str(at.get(IFA_LABEL));
  if (label) out.label = label;
  const brd = at.get(IFA_BROADCAST);
  if (brd) out.broadcast = bytesToIp(brd);
  if (peerBytes) out.peer = formatCidr({ ip: bytesToIp(peerBytes), prefixLen: m.prefixLen });
  return out;
}

/** Every address, or those of one link and/or family. */
export function addrList(h: Handle, filter: AddrFilter = {}): Addr[] {
  const family = filter.family ?? AF_UNSPEC;
  if (![AF_UNSPEC, AF_INET, AF_INET6].includes(family)) {
    throw new InvalidArgumentError(`invalid address family ${family} (must be ${AF_INET} or ${AF_INET6})`);
  }
  const msgs = h.dump({ type: RTM_GETADDR, body: encodeIfAddrMsg({ family }), op: 'addr list' });
  return msgs
    .filter((m) => m.type === RTM_NEWADDR && m.body.length >= IFADDRMSG_LEN && [AF_INET, AF_INET6].includes(m.body.readUInt8(0)))
    .map((m) => addrDecode(m.body))
    .filter((a) => (filter.linkIndex === undefined || a.linkIndex === filter.linkIndex) && (family === AF_UNSPEC || a.family === family));
}

function identity(a: AddrSpec): string {
  const local = parseCidr(a.cidr);
  // with a peer the prefix length is the peer's, whatever the own address was written with
  if (a.peer !== undefined) return `${a.linkIndex} ${local.ip} peer ${formatCidr(parseCidr(a.peer))}`;
  return `${a.linkIndex} ${formatCidr(local)}`;
}

/**
 * Same address on the same link: link, address, prefix length and peer.
 * Label, flags and scope are properties of that one address, not its identity.
 */
export function addrEqual(a: AddrSpec, b: AddrSpec): boolean {
  return identity(a) === identity(b);
}

export function addrString(a: AddrSpec): string {
  const parts = [a.cidr];
  if (a.peer) parts.push(`peer ${a.peer}`);
  if (a.broadcast) parts.push(`brd ${a.broadcast}`);
  if (a.scope !== undefined) parts.push(`scope ${a.scope}`);
  parts.push(`dev #${a.linkIndex}`);
  if (a.label) parts.push(`label ${a.label}`);
  if (a.flags) parts.push(`flags 0x${a.flags.toString(16)}`);
  return parts.join(' ');
}

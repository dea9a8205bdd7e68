// Netlink wire format: message headers, attributes (TLVs), and the fixed
// headers of the rtnetlink families. Pure functions over Buffers; the kernel
// is reached only through handle.ts.
import { NetlinkError } from './errors';

const EBADMSG = 74;

export const NLMSG_HDRLEN = 16;
export const NLA_HDRLEN = 4;
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;

export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_ECHO = 0x08;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;
export const NLMSGERR_ATTR_MSG = 1;

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;

export const NETLINK_ROUTE = 0;
export const NETLINK_GENERIC = 16;

export function align4(n: number): number {
  return (n + 3) & ~3;
}

// ---- attributes: encoding ----

/** One attribute, padded to 4 bytes, ready to concatenate. */
export function attr(type: number, value: Buffer): Buffer {
  const len = NLA_HDRLEN + value.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  value.copy(out, NLA_HDRLEN);
  return out;
}

export const nla = {
  bytes: attr,
  u8: (type: number, v: number) => attr(type, Buffer.from([v & 0xff])),
  u16: (type: number, v: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    return attr(type, b);
  },
  /** Network byte order u16 (ports): the kernel wants these big-endian. */
  u16be: (type: number, v: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    return attr(type, b);
  },
  u32: (type: number, v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return attr(type, b);
  },
  i32: (type: number, v: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return attr(type, b);
  },
  u64: (type: number, v: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    return attr(type, b);
  },
  /** NUL-terminated string, as the kernel's NLA_STRING / NLA_NUL_STRING expect. */
  str: (type: number, s: string) => attr(type, Buffer.concat([Buffer.from(s, 'utf8'), Buffer.alloc(1)])),
  flag: (type: number) => attr(type, Buffer.alloc(0)),
  nested: (type: number, children: Buffer[]) => attr(type | NLA_F_NESTED, Buffer.concat(children)),
};

// ---- attributes: decoding ----

export type AttrList = Array<[type: number, value: Buffer]>;

/** Every attribute in order, with the nested/byte-order flags masked off the type. */
export function parseAttrList(buf: Buffer, offset = 0, end = buf.length): AttrList {
  const out: AttrList = [];
  let off = offset;
  while (off + NLA_HDRLEN <= end) {
    const len = buf.readUInt16LE(off);
    if (len < NLA_HDRLEN || off + len > end) break;
    const type = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK;
    out.push([type, buf.subarray(off + NLA_HDRLEN, off + len)]);
    off += align4(len);
  }
  return out;
}

/** Attributes by type; a repeated type keeps its last value (use parseAttrList for lists). */
export function parseAttrs(buf: Buffer, offset = 0, end = buf.length): Map<number, Buffer> {
  return new Map(parseAttrList(buf, offset, end));
}

export const read = {
  u8: (b: Buffer | undefined) => (b && b.length >= 1 ? b.readUInt8(0) : undefined),
  u16: (b: Buffer | undefined) => (b && b.length >= 2 ? b.readUInt16LE(0) : undefined),
  u16be: (b: Buffer | undefined) => (b && b.length >= 2 ? b.readUInt16BE(0) : undefined),
  u32: (b: Buffer | undefined) => (b && b.length >= 4 ? b.readUInt32LE(0) : undefined),
  i32: (b: Buffer | undefined) => (b && b.length >= 4 ? b.readInt32LE(0) : undefined),
  u64: (b: Buffer | undefined) => (b && b.length >= 8 ? b.readBigUInt64LE(0) : undefined),
  str: (b: Buffer | undefined) => {
    if (!b) return undefined;
    const nul = b.indexOf(0);
    return b.toString('utf8', 0, nul === -1 ? b.length : nul);
  },
};

// ---- messages ----

export type Message = { type: number; flags: number; seq: number; pid: number; body: Buffer };

export function encodeMessage(m: Message): Buffer {
  const len = NLMSG_HDRLEN + m.body.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt32LE(len, 0);
  out.writeUInt16LE(m.type, 4);
  out.writeUInt16LE(m.flags, 6);
  out.writeUInt32LE(m.seq >>> 0, 8);
  out.writeUInt32LE(m.pid >>> 0, 12);
  m.body.copy(out, NLMSG_HDRLEN);
  return out;
}

/** struct nlmsgerr: the error code and the header of the request it answers, always present. */
const NLMSGERR_LEN = 4 + NLMSG_HDRLEN;

/**
 * The messages of one datagram, checked: every header must fit, lengths must
 * add up to the datagram, and an error message must hold a whole nlmsgerr.
 * Anything else is an EBADMSG NetlinkError naming `op`: a reply that does not
 * parse is an error, never silently cut short (a dropped ack would mean
 * waiting for nothing).
 */
export function parseMessages(buf: Buffer, length = buf.length, op = 'netlink message'): Message[] {
  const bad = (why: string) => new NetlinkError(EBADMSG, `${op}: malformed reply from the kernel: ${why}`);
  const out: Message[] = [];
  let off = 0;
  while (off < length) {
    if (length - off < NLMSG_HDRLEN) throw bad(`${length - off} bytes left at offset ${off}, less than a message header`);
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > length) throw bad(`message at offset ${off} claims ${len} bytes, ${length - off} there`);
    const m: Message = {
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      // copy: the receive buffer is reused by the next recv
      body: Buffer.from(buf.subarray(off + NLMSG_HDRLEN, off + len)),
    };
    if (m.type === NLMSG_ERROR && m.body.length < NLMSGERR_LEN) throw bad(`error message of ${m.body.length} bytes, less than struct nlmsgerr`);
    out.push(m);
    off += align4(len);
  }
  return out;
}

export type NlError = { errno: number; detail?: string };

/** Decode an NLMSG_ERROR body: errno 0 is an ack; extended-ack text when the kernel gave one. */
export function parseError(m: Message): NlError {
  const errno = -m.body.readInt32LE(0);
  let detail: string | undefined;
  if (m.flags & NLM_F_ACK_TLVS) {
    const origLen = m.body.length >= 8 ? m.body.readUInt32LE(4) : NLMSG_HDRLEN;
    const tlvStart = 4 + (m.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align4(origLen));
    detail = read.str(parseAttrs(m.body, tlvStart).get(NLMSGERR_ATTR_MSG)) || undefined;
  }
  return { errno, detail };
}

// ---- rtnetlink fixed headers ----

export type IfInfoMsg = { family: number; type: number; index: number; flags: number; change: number };
export const IFINFOMSG_LEN = 16;

export function encodeIfInfoMsg(m: Partial<IfInfoMsg>): Buffer {
  const b = Buffer.alloc(IFINFOMSG_LEN);
  b.writeUInt8(m.family ?? 0, 0);
  b.writeUInt16LE(m.type ?? 0, 2);
  b.writeInt32LE(m.index ?? 0, 4);
  b.writeUInt32LE((m.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((m.change ?? 0) >>> 0, 12);
  return b;
}

export function decodeIfInfoMsg(b: Buffer): IfInfoMsg {
  return {
    family: b.readUInt8(0),
    type: b.readUInt16LE(2),
    index: b.readInt32LE(4),
    flags: b.readUInt32LE(8),
    change: b.readUInt32LE(12),
  };
}

export type IfAddrMsg = { family: number; prefixLen: number; flags: number; scope: number; index: number };
export const IFADDRMSG_LEN = 8;

export function encodeIfAddrMsg(m: Partial<IfAddrMsg>): Buffer {
  const b = Buffer.alloc(IFADDRMSG_LEN);
  b.writeUInt8(m.family ?? 0, 0);
  b.writeUInt8(m.prefixLen ?? 0, 1);
  b.writeUInt8(m.flags ?? 0, 2);
  b.writeUInt8(m.scope ?? 0, 3);
  b.writeUInt32LE(m.index ?? 0, 4);
  return b;
}

export function decodeIfAddrMsg(b: Buffer): IfAddrMsg {
  return {
    family: b.readUInt8(0),
    prefixLen: b.readUInt8(1),
    flags: b.readUInt8(2),
    scope: b.readUInt8(3),
    index: b.readUInt32LE(4),
  };
}

export type RtMsg = {
  family: number;
  dstLen: number;
  srcLen: number;
  tos: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  flags: number;
};
export const RTMSG_LEN = 12;

export function encodeRtMsg(m: Partial<RtMsg>): Buffer {
  const b = Buffer.alloc(RTMSG_LEN);
  b.writeUInt8(m.family ?? 0, 0);
  b.writeUInt8(m.dstLen ?? 0, 1);
  b.writeUInt8(m.srcLen ?? 0, 2);
  b.writeUInt8(m.tos ?? 0, 3);
  b.writeUInt8(m.table ?? 0, 4);
  b.writeUInt8(m.protocol ?? 0, 5);
  b.writeUInt8(m.scope ?? 0, 6);
  b.writeUInt8(m.type ?? 0, 7);
  b.writeUInt32LE((m.flags ?? 0) >>> 0, 8);
  return b;
}

export function decodeRtMsg(b: Buffer): RtMsg {
  return {
    family: b.readUInt8(0),
    dstLen: b.readUInt8(1),
    srcLen: b.readUInt8(2),
    tos: b.readUInt8(3),
    table: b.readUInt8(4),
    protocol: b.readUInt8(5),
    scope: b.readUInt8(6),
    type: b.readUInt8(7),
    flags: b.readUInt32LE(8),
  };
}

export type NdMsg = { family: number; index: number; state: number; flags: number; type: number };
export const NDMSG_LEN = 12;

export function encodeNdMsg(m: Partial<NdMsg>): Buffer {
  const b = Buffer.alloc(NDMSG_LEN);
  b.writeUInt8(m.family ?? 0, 0);
  b.writeInt32LE(m.index ?? 0, 4);
  b.writeUInt16LE(m.state ?? 0, 8);
  b.writeUInt8(m.flags ?? 0, 10);
  b.writeUInt8(m.type ?? 0, 11);
  return b;
}

export function decodeNdMsg(b: Buffer): NdMsg {
  return {
    family: b.readUInt8(0),
    index: b.readInt32LE(4),
    state: b.readUInt16LE(8),
    flags: b.readUInt8(10),
    type: b.readUInt8(11),
  };
}

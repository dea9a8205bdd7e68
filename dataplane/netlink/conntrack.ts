// Conntrack entries over ctnetlink (NETLINK_NETFILTER, subsystem 1): a dump
// narrowed by the kernel to one reply source (CTA_FILTER, Linux 5.9+; also
// checked here, so an older kernel that ignores the filter gives the same
// answer), and deleting entries by their original tuple. The L4 ingress uses
// it to forget the UDP flows of a removed backend: UDP has no end, so without
// this a client would keep sending to a backend that is gone.
import { nla, parseAttrs, read, type Message } from './codec';
import { isErrno } from './errors';
import { openHandle, throwIfAny, type Handle } from './handle';
import { bytesToIp, ipToBytes } from './ip';
import { AF_INET } from './libc';

export const NETLINK_NETFILTER = 12;
const NFNL_SUBSYS_CTNETLINK = 1;
const IPCTNL_MSG_CT_GET = 1;
const IPCTNL_MSG_CT_DELETE = 2;

const CTA_TUPLE_ORIG = 1;
const CTA_TUPLE_REPLY = 2;
const CTA_STATUS = 3;
const CTA_ID = 12;
const CTA_FILTER = 25;
const CTA_TUPLE_IP = 1;
const CTA_TUPLE_PROTO = 2;
const CTA_IP_V4_SRC = 1;
const CTA_IP_V4_DST = 2;
const CTA_PROTO_NUM = 1;
const CTA_PROTO_SRC_PORT = 2;
const CTA_PROTO_DST_PORT = 3;
const CTA_FILTER_REPLY_FLAGS = 2;
const CTA_FILTER_FLAG_CTA_IP_SRC = 1 << 0;
const CTA_FILTER_FLAG_CTA_PROTO_NUM = 1 << 3;
const CTA_FILTER_FLAG_CTA_PROTO_SRC_PORT = 1 << 4;

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
/** IPS_DST_NAT: the entry's destination was rewritten (DNAT). */
export const IPS_DST_NAT = 1 << 5;

export type CtTuple = { proto: number; src: string; dst: string; sport: number; dport: number };
export type CtEntry = { orig: CtTuple; reply: CtTuple; status: number; id?: number };
export type CtFilter = { reply: { proto: number; src: string; sport?: number } };

function ctType(msg: number): number {
  return (NFNL_SUBSYS_CTNETLINK << 8) | msg;
}

function nfgen(): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt8(AF_INET, 0);
  return b;
}

function encodeTuple(type: number, t: Partial<CtTuple> & { proto: number }): Buffer {
  const ip: Buffer[] = [];
  if (t.src) ip.push(nla.bytes(CTA_IP_V4_SRC, ipToBytes(t.src)));
  if (t.dst) ip.push(nla.bytes(CTA_IP_V4_DST, ipToBytes(t.dst)));
  const proto: Buffer[] = [nla.u8(CTA_PROTO_NUM, t.proto)];
  if (t.sport !== undefined) proto.push(nla.u16be(CTA_PROTO_SRC_PORT, t.sport));
  if (t.dport !== undefined) proto.push(nla.u16be(CTA_PROTO_DST_PORT, t.dport));
  return nla.nested(type, [nla.nested(CTA_TUPLE_IP, ip), nla.nested(CTA_TUPLE_PROTO, proto)]);
}

function decodeTuple(b: Buffer | undefined): CtTuple | undefined {
  if (!b) return undefined;
  const a = parseAttrs(b);
  const ip = parseAttrs(a.get(CTA_TUPLE_IP) ?? Buffer.alloc(0));
  const pr = parseAttrs(a.get(CTA_TUPLE_PROTO) ?? Buffer.alloc(0));
  const src = ip.get(CTA_IP_V4_SRC);
  const dst = ip.get(CTA_IP_V4_DST);
  if (!src || !dst) return undefined; // not IPv4
  return {
    proto: read.u8(pr.get(CTA_PROTO_NUM)) ?? 0,
    src: bytesToIp(src),
    dst: bytesToIp(dst),
    sport: read.u16be(pr.get(CTA_PROTO_SRC_PORT)) ?? 0,
    dport: read.u16be(pr.get(CTA_PROTO_DST_PORT)) ?? 0,
  };
}

export function decodeEntry(m: Message): CtEntry | undefined {
  const a = parseAttrs(m.body, 4);
  const orig = decodeTuple(a.get(CTA_TUPLE_ORIG));
  const reply = decodeTuple(a.get(CTA_TUPLE_REPLY));
  if (!orig || !reply) return undefined;
  const status = a.get(CTA_STATUS)?.readUInt32BE(0) ?? 0;
  const id = a.get(CTA_ID)?.readUInt32BE(0);
  return { orig, reply, status, id };
}

function matches(e: CtEntry, f: CtFilter): boolean {
  return e.reply.proto === f.reply.proto && e.reply.src === f.reply.src && (f.reply.sport === undefined || e.reply.sport === f.reply.sport);
}

/** IPv4 conntrack entries, only those whose reply tuple matches `filter` when given. */
export function listConntrack(h: Handle, filter?: CtFilter): CtEntry[] {
  const parts = [nfgen()];
  if (filter) {
    const flags = CTA_FILTER_FLAG_CTA_IP_SRC | CTA_FILTER_FLAG_CTA_PROTO_NUM | (filter.reply.sport !== undefined ? CTA_FILTER_FLAG_CTA_PROTO_SRC_PORT : 0);
    parts.push(encodeTuple(CTA_TUPLE_REPLY, { proto: filter.reply.proto, src: filter.reply.src, sport: filter.reply.sport }));
    parts.push(nla.nested(CTA_FILTER, [nla.u32(CTA_FILTER_REPLY_FLAGS, flags)]));
  }
  let msgs: Message[];
  try {
    msgs = h.dump({ type: ctType(IPCTNL_MSG_CT_GET), body: Buffer.concat(parts), op: 'conntrack list' });
  } catch (e) {
    // a kernel without CTA_FILTER refuses the attribute: list everything, filter here
    if (!filter || !isErrno(e, 'EINVAL', 'EOPNOTSUPP')) throw e;
    msgs = h.dump({ type: ctType(IPCTNL_MSG_CT_GET), body: nfgen(), op: 'conntrack list' });
  }
  const out: CtEntry[] = [];
  for (const m of msgs) {
    const e = decodeEntry(m);
    if (e && (!filter || matches(e, filter))) out.push(e);
  }
  return out;
}

/** Delete entries by original tuple (and id, so a newer entry with the same tuple survives); ones already gone count as deleted. */
export function deleteConntrack(h: Handle, entries: readonly CtEntry[]): number {
  if (entries.length === 0) return 0;
  const errors = h.batch(entries.map((e) => ({
    type: ctType(IPCTNL_MSG_CT_DELETE),
    body: Buffer.concat([nfgen(), encodeTuple(CTA_TUPLE_ORIG, e.orig), ...(e.id !== undefined ? [nla.bytes(CTA_ID, Buffer.from([e.id >>> 24, (e.id >>> 16) & 0xff, (e.id >>> 8) & 0xff, e.id & 0xff]))] : [])]),
    op: `conntrack delete ${e.orig.src}:${e.orig.sport} -> ${e.orig.dst}:${e.orig.dport}`,
  })));
  throwIfAny(errors.map((e) => (e && isErrno(e, 'ENOENT') ? undefined : e)));
  return entries.length;
}

export type FlushOptions = {
  /** Namespace name or path; default the current one. */
  netns?: string;
  proto: number;
  /** The reply source: the backend the flow was sent to. */
  ip: string;
  port?: number;
  /** Only entries whose destination was rewritten (DNAT), i.e. flows balanced here, not the host's own. */
  onlyDnat?: boolean;
};

/** Deletes the entries whose replies come from ip[:port]; returns how many. */
export function flushConntrackByReplySource(o: FlushOptions, handle?: Handle): number {
  const h = handle ?? openHandle({ netns: o.netns, protocol: NETLINK_NETFILTER });
  try {
    const found = listConntrack(h, { reply: { proto: o.proto, src: o.ip, sport: o.port } }).filter((e) => !o.onlyDnat || (e.status & IPS_DST_NAT) !== 0);
    return deleteConntrack(h, found);
  } finally {
    if (!handle) h.close();
  }
}

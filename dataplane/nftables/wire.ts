// nf_tables over netlink: the numbers of the uapi (linux/netfilter/
// nf_tables.h, nfnetlink.h), the nfgenmsg header, and encoders/decoders for
// the few messages weft sends itself: set elements (the per-change hot path),
// the generation id, and the listings a reconcile reads. Everything else
// (tables, chains, rules, set declarations) is written through libnftables.
import { align4, nla, parseAttrs, read, NLA_F_NESTED, NLA_TYPE_MASK, type Message } from '../netlink/codec';

// the netlink protocol is shared with ctnetlink: one definition, in the netlink package
export { NETLINK_NETFILTER } from '../netlink/conntrack';
export const NFNL_SUBSYS_NFTABLES = 10;
export const NFNL_MSG_BATCH_BEGIN = 0x10;
export const NFNL_MSG_BATCH_END = 0x11;
export const NFNETLINK_V0 = 0;
export const NFPROTO_UNSPEC = 0;
export const NFPROTO_IPV4 = 2;

export const NFT_MSG = {
  NEWTABLE: 0, GETTABLE: 1, DELTABLE: 2,
  NEWCHAIN: 3, GETCHAIN: 4, DELCHAIN: 5,
  NEWRULE: 6, GETRULE: 7, DELRULE: 8,
  NEWSET: 9, GETSET: 10, DELSET: 11,
  NEWSETELEM: 12, GETSETELEM: 13, DELSETELEM: 14,
  NEWGEN: 15, GETGEN: 16,
} as const;

export const NFTA_TABLE_NAME = 1;
export const NFTA_TABLE_HANDLE = 4;
export const NFTA_CHAIN_TABLE = 1;
export const NFTA_CHAIN_NAME = 3;
export const NFTA_RULE_TABLE = 1;
export const NFTA_RULE_CHAIN = 2;
export const NFTA_RULE_HANDLE = 3;
export const NFTA_RULE_USERDATA = 7;
export const NFTA_SET_TABLE = 1;
export const NFTA_SET_NAME = 2;
export const NFTA_SET_FLAGS = 3;
export const NFTA_SET_KEY_LEN = 5;
export const NFTA_SET_DATA_LEN = 7;
export const NFTA_SET_HANDLE = 16;
export const NFTA_SET_ELEM_LIST_TABLE = 1;
export const NFTA_SET_ELEM_LIST_SET = 2;
export const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
export const NFTA_LIST_ELEM = 1;
export const NFTA_SET_ELEM_KEY = 1;
export const NFTA_SET_ELEM_DATA = 2;
export const NFTA_DATA_VALUE = 1;
export const NFTA_DATA_VERDICT = 2;
export const NFTA_VERDICT_CODE = 1;
export const NFTA_VERDICT_CHAIN = 2;
export const NFTA_GEN_ID = 1;
export const NFT_JUMP = -3;
export const NFT_GOTO = -4;
/** nft stores a rule's comment as a TLV of this type in NFTA_RULE_USERDATA. */
export const NFTNL_UDATA_RULE_COMMENT = 0;

/** An nf_tables message type: subsystem in the high byte. */
export function nftType(msg: number): number {
  return (NFNL_SUBSYS_NFTABLES << 8) | msg;
}

/** struct nfgenmsg: family, version, resource id (big-endian). */
export function nfgenmsg(family: number, resId = 0): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt8(family, 0);
  b.writeUInt8(NFNETLINK_V0, 1);
  b.writeUInt16BE(resId, 2);
  return b;
}

export const NFGENMSG_LEN = 4;

// ---- set elements ----

/**
 * What an element maps to, as a comparable string: `v:<hex>` for a value,
 * `goto:<chain>` / `jump:<chain>` for a verdict. Keys are hex strings of the
 * bytes the kernel compares.
 */
export type ElemData = string;
export type Elements = Map<string, ElemData>;

/** A verdict element's data (values take encodeValueElement's path). */
function encodeVerdict(data: ElemData): Buffer {
  const colon = data.indexOf(':');
  const kind = data.slice(0, colon);
  const code = kind === 'goto' ? NFT_GOTO : kind === 'jump' ? NFT_JUMP : NaN;
  if (Number.isNaN(code)) throw new Error(`element data "${data}" is neither v:<hex> nor goto:/jump:<chain>`);
  const c = Buffer.alloc(4);
  c.writeInt32BE(code);
  return nla.nested(NFTA_SET_ELEM_DATA, [
    nla.nested(NFTA_DATA_VERDICT, [nla.bytes(NFTA_VERDICT_CODE, c), nla.str(NFTA_VERDICT_CHAIN, data.slice(colon + 1))]),
  ]);
}

function putAttrHeader(b: Buffer, off: number, len: number, type: number): void {
  b.writeUInt16LE(len, off);
  b.writeUInt16LE(type, off + 2);
}

/**
 * The common element (a value key, a value or no data) written straight into
 * one buffer: a first load encodes millions of them, and building each from
 * five small attribute buffers costs more than the kernel takes to add it.
 */
function encodeValueElement(keyHex: string, valueHex: string | undefined): Buffer {
  const kl = keyHex.length >> 1;
  const vl = valueHex === undefined ? 0 : valueHex.length >> 1;
  const keyAttr = 4 + 4 + align4(kl);
  const dataAttr = valueHex === undefined ? 0 : 4 + 4 + align4(vl);
  const total = 4 + keyAttr + dataAttr;
  const b = Buffer.alloc(total);
  putAttrHeader(b, 0, total, NFTA_LIST_ELEM | NLA_F_NESTED);
  putAttrHeader(b, 4, 4 + 4 + kl, NFTA_SET_ELEM_KEY | NLA_F_NESTED);
  putAttrHeader(b, 8, 4 + kl, NFTA_DATA_VALUE);
  b.write(keyHex, 12, 'hex');
  if (valueHex !== undefined) {
    const o = 4 + keyAttr;
    putAttrHeader(b, o, 4 + 4 + vl, NFTA_SET_ELEM_DATA | NLA_F_NESTED);
    putAttrHeader(b, o + 4, 4 + vl, NFTA_DATA_VALUE);
    b.write(valueHex, o + 8, 'hex');
  }
  return b;
}

/** One element of NFTA_SET_ELEM_LIST_ELEMENTS; data is left out for deletes. */
export function encodeElement(keyHex: string, data?: ElemData): Buffer {
  if (data === undefined) return encodeValueElement(keyHex, undefined);
  if (data.startsWith('v:')) return encodeValueElement(keyHex, data.slice(2));
  return nla.nested(NFTA_LIST_ELEM, [nla.nested(NFTA_SET_ELEM_KEY, [nla.bytes(NFTA_DATA_VALUE, Buffer.from(keyHex, 'hex'))]), encodeVerdict(data)]);
}

// The element list is one attribute, and an attribute's length is 16 bits:
// a message carries at most this many bytes of elements, so big changes are
// cut into several messages (of the same batch, so still one transaction).
const ELEMS_PER_MSG_BYTES = 60_000;

export type BatchMsg = { type: number; flags: number; body: Buffer };

/** NEWSETELEM or DELSETELEM messages for the given elements of one set, cut to fit the 16-bit attribute length. */
export function setElemMessages(op: 'add' | 'delete', family: number, table: string, set: string, elems: Array<[key: string, data?: ElemData]>): BatchMsg[] {
  const out: BatchMsg[] = [];
  const head = [nla.str(NFTA_SET_ELEM_LIST_TABLE, table), nla.str(NFTA_SET_ELEM_LIST_SET, set)];
  let cur: Buffer[] = [];
  let bytes = 0;
  const flush = () => {
    if (cur.length === 0) return;
    out.push({
      type: nftType(op === 'add' ? NFT_MSG.NEWSETELEM : NFT_MSG.DELSETELEM),
      // CREATE without EXCL: re-adding an identical element is not an error
      flags: op === 'add' ? 0x400 /* NLM_F_CREATE */ : 0,
      body: Buffer.concat([nfgenmsg(family), ...head, nla.nested(NFTA_SET_ELEM_LIST_ELEMENTS, cur)]),
    });
    cur = [];
    bytes = 0;
  };
  for (const [k, d] of elems) {
    const e = encodeElement(k, op === 'add' ? d : undefined);
    if (bytes + e.length > ELEMS_PER_MSG_BYTES) flush();
    cur.push(e);
    bytes += e.length;
  }
  flush();
  return out;
}

/** A verdict element's data (decodeElements reads values in place). */
function decodeVerdict(b: Buffer): ElemData | undefined {
  const vd = parseAttrs(b).get(NFTA_DATA_VERDICT);
  if (!vd) return undefined;
  const va = parseAttrs(vd);
  const code = va.get(NFTA_VERDICT_CODE)?.readInt32BE(0);
  const chain = read.str(va.get(NFTA_VERDICT_CHAIN)) ?? '';
  if (code === NFT_GOTO) return `goto:${chain}`;
  if (code === NFT_JUMP) return `jump:${chain}`;
  return `verdict:${code}`;
}

/** The value of the first attribute of `type` inside b[off, end), as [start, end) offsets. */
function findAttr(b: Buffer, off: number, end: number, type: number): [number, number] | undefined {
  while (off + 4 <= end) {
    const len = b.readUInt16LE(off);
    if (len < 4 || off + len > end) return undefined;
    if ((b.readUInt16LE(off + 2) & NLA_TYPE_MASK) === type) return [off + 4, off + len];
    off += align4(len);
  }
  return undefined;
}

/** The elements of NEWSETELEM dump messages, added to `into` (walked by offset: a listing can hold millions). */
export function decodeElements(msgs: Message[], into: Elements = new Map()): Elements {
  forEachElement(msgs, (k, d) => into.set(k, d));
  return into;
}

/**
 * Each element of NEWSETELEM dump messages, as (key hex, data) — the data as
 * decodeElements gives it, '' for none. For a caller that files millions of
 * elements straight into its own compact form, without a Map of them all.
 */
export function forEachElement(msgs: Message[], fn: (key: string, data: ElemData) => void): void {
  // data values repeat (a backend fills ~M/N buckets): keep one string per value
  const values = new Map<string, string>();
  for (const m of msgs) {
    const b = m.body;
    const list = findAttr(b, NFGENMSG_LEN, b.length, NFTA_SET_ELEM_LIST_ELEMENTS);
    if (!list) continue;
    let off = list[0];
    while (off + 4 <= list[1]) {
      const len = b.readUInt16LE(off);
      if (len < 4 || off + len > list[1]) break;
      const es = off + 4;
      const ee = off + len;
      off += align4(len);
      const key = findAttr(b, es, ee, NFTA_SET_ELEM_KEY);
      const kv = key && findAttr(b, key[0], key[1], NFTA_DATA_VALUE);
      if (!kv) continue;
      const data = findAttr(b, es, ee, NFTA_SET_ELEM_DATA);
      let d = '';
      if (data) {
        const dv = findAttr(b, data[0], data[1], NFTA_DATA_VALUE);
        if (dv) {
          const hex = `v:${b.toString('hex', dv[0], dv[1])}`;
          d = values.get(hex) ?? (values.set(hex, hex), hex);
        } else d = decodeVerdict(b.subarray(data[0], data[1])) ?? '';
      }
      fn(b.toString('hex', kv[0], kv[1]), d);
    }
  }
}

// ---- listings ----

export type ChainInfo = { table: string; name: string };
export type RuleInfo = { table: string; chain: string; handle: bigint; comment?: string };
/**
 * `handle` is the kernel's id of the set within its table: a set deleted and
 * made again under the same name gets a new one, so an unchanged handle says
 * the set is the same object (its elements may still have been edited).
 */
export type SetInfo = { table: string; name: string; flags: number; keyLen: number; dataLen: number; handle: bigint };

export function decodeChain(m: Message): ChainInfo {
  const a = parseAttrs(m.body, NFGENMSG_LEN);
  return { table: read.str(a.get(NFTA_CHAIN_TABLE)) ?? '', name: read.str(a.get(NFTA_CHAIN_NAME)) ?? '' };
}

/** The comment nft stored in a rule's user data (TLVs of u8 type, u8 length, value). */
export function ruleComment(udata: Buffer | undefined): string | undefined {
  if (!udata) return undefined;
  let off = 0;
  while (off + 2 <= udata.length) {
    const type = udata[off];
    const len = udata[off + 1];
    if (type === NFTNL_UDATA_RULE_COMMENT) return read.str(udata.subarray(off + 2, off + 2 + len));
    off += 2 + len;
  }
  return undefined;
}

export function decodeRule(m: Message): RuleInfo {
  const a = parseAttrs(m.body, NFGENMSG_LEN);
  return {
    table: read.str(a.get(NFTA_RULE_TABLE)) ?? '',
    chain: read.str(a.get(NFTA_RULE_CHAIN)) ?? '',
    handle: a.get(NFTA_RULE_HANDLE)?.readBigUInt64BE(0) ?? 0n,
    comment: ruleComment(a.get(NFTA_RULE_USERDATA)),
  };
}

export function decodeSet(m: Message): SetInfo {
  const a = parseAttrs(m.body, NFGENMSG_LEN);
  return {
    table: read.str(a.get(NFTA_SET_TABLE)) ?? '',
    name: read.str(a.get(NFTA_SET_NAME)) ?? '',
    flags: a.get(NFTA_SET_FLAGS)?.readUInt32BE(0) ?? 0,
    keyLen: a.get(NFTA_SET_KEY_LEN)?.readUInt32BE(0) ?? 0,
    dataLen: a.get(NFTA_SET_DATA_LEN)?.readUInt32BE(0) ?? 0,
    handle: a.get(NFTA_SET_HANDLE)?.readBigUInt64BE(0) ?? 0n,
  };
}

/** A table's handle (NEWTABLE reply): numbered per namespace, so a table deleted and made again has a new one. */
export function decodeTableHandle(msgs: Message[]): bigint | undefined {
  for (const m of msgs) {
    if ((m.type & 0xff) !== NFT_MSG.NEWTABLE) continue;
    return parseAttrs(m.body, NFGENMSG_LEN).get(NFTA_TABLE_HANDLE)?.readBigUInt64BE(0);
  }
  return undefined;
}

export function decodeGen(msgs: Message[]): number | undefined {
  for (const m of msgs) {
    if ((m.type & 0xff) !== NFT_MSG.NEWGEN) continue;
    const id = parseAttrs(m.body, NFGENMSG_LEN).get(NFTA_GEN_ID);
    if (id) return id.readUInt32BE(0);
  }
  return undefined;
}

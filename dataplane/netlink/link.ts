// Network devices over rtnetlink: plain-data links as the kernel reports
// them, plain-data specs to create them, and one verb per change. Every write
// verb is a request builder plus a one-line exec, so the same change can go
// into a handle's batch.
import {
  decodeIfInfoMsg, encodeIfInfoMsg, nla, parseAttrs, read,
  IFINFOMSG_LEN, NLM_F_CREATE, NLM_F_EXCL, RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK, RTM_SETLINK,
  type Message,
} from './codec';
import { checkIntRange, InvalidArgumentError, NetlinkError } from './errors';
import type { Handle, Request } from './handle';
import { bytesToIp, bytesToMac, canonicalIp, ipFamily, ipToBytes, macToBytes } from './ip';
import { AF_INET, AF_UNSPEC } from './libc';
import { netnsPath, withNetnsFd } from './netns';

export { withNetnsFd };

// ---- kernel constants (include/uapi/linux/if_link.h, if.h) ----

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINK = 5;
const IFLA_MASTER = 10;
const IFLA_OPERSTATE = 16;
const IFLA_LINKINFO = 18;
const IFLA_NET_NS_FD = 28;
const IFLA_LINK_NETNSID = 37;

const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;

const VETH_INFO_PEER = 1;

const IFLA_VXLAN_ID = 1;
const IFLA_VXLAN_LINK = 3;
const IFLA_VXLAN_LOCAL = 4;
const IFLA_VXLAN_TTL = 5;
const IFLA_VXLAN_LEARNING = 7;
const IFLA_VXLAN_PORT = 15;
const IFLA_VXLAN_LOCAL6 = 17;
const IFLA_VXLAN_UDP_CSUM = 18;
const IFLA_VXLAN_UDP_ZERO_CSUM6_TX = 19;
const IFLA_VXLAN_UDP_ZERO_CSUM6_RX = 20;

const IFLA_MACVLAN_MODE = 1;

export const IFF_UP = 0x1;

const OPER_STATES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'] as const;
export type OperState = (typeof OPER_STATES)[number];

const MACVLAN_MODES = { private: 1, vepa: 2, bridge: 4, passthru: 8, source: 16 } as const;
export type MacvlanMode = keyof typeof MACVLAN_MODES;

export const VNI_MAX = 0xffffff;
export const MTU_MIN = 68;
export const MTU_MAX = 65535;
/** IANA's VXLAN port; the kernel's own default (8472) predates the assignment. */
export const VXLAN_PORT_DEFAULT = 4789;

// ---- links as read back ----

export type VxlanInfo = {
  vni: number;
  port?: number;
  /** Source address of the tunnel, when one is set. */
  local?: string;
  /** Index of the underlay device (IFLA_VXLAN_LINK), when bound to one. */
  dev?: number;
  learning?: boolean;
  /** 0 means "inherit" (the kernel's default). */
  ttl?: number;
  udpCsum?: boolean;
  udp6ZeroCsumTx?: boolean;
  udp6ZeroCsumRx?: boolean;
};

export type MacvlanInfo = { mode: MacvlanMode | number };

export type Link = {
  index: number;
  name: string;
  /** IFLA_INFO_KIND ('bridge', 'veth', 'vxlan', 'macvlan', ...); undefined for plain devices such as lo. */
  kind?: string;
  mtu: number;
  mac?: string;
  /** IFF_* flags as the kernel reports them. */
  flags: number;
  up: boolean;
  operState: OperState;
  /** The bridge (or bond) this link is a port of. */
  masterIndex?: number;
  /** IFLA_LINK: the peer of a veth, the lower device of a macvlan; may live in the namespace named by netnsId. */
  parentIndex?: number;
  /** IFLA_LINK_NETNSID: the peer namespace's id as seen from this one, when the kernel reports it. */
  netnsId?: number;
  vxlan?: VxlanInfo;
  macvlan?: MacvlanInfo;
};

/** A link by index, by name, or a Link read earlier. */
export type LinkRef = number | string | { index: number; name?: string };

// ---- specs for creation ----

export type BridgeSpec = { kind: 'bridge'; name: string; mtu?: number; mac?: string };
export type VethPeerSpec = { name: string; /** Namespace name or path for the peer; default: the handle's. */ netns?: string; mac?: string };
export type VethSpec = { kind: 'veth'; name: string; peer: VethPeerSpec; mtu?: number; mac?: string };
export type VxlanSpec = {
  kind: 'vxlan';
  name: string;
  vni: number;
  port: number;
  local?: string;
  /** Underlay device index. */
  dev?: number;
  learning?: boolean;
  ttl?: number;
  mtu?: number;
  mac?: string;
};
export type MacvlanSpec = { kind: 'macvlan'; name: string; parentIndex: number; mode: MacvlanMode; mtu?: number; mac?: string };
export type LinkSpec = BridgeSpec | VethSpec | VxlanSpec | MacvlanSpec;

export function bridge(o: { name: string; mtu?: number; mac?: string }): BridgeSpec {
  return validated({ kind: 'bridge', ...o });
}

export function veth(o: { name: string; peer: VethPeerSpec; mtu?: number; mac?: string }): VethSpec {
  return validated({ kind: 'veth', ...o, peer: { ...o.peer } });
}

export function vxlan(o: Omit<VxlanSpec, 'kind' | 'port'> & { port?: number }): VxlanSpec {
  return validated({ kind: 'vxlan', ...o, port: o.port ?? VXLAN_PORT_DEFAULT });
}

export function macvlan(o: { name: string; parentIndex: number; mode: MacvlanMode; mtu?: number; mac?: string }): MacvlanSpec {
  return validated({ kind: 'macvlan', ...o });
}

function validated<T extends LinkSpec>(spec: T): T {
  validateLinkSpec(spec);
  return spec;
}

// ---- validation: everything is checked before the kernel sees a byte ----

/** The kernel's dev_valid_name(): at most IFNAMSIZ-1 bytes, no '/', ':' or whitespace, not '.' or '..'. */
export function validateLinkName(name: unknown, field = 'link name'): void {
  const ok =
    typeof name === 'string' &&
    name.length > 0 &&
    Buffer.byteLength(name) <= 15 &&
    !/[/:\s]/.test(name) &&
    name !== '.' &&
    name !== '..';
  if (!ok) {
    throw new InvalidArgumentError(`invalid ${field} ${JSON.stringify(name)} (must be 1 to 15 bytes, without "/", ":" or whitespace, and not "." or "..")`);
  }
}

export function validateMtu(mtu: unknown): void {
  checkIntRange('MTU', mtu, MTU_MIN, MTU_MAX);
}

export function validateVni(vni: unknown): void {
  checkIntRange('VNI', vni, 0, VNI_MAX);
}

function validateIndex(field: string, index: unknown): void {
  checkIntRange(field, index, 1, 0x7fffffff);
}

/** A MAC the kernel accepts as a device address: six octets, unicast, not all zero. */
export function validateMac(mac: unknown, field = 'MAC address'): void {
  let b: Buffer;
  try {
    if (typeof mac !== 'string') throw new Error();
    b = macToBytes(mac);
  } catch {
    throw new InvalidArgumentError(`invalid ${field} ${JSON.stringify(mac)} (must be six hex octets like 02:00:00:00:00:01)`);
  }
  if (b[0] & 1 || b.every((x) => x === 0)) {
    throw new InvalidArgumentError(`invalid ${field} ${mac} (must be a unicast address, not all zero)`);
  }
}

export function validateLinkSpec(spec: LinkSpec): void {
  if (!spec || typeof spec !== 'object') throw new InvalidArgumentError('invalid link spec (must be an object)');
  validateLinkName(spec.name);
  if (spec.mtu !== undefined) validateMtu(spec.mtu);
  if (spec.mac !== undefined) validateMac(spec.mac);
  switch (spec.kind) {
    case 'bridge':
      return;
    case 'veth':
      if (!spec.peer || typeof spec.peer !== 'object') throw new InvalidArgumentError(`invalid veth ${spec.name}: peer is required`);
      validateLinkName(spec.peer.name, 'peer name');
      if (spec.peer.mac !== undefined) validateMac(spec.peer.mac, 'peer MAC address');
      if (spec.peer.netns !== undefined) {
        if (typeof spec.peer.netns !== 'string' || spec.peer.netns === '') {
          throw new InvalidArgumentError(`invalid peer netns ${JSON.stringify(spec.peer.netns)} (must be a namespace name or path)`);
        }
        netnsPath(spec.peer.netns);
      } else if (spec.peer.name === spec.name) {
        throw new InvalidArgumentError(`invalid peer name "${spec.peer.name}" (must differ from the link name in the same namespace)`);
      }
      return;
    case 'vxlan':
      validateVni(spec.vni);
      checkIntRange('port', spec.port, 1, 65535);
      if (spec.ttl !== undefined) checkIntRange('TTL', spec.ttl, 0, 255);
      if (spec.dev !== undefined) validateIndex('underlay device index', spec.dev);
      if (spec.local !== undefined) {
        try {
          ipFamily(spec.local);
        } catch {
          throw new InvalidArgumentError(`invalid local address ${JSON.stringify(spec.local)} (must be an IPv4 or IPv6 address)`);
        }
      }
      if (spec.learning !== undefined && typeof spec.learning !== 'boolean') {
        throw new InvalidArgumentError(`invalid learning ${String(spec.learning)} (must be true or false)`);
      }
      return;
    case 'macvlan':
      validateIndex('parent index', spec.parentIndex);
      if (!Object.hasOwn(MACVLAN_MODES, spec.mode)) {
        throw new InvalidArgumentError(`invalid macvlan mode ${JSON.stringify(spec.mode)} (must be one of ${Object.keys(MACVLAN_MODES).join(', ')})`);
      }
      return;
    default:
      throw new InvalidArgumentError(`invalid link kind ${JSON.stringify((spec as { kind?: unknown }).kind)} (must be bridge, veth, vxlan or macvlan)`);
  }
}

function validateRef(ref: LinkRef): void {
  if (typeof ref === 'string') validateLinkName(ref);
  else if (typeof ref === 'number') validateIndex('link index', ref);
  else if (ref && typeof ref === 'object') validateIndex('link index', ref.index);
  else throw new InvalidArgumentError(`invalid link ${String(ref)} (must be a name, an index or a Link)`);
}

// ---- decoding ----

function decodeVxlan(data: Buffer): VxlanInfo {
  const a = parseAttrs(data);
  const bool = (t: number) => (a.has(t) ? read.u8(a.get(t)) !== 0 : undefined);
  const local = a.get(IFLA_VXLAN_LOCAL) ?? a.get(IFLA_VXLAN_LOCAL6);
  const dev = read.u32(a.get(IFLA_VXLAN_LINK));
  const info: VxlanInfo = { vni: read.u32(a.get(IFLA_VXLAN_ID)) ?? 0 };
  const port = read.u16be(a.get(IFLA_VXLAN_PORT));
  if (port !== undefined) info.port = port;
  // the kernel reports an unset source as 0.0.0.0 on some versions: that is "none"
  if (local && local.some((x) => x !== 0)) info.local = bytesToIp(local);
  if (dev) info.dev = dev;
  const learning = bool(IFLA_VXLAN_LEARNING);
  if (learning !== undefined) info.learning = learning;
  const ttl = read.u8(a.get(IFLA_VXLAN_TTL));
  if (ttl !== undefined) info.ttl = ttl;
  const csum = bool(IFLA_VXLAN_UDP_CSUM);
  if (csum !== undefined) info.udpCsum = csum;
  const tx = bool(IFLA_VXLAN_UDP_ZERO_CSUM6_TX);
  if (tx !== undefined) info.udp6ZeroCsumTx = tx;
  const rx = bool(IFLA_VXLAN_UDP_ZERO_CSUM6_RX);
  if (rx !== undefined) info.udp6ZeroCsumRx = rx;
  return info;
}

function decodeMacvlanMode(data: Buffer): MacvlanInfo {
  const mode = read.u32(parseAttrs(data).get(IFLA_MACVLAN_MODE)) ?? 0;
  const name = (Object.keys(MACVLAN_MODES) as MacvlanMode[]).find((k) => MACVLAN_MODES[k] === mode);
  return { mode: name ?? mode };
}

/** A link from one RTM_NEWLINK message (a dump entry or a GET reply). */
export function linkDecode(m: Message): Link {
  const hdr = decodeIfInfoMsg(m.body);
  const a = parseAttrs(m.body, IFINFOMSG_LEN);
  const link: Link = {
    index: hdr.index,
    name: read.str(a.get(IFLA_IFNAME)) ?? '',
    mtu: read.u32(a.get(IFLA_MTU)) ?? 0,
    flags: hdr.flags,
    up: (hdr.flags & IFF_UP) !== 0,
    operState: OPER_STATES[read.u8(a.get(IFLA_OPERSTATE)) ?? 0] ?? 'unknown',
  };
  const mac = a.get(IFLA_ADDRESS);
  if (mac && mac.length > 0) link.mac = bytesToMac(mac);
  const master = read.u32(a.get(IFLA_MASTER));
  if (master) link.masterIndex = master;
  // the kernel leaves IFLA_LINK out for a device without a lower one; an
  // index equal to our own may well name a device in the peer namespace
  const parent = read.u32(a.get(IFLA_LINK));
  if (parent) link.parentIndex = parent;
  const nsid = read.i32(a.get(IFLA_LINK_NETNSID));
  if (nsid !== undefined && nsid >= 0) link.netnsId = nsid;
  const info = a.get(IFLA_LINKINFO);
  if (info) {
    const ia = parseAttrs(info);
    link.kind = read.str(ia.get(IFLA_INFO_KIND));
    const data = ia.get(IFLA_INFO_DATA);
    if (link.kind === 'vxlan' && data) link.vxlan = decodeVxlan(data);
    if (link.kind === 'macvlan' && data) link.macvlan = decodeMacvlanMode(data);
  }
  if (link.kind === undefined) delete link.kind;
  return link;
}

// ---- reading ----

function refLabel(ref: LinkRef): string {
  if (typeof ref === 'string') return ref;
  if (typeof ref === 'number') return `index ${ref}`;
  return ref.name ?? `index ${ref.index}`;
}

/** The ifinfomsg + name attribute that tell the kernel which device a request is about. */
function refBody(ref: LinkRef, hdr: { flags?: number; change?: number } = {}, attrs: Buffer[] = []): Buffer {
  if (typeof ref === 'string') {
    return Buffer.concat([encodeIfInfoMsg({ family: AF_UNSPEC, ...hdr }), nla.str(IFLA_IFNAME, ref), ...attrs]);
  }
  const index = typeof ref === 'number' ? ref : ref.index;
  return Buffer.concat([encodeIfInfoMsg({ family: AF_UNSPEC, index, ...hdr }), ...attrs]);
}

export function linkList(h: Handle): Link[] {
  return h
    .dump({ type: RTM_GETLINK, body: encodeIfInfoMsg({ family: AF_UNSPEC }), op: 'link list' })
    .filter((m) => m.type === RTM_NEWLINK)
    .map(linkDecode);
}

function linkGet(h: Handle, ref: LinkRef): Link {
  validateRef(ref);
  const op = `link get ${refLabel(ref)}`;
  const replies = h.exec({ type: RTM_GETLINK, body: refBody(ref), op }).filter((m) => m.type === RTM_NEWLINK);
  if (replies.length === 0) throw new NetlinkError(19 /* ENODEV */, op);
  return linkDecode(replies[0]);
}

/** The link with this name; NetlinkError ENODEV when there is none. */
export function linkByName(h: Handle, name: string): Link {
  validateLinkName(name);
  return linkGet(h, name);
}

/** The link with this name, or undefined when there is none (other errors still throw). */
export function linkFind(h: Handle, name: string): Link | undefined {
  try {
    return linkByName(h, name);
  } catch (e) {
    if (e instanceof NetlinkError && e.code === 'ENODEV') return undefined;
    throw e;
  }
}

/** The link with this index; NetlinkError ENODEV when there is none. */
export function linkByIndex(h: Handle, index: number): Link {
  validateIndex('link index', index);
  return linkGet(h, index);
}

// ---- creating ----

function infoData(children: Buffer[]): Buffer[] {
  return children.length ? [nla.nested(IFLA_INFO_DATA, children)] : [];
}

function kindAttrs(spec: LinkSpec, peerNetnsFd: number | undefined): Buffer[] {
  switch (spec.kind) {
    case 'bridge':
      return [];
    case 'veth': {
      const peer = [nla.str(IFLA_IFNAME, spec.peer.name)];
      // without this the peer gets the kernel's default (1500) and the pair disagrees
      if (spec.mtu !== undefined) peer.push(nla.u32(IFLA_MTU, spec.mtu));
      if (spec.peer.mac !== undefined) peer.push(nla.bytes(IFLA_ADDRESS, macToBytes(spec.peer.mac)));
      if (peerNetnsFd !== undefined) peer.push(nla.u32(IFLA_NET_NS_FD, peerNetnsFd));
      // the peer is a whole ifinfomsg + attributes inside the attribute
      return [nla.nested(VETH_INFO_PEER, [encodeIfInfoMsg({ family: AF_UNSPEC }), ...peer])];
    }
    case 'vxlan': {
      const d = [nla.u32(IFLA_VXLAN_ID, spec.vni), nla.u16be(IFLA_VXLAN_PORT, spec.port)];
      if (spec.local !== undefined) {
        const fam = ipFamily(spec.local);
        d.push(nla.bytes(fam === AF_INET ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6, ipToBytes(spec.local)));
      }
      if (spec.dev !== undefined) d.push(nla.u32(IFLA_VXLAN_LINK, spec.dev));
      if (spec.learning !== undefined) d.push(nla.u8(IFLA_VXLAN_LEARNING, spec.learning ? 1 : 0));
      if (spec.ttl !== undefined) d.push(nla.u8(IFLA_VXLAN_TTL, spec.ttl));
      return d;
    }
    case 'macvlan':
      return [nla.u32(IFLA_MACVLAN_MODE, MACVLAN_MODES[spec.mode])];
  }
}

/**
 * The request that creates the link. A veth whose peer goes to another
 * namespace needs that namespace open: pass its fd (see withNetnsFd), which
 * must stay open until the request has been sent.
 */
export function linkAddRequest(spec: LinkSpec, peerNetnsFd?: number): Request {
  validateLinkSpec(spec);
  if (spec.kind === 'veth' && spec.peer.netns !== undefined && peerNetnsFd === undefined) {
    throw new InvalidArgumentError(`veth ${spec.name}: peer netns ${spec.peer.netns} given but no fd for it (open it with withNetnsFd)`);
  }
  const attrs = [nla.str(IFLA_IFNAME, spec.name)];
  if (spec.mtu !== undefined) attrs.push(nla.u32(IFLA_MTU, spec.mtu));
  if (spec.mac !== undefined) attrs.push(nla.bytes(IFLA_ADDRESS, macToBytes(spec.mac)));
  if (spec.kind === 'macvlan') attrs.push(nla.u32(IFLA_LINK, spec.parentIndex));
  attrs.push(nla.nested(IFLA_LINKINFO, [nla.str(IFLA_INFO_KIND, spec.kind), ...infoData(kindAttrs(spec, peerNetnsFd))]));
  const peer = spec.kind === 'veth' ? ` peer ${spec.peer.name}${spec.peer.netns ? ` in ${spec.peer.netns}` : ''}` : '';
  return {
    type: RTM_NEWLINK,
    flags: NLM_F_CREATE | NLM_F_EXCL,
    body: Buffer.concat([encodeIfInfoMsg({ family: AF_UNSPEC }), ...attrs]),
    op: `link add ${spec.kind} ${spec.name}${peer}`,
  };
}

/**
 * Create the link; EEXIST (typed) when the name is taken. Returns it as the
 * kernel reports it. The kernel creates both ends of a veth or neither.
 */
export function linkAdd(h: Handle, spec: LinkSpec): Link {
  validateLinkSpec(spec);
  if (spec.kind === 'veth' && spec.peer.netns !== undefined) {
    const op = `link add veth ${spec.name} peer ${spec.peer.name} in ${spec.peer.netns}`;
    withNetnsFd(spec.peer.netns, op, (fd) => h.exec(linkAddRequest(spec, fd)));
  } else {
    h.exec(linkAddRequest(spec));
  }
  return linkByName(h, spec.name);
}

// ---- changing and deleting ----

function setRequest(ref: LinkRef, what: string, hdr: { flags?: number; change?: number }, attrs: Buffer[]): Request {
  validateRef(ref);
  return { type: RTM_SETLINK, body: refBody(ref, hdr, attrs), op: `link set ${refLabel(ref)} ${what}` };
}

export function linkDelRequest(ref: LinkRef): Request {
  validateRef(ref);
  return { type: RTM_DELLINK, body: refBody(ref), op: `link del ${refLabel(ref)}` };
}

export function linkSetUpRequest(ref: LinkRef): Request {
  return setRequest(ref, 'up', { flags: IFF_UP, change: IFF_UP }, []);
}

export function linkSetDownRequest(ref: LinkRef): Request {
  return setRequest(ref, 'down', { flags: 0, change: IFF_UP }, []);
}

export function linkSetMtuRequest(ref: LinkRef, mtu: number): Request {
  validateMtu(mtu);
  return setRequest(ref, `mtu ${mtu}`, {}, [nla.u32(IFLA_MTU, mtu)]);
}

export function linkSetMacRequest(ref: LinkRef, mac: string): Request {
  validateMac(mac);
  return setRequest(ref, `address ${mac}`, {}, [nla.bytes(IFLA_ADDRESS, macToBytes(mac))]);
}

export function linkSetMasterRequest(ref: LinkRef, masterIndex: number): Request {
  validateIndex('master index', masterIndex);
  return setRequest(ref, `master ${masterIndex}`, {}, [nla.u32(IFLA_MASTER, masterIndex)]);
}

export function linkSetNoMasterRequest(ref: LinkRef): Request {
  // master 0 is the kernel's way of saying "leave whatever you are a port of"
  return setRequest(ref, 'nomaster', {}, [nla.u32(IFLA_MASTER, 0)]);
}

/** Moving needs the target namespace open: pass its fd (see withNetnsFd), open until the request is sent. */
export function linkSetNetnsFdRequest(ref: LinkRef, netnsFd: number, label = `fd ${netnsFd}`): Request {
  checkIntRange('netns fd', netnsFd, 0, 0x7fffffff);
  return setRequest(ref, `netns ${label}`, {}, [nla.u32(IFLA_NET_NS_FD, netnsFd)]);
}

/** Delete the link (a veth takes its peer with it); ENODEV when there is none. */
export function linkDel(h: Handle, ref: LinkRef): void {
  h.exec(linkDelRequest(ref));
}

export function linkSetUp(h: Handle, ref: LinkRef): void {
  h.exec(linkSetUpRequest(ref));
}

export function linkSetDown(h: Handle, ref: LinkRef): void {
  h.exec(linkSetDownRequest(ref));
}

export function linkSetMtu(h: Handle, ref: LinkRef, mtu: number): void {
  h.exec(linkSetMtuRequest(ref, mtu));
}

export function linkSetMac(h: Handle, ref: LinkRef, mac: string): void {
  h.exec(linkSetMacRequest(ref, mac));
}

export function linkSetMaster(h: Handle, ref: LinkRef, masterIndex: number): void {
  h.exec(linkSetMasterRequest(ref, masterIndex));
}

export function linkSetNoMaster(h: Handle, ref: LinkRef): void {
  h.exec(linkSetNoMasterRequest(ref));
}

/** Move the link into another namespace; it keeps its name there, and may get another index. */
export function linkSetNetns(h: Handle, ref: LinkRef, nsNameOrPath: string): void {
  validateRef(ref);
  const op = `link set ${refLabel(ref)} netns ${nsNameOrPath}`;
  withNetnsFd(nsNameOrPath, op, (fd) => h.exec(linkSetNetnsFdRequest(ref, fd, nsNameOrPath)));
}

// ---- comparing and printing ----

function sameInfo(a: object | undefined, b: object | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return (
    ka.length === kb.length &&
    ka.every((k, i) => k === kb[i] && (a as Record<string, unknown>)[k] === (b as Record<string, unknown>)[k])
  );
}

/**
 * Same device with the same configuration. operState and flags other than
 * IFF_UP are left out: carrier and RUNNING change under a link without
 * anyone changing it, and a diff must not chase them.
 */
export function linkEqual(a: Link, b: Link): boolean {
  return (
    a.index === b.index &&
    a.name === b.name &&
    a.kind === b.kind &&
    a.mtu === b.mtu &&
    a.mac === b.mac &&
    a.up === b.up &&
    a.masterIndex === b.masterIndex &&
    a.parentIndex === b.parentIndex &&
    a.netnsId === b.netnsId &&
    sameInfo(a.vxlan, b.vxlan) &&
    sameInfo(a.macvlan, b.macvlan)
  );
}

/**
 * How an existing link differs from what the spec asks for, one entry per
 * field ("mtu 1500, want 1450"); empty when it fits. Fields the spec leaves
 * out are the kernel's choice and never differ. This is what an idempotent
 * ensure needs after EEXIST: "already exists but is not a bridge".
 */
export function linkSpecDiff(spec: LinkSpec, l: Link): string[] {
  const out: string[] = [];
  const want = (field: string, have: unknown, wanted: unknown) => {
    if (wanted !== undefined && have !== wanted) out.push(`${field} ${String(have)}, want ${String(wanted)}`);
  };
  want('name', l.name, spec.name);
  want('kind', l.kind, spec.kind);
  if (l.kind !== spec.kind) return out;
  want('mtu', l.mtu, spec.mtu);
  want('mac', l.mac, spec.mac);
  if (spec.kind === 'vxlan') {
    const v: Partial<VxlanInfo> = l.vxlan ?? {};
    want('vni', v.vni, spec.vni);
    want('port', v.port, spec.port);
    want('local', v.local, spec.local === undefined ? undefined : canonicalIp(spec.local));
    want('dev', v.dev, spec.dev);
    want('learning', v.learning, spec.learning);
    want('ttl', v.ttl, spec.ttl);
  }
  if (spec.kind === 'macvlan') {
    want('parent', l.parentIndex, spec.parentIndex);
    want('mode', l.macvlan?.mode, spec.mode);
  }
  return out;
}

/** One line for logs, in the spirit of `ip -d link show`. */
export function linkString(l: Link): string {
  const parts = [`${l.index}: ${l.name}`];
  if (l.kind) parts.push(l.kind);
  parts.push(l.up ? 'up' : 'down', `state ${l.operState}`, `mtu ${l.mtu}`);
  if (l.mac) parts.push(`mac ${l.mac}`);
  if (l.masterIndex !== undefined) parts.push(`master ${l.masterIndex}`);
  if (l.parentIndex !== undefined) parts.push(`link ${l.parentIndex}${l.netnsId !== undefined ? ` netnsid ${l.netnsId}` : ''}`);
  if (l.vxlan) {
    const v = l.vxlan;
    parts.push(`vni ${v.vni}`);
    if (v.port !== undefined) parts.push(`port ${v.port}`);
    if (v.local) parts.push(`local ${v.local}`);
    if (v.dev !== undefined) parts.push(`dev ${v.dev}`);
    if (v.learning !== undefined) parts.push(v.learning ? 'learning' : 'nolearning');
    if (v.ttl !== undefined) parts.push(`ttl ${v.ttl === 0 ? 'inherit' : v.ttl}`);
  }
  if (l.macvlan) parts.push(`mode ${l.macvlan.mode}`);
  return parts.join(' ');
}

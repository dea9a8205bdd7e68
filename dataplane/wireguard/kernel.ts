// The kernel's WireGuard over generic netlink (family "wireguard", version
// 1), as include/uapi/linux/wireguard.h documents it:
//
//   WG_CMD_GET_DEVICE  dump, by WGDEVICE_A_IFNAME; the reply may span several
//                      messages: each repeats the device attributes and holds
//                      a part of WGDEVICE_A_PEERS, and a peer cut between two
//                      messages is continued in the next one by its public
//                      key and the rest of its allowed IPs.
//   WG_CMD_SET_DEVICE  one request per message: device attributes, then
//                      WGDEVICE_A_PEERS, a nested array of peers, each with
//                      WGPEER_A_FLAGS (REMOVE_ME, REPLACE_ALLOWEDIPS,
//                      UPDATE_ONLY) and WGPEER_A_ALLOWEDIPS, a nested array.
//
// A netlink attribute's length is 16 bits, so an update is cut into messages
// of at most SET_BUDGET bytes of peers; a peer whose allowed IPs do not fit
// goes on in the next message with its public key and more allowed IPs
// (REPLACE_ALLOWEDIPS only on its first part), as `wg` itself does.
//
// The encoding and decoding here are pure; kernelDevice() puts them on a
// NETLINK_GENERIC handle. No secret is kept from a reply (the device's
// public key is read, its private key skipped; a preshared key becomes its
// fingerprint), and no error names a key.
import {
  NETLINK_GENERIC, nla, parseAttrList, parseAttrs, read, type Message,
} from '../netlink/codec';
import { genlFamilyGet, genlRequest, GENL_HDRLEN } from '../netlink/genl';
import { openHandle, type Handle, type Request } from '../netlink/handle';
import { checkIntRange, InvalidArgumentError, isErrno } from '../netlink/errors';
import { bytesToIp, ipToBytes, parseCidr } from '../netlink/ip';
import { AF_INET, AF_INET6, AF_UNSPEC } from '../netlink/libc';
import type { WireGuardDevice } from './device';
import { isEmptyUpdate } from './device';
import { ensureWireGuardLink } from './kernel-link';
import { WireGuardProtocolError } from './errors';
import {
  canonicalAllowedIp, canonicalEndpoint, checkInterfaceName, isZeroKey, keyBytes, keyFingerprint, WG_KEY_LEN, type DeviceState, type DeviceUpdate,
  type PeerState, type PeerUpdate,
} from './types';

export const WG_GENL_NAME = 'wireguard';
export const WG_GENL_VERSION = 1;

export const WG_CMD_GET_DEVICE = 0;
export const WG_CMD_SET_DEVICE = 1;

export const WGDEVICE_F_REPLACE_PEERS = 1 << 0;

export const WGDEVICE_A_IFINDEX = 1;
export const WGDEVICE_A_IFNAME = 2;
export const WGDEVICE_A_PRIVATE_KEY = 3;
export const WGDEVICE_A_PUBLIC_KEY = 4;
export const WGDEVICE_A_FLAGS = 5;
export const WGDEVICE_A_LISTEN_PORT = 6;
export const WGDEVICE_A_FWMARK = 7;
export const WGDEVICE_A_PEERS = 8;

export const WGPEER_F_REMOVE_ME = 1 << 0;
export const WGPEER_F_REPLACE_ALLOWEDIPS = 1 << 1;
export const WGPEER_F_UPDATE_ONLY = 1 << 2;

export const WGPEER_A_PUBLIC_KEY = 1;
export const WGPEER_A_PRESHARED_KEY = 2;
export const WGPEER_A_FLAGS = 3;
export const WGPEER_A_ENDPOINT = 4;
export const WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL = 5;
export const WGPEER_A_LAST_HANDSHAKE_TIME = 6;
export const WGPEER_A_RX_BYTES = 7;
export const WGPEER_A_TX_BYTES = 8;
export const WGPEER_A_ALLOWEDIPS = 9;
export const WGPEER_A_PROTOCOL_VERSION = 10;

export const WGALLOWEDIP_A_FAMILY = 1;
export const WGALLOWEDIP_A_IPADDR = 2;
export const WGALLOWEDIP_A_CIDR_MASK = 3;

/** Bytes of peer attributes per set message: well under the 16-bit length of the WGDEVICE_A_PEERS nest. */
export const SET_BUDGET = 32 << 10;

const SOCKADDR_IN_LEN = 16;
const SOCKADDR_IN6_LEN = 28;
const TIMESPEC_LEN = 16;

// ---- encoding: endpoints and allowed IPs ----

/** struct sockaddr_in / sockaddr_in6 for "1.2.3.4:51820" / "[fd00::1]:51820": family in host order, port in network order. */
export function encodeSockaddr(endpoint: string): Buffer {
  const canon = canonicalEndpoint(endpoint);
  const colon = canon.lastIndexOf(':');
  const port = Number(canon.slice(colon + 1));
  const host = canon.slice(0, colon).replace(/^\[|\]$/g, '');
  const addr = ipToBytes(host);
  if (addr.length === 4) {
    const b = Buffer.alloc(SOCKADDR_IN_LEN);
    b.writeUInt16LE(AF_INET, 0);
    b.writeUInt16BE(port, 2);
    addr.copy(b, 4);
    return b;
  }
  const b = Buffer.alloc(SOCKADDR_IN6_LEN);
  b.writeUInt16LE(AF_INET6, 0);
  b.writeUInt16BE(port, 2);
  addr.copy(b, 8);
  return b;
}

/** The endpoint a sockaddr holds; null for AF_UNSPEC (no endpoint); throws on anything else. */
export function decodeSockaddr(b: Buffer): string | null {
  if (b.length < 2) throw new Error(`sockaddr of ${b.length} bytes`);
  const family = b.readUInt16LE(0);
  if (family === AF_UNSPEC) return null;
  if (family === AF_INET && b.length >= SOCKADDR_IN_LEN) return `${bytesToIp(b.subarray(4, 8))}:${b.readUInt16BE(2)}`;
  if (family === AF_INET6 && b.length >= SOCKADDR_IN6_LEN) return `[${bytesToIp(b.subarray(8, 24))}]:${b.readUInt16BE(2)}`;
  throw new Error(`sockaddr of family ${family} and ${b.length} bytes`);
}

function allowedIpAttr(cidr: string): Buffer {
  const c = parseCidr(canonicalAllowedIp(cidr));
  return nla.nested(0, [nla.u16(WGALLOWEDIP_A_FAMILY, c.family), nla.bytes(WGALLOWEDIP_A_IPADDR, ipToBytes(c.ip)), nla.u8(WGALLOWEDIP_A_CIDR_MASK, c.prefixLen)]);
}

// ---- encoding: set ----

/** The attributes inside one peer's nest, except the allowed IPs. */
function peerHead(p: PeerUpdate, at: string, continuation: boolean): Buffer[] {
  const attrs = [nla.bytes(WGPEER_A_PUBLIC_KEY, keyBytes(p.publicKey, `${at}.publicKey`))];
  if (continuation) return attrs;
  let flags = 0;
  if (p.remove) flags |= WGPEER_F_REMOVE_ME;
  if (!p.remove && p.updateOnly) flags |= WGPEER_F_UPDATE_ONLY;
  if (!p.remove && p.allowedIps !== undefined) flags |= WGPEER_F_REPLACE_ALLOWEDIPS;
  if (flags) attrs.push(nla.u32(WGPEER_A_FLAGS, flags));
  if (p.remove) return attrs;
  if (p.presharedKey !== undefined) {
    attrs.push(nla.bytes(WGPEER_A_PRESHARED_KEY, p.presharedKey === null ? Buffer.alloc(WG_KEY_LEN) : keyBytes(p.presharedKey, `${at}.presharedKey`)));
  }
  if (p.endpoint !== undefined) attrs.push(nla.bytes(WGPEER_A_ENDPOINT, encodeSockaddr(p.endpoint)));
  if (p.persistentKeepalive !== undefined) {
    checkIntRange(`${at}.persistentKeepalive`, p.persistentKeepalive, 0, 65535);
    attrs.push(nla.u16(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, p.persistentKeepalive));
  }
  return attrs;
}

const nestLen = (children: Buffer[]) => 4 + children.reduce((n, c) => n + c.length, 0);

/**
 * The WG_CMD_SET_DEVICE requests for an update, in order: device attributes
 * in the first, each holding at most `budget` bytes of peers. Every value is
 * checked before anything is returned; an empty update gives no request.
 */
export function encodeSetDevice(familyId: number, name: string, u: DeviceUpdate, budget = SET_BUDGET): Request[] {
  checkInterfaceName(name);
  const device: Buffer[] = [];
  if (u.privateKey !== undefined) device.push(nla.bytes(WGDEVICE_A_PRIVATE_KEY, keyBytes(u.privateKey, 'privateKey')));
  if (u.listenPort !== undefined) {
    checkIntRange('listenPort', u.listenPort, 0, 65535);
    device.push(nla.u16(WGDEVICE_A_LISTEN_PORT, u.listenPort));
  }
  if (u.fwmark !== undefined) {
    checkIntRange('fwmark', u.fwmark, 0, 0xffffffff);
    device.push(nla.u32(WGDEVICE_A_FWMARK, u.fwmark));
  }
  if (u.replacePeers) device.push(nla.u32(WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS));

  // peers into messages: the peer nests of each message
  const messages: Buffer[][] = [[]];
  let used = 0;
  const NEST_HDRS = 8; // the peer's nest and its allowed IPs' nest
  u.peers.forEach((p, i) => {
    const at = `peers[${i}]`;
    const ips = p.remove ? [] : (p.allowedIps ?? []).map((a, j) => {
      try {
        return allowedIpAttr(a);
      } catch (e) {
        throw new InvalidArgumentError(`invalid ${at}.allowedIps[${j}]: ${(e as Error).message}`, { field: `${at}.allowedIps[${j}]` });
      }
    });
    let head = peerHead(p, at, false);
    let k = 0;
    for (;;) {
      // as many allowed IPs as fit in what is left of this message
      const room = budget - used - nestLen(head) - NEST_HDRS;
      let n = 0;
      let size = 0;
      while (k + n < ips.length && size + ips[k + n].length <= room) size += ips[k + n++].length;
      const wantsMore = k + n < ips.length || (k === 0 && ips.length === 0 && room < 0);
      if (n === 0 && wantsMore && used > 0) {
        // nothing of this part fits here: on to a fresh message
        messages.push([]);
        used = 0;
        continue;
      }
      if (n === 0 && k < ips.length) size += ips[k + n++].length; // one allowed IP per part at the very least
      const part = n > 0 ? [...head, nla.nested(WGPEER_A_ALLOWEDIPS, ips.slice(k, k + n))] : head;
      const peer = nla.nested(0, part);
      messages[messages.length - 1].push(peer);
      used += peer.length;
      k += n;
      if (k >= ips.length) break;
      // the rest goes on in the next message, under the same public key, without flags
      messages.push([]);
      used = 0;
      head = peerHead(p, at, true);
    }
  });
  if (isEmptyUpdate(u)) return [];
  return messages.map((peers, i) => {
    const attrs = [nla.str(WGDEVICE_A_IFNAME, name), ...(i === 0 ? device : [])];
    if (peers.length > 0) attrs.push(nla.nested(WGDEVICE_A_PEERS, peers));
    return genlRequest(familyId, WG_CMD_SET_DEVICE, WG_GENL_VERSION, attrs, `wireguard set ${name}${messages.length > 1 ? ` (part ${i + 1} of ${messages.length})` : ''}`);
  });
}

/** The WG_CMD_GET_DEVICE dump request for a device by name. */
export function encodeGetDevice(familyId: number, name: string): Request {
  checkInterfaceName(name);
  return genlRequest(familyId, WG_CMD_GET_DEVICE, WG_GENL_VERSION, [nla.str(WGDEVICE_A_IFNAME, name)], `wireguard get ${name}`);
}

// ---- decoding: get ----

function exact(b: Buffer | undefined, len: number, what: string, bad: (why: string) => Error): Buffer | undefined {
  if (b === undefined) return undefined;
  if (b.length !== len) throw bad(`${what} has ${b.length} bytes, not ${len}`);
  return b;
}

function decodeAllowedIp(b: Buffer, bad: (why: string) => Error): string {
  const a = parseAttrs(b);
  const family = read.u16(exact(a.get(WGALLOWEDIP_A_FAMILY), 2, 'allowed IP family', bad));
  const mask = read.u8(exact(a.get(WGALLOWEDIP_A_CIDR_MASK), 1, 'allowed IP mask', bad));
  const addr = a.get(WGALLOWEDIP_A_IPADDR);
  const len = family === AF_INET ? 4 : family === AF_INET6 ? 16 : -1;
  if (len === -1) throw bad(`allowed IP of family ${family}`);
  if (!addr || addr.length !== len) throw bad(`allowed IP address of ${addr?.length ?? 0} bytes for family ${family}`);
  if (mask === undefined || mask > len * 8) throw bad(`allowed IP mask ${mask} for family ${family}`);
  return canonicalAllowedIp(`${bytesToIp(addr)}/${mask}`);
}

function decodePeer(b: Buffer, bad: (why: string) => Error): { peer: PeerState; continued: boolean } {
  const a = parseAttrs(b);
  const pub = exact(a.get(WGPEER_A_PUBLIC_KEY), WG_KEY_LEN, 'peer public key', bad);
  if (!pub) throw bad('peer without a public key');
  const peer: PeerState = { publicKey: pub.toString('base64'), allowedIps: [], lastHandshakeMs: 0, rxBytes: 0n, txBytes: 0n };
  const psk = exact(a.get(WGPEER_A_PRESHARED_KEY), WG_KEY_LEN, 'preshared key', bad);
  if (psk && !isZeroKey(psk)) peer.presharedKeyFingerprint = keyFingerprint(psk);
  const ep = a.get(WGPEER_A_ENDPOINT);
  if (ep) {
    let endpoint: string | null;
    try {
      endpoint = decodeSockaddr(ep);
    } catch (e) {
      throw bad(`peer endpoint: ${(e as Error).message}`);
    }
    if (endpoint !== null) peer.endpoint = endpoint;
  }
  const ka = read.u16(exact(a.get(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL), 2, 'keepalive interval', bad));
  if (ka) peer.persistentKeepalive = ka;
  const hs = exact(a.get(WGPEER_A_LAST_HANDSHAKE_TIME), TIMESPEC_LEN, 'last handshake time', bad);
  if (hs) {
    const sec = hs.readBigInt64LE(0);
    const nsec = hs.readBigInt64LE(8);
    if (sec < 0n || nsec < 0n || nsec >= 1_000_000_000n) throw bad('last handshake time out of range');
    peer.lastHandshakeMs = Number(sec) * 1000 + Math.floor(Number(nsec) / 1e6);
  }
  peer.rxBytes = read.u64(exact(a.get(WGPEER_A_RX_BYTES), 8, 'rx bytes', bad)) ?? 0n;
  peer.txBytes = read.u64(exact(a.get(WGPEER_A_TX_BYTES), 8, 'tx bytes', bad)) ?? 0n;
  const ips = a.get(WGPEER_A_ALLOWEDIPS);
  if (ips) for (const [, ip] of parseAttrList(ips)) peer.allowedIps.push(decodeAllowedIp(ip, bad));
  // a continuation carries the public key and allowed IPs only
  const continued = !a.has(WGPEER_A_RX_BYTES) && !a.has(WGPEER_A_LAST_HANDSHAKE_TIME) && !a.has(WGPEER_A_PRESHARED_KEY);
  return { peer, continued };
}

/** The device a WG_CMD_GET_DEVICE dump describes, its parts merged (pure). */
export function decodeDevice(msgs: Message[], name: string): DeviceState {
  const bad = (why: string) => new WireGuardProtocolError(name, 'get', why);
  if (msgs.length === 0) throw bad('the kernel sent no device');
  const state: DeviceState = { listenPort: 0, fwmark: 0, peers: [] };
  const byKey = new Map<string, PeerState>();
  let last: PeerState | undefined;
  msgs.forEach((m, i) => {
    if (m.body.length < GENL_HDRLEN) throw bad(`message ${i + 1} shorter than the generic netlink header`);
    const a = parseAttrs(m.body, GENL_HDRLEN);
    const ifname = read.str(a.get(WGDEVICE_A_IFNAME));
    if (ifname !== undefined && ifname !== name) throw bad(`message ${i + 1} is about device ${JSON.stringify(ifname.slice(0, 16))}`);
    if (i === 0) {
      const pub = exact(a.get(WGDEVICE_A_PUBLIC_KEY), WG_KEY_LEN, 'device public key', bad);
      if (pub && !isZeroKey(pub)) state.publicKey = pub.toString('base64');
      // WGDEVICE_A_PRIVATE_KEY is skipped on purpose: a DeviceState holds no secret
      state.listenPort = read.u16(exact(a.get(WGDEVICE_A_LISTEN_PORT), 2, 'listen port', bad)) ?? 0;
      state.fwmark = read.u32(exact(a.get(WGDEVICE_A_FWMARK), 4, 'fwmark', bad)) ?? 0;
    }
    const peers = a.get(WGDEVICE_A_PEERS);
    if (!peers) return;
    parseAttrList(peers).forEach(([, pb], j) => {
      const { peer, continued } = decodePeer(pb, bad);
      if (j === 0 && last && last.publicKey === peer.publicKey) {
        if (!continued) throw bad(`peer ${peer.publicKey} repeated in full in message ${i + 1}`);
        last.allowedIps.push(...peer.allowedIps);
        return;
      }
      if (byKey.has(peer.publicKey)) throw bad(`peer ${peer.publicKey} appears twice`);
      byKey.set(peer.publicKey, peer);
      state.peers.push(peer);
      last = peer;
    });
  });
  return state;
}

// ---- the device ----

export type KernelDevice = WireGuardDevice & { readonly backend: 'kernel'; close(): void };

/** The kernel device `name` through an open NETLINK_GENERIC handle and the resolved family id. */
export function kernelDevice(h: Handle, familyId: number, name: string): KernelDevice {
  checkInterfaceName(name);
  return {
    name,
    backend: 'kernel',
    async get() {
      return decodeDevice(h.dump(encodeGetDevice(familyId, name)), name);
    },
    async apply(u) {
      for (const req of encodeSetDevice(familyId, name, u)) h.exec(req);
    },
    close: () => h.close(),
  };
}

/** The id of the "wireguard" generic netlink family in the namespace, or null when the kernel has no WireGuard. */
export function wireGuardFamilyId(h: Handle): number | null {
  try {
    return genlFamilyGet(h, WG_GENL_NAME).id;
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return null;
    throw e;
  }
}

/**
 * The kernel device for `name` in the namespace, its interface created when
 * missing (`existed` says which); null when the kernel has no WireGuard. A
 * link of that name that is not WireGuard is refused.
 */
export function openKernelDevice(o: { name: string; netns?: string }): (KernelDevice & { existed: boolean }) | null {
  checkInterfaceName(o.name);
  const genl = openHandle({ netns: o.netns, protocol: NETLINK_GENERIC });
  try {
    const familyId = wireGuardFamilyId(genl);
    if (familyId === null) {
      genl.close();
      return null;
    }
    const existed = ensureWireGuardLink(o.name, o.netns);
    return { ...kernelDevice(genl, familyId, o.name), existed };
  } catch (e) {
    genl.close();
    throw e;
  }
}

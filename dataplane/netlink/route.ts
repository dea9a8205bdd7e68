// Routes (RTM_NEWROUTE / RTM_DELROUTE / RTM_GETROUTE), IPv4 and IPv6.
import {
  decodeRtMsg, encodeRtMsg, nla, parseAttrs, read,
  NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, RTMSG_LEN, RTM_DELROUTE, RTM_GETROUTE, RTM_NEWROUTE,
} from './codec';
import { checkIntRange, InvalidArgumentError } from './errors';
import type { Handle, Request } from './handle';
import { bytesToIp, canonicalIp, formatCidr, ipFamily, ipToBytes, networkOf, parseCidr, type Cidr } from './ip';
import { AF_INET, AF_INET6, AF_UNSPEC } from './libc';

export const RTA_DST = 1;
export const RTA_SRC = 2;
export const RTA_IIF = 3;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_PREFSRC = 7;
export const RTA_METRICS = 8;
export const RTA_TABLE = 15;
export const RTAX_MTU = 2;

export const RT_TABLE_UNSPEC = 0;
export const RT_TABLE_DEFAULT = 253;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;

export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_SITE = 200;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
export const RT_SCOPE_NOWHERE = 255;

export const RTN_UNSPEC = 0;
export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTN_BROADCAST = 3;
export const RTN_ANYCAST = 4;
export const RTN_MULTICAST = 5;
export const RTN_BLACKHOLE = 6;
export const RTN_UNREACHABLE = 7;
export const RTN_PROHIBIT = 8;
export const RTN_THROW = 9;

export const RTPROT_UNSPEC = 0;
export const RTPROT_KERNEL = 2;
export const RTPROT_BOOT = 3;
export const RTPROT_STATIC = 4;

/**
 * The protocol weft stamps on its routes, so that listing and reconciling
 * touch only weft's own and never a route someone else installed. 119 is
 * ASCII 'w'. It is free in iproute2's rt_protos and the kernel's
 * rtnetlink.h (which name 0-4, 8-18, 42, 99, 186-189, 192), and clear of
 * numbers other route owners are known to use: Calico's 80 and FRR's
 * 185-199 block. The kernel does not interpret protocols >= 4
 * (RTPROT_STATIC), so any free number works; this one is just recognisable.
 */
export const RTPROT_WEFT = 119;

export const RTNH_F_ONLINK = 4;
const RTM_F_CLONED = 0x200;

/** A route as the kernel reports it; `dst` is always a CIDR ('0.0.0.0/0' or '::/0' for default). */
export type Route = {
  dst: string;
  gw?: string;
  linkIndex?: number;
  table?: number;
  protocol?: number;
  scope?: number;
  type?: number;
  onlink?: boolean;
  priority?: number;
  src?: string;
  mtu?: number;
};

export type RouteFilter = {
  family?: number;
  /** One table, or 'all'; default: the main table, as `ip route show`. */
  table?: number | 'all';
  protocol?: number;
  linkIndex?: number;
  dst?: string;
};

type Checked = {
  family: number;
  dst: Cidr;
  gw?: string;
  linkIndex?: number;
  table: number;
  protocol?: number;
  scope?: number;
  type: number;
  onlink: boolean;
  priority?: number;
  src?: string;
  mtu?: number;
};

const U32_MAX = 0xffffffff;

/** Unset fields are the kernel's to fill in; set ones must be in range. */
function checkInt(field: string, v: number | undefined, min: number, max: number): void {
  if (v !== undefined) checkIntRange(`route ${field}`, v, min, max);
}

/** 'default' is the IPv4 default unless the gateway or source says IPv6. */
function parseDst(dst: string, hint?: string): Cidr {
  if (typeof dst !== 'string') throw new InvalidArgumentError('route dst is required');
  if (dst === 'default') {
    let family = AF_INET;
    if (hint !== undefined) {
      try {
        family = ipFamily(hint);
      } catch {
        /* the hint's own check reports it */
      }
    }
    return family === AF_INET6 ? { ip: '::', prefixLen: 0, family } : { ip: '0.0.0.0', prefixLen: 0, family };
  }
  let c: Cidr;
  try {
    c = parseCidr(dst);
  } catch (e) {
    throw new InvalidArgumentError(`invalid route dst: ${(e as Error).message}`);
  }
  const net = networkOf(c);
  if (net.ip !== c.ip) {
    throw new InvalidArgumentError(`invalid route dst "${dst}": host bits set (the network is ${formatCidr(net)})`);
  }
  return c;
}

function checkIp(field: string, ip: string, family: number): string {
  let f: number;
  try {
    f = ipFamily(ip);
  } catch {
    throw new InvalidArgumentError(`invalid route ${field} "${ip}" (not an IP address)`);
  }
  if (f !== family) {
    throw new InvalidArgumentError(`invalid route ${field} "${ip}": not of the destination's family (${family === AF_INET ? 'IPv4' : 'IPv6'})`);
  }
  return canonicalIp(ip);
}

/** fe80::/10: such a gateway means nothing without the link it is on. */
function isLinkLocal6(ip: string): boolean {
  const b = ipToBytes(ip);
  return b[0] === 0xfe && (b[1] & 0xc0) === 0x80;
}

function checkRoute(r: Route, forDelete: boolean): Checked {
  if (r === null || typeof r !== 'object') throw new InvalidArgumentError('route must be an object');
  const dst = parseDst(r.dst, r.gw ?? r.src);
  const family = dst.family;
  const gw = r.gw !== undefined ? checkIp('gw', r.gw, family) : undefined;
  const src = r.src !== undefined ? checkIp('src', r.src, family) : undefined;
  checkInt('linkIndex', r.linkIndex, 1, 0x7fffffff);
  checkInt('table', r.table, 1, U32_MAX);
  checkInt('protocol', r.protocol, 0, 255);
  checkInt('scope', r.scope, 0, 255);
  checkInt('type', r.type, 1, 11);
  checkInt('priority', r.priority, 0, U32_MAX);
  checkInt('mtu', r.mtu, 68, 0xffff);
  if (r.mtu !== undefined && family === AF_INET6 && r.mtu < 1280) {
    throw new InvalidArgumentError(`invalid route mtu ${r.mtu} (must be between 1280 and 65535 for IPv6)`);
  }
  const type = r.type ?? RTN_UNICAST;
  const onlink = r.onlink === true;
  if (!forDelete && type === RTN_UNICAST) {
    // Without a device the kernel must find one from the gateway; onlink
    // says "do not look", so it needs the device spelled out.
    if (onlink && r.linkIndex === undefined) throw new InvalidArgumentError('route with onlink needs a linkIndex');
    if (onlink && gw === undefined) throw new InvalidArgumentError('route with onlink needs a gw');
    if (gw === undefined && r.linkIndex === undefined) throw new InvalidArgumentError('unicast route needs a linkIndex or a gw');
    if (gw !== undefined && family === AF_INET6 && isLinkLocal6(gw) && r.linkIndex === undefined) {
      throw new InvalidArgumentError(`route via link-local gw "${gw}" needs a linkIndex`);
    }
  }
  return {
    family, dst, gw, src, type, onlink,
    linkIndex: r.linkIndex,
    table: r.table ?? RT_TABLE_MAIN,
    protocol: r.protocol,
    scope: r.scope,
    priority: r.priority,
    mtu: r.mtu,
  };
}

/** The scope the kernel would be told when none is given, chosen as `ip route` does. */
function defaultScope(c: { type: number; gw?: string; onlink: boolean }, forDelete: boolean): number {
  if (c.type === RTN_LOCAL) return RT_SCOPE_HOST;
  if (c.type === RTN_BROADCAST || c.type === RTN_MULTICAST || c.type === RTN_ANYCAST) return RT_SCOPE_LINK;
  // NOWHERE on delete is the kernel's wildcard: match whatever scope the route has
  if (forDelete) return RT_SCOPE_NOWHERE;
  if (c.type === RTN_UNICAST && c.gw === undefined && !c.onlink) return RT_SCOPE_LINK;
  return RT_SCOPE_UNIVERSE;
}

function encode(c: Checked, forDelete: boolean): Buffer {
  const parts = [
    encodeRtMsg({
      family: c.family,
      dstLen: c.dst.prefixLen,
      // ids above 255 do not fit the header; UNSPEC there sends the kernel to RTA_TABLE
      table: c.table <= 255 ? c.table : RT_TABLE_UNSPEC,
      // on delete, 0 (unspec) protocol and type match any route
      protocol: c.protocol ?? (forDelete ? RTPROT_UNSPEC : RTPROT_BOOT),
      scope: c.scope ?? defaultScope(c, forDelete),
      type: forDelete && c.type === RTN_UNICAST ? RTN_UNSPEC : c.type,
      flags: c.onlink ? RTNH_F_ONLINK : 0,
    }),
    nla.u32(RTA_TABLE, c.table),
  ];
  if (c.dst.prefixLen > 0) parts.push(nla.bytes(RTA_DST, ipToBytes(c.dst.ip)));
  if (c.gw !== undefined) parts.push(nla.bytes(RTA_GATEWAY, ipToBytes(c.gw)));
  if (c.linkIndex !== undefined) parts.push(nla.u32(RTA_OIF, c.linkIndex));
  if (c.priority !== undefined) parts.push(nla.u32(RTA_PRIORITY, c.priority));
  if (c.src !== undefined && !forDelete) parts.push(nla.bytes(RTA_PREFSRC, ipToBytes(c.src)));
  if (c.mtu !== undefined && !forDelete) parts.push(nla.nested(RTA_METRICS, [nla.u32(RTAX_MTU, c.mtu)]));
  return Buffer.concat(parts);
}

function request(verb: string, type: number, flags: number, r: Route): Request {
  const forDelete = type === RTM_DELROUTE;
  const c = checkRoute(r, forDelete);
  return { type, flags, body: encode(c, forDelete), op: `route ${verb} ${routeString(r)}` };
}

export function routeAddRequest(r: Route): Request {
  return request('add', RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, r);
}

export function routeReplaceRequest(r: Route): Request {
  return request('replace', RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, r);
}

export function routeDelRequest(r: Route): Request {
  return request('del', RTM_DELROUTE, 0, r);
}

/** Add a route; EEXIST (NetlinkError) when one with the same key is there. */
export function routeAdd(h: Handle, r: Route): void {
  h.exec(routeAddRequest(r));
}

/** Add a route or replace the one with the same key (table, dst, priority). */
export function routeReplace(h: Handle, r: Route): void {
  h.exec(routeReplaceRequest(r));
}

/** Remove a route; ESRCH (NetlinkError) when there is none matching. Unset fields match anything. */
export function routeDel(h: Handle, r: Route): void {
  h.exec(routeDelRequest(r));
}

/**
 * Decode one RTM_NEWROUTE message of AF_INET or AF_INET6. Multipath routes
 * (RTA_MULTIPATH) and gateways of another family (RTA_VIA) are not
 * represented: weft writes neither, and such a route reads back without gw.
 */
export function routeDecode(body: Buffer): Route & { family: number; cloned: boolean } {
  const m = decodeRtMsg(body);
  const at = parseAttrs(body, RTMSG_LEN);
  const dstBytes = at.get(RTA_DST);
  const any = m.family === AF_INET6 ? '::' : '0.0.0.0';
  const r: Route & { family: number; cloned: boolean } = {
    dst: formatCidr({ ip: dstBytes ? bytesToIp(dstBytes) : any, prefixLen: m.dstLen }),
    table: read.u32(at.get(RTA_TABLE)) ?? m.table,
    protocol: m.protocol,
    scope: m.scope,
    type: m.type,
    family: m.family,
    cloned: (m.flags & RTM_F_CLONED) !== 0,
  };
  const gw = at.get(RTA_GATEWAY);
  if (gw) r.gw = bytesToIp(gw);
  const oif = read.u32(at.get(RTA_OIF));
  if (oif !== undefined) r.linkIndex = oif;
  const prio = read.u32(at.get(RTA_PRIORITY));
  if (prio !== undefined) r.priority = prio;
  const src = at.get(RTA_PREFSRC);
  if (src) r.src = bytesToIp(src);
  const metrics = at.get(RTA_METRICS);
  if (metrics) {
    const mtu = read.u32(parseAttrs(metrics).get(RTAX_MTU));
    if (mtu !== undefined) r.mtu = mtu;
  }
  if (m.flags & RTNH_F_ONLINK) r.onlink = true;
  return r;
}

/**
 * Routes matching every field the filter sets. The dump is of all routes of
 * the family and the filtering happens here: simple, and independent of
 * whether the socket asked the kernel for strict dump checking.
 */
export function routeList(h: Handle, filter: RouteFilter = {}): Route[] {
  const family = filter.family ?? AF_UNSPEC;
  if (![AF_UNSPEC, AF_INET, AF_INET6].includes(family)) {
    throw new InvalidArgumentError(`invalid route filter family ${family} (must be ${AF_INET} or ${AF_INET6})`);
  }
  const table = filter.table ?? RT_TABLE_MAIN;
  if (table !== 'all') checkInt('filter table', table, 1, U32_MAX);
  checkInt('filter protocol', filter.protocol, 0, 255);
  checkInt('filter linkIndex', filter.linkIndex, 1, 0x7fffffff);
  let dst: string | undefined;
  if (filter.dst !== undefined) {
    const d = parseDst(filter.dst, family === AF_INET6 ? '::' : undefined);
    if (family !== AF_UNSPEC && d.family !== family) throw new InvalidArgumentError(`route filter dst "${filter.dst}" is not of family ${family}`);
    dst = formatCidr(d);
  }
  const msgs = h.dump({ type: RTM_GETROUTE, body: encodeRtMsg({ family }), op: 'route list' });
  const out: Route[] = [];
  for (const m of msgs) {
    // an unfiltered dump also carries other families' tables (multicast routing: RTNL_FAMILY_IPMR, ...)
    if (m.type !== RTM_NEWROUTE || m.body.length < RTMSG_LEN || ![AF_INET, AF_INET6].includes(m.body.readUInt8(0))) continue;
    const { family: f, cloned, ...r } = routeDecode(m.body);
    if (cloned) continue;
    if (family !== AF_UNSPEC && f !== family) continue;
    if (table !== 'all' && r.table !== table) continue;
    if (filter.protocol !== undefined && r.protocol !== filter.protocol) continue;
    if (filter.linkIndex !== undefined && r.linkIndex !== filter.linkIndex) continue;
    if (dst !== undefined && r.dst !== dst) continue;
    out.push(r);
  }
  return out;
}

/**
 * The route the kernel would take to reach `ip`, as `ip route get` asks it:
 * device, gateway and the source address it would pick (`src`). Throws
 * NetlinkError (ENETUNREACH, EHOSTUNREACH) when there is none.
 */
export type RouteGetOptions = { src?: string; iifIndex?: number };

/**
 * `ip route get <dst> [from <src>] [iif <dev>]`, the shape of vishvananda's
 * RouteGetWithOptions: with an input interface the kernel answers as
 * forwarding sees a packet arriving there (policy rules, reverse-path filter
 * and ip_forward included), not as a local socket would.
 */
export function routeGetWithOptions(h: Handle, dst: string, o: RouteGetOptions = {}): Route {
  let family: number;
  try {
    family = ipFamily(dst);
  } catch {
    throw new InvalidArgumentError(`invalid route get destination "${dst}" (not an IP address)`);
  }
  const bytes = ipToBytes(dst);
  const attrs = [nla.bytes(RTA_DST, bytes)];
  let srcLen = 0;
  if (o.src !== undefined) {
    const s = ipToBytes(o.src);
    attrs.push(nla.bytes(RTA_SRC, s));
    srcLen = s.length * 8;
  }
  if (o.iifIndex !== undefined) attrs.push(nla.u32(RTA_IIF, o.iifIndex));
  const what = `route get ${dst}${o.src ? ` from ${o.src}` : ''}${o.iifIndex !== undefined ? ` iif #${o.iifIndex}` : ''}`;
  const body = Buffer.concat([encodeRtMsg({ family, dstLen: bytes.length * 8, srcLen }), ...attrs]);
  const replies = h.exec({ type: RTM_GETROUTE, body, op: what });
  const m = replies.find((r) => r.type === RTM_NEWROUTE && r.body.length >= RTMSG_LEN);
  if (!m) throw new InvalidArgumentError(`${what}: the kernel answered without a route`);
  const { family: _f, cloned: _c, ...r } = routeDecode(m.body);
  return r;
}

/** `ip route get <ip>`. */
export function routeGet(h: Handle, ip: string): Route {
  return routeGetWithOptions(h, ip);
}

/** Unset fields as the kernel fills them in, so a desired route compares equal to its read-back self. */
function normalize(r: Route) {
  const dst = parseDst(r.dst, r.gw ?? r.src);
  const gw = r.gw !== undefined && dst.family === AF_INET6 ? canonicalIp(r.gw) : r.gw;
  const src = r.src !== undefined && dst.family === AF_INET6 ? canonicalIp(r.src) : r.src;
  const type = r.type ?? RTN_UNICAST;
  const onlink = r.onlink === true;
  return {
    family: dst.family,
    dst: formatCidr(dst),
    table: r.table ?? RT_TABLE_MAIN,
    // IPv6 stores a missing or zero metric as the user default 1024 (IP6_RT_PRIO_USER)
    priority: dst.family === AF_INET6 ? r.priority || 1024 : r.priority ?? 0,
    gw,
    src,
    linkIndex: r.linkIndex,
    protocol: r.protocol ?? RTPROT_BOOT,
    // IPv6 has no route scopes: the kernel keeps and reports universe whatever it was sent
    scope: dst.family === AF_INET6 ? RT_SCOPE_UNIVERSE : r.scope ?? defaultScope({ type, gw, onlink }, false),
    type,
    onlink,
    mtu: r.mtu,
  };
}

/** Identity of a route in a table, for diffing desired against actual: what replace would overwrite. */
export function routeKey(r: Route): string {
  const n = normalize(r);
  return `${n.family === AF_INET6 ? 6 : 4}/${n.table}/${n.dst}/${n.priority}`;
}

/** Same key and same contents (gateway, device, protocol, scope, type, onlink, src, mtu). */
export function routeEqual(a: Route, b: Route): boolean {
  const x = normalize(a);
  const y = normalize(b);
  return (Object.keys(x) as Array<keyof typeof x>).every((k) => x[k] === y[k]);
}

/** For logs and error messages, in `ip route` order. */
export function routeString(r: Route): string {
  const parts = [String(r.dst)];
  if (r.type !== undefined && r.type !== RTN_UNICAST) parts.unshift(`type ${r.type}`);
  if (r.gw !== undefined) parts.push(`via ${r.gw}`);
  if (r.linkIndex !== undefined) parts.push(`dev #${r.linkIndex}`);
  if (r.table !== undefined) parts.push(`table ${r.table}`);
  if (r.protocol !== undefined) parts.push(`proto ${r.protocol === RTPROT_WEFT ? 'weft' : r.protocol}`);
  if (r.scope !== undefined) parts.push(`scope ${r.scope}`);
  if (r.src !== undefined) parts.push(`src ${r.src}`);
  if (r.priority !== undefined) parts.push(`metric ${r.priority}`);
  if (r.mtu !== undefined) parts.push(`mtu ${r.mtu}`);
  if (r.onlink) parts.push('onlink');
  return parts.join(' ');
}

// `ip route get <dst> from <src> iif <dev>`: the route the kernel would give
// a packet arriving on a device, as forwarding sees it (policy rules, the
// reverse-path filter and net.ipv4.ip_forward included), not as a local
// socket would. dataplane's routeGet asks only for a destination; this is
// the same request with RTA_SRC and RTA_IIF added, the shape of
// vishvananda/netlink's RouteGetWithOptions (SrcAddr, Iif).
import { encodeRtMsg, nla, RTM_GETROUTE, RTM_NEWROUTE, RTMSG_LEN } from '../../../dataplane/netlink/codec';
import { NetlinkError } from '../../../dataplane/netlink/errors';
import type { Handle } from '../../../dataplane/netlink/handle';
import { ipFamily, ipToBytes } from '../../../dataplane/netlink/ip';
import { routeDecode, type Route } from '../../../dataplane/netlink/route';

const RTA_SRC = 2;
const RTA_IIF = 3;

export type RouteGetOptions = { src?: string; iifIndex?: number };

/** The kernel's answer, or the errno name and message it refused with (ENETUNREACH, EHOSTUNREACH, EXDEV, ...). */
export type RouteAnswer = { route: Route } | { errno: string; message: string };

export function routeGetWithOptions(h: Handle, dst: string, o: RouteGetOptions = {}): RouteAnswer {
  const family = ipFamily(dst);
  const d = ipToBytes(dst);
  const attrs = [nla.bytes(1 /* RTA_DST */, d)];
  let srcLen = 0;
  if (o.src !== undefined) {
    const s = ipToBytes(o.src);
    attrs.push(nla.bytes(RTA_SRC, s));
    srcLen = s.length * 8;
  }
  if (o.iifIndex !== undefined) attrs.push(nla.u32(RTA_IIF, o.iifIndex));
  const body = Buffer.concat([encodeRtMsg({ family, dstLen: d.length * 8, srcLen }), ...attrs]);
  const what = `route get ${dst}${o.src ? ` from ${o.src}` : ''}${o.iifIndex !== undefined ? ` iif #${o.iifIndex}` : ''}`;
  try {
    const replies = h.exec({ type: RTM_GETROUTE, body, op: what });
    const m = replies.find((r) => r.type === RTM_NEWROUTE && r.body.length >= RTMSG_LEN);
    if (!m) return { errno: 'ENOENT', message: `${what}: the kernel answered without a route` };
    const { family: _f, cloned: _c, ...route } = routeDecode(m.body);
    return { route };
  } catch (e) {
    if (e instanceof NetlinkError) return { errno: String(e.code), message: e.message };
    throw e;
  }
}

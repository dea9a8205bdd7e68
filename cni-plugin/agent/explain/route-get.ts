// The forwarding route lookup explain needs, as an answer rather than an
// exception: a kernel refusal (ENETUNREACH, EHOSTUNREACH, EXDEV for a failed
// reverse-path check, ...) is itself what a hop reports.
import { InvalidArgumentError, NetlinkError } from '../../../dataplane/netlink/errors';
import type { Handle } from '../../../dataplane/netlink/handle';
import { routeGetWithOptions, type Route, type RouteGetOptions } from '../../../dataplane/netlink/route';

/** The kernel's answer, or the errno name and message it refused with. */
export type RouteAnswer = { route: Route } | { errno: string; message: string };

export function routeAnswer(h: Handle, dst: string, o: RouteGetOptions = {}): RouteAnswer {
  try {
    return { route: routeGetWithOptions(h, dst, o) };
  } catch (e) {
    if (e instanceof NetlinkError) return { errno: String(e.code), message: e.message };
    // the addresses are checked before; what is left is a reply without a route
    if (e instanceof InvalidArgumentError) return { errno: 'ENOENT', message: e.message };
    throw e;
  }
}

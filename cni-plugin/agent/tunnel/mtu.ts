// The MTUs of a gateway's devices (README.md, "MTU"): weft.wg0 is the
// datacenter's configured MTU, else the underlay's minus WireGuard's
// overhead, lowered to the smallest path MTU the kernel has learned towards
// a remote endpoint; weft.xdc is weft.wg0 minus VXLAN's overhead.
import { isErrno } from '../../../dataplane/netlink/errors';
import type { Handle } from '../../../dataplane/netlink/handle';
import { ipFamily } from '../../../dataplane/netlink/ip';
import { AF_INET } from '../../../dataplane/netlink/libc';
import { linkByIndex } from '../../../dataplane/netlink/link';
import { routeGet } from '../../../dataplane/netlink/route';
import { VXLAN_OVERHEAD, WG_OVERHEAD_V4, WG_OVERHEAD_V6 } from '../state/tunnel';

export type MtuSource = 'configured' | 'derived' | 'probed';
/** What the kernel says about the way to one remote endpoint. */
export type PathMtu = { endpoint: string; family: number; linkMtu: number; learned?: number };
export type TunnelMtu = { wg: number; xdc: number; source: MtuSource };

/** IPv4's minimum is 576, but weft.xdc must still carry IPv6 (1280) inside: never go below this. */
export const MIN_WG_MTU = 1280 + VXLAN_OVERHEAD;

/** Pure: the MTUs from the configuration, the underlay device's MTU and what each path reports. */
export function deriveMtu(configured: number, underlayMtu: number, paths: PathMtu[]): TunnelMtu {
  let wg: number;
  let source: MtuSource;
  if (configured > 0) {
    wg = configured;
    source = 'configured';
  } else {
    const v6 = paths.some((p) => p.family !== AF_INET);
    wg = underlayMtu - (v6 ? WG_OVERHEAD_V6 : WG_OVERHEAD_V4);
    source = 'derived';
    for (const p of paths) wg = Math.min(wg, p.linkMtu - (p.family === AF_INET ? WG_OVERHEAD_V4 : WG_OVERHEAD_V6));
  }
  for (const p of paths) {
    if (p.learned === undefined) continue;
    const m = p.learned - (p.family === AF_INET ? WG_OVERHEAD_V4 : WG_OVERHEAD_V6);
    if (m < wg) {
      wg = m;
      source = 'probed';
    }
  }
  wg = Math.max(wg, MIN_WG_MTU);
  return { wg, xdc: wg - VXLAN_OVERHEAD, source };
}

/** The endpoint's address without brackets or port. */
export function endpointHost(endpoint: string): string {
  const m = /^\[([^\]]+)\]:\d+$/.exec(endpoint) ?? /^([^:]+):\d+$/.exec(endpoint);
  return m ? m[1] : endpoint;
}

/**
 * A `route get` towards each endpoint: the device it leaves by (its MTU) and
 * the path MTU the kernel learned from ICMP, when it has. An endpoint with no
 * route is left out (it gets no traffic either).
 */
export function readPathMtus(h: Handle, endpoints: string[]): PathMtu[] {
  const out: PathMtu[] = [];
  for (const e of endpoints) {
    const ip = endpointHost(e);
    try {
      const r = routeGet(h, ip);
      if (r.linkIndex === undefined) continue;
      const linkMtu = linkByIndex(h, r.linkIndex).mtu;
      const p: PathMtu = { endpoint: e, family: ipFamily(ip), linkMtu };
      if (r.mtu !== undefined && r.mtu > 0 && r.mtu < linkMtu) p.learned = r.mtu;
      out.push(p);
    } catch (e) {
      if (!isErrno(e, 'ENETUNREACH', 'EHOSTUNREACH', 'ENODEV')) throw e;
    }
  }
  return out;
}

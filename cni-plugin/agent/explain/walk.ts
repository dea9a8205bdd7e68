// The walk a path's verdicts are written on, and what every hop's judgement
// shares: a hop, its verdict, the MTU check, and how a device or a route
// lookup fails. Pure: no kernel, no controller.
import type { LinkFact, RouteFact } from './facts';

export type Verdict = 'ok' | 'warn' | 'drop';
export type HopKind = 'container' | 'veth' | 'bridge' | 'route' | 'vxlan' | 'underlay' | 'tunnel' | 'wireguard' | 'gateway' | 'ingress' | 'host' | 'locate';

export type Hop = {
  kind: HopKind;
  /** The host the hop is on. */
  host: string;
  what: string;
  /** Where the facts come from: "kernel", "agent DB + kernel", "h2's report at ...", "controller". */
  source: string;
  mtu?: number;
  verdict: Verdict;
  why?: string;
  fix?: string;
};

export type Explanation = { src: string; dst: string; size?: number; complete: boolean; hops: Hop[]; break?: Hop };

/** Outer headers VXLAN adds: IPv4 20 + UDP 8 + VXLAN 8 + Ethernet 14; IPv6 outer is 20 more. */
export const vxlanOverhead = (underlayIp: string) => (underlayIp.includes(':') ? 70 : 50);

export class Walk {
  hops: Hop[] = [];
  broken?: Hop;
  constructor(readonly size: number | undefined) {}
  add(h: Hop): boolean {
    if (this.broken) return false;
    this.hops.push(h);
    if (h.verdict === 'drop') this.broken = h;
    return !this.broken;
  }
  /** The hop, or its drop when the packet is larger than the MTU. */
  sized(h: Omit<Hop, 'verdict'> & { verdict?: Verdict }, mtu: number | undefined, what = h.what, overhead = 0): Hop {
    const base: Hop = { verdict: 'ok', ...h, ...(mtu !== undefined ? { mtu } : {}) };
    if (base.verdict === 'drop' || mtu === undefined || this.size === undefined || this.size + overhead <= mtu) return base;
    const outer = overhead ? ` (${this.size} + ${overhead} bytes of VXLAN headers)` : '';
    return {
      ...base, verdict: 'drop',
      why: `a ${this.size}-byte packet${outer} is larger than the MTU ${mtu} of ${what}: dropped when the don't-fragment bit is set (TCP, ping -M do), with ICMP "fragmentation needed" back to the sender`,
      fix: `send at most ${mtu - overhead} bytes (path MTU discovery does this for TCP when ICMP is let through), or raise the MTU (the cluster's mtu; weft doctor shows each device's)`,
    };
  }
}

export const short = (id: string) => id.slice(0, 12);

export function linkProblem(l: LinkFact, what: string): { why: string; fix: string } | undefined {
  if (!l.exists) return { why: `${what} ${l.name} does not exist`, fix: 'restart the agent (systemctl restart weft-agent): it makes its devices at start; weft doctor lists what else is missing' };
  if (l.up === false) return { why: `${what} ${l.name} is down`, fix: `ip link set dev ${l.name} up (and find out who set it down: weft never does)` };
  return undefined;
}

export function routeText(r: Extract<RouteFact, { ok: true }>): string {
  return `${r.type === 'unicast' ? '' : `${r.type} `}${r.gw ? `via ${r.gw} ` : ''}dev ${r.dev}${r.src ? ` src ${r.src}` : ''}`;
}

/** The route the kernel gave for `lookup`, or undefined when there is none (unread) or it drops (added to the walk). */
export function routeFound(w: Walk, host: string, lookup: string, r: RouteFact | undefined): Extract<RouteFact, { ok: true }> | undefined {
  if (!r) return undefined;
  const rp = routeProblem(r, lookup);
  if (rp) {
    w.add({ kind: 'route', host, what: lookup, source: 'kernel', verdict: 'drop', ...rp });
    return undefined;
  }
  return r as Extract<RouteFact, { ok: true }>;
}

export function routeProblem(r: RouteFact, lookup: string): { why: string; fix: string } | undefined {
  if (!r.ok) {
    const why: Record<string, string> = {
      ENETUNREACH: 'no route: the kernel has none for it (ENETUNREACH)',
      EHOSTUNREACH: 'the kernel will not forward it (EHOSTUNREACH): no route, or forwarding is off (net.ipv4.ip_forward=0)',
      EXDEV: 'the reverse-path filter refuses it (EXDEV): the source is not routed back out of the device it came in on',
      EINVAL: 'the kernel refused the lookup (EINVAL)',
    };
    return {
      why: `${lookup}: ${why[r.errno] ?? r.message}`,
      fix: r.errno === 'EXDEV' ? 'set net.ipv4.conf.all.rp_filter=2 (loose) or route the source back through the same device'
        : r.errno === 'EHOSTUNREACH' ? 'sysctl -w net.ipv4.ip_forward=1 (the agent sets it at start: was it changed since?), and check `ip route get`'
          : "the agent programs weft's routes: restart it or wait for its resync, then run weft explain again; weft doctor compares programmed with desired",
    };
  }
  if (r.type === 'blackhole' || r.type === 'unreachable' || r.type === 'prohibit') {
    return { why: `${lookup}: a ${r.type} route takes it`, fix: 'a route of that type is not weft\'s: find it with `ip route show type ' + r.type + '` and remove it if it is stale' };
  }
  return undefined;
}

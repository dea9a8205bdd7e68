// Reading this host's kernel for the hops of one path: the container's
// interface and route (inside its namespace), its veth and bridge, the
// host's route lookup as forwarding does it (from, iif: the container's
// bridge, or for an ingress client the link the client's packets come in by),
// the neighbour and FDB entry on the VXLAN device, the underlay route, weft's
// isolation rules and the fail-closed table. Only reads; whatever cannot be read is a fact
// ("cannot enter the namespace"), never an exception that hides the rest.
import { readState } from '../../../dataplane/iptables';
import { splitArgs } from '../../../dataplane/iptables/save';
import { addrList } from '../../../dataplane/netlink/addr';
import { openHandle, type Handle } from '../../../dataplane/netlink/handle';
import { canonicalIp } from '../../../dataplane/netlink/ip';
import { linkList, type Link } from '../../../dataplane/netlink/link';
import { fdbList, neighList, NUD_PERMANENT, NUD_REACHABLE, NUD_STALE, NUD_FAILED, NUD_INCOMPLETE } from '../../../dataplane/netlink/neigh';
import { RTN_BLACKHOLE, RTN_LOCAL, RTN_PROHIBIT, RTN_UNICAST, RTN_UNREACHABLE, type Route } from '../../../dataplane/netlink/route';
import { openNftTable } from '../../../dataplane/nftables/table';
import { hostVethName } from '../host/naming';
import { bridgeName, vtepIpOf, vxlanDeviceName } from '../host/naming';
import type { Allocation } from '../ipam-store';
import type { Topology } from '../state/types';
import { FAIL_CLOSED_TABLE, XDC_DEVICE } from '../state/tunnel';
import { tunnelAddressOf } from '../tunnel/policy';
import type { ExplainFacts, LinkFact, LocalContainer, NetworkFact, RouteFact } from './facts';
import { routeAnswer, type RouteAnswer } from './route-get';
import { inCidr } from './verdicts';

const NFPROTO_INET = 1;
const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

const TYPES: Record<number, Extract<RouteFact, { ok: true }>['type']> = {
  [RTN_UNICAST]: 'unicast', [RTN_LOCAL]: 'local', [RTN_BLACKHOLE]: 'blackhole', [RTN_UNREACHABLE]: 'unreachable', [RTN_PROHIBIT]: 'prohibit',
};

export function routeFact(a: RouteAnswer, links: Link[]): RouteFact {
  if ('errno' in a) return { ok: false, errno: a.errno, message: a.message };
  const r: Route = a.route;
  const dev = links.find((l) => l.index === r.linkIndex)?.name ?? (r.linkIndex !== undefined ? `#${r.linkIndex}` : '-');
  return {
    ok: true, dev, type: TYPES[r.type ?? RTN_UNICAST] ?? 'other',
    ...(r.gw ? { gw: r.gw } : {}), ...(r.src ? { src: r.src } : {}), ...(r.mtu ? { mtu: r.mtu } : {}),
  };
}

export function linkFact(h: Handle, links: Link[], name: string, withAddrs = false): LinkFact {
  const l = links.find((x) => x.name === name);
  if (!l) return { name, exists: false };
  const f: LinkFact = { name, exists: true, up: l.up, mtu: l.mtu };
  if (l.masterIndex !== undefined) f.master = links.find((x) => x.index === l.masterIndex)?.name ?? `#${l.masterIndex}`;
  // link-local addresses route nothing here: left out, so a device's line names the addresses that matter
  if (withAddrs) f.addrs = addrList(h, { linkIndex: l.index }).map((a) => canonicalIp(a.cidr.split('/')[0])).filter((ip) => !/^fe[89ab]/i.test(ip));
  return f;
}

/** A container of this host: the agent DB's allocation, its namespace's interface and (sending) route, its veth and bridge. */
function localContainer(h: Handle, links: Link[], a: Allocation, net: NetworkFact, routeTo?: string): LocalContainer {
  const c: LocalContainer = {
    network: a.network, vni: net.vni, ip: a.ip, containerId: a.containerId, ifname: a.ifname, ...(a.netns ? { netns: a.netns } : {}),
    veth: linkFact(h, links, hostVethName(a.network, a.containerId, a.ifname)),
    bridge: linkFact(h, links, bridgeName(net.vni), true),
  };
  // the controller could not say which VNI the network has: the bridge is the one its veth is a port of
  if (net.vni === 0 && c.veth.master?.startsWith('weft.br')) {
    c.bridge = linkFact(h, links, c.veth.master, true);
    c.vni = Number(c.veth.master.slice('weft.br'.length));
  }
  if (!a.netns) {
    c.iface = { error: 'the runtime gave no namespace path' };
    return c;
  }
  try {
    const nh = openHandle({ netns: a.netns });
    try {
      const inner = linkList(nh);
      c.iface = linkFact(nh, inner, a.ifname, true);
      if (routeTo !== undefined) c.route = routeFact(routeAnswer(nh, routeTo, { src: a.ip }), inner);
    } finally {
      nh.close();
    }
  } catch (e) {
    c.iface = { error: message(e) };
  }
  return c;
}

/** The first DROP rule of WEFT-ISOLATION whose -s and -d hold src and dst. */
export function isolationRule(rules: Array<{ chain: string; spec: string }>, src: string, dst: string): string | undefined {
  for (const r of rules) {
    if (r.chain !== 'WEFT-ISOLATION') continue;
    const a = splitArgs(r.spec);
    const val = (flag: string) => (a.indexOf(flag) >= 0 ? a[a.indexOf(flag) + 1] : undefined);
    const s = val('-s');
    const d = val('-d');
    if (val('-j') !== 'DROP') continue;
    if ((s === undefined || inCidr(src, s)) && (d === undefined || inCidr(dst, d))) return r.spec;
  }
  return undefined;
}

export function isolationOf(src: string, dst: string): ExplainFacts['isolation'] {
  try {
    const rule = isolationRule(readState().filter?.rules ?? [], src, dst);
    return rule ? { rule } : {};
  } catch (e) {
    return { error: message(e) };
  }
}

/** inet weft_xdc: whether it is there and its tunnel_ifs set (the devices another datacenter's addresses may leave by). */
export function failClosedOf(netns?: string): ExplainFacts['failClosed'] {
  try {
    const t = openNftTable({ name: FAIL_CLOSED_TABLE, family: NFPROTO_INET, ...(netns ? { netns } : {}) });
    try {
      const v = t.list((set) => set === 'tunnel_ifs');
      if (!v.exists) return { exists: false };
      // ifname keys: IFNAMSIZ bytes, NUL-padded
      const ifs = [...(v.elements.get('tunnel_ifs')?.keys() ?? [])].map((k) => Buffer.from(k, 'hex').toString('latin1').replace(/\0+$/, '')).sort();
      return { exists: true, ...(v.sets.has('tunnel_ifs') ? { tunnelIfs: ifs } : {}) };
    } finally {
      t.close();
    }
  } catch (e) {
    return { exists: false, error: message(e) };
  }
}

const STATES: Array<[number, string]> = [[NUD_PERMANENT, 'permanent'], [NUD_REACHABLE, 'reachable'], [NUD_STALE, 'stale'], [NUD_FAILED, 'failed'], [NUD_INCOMPLETE, 'incomplete']];
export const neighState = (state: number) => STATES.find(([b]) => state & b)?.[1] ?? String(state);

export type KernelInput = {
  topology: Topology;
  networks: NetworkFact[];
  src?: Allocation;
  dst?: Allocation;
};

/**
 * After the host's route for the packet (f.hostRoute): the devices it names,
 * and on the overlay the next hop's neighbour, its FDB entry, the underlay
 * route and whose VTEP it is; the fail-closed table for another datacenter.
 */
export function readForward(h: Handle, links: Link[], f: ExplainFacts, k: KernelInput, dstNet: NetworkFact | undefined): void {
  for (const n of [f.hostRoute?.ok ? f.hostRoute.dev : undefined, dstNet ? vxlanDeviceName(dstNet.vni) : undefined]) {
    if (n) f.devices[n] ??= linkFact(h, links, n);
  }
  const r = f.hostRoute;
  if (dstNet && r?.ok && r.dev === vxlanDeviceName(dstNet.vni)) {
    const vx = links.find((l) => l.name === r.dev)!;
    const gw = r.gw ?? f.dst;
    const n = neighList(h, { linkIndex: vx.index }).find((x) => x.ip !== undefined && canonicalIp(x.ip) === canonicalIp(gw));
    f.neigh = { ip: gw, ...(n?.mac ? { mac: n.mac.toLowerCase() } : {}), ...(n ? { state: neighState(n.state) } : {}) };
    if (n?.mac) {
      const e = fdbList(h, { linkIndex: vx.index }).find((x) => x.mac?.toLowerCase() === n.mac!.toLowerCase() && x.masterIndex === undefined);
      f.fdb = { mac: n.mac.toLowerCase(), ...(e?.dst ? { dst: canonicalIp(e.dst) } : {}) };
      if (e?.dst) {
        const u = routeFact(routeAnswer(h, e.dst), links);
        const mtu = u.ok ? links.find((l) => l.name === u.dev)?.mtu : undefined;
        f.underlay = { dst: canonicalIp(e.dst), route: u, ...(mtu ? { mtu } : {}) };
      }
    }
    // whose VTEP the next hop is: the owner itself, or (another datacenter) the gateway chosen for it
    for (const host of k.topology.hosts) {
      const s = host.subnets?.[dstNet.name];
      if (!s || vtepIpOf(s) !== canonicalIp(gw)) continue;
      const t = tunnelAddressOf(host.name, k.topology);
      f.nextHopHost = { name: host.name, underlayIp: canonicalIp(host.underlayIp), vtepMac: host.vtepMac.toLowerCase(), datacenter: host.datacenter, ...(t ? { tunnelAddress: t } : {}) };
    }
  }
  if (f.dstOwner && f.dstOwner.datacenter && f.dstOwner.datacenter !== f.self.datacenter) f.failClosed = failClosedOf();
}

/** Fills in the kernel's side of the facts for the local end(s) of the path. */
export function readKernel(f: ExplainFacts, k: KernelInput): void {
  const h = openHandle();
  try {
    const links = linkList(h);
    const netOf = (a: Allocation) => k.networks.find((n) => n.name === a.network) ?? { name: a.network, vni: 0, cidr: '' };
    if (k.src) f.srcLocal = localContainer(h, links, k.src, netOf(k.src), f.dst);
    if (k.dst) f.dstLocal = localContainer(h, links, k.dst, netOf(k.dst));
    const devices = (names: string[]) => {
      for (const n of names) f.devices[n] ??= linkFact(h, links, n);
    };
    const dstNet = f.dstLocal ? netOf(k.dst!) : f.dstOwner ? k.networks.find((n) => n.name === f.dstOwner!.network) : undefined;
    if (f.srcLocal) {
      const br = links.find((l) => l.name === f.srcLocal!.bridge.name);
      if (br) f.hostRoute = routeFact(routeAnswer(h, f.dst, { src: f.src, iifIndex: br.index }), links);
      if (f.dstLocal?.network !== f.srcLocal.network || f.hostRoute?.ok) f.isolation = isolationOf(f.src, f.dst);
      readForward(h, links, f, k, dstNet);
    } else if (f.ingress) {
      // an outside client's packet, DNATed to the backend: it comes in by the device of the route back to the client
      const i = f.ingress;
      i.clientRoute = routeFact(routeAnswer(h, i.client), links);
      const cr = i.clientRoute;
      const inLink = cr.ok ? links.find((l) => l.name === cr.dev) : undefined;
      if (inLink && i.backend) {
        // the L7 proxy connects to the backend from this host itself; the kernel's DNAT forwards the client's packet
        f.hostRoute = routeFact(i.l7 ? routeAnswer(h, i.backend.ip) : routeAnswer(h, i.backend.ip, { src: i.client, iifIndex: inLink.index }), links);
        readForward(h, links, f, k, dstNet);
      }
    } else if (f.dstLocal) {
      // on a gateway, a packet from another datacenter arrives decapsulated from weft.xdc; elsewhere from the overlay
      const fromTunnel = f.self.gateway && f.srcOwner?.datacenter && f.srcOwner.datacenter !== f.self.datacenter;
      const vxName = fromTunnel ? XDC_DEVICE : vxlanDeviceName(netOf(k.dst!).vni);
      f.inboundDev = vxName;
      devices([vxName]);
      const vx = links.find((l) => l.name === vxName);
      if (vx) f.inboundRoute = routeFact(routeAnswer(h, f.dst, { src: f.src, iifIndex: vx.index }), links);
      if (f.srcOwner && f.srcOwner.network !== f.dstLocal.network) f.isolation = isolationOf(f.src, f.dst);
    }
  } finally {
    h.close();
  }
}

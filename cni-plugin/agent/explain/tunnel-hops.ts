// Reading this host's kernel for the tunnel's hops (cni-plugin/agent/tunnel/
// README.md, "The path"): on a gateway the route into weft.xdc via the remote
// gateway, weft.xdc's neighbour and FDB entry to its tunnel address, the
// route that puts that address into weft.wg0 and the WireGuard peer whose
// allowed IPs hold it; on a gateway that neither end is on, the packet passing
// through it either way. The encapsulation leg is read the same for any VXLAN
// device: the FDB entry's destination is looked up as the kernel routes it,
// and when that goes into weft.wg0 the WireGuard peer is read too, so a
// datacenter whose hosts send their overlay inside WireGuard reads the same.
import { canonicalIp } from '../../../dataplane/netlink/ip';
import { openHandle, type Handle } from '../../../dataplane/netlink/handle';
import { linkList, type Link } from '../../../dataplane/netlink/link';
import { fdbList, neighList } from '../../../dataplane/netlink/neigh';
import { vtepIpOf, vxlanDeviceName } from '../host/naming';
import type { Topology } from '../state/types';
import { WG_DEVICE, XDC_DEVICE } from '../state/tunnel';
import { tunnelAddressOf, xdcMacFor } from '../tunnel/policy';
import type { EncapFact, EncapPeer, ExplainFacts, GatewayFact, NetworkFact, WireGuardFact } from './facts';
import { failClosedOf, isolationOf, linkFact, neighState, routeFact } from './hops';
import { routeAnswer } from './route-get';
import { inCidr } from './verdicts';
import { readWireGuardPeers, type WireGuardRead } from './wireguard';

/** Every datacenter's gateways with their tunnel addresses (topology). */
export function gatewaysOf(topology: Topology): GatewayFact[] {
  const out: GatewayFact[] = [];
  for (const d of topology.datacenters ?? []) {
    for (const g of d.gateways) {
      const t = tunnelAddressOf(g.host, topology);
      out.push({ host: g.host, datacenter: d.name, wanEndpoint: g.wanEndpoint, state: g.state, ...(t ? { tunnelAddress: t } : {}) });
    }
  }
  return out;
}

/** Whose weft.xdc (a gateway's tunnel address) or VTEP (a host's, on the overlay device) a next hop is. */
function peerOf(dev: string, gw: string, topology: Topology, networks: NetworkFact[], gateways: GatewayFact[]): EncapPeer | undefined {
  const ip = canonicalIp(gw);
  if (dev === XDC_DEVICE) {
    const g = gateways.find((x) => x.tunnelAddress === ip);
    return g ? { host: g.host, datacenter: g.datacenter, mac: xdcMacFor(g.host), tunnelAddress: ip } : undefined;
  }
  const net = networks.find((n) => vxlanDeviceName(n.vni) === dev);
  if (!net) return undefined;
  for (const h of topology.hosts) {
    const s = h.subnets?.[net.name];
    if (!s || vtepIpOf(s) !== ip) continue;
    const t = tunnelAddressOf(h.name, topology);
    return { host: h.name, datacenter: h.datacenter, mac: h.vtepMac.toLowerCase(), underlayIp: canonicalIp(h.underlayIp), ...(t ? { tunnelAddress: t } : {}) };
  }
  return undefined;
}

/** The endpoint's address without its port ("[fd00::1]:51820" -> "fd00::1"). */
const endpointIp = (ep: string) => (ep.startsWith('[') ? ep.slice(1, ep.indexOf(']')) : ep.slice(0, ep.lastIndexOf(':')));

/** weft.wg0's peer for an outer destination routed into it, named by the topology's keys, and the route to its endpoint. */
export function wireGuardFact(h: Handle, links: Link[], dst: string, read: WireGuardRead, topology: Topology, nowMs: number): WireGuardFact {
  const device = linkFact(h, links, WG_DEVICE);
  if (!read.ok) return { ok: false, device, error: read.error };
  const p = read.peers.find((x) => x.allowedIps.some((c) => inCidr(dst, c)));
  const f: WireGuardFact = { ok: true, device, nowMs };
  if (!p) return f;
  const gw = (topology.datacenters ?? []).flatMap((d) => d.gateways.map((g) => ({ ...g, datacenter: d.name }))).find((g) => g.wgPublicKey === p.publicKey);
  const host = topology.hosts.find((x) => x.wgPublicKey === p.publicKey);
  const name = gw?.host ?? host?.name;
  f.peer = { ...p, ...(name ? { host: name } : {}), ...(gw?.datacenter ?? host?.datacenter ? { datacenter: gw?.datacenter ?? host?.datacenter } : {}) };
  if (p.endpoint) {
    const ip = endpointIp(p.endpoint);
    const route = routeFact(routeAnswer(h, ip), links);
    const mtu = route.ok ? links.find((l) => l.name === route.dev)?.mtu : undefined;
    f.endpointRoute = { dst: ip, route, ...(mtu ? { mtu } : {}) };
  }
  return f;
}

/** One VXLAN leg: the next hop's neighbour and FDB entry on `dev`, whose it is, and the route to the FDB destination. */
function encapOf(h: Handle, links: Link[], dev: string, gw: string, peer: EncapPeer | undefined): EncapFact {
  const e: EncapFact = { device: linkFact(h, links, dev), gw: canonicalIp(gw), ...(peer ? { peer } : {}) };
  const link = links.find((l) => l.name === dev);
  if (!link) return e;
  const n = neighList(h, { linkIndex: link.index }).find((x) => x.ip !== undefined && canonicalIp(x.ip) === e.gw);
  e.neigh = { ip: e.gw, ...(n?.mac ? { mac: n.mac.toLowerCase() } : {}), ...(n ? { state: neighState(n.state) } : {}) };
  if (!n?.mac) return e;
  const entry = fdbList(h, { linkIndex: link.index }).find((x) => x.mac?.toLowerCase() === n.mac!.toLowerCase() && x.masterIndex === undefined);
  e.fdb = { mac: n.mac.toLowerCase(), ...(entry?.dst ? { dst: canonicalIp(entry.dst) } : {}) };
  if (entry?.dst) {
    const route = routeFact(routeAnswer(h, entry.dst), links);
    const mtu = route.ok ? links.find((l) => l.name === route.dev)?.mtu : undefined;
    e.outer = { dst: canonicalIp(entry.dst), route, ...(mtu ? { mtu } : {}) };
  }
  return e;
}

export type TunnelInput = { topology: Topology; networks: NetworkFact[]; gateways: GatewayFact[]; readPeers?: (dev: string) => Promise<WireGuardRead> };

/**
 * Fills in the tunnel's facts after readKernel: the leg into weft.xdc when
 * src is on this gateway, the WireGuard peer when an overlay FDB entry routes
 * into weft.wg0, and on a gateway holding neither end the leg through it.
 */
export async function readTunnel(f: ExplainFacts, k: TunnelInput): Promise<void> {
  const readPeers = k.readPeers ?? readWireGuardPeers;
  let peers: WireGuardRead | undefined;
  const wgRead = async () => (peers ??= await readPeers(WG_DEVICE));
  const needsWg: Array<{ e: EncapFact } | { underlay: true }> = [];
  const h = openHandle();
  try {
    const links = linkList(h);
    const leg = (dev: string, gw: string) => encapOf(h, links, dev, gw, peerOf(dev, gw, k.topology, k.networks, k.gateways));
    const r = f.hostRoute;
    const sending = f.srcLocal || f.ingress;
    if (sending && r?.ok && r.dev === XDC_DEVICE) f.gatewayLeg = leg(XDC_DEVICE, r.gw ?? f.dst);
    if (sending && f.underlay?.route.ok && f.underlay.route.dev === WG_DEVICE) needsWg.push({ underlay: true });
    const s = f.srcOwner;
    const d = f.dstOwner;
    if (!sending && !f.dstLocal && f.self.gateway && s && d) {
      const here = f.self.datacenter;
      const direction = s.datacenter === here && d.datacenter !== here ? 'out' : d.datacenter === here && s.datacenter !== here ? 'in' : undefined;
      const srcNet = k.networks.find((n) => n.name === s.network);
      const inDev = direction === 'out' ? (srcNet ? vxlanDeviceName(srcNet.vni) : undefined) : XDC_DEVICE;
      const inLink = links.find((l) => l.name === inDev);
      if (direction && inDev) {
        const route = inLink ? routeFact(routeAnswer(h, f.dst, { src: f.src, iifIndex: inLink.index }), links) : { ok: false as const, errno: 'ENODEV', message: `${inDev} does not exist` };
        f.transit = { direction, inDev, route };
        if (s.network !== d.network) f.isolation = isolationOf(f.src, f.dst);
        if (route.ok && (route.dev === XDC_DEVICE || route.dev.startsWith('weft.vx'))) f.transit.encap = leg(route.dev, route.gw ?? f.dst);
        f.devices[inDev] ??= linkFact(h, links, inDev);
        if (direction === 'out') f.failClosed = failClosedOf();
      }
    }
    for (const e of [f.gatewayLeg, f.transit?.encap]) if (e?.outer?.route.ok && e.outer.route.dev === WG_DEVICE) needsWg.push({ e });
    if (needsWg.length === 0) return;
    const read = await wgRead();
    for (const n of needsWg) {
      if ('underlay' in n) f.underlayWireGuard = wireGuardFact(h, links, f.underlay!.dst, read, k.topology, Date.now());
      else n.e.outer!.wireguard = wireGuardFact(h, links, n.e.outer!.dst, read, k.topology, Date.now());
    }
  } finally {
    h.close();
  }
}

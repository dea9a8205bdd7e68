// Judging a path: facts in, the hops a packet takes out, each ok, a warning,
// or the drop with why and the fix. The walk stops at the first drop, because
// nothing after it is where the packet goes. Pure: no kernel, no controller.
import type { ExplainFacts, IngressFact, LocalContainer, Owner, RouteFact } from './facts';
import { linkProblem, routeFound, routeProblem, routeText, short, vxlanOverhead, Walk, type Hop, type Explanation } from './walk';

export type { Explanation, Hop, HopKind, Verdict } from './walk';
export { vxlanOverhead } from './walk';
import { WG_DEVICE, XDC_DEVICE } from '../state/tunnel';
import { encapHops, legGateway, remoteGatewayHop, remoteRule, reportedGatewayHops, transitHops, wireGuardHops } from './tunnel-verdicts';

/** The container end: its interface, address and route (sending), or interface (receiving). */
function containerHop(w: Walk, host: string, c: LocalContainer, route: boolean, other: string): boolean {
  const what = `container ${short(c.containerId)} ${c.ifname} ${c.ip} (network ${c.network})${c.netns ? ` in ${c.netns}` : ''}`;
  const source = 'agent DB + kernel';
  const i = c.iface;
  if (!i || 'error' in i) {
    return w.add({ kind: 'container', host, what, source, verdict: 'drop', why: `the container's namespace cannot be entered: ${i && 'error' in i ? i.error : 'no namespace recorded'}`, fix: 'the container is gone without a CNI DEL: remove it with its runtime (the agent\'s garbage collection releases the address)' });
  }
  const p = linkProblem(i, 'interface');
  if (p) return w.add({ kind: 'container', host, what, source, verdict: 'drop', ...p });
  if (i.addrs && !i.addrs.includes(c.ip)) {
    return w.add({ kind: 'container', host, what, source, verdict: 'drop', why: `${c.ifname} does not hold ${c.ip} (it has ${i.addrs.join(', ') || 'no address'})`, fix: 'the address was removed inside the container: restart the container so CNI ADD sets it up again' });
  }
  if (route && c.route) {
    const rp = routeProblem(c.route, `inside the container, the route to ${other}`);
    if (rp) return w.add({ kind: 'container', host, what, source, verdict: 'drop', ...rp, fix: 'restart the container so CNI ADD sets its routes again (weft gives a default route via the bridge)' });
    return w.add(w.sized({ kind: 'container', host, what: `${what}: ${routeText(c.route as Extract<RouteFact, { ok: true }>)}`, source }, i.mtu, `${c.ifname} in the container`));
  }
  return w.add(w.sized({ kind: 'container', host, what, source }, i.mtu, `${c.ifname} in the container`));
}

function vethHop(w: Walk, host: string, c: LocalContainer): boolean {
  const v = c.veth;
  const what = `veth ${v.name} (host end)${v.master ? ` on ${v.master}` : ''}`;
  const p = linkProblem(v, 'host end');
  if (p) return w.add({ kind: 'veth', host, what, source: 'kernel', verdict: 'drop', ...p, fix: 'restart the container (CNI ADD makes the veth again); weft doctor lists stray and missing host ends' });
  if (v.master !== c.bridge.name) {
    return w.add({ kind: 'veth', host, what, source: 'kernel', verdict: 'drop', why: `${v.name} is ${v.master ? `a port of ${v.master}` : 'on no bridge'}, not of ${c.bridge.name}`, fix: `ip link set dev ${v.name} master ${c.bridge.name}` });
  }
  return w.add(w.sized({ kind: 'veth', host, what, source: 'kernel' }, v.mtu, v.name));
}

function bridgeHop(w: Walk, host: string, c: LocalContainer): boolean {
  const b = c.bridge;
  const what = `bridge ${b.name}${b.addrs?.length ? ` (${b.addrs.join(', ')})` : ''}`;
  const p = linkProblem(b, 'bridge');
  if (p) return w.add({ kind: 'bridge', host, what, source: 'kernel', verdict: 'drop', ...p });
  return w.add(w.sized({ kind: 'bridge', host, what, source: 'kernel' }, b.mtu, b.name));
}

function ownerSource(o: Owner): string {
  return o.report ? `controller; from ${o.host}'s report at ${new Date(o.report.reportedAtMs).toISOString()}` : 'controller';
}

function remoteHostHop(w: Walk, o: Owner): boolean {
  const parts = [`host ${o.host}`, `${o.network} subnet ${o.subnet}`, `underlay ${o.underlayIp}`, `VTEP MAC ${o.vtepMac}`];
  if (o.datacenter) parts.push(`datacenter ${o.datacenter}`);
  if (o.health) parts.push(`health ${o.health.state} (heartbeat ${Math.round(o.health.heartbeatAgeMs / 1000)}s ago)`);
  if (o.report) parts.push(`overlay ${o.report.programmed}/${o.report.desired} programmed, ${o.report.failed} failed`);
  const hop: Hop = { kind: 'host', host: o.host, what: parts.join(', '), source: ownerSource(o), verdict: 'ok' };
  if (o.health?.state === 'expired') {
    return w.add({ ...hop, verdict: 'drop', why: `${o.host} has been silent longer than its lease: its agent is down or cut off, and its leases may be reclaimed`, fix: `on ${o.host}: systemctl status weft-agent; weft doctor` });
  }
  if (o.health?.state === 'stale') return w.add({ ...hop, verdict: 'warn', why: `${o.host}'s heartbeats are late: its agent may be down or cut off from the controller`, fix: `on ${o.host}: systemctl status weft-agent; weft doctor` });
  if (o.report && (o.report.failed > 0 || o.report.programmed < o.report.desired)) {
    return w.add({ ...hop, verdict: 'warn', why: `${o.host}'s agent reported ${o.report.desired - o.report.programmed} overlay entr(y/ies) it could not program: the way back may be missing`, fix: `on ${o.host}: weft doctor, or weft explain there to read its kernel` });
  }
  if (!o.health) hop.why = 'health and report need an admin certificate (--cert, --key, --ca): a host certificate may not list hosts';
  return w.add(hop);
}

function remoteContainerHop(w: Walk, o: Owner, ip: string): boolean {
  if (!o.endpoint) {
    return w.add({ kind: 'container', host: o.host, what: `${ip} on ${o.host}`, source: 'controller', verdict: 'drop',
      why: `no container holds ${ip}: the controller has no endpoint for it in ${o.network}, so nothing on ${o.host}'s bridge answers ARP for it`,
      fix: `check the address (weft endpoints --host ${o.host}); a container removed while its agent was down is released by the agent's garbage collection` });
  }
  return w.add({ kind: 'container', host: o.host, what: `container ${short(o.endpoint.containerId)} ${o.endpoint.ifname} ${ip} (network ${o.network})`, source: `${ownerSource(o)}; its kernel is read only by weft explain on ${o.host}`, verdict: 'ok' });
}

function isolationHop(w: Walk, f: ExplainFacts, host: string, from: string, to: string): boolean {
  if (f.isolation?.rule) {
    return w.add({ kind: 'route', host, what: `iptables FORWARD -> WEFT-FORWARD -> WEFT-NETWORKS -> WEFT-ISOLATION`, source: 'kernel (iptables)', verdict: 'drop',
      why: `weft isolates networks ${from} and ${to}: rule "${f.isolation.rule}" drops it`,
      fix: `containers in isolated networks do not talk; attach the container to ${to} too, or set isolated: false on both networks (weft network)` });
  }
  return true;
}

const netOf = (f: ExplainFacts, ip: string, c?: LocalContainer, o?: Owner | null) => c?.network ?? o?.network ?? f.networks.find((n) => inCidr(ip, n.cidr))?.name;

/** Whether an IPv4/IPv6 address is inside a CIDR, by prefix bits. */
export function inCidr(ip: string, cidr: string): boolean {
  const [net, lenS] = cidr.split('/');
  const a = bits(ip);
  const b = bits(net);
  if (!a || !b || a.length !== b.length) return false;
  const len = Number(lenS);
  return a.slice(0, len) === b.slice(0, len);
}

function bits(ip: string): string | undefined {
  if (ip.includes(':')) {
    const [head, tail] = ip.split('::');
    const h = head ? head.split(':') : [];
    const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    if (groups.length !== 8) return undefined;
    return groups.map((g) => parseInt(g || '0', 16).toString(2).padStart(16, '0')).join('');
  }
  const o = ip.split('.').map(Number);
  if (o.length !== 4 || o.some((x) => !(x >= 0 && x <= 255))) return undefined;
  return o.map((x) => x.toString(2).padStart(8, '0')).join('');
}

function sendingSide(w: Walk, f: ExplainFacts, c: LocalContainer): void {
  const self = f.self.name;
  if (!containerHop(w, self, c, true, f.dst) || !vethHop(w, self, c) || !bridgeHop(w, self, c)) return;
  const cr = c.route && c.route.ok ? c.route : undefined;
  const d = f.dstLocal;
  // on-link in the container: the bridge carries it at layer 2, no routing
  if (cr && !cr.gw) {
    if (!d || d.bridge.name !== c.bridge.name) {
      w.add({ kind: 'bridge', host: self, what: `${f.dst} is on-link in the container (its own subnet)`, source: 'agent DB', verdict: 'drop',
        why: `no container on ${self} holds ${f.dst}: nothing on ${c.bridge.name} answers ARP for it`, fix: 'check the address (weft endpoints --host ' + self + ')' });
      return;
    }
    if (vethHop(w, self, d)) containerHop(w, self, d, false, f.src);
    return;
  }
  const dstNet = netOf(f, f.dst, d, f.dstOwner);
  if (!d && f.dstOwner === null) {
    w.add({ kind: 'locate', host: self, what: `who holds ${f.dst}`, source: 'controller + agent DB', verdict: 'drop',
      why: dstNet ? `${f.dst} is in network ${dstNet}, but in no host's subnet: no host has it` : `${f.dst} is in no weft network and held by no container`,
      fix: 'check the address: weft endpoints lists every container address' });
    return;
  }
  if (!d && !f.dstOwner) {
    const why = f.controller.ok ? 'the controller does not know it' : `the controller at ${f.controller.server} could not be asked: ${f.controller.error}`;
    w.add({ kind: 'locate', host: self, what: `who holds ${f.dst}`, source: 'controller', verdict: 'drop', why: `cannot tell which host holds ${f.dst}: ${why}`,
      fix: 'give --server as the agent has it, and run as root with the agent\'s --state-dir (or --cert/--key/--ca of an admin certificate)' });
    return;
  }
  forwardSide(w, f, `ip route get ${f.dst} from ${f.src} iif ${c.bridge.name}`, c.network);
}

/**
 * The host forwarding the packet to f.dst, from the route the kernel gave for
 * `lookup` on: a container of this host, the overlay, or another datacenter
 * through the local gateway or (on a gateway) weft.xdc. `fromNetwork`: the
 * weft network the packet comes from, for the isolation rules.
 */
export function forwardSide(w: Walk, f: ExplainFacts, lookup: string, fromNetwork: string | undefined): void {
  const self = f.self.name;
  const d = f.dstLocal;
  const dstNet = netOf(f, f.dst, d, f.dstOwner);
  const ok = routeFound(w, self, lookup, f.hostRoute);
  if (!ok) return;
  if (dstNet && fromNetwork && dstNet !== fromNetwork && !isolationHop(w, f, self, fromNetwork, dstNet)) return;
  if (d) {
    if (ok.dev !== d.bridge.name) {
      w.add({ kind: 'route', host: self, what: `${lookup}: ${routeText(ok)}`, source: 'kernel', verdict: 'drop', why: `the route goes via ${ok.dev}, but ${f.dst} is on ${d.bridge.name} of this host`, fix: `ip route get ${f.dst}; a more specific route someone added takes it: remove it` });
      return;
    }
    if (!w.add({ kind: 'route', host: self, what: `${lookup}: ${routeText(ok)}`, source: 'kernel', verdict: 'ok' })) return;
    if (bridgeHop(w, self, d) && vethHop(w, self, d)) containerHop(w, self, d, false, f.src);
    return;
  }
  const o = f.dstOwner!;
  const net = f.networks.find((n) => n.name === o.network);
  const vx = net ? `weft.vx${net.vni}` : undefined;
  const otherDc = o.datacenter !== '' && f.self.datacenter !== '' && o.datacenter !== f.self.datacenter;
  const tunnelDevs = ['weft.xdc', 'weft.wg0'];
  const closedIfs = otherDc && f.failClosed?.exists ? f.failClosed.tunnelIfs : undefined;
  if (closedIfs && !closedIfs.includes(ok.dev)) {
    w.add({ kind: 'route', host: self, what: `${lookup}: ${routeText(ok)}`, source: 'kernel (route, nftables inet weft_xdc)', verdict: 'drop',
      why: `${f.dst} is in datacenter ${o.datacenter}; the fail-closed table inet weft_xdc lets such a packet leave only by ${closedIfs.join(', ') || 'no device'}, and this route takes ${ok.dev}: dropped and counted by rule "${remoteRule(f.dst)}"`,
      fix: `weft routes ${o.subnet} via the gateway chosen for ${o.datacenter} once one answers probes: weft datacenter list shows gateways and handshakes; nft list table inet weft_xdc shows the drop counters` });
    return;
  }
  if (ok.dev !== vx && !(otherDc && tunnelDevs.includes(ok.dev))) {
    const closed = otherDc && f.failClosed?.exists ? `; the fail-closed table inet weft_xdc drops it (an address of datacenter ${o.datacenter} may leave only through the tunnel)` : '';
    w.add({ kind: 'route', host: self, what: `${lookup}: ${routeText(ok)}`, source: 'kernel', verdict: 'drop',
      why: `the route goes via ${ok.dev}, not weft's ${vx ?? 'VXLAN device'}: the packet would leave unencapsulated${closed}`,
      fix: otherDc ? `no gateway of ${f.self.datacenter} reaches ${o.datacenter} (weft datacenter list); weft routes ${o.subnet} via the chosen gateway once one answers probes`
        : `restart the agent or wait for its resync: it programs ${o.subnet} via ${o.host}'s VTEP on ${vx}; weft doctor shows programmed vs desired` });
    return;
  }
  if (!w.add({ kind: 'route', host: self, what: `${lookup}: ${routeText(ok)}`, source: 'kernel', verdict: 'ok', ...(ok.mtu ? { mtu: ok.mtu } : {}) })) return;
  if (ok.dev === XDC_DEVICE && f.gatewayLeg) {
    // src is on a gateway: its own weft.xdc and weft.wg0, read here
    if (encapHops(w, f, self, f.gatewayLeg) && remoteGatewayHop(w, f, legGateway(f.gatewayLeg), o) && remoteHostHop(w, o)) remoteContainerHop(w, o, f.dst);
    return;
  }
  if (tunnelDevs.includes(ok.dev)) {
    w.add({ kind: 'tunnel', host: self, what: `this host is a gateway: ${ok.dev} carries it to datacenter ${o.datacenter}`, source: 'kernel', verdict: 'warn', why: 'the tunnel hops are not explained yet: see weft datacenter list for the chosen gateways and handshakes' });
    if (!w.broken) remoteHostHop(w, o) && remoteContainerHop(w, o, f.dst);
    return;
  }
  if (!vxlanHop(w, f, ok, vx!, o)) return;
  if (!underlayHop(w, f)) return;
  if (otherDc) {
    // the local gateway's kernel is not this host's: its side comes from what its agent last reported
    const g = reportedGatewayHops(w, f, f.nextHopHost?.name ?? '?', o);
    if (!g.ok || (g.remote && !remoteGatewayHop(w, f, g.remote, o))) return;
  }
  if (remoteHostHop(w, o)) remoteContainerHop(w, o, f.dst);
}

function vxlanHop(w: Walk, f: ExplainFacts, r: Extract<RouteFact, { ok: true }>, vx: string, o: Owner): boolean {
  const self = f.self.name;
  const dev = f.devices[vx] ?? { name: vx, exists: false };
  const p = linkProblem(dev, 'VXLAN device');
  if (p) return w.add({ kind: 'vxlan', host: self, what: vx, source: 'kernel', verdict: 'drop', ...p });
  const gw = r.gw ?? f.dst;
  const n = f.neigh;
  const want = f.nextHopHost;
  const base = { kind: 'vxlan' as const, host: self, source: 'kernel' };
  if (!n?.mac) {
    return w.add({ ...base, what: `${vx}: neighbour ${gw}`, verdict: 'drop', why: `no neighbour entry for ${gw} on ${vx}: the kernel cannot put a MAC on the inner frame (weft's entries are permanent; VXLAN devices do not ask ARP)`,
      fix: `restart the agent or wait for its resync (it adds \`${gw} lladdr ${want?.vtepMac ?? '<VTEP MAC>'} dev ${vx} permanent\`); weft doctor shows programmed vs desired` });
  }
  if (want && n.mac !== want.vtepMac.toLowerCase()) {
    return w.add({ ...base, what: `${vx}: neighbour ${gw} lladdr ${n.mac}`, verdict: 'drop', why: `the neighbour entry gives ${gw} the MAC ${n.mac}, but ${want.name}'s VTEP MAC is ${want.vtepMac}`, fix: 'restart the agent or wait for its resync: it replaces the entry' });
  }
  const fdb = f.fdb;
  if (!fdb?.dst) {
    return w.add({ ...base, what: `${vx}: neighbour ${gw} lladdr ${n.mac}, FDB ${n.mac}`, verdict: 'drop',
      why: `no FDB entry for ${n.mac} on ${vx}: the kernel does not know which underlay address to send the VXLAN packet to, and drops it`,
      fix: `restart the agent or wait for its resync (it adds \`bridge fdb append ${n.mac} dev ${vx} dst ${want?.underlayIp ?? '<underlay>'} self permanent\`); weft doctor shows programmed vs desired` });
  }
  if (want && fdb.dst !== want.underlayIp && fdb.dst !== want.tunnelAddress) {
    return w.add({ ...base, what: `${vx}: FDB ${n.mac} dst ${fdb.dst}`, verdict: 'drop', why: `the FDB entry sends ${n.mac} to ${fdb.dst}, but ${want.name} is at ${want.underlayIp}`, fix: 'restart the agent or wait for its resync: it replaces the entry' });
  }
  const what = `${vx}: neighbour ${gw} lladdr ${n.mac}, FDB dst ${fdb.dst}${want ? ` (${want.name})` : ''}`;
  if (want?.datacenter && f.self.datacenter && want.datacenter !== f.self.datacenter) {
    return w.add({ ...base, what, verdict: 'drop',
      why: `the VXLAN packet would go to ${want.name} in datacenter ${want.datacenter}, across the WAN in cleartext${f.failClosed?.exists ? '; the fail-closed table inet weft_xdc drops VXLAN to a host of another datacenter' : ''}`,
      fix: 'the overlay never reaches another datacenter directly: restart the agent or wait for its resync, which routes that subnet via a local gateway' });
  }
  return w.add(w.sized({ ...base, what }, dev.mtu, vx));
}

function underlayHop(w: Walk, f: ExplainFacts): boolean {
  const u = f.underlay;
  if (!u) return true;
  const self = f.self.name;
  const lookup = `ip route get ${u.dst}`;
  const p = routeProblem(u.route, lookup);
  if (p) return w.add({ kind: 'underlay', host: self, what: lookup, source: 'kernel', verdict: 'drop', ...p, fix: `the underlay must route ${u.dst}: check the host's routes and the network between the hosts` });
  const r = u.route as Extract<RouteFact, { ok: true }>;
  if (r.dev === WG_DEVICE && f.underlayWireGuard) {
    // a datacenter whose overlay goes inside WireGuard: the FDB entry's address is a peer's tunnel address
    const peer = f.nextHopHost?.name;
    if (!w.add(w.sized({ kind: 'route', host: self, what: `${lookup}: ${routeText(r)} (VXLAN UDP to ${u.dst}${peer ? ` (${peer})` : ''}, inside WireGuard)`, source: 'kernel' }, r.mtu ?? f.underlayWireGuard.device.mtu, WG_DEVICE, vxlanOverhead(u.dst)))) return false;
    return wireGuardHops(w, self, f.underlayWireGuard, u.dst, peer, vxlanOverhead(u.dst));
  }
  if (r.dev.startsWith('weft.')) {
    return w.add({ kind: 'underlay', host: self, what: `${lookup}: ${routeText(r)}`, source: 'kernel', verdict: 'drop', why: `the underlay address ${u.dst} is routed into weft's own ${r.dev}: the VXLAN packet would loop`, fix: `route ${u.dst} through the underlay device` });
  }
  const mtu = r.mtu ?? u.mtu;
  return w.add(w.sized({ kind: 'underlay', host: self, what: `${lookup}: ${routeText(r)} (VXLAN UDP to ${u.dst})`, source: 'kernel' }, mtu, r.dev, vxlanOverhead(u.dst)));
}

function receivingSide(w: Walk, f: ExplainFacts, d: LocalContainer): void {
  const self = f.self.name;
  const o = f.srcOwner;
  if (!o) {
    w.add({ kind: 'locate', host: self, what: `who holds ${f.src}`, source: 'controller', verdict: 'drop',
      why: o === null ? `no host holds ${f.src}: it is in no host's subnet` : `cannot tell which host holds ${f.src}: ${f.controller.ok ? 'the controller does not know it' : f.controller.error}`,
      fix: 'check the address: weft endpoints lists every container address' });
    return;
  }
  const srcContainer: Hop = o.endpoint
    ? { kind: 'container', host: o.host, what: `container ${short(o.endpoint.containerId)} ${o.endpoint.ifname} ${f.src} (network ${o.network})`, source: `controller; its kernel is read only by weft explain on ${o.host}`, verdict: 'ok' }
    : { kind: 'container', host: o.host, what: `${f.src} on ${o.host}`, source: 'controller', verdict: 'warn', why: `the controller has no endpoint for ${f.src}` };
  if (!w.add(srcContainer)) return;
  if (!remoteHostHop(w, o)) return;
  if (o.datacenter && f.self.datacenter && o.datacenter !== f.self.datacenter) {
    // from another datacenter it arrives through WireGuard at a gateway: on this gateway by weft.xdc, elsewhere from one of them over the overlay
    const theirs = f.gateways?.filter((g) => g.datacenter === o.datacenter).map((g) => g.host) ?? [];
    const ours = f.gateways?.filter((g) => g.datacenter === f.self.datacenter).map((g) => g.host) ?? [];
    const what = f.self.gateway
      ? `from datacenter ${o.datacenter} through WireGuard, from one of its gateways${theirs.length ? ` (${theirs.join(', ')})` : ''}, to this gateway`
      : `from datacenter ${o.datacenter} through WireGuard to a gateway of ${f.self.datacenter}${ours.length ? ` (${ours.join(', ')})` : ''}, then over the overlay to ${self}`;
    if (!w.add({ kind: 'gateway', host: self, what, source: 'topology; which gateways carry it is each side\'s choice: weft explain on a gateway shows its leg', verdict: 'ok' })) return;
  }
  const net = f.networks.find((n) => n.name === d.network);
  const vx = f.inboundDev ?? `weft.vx${net?.vni ?? d.vni}`;
  const dev = f.devices[vx] ?? { name: vx, exists: false };
  const p = linkProblem(dev, 'VXLAN device');
  if (!w.add(p ? { kind: 'vxlan', host: self, what: vx, source: 'kernel', verdict: 'drop', ...p } : w.sized({ kind: 'vxlan', host: self, what: `${vx}: decapsulated here`, source: 'kernel' }, dev.mtu, vx))) return;
  const lookup = `ip route get ${f.dst} from ${f.src} iif ${vx}`;
  const ok = routeFound(w, self, lookup, f.inboundRoute);
  if (!ok) return;
  if (o.network !== d.network && !isolationHop(w, f, self, o.network, d.network)) return;
  if (ok.dev !== d.bridge.name) {
    w.add({ kind: 'route', host: self, what: `${lookup}: ${routeText(ok)}`, source: 'kernel', verdict: 'drop', why: `the route goes via ${ok.dev}, but ${f.dst} is on ${d.bridge.name}`, fix: `a more specific route takes ${f.dst}: find it with ip route get and remove it` });
    return;
  }
  if (!w.add({ kind: 'route', host: self, what: `${lookup}: ${routeText(ok)}`, source: 'kernel', verdict: 'ok' })) return;
  if (bridgeHop(w, self, d) && vethHop(w, self, d)) containerHop(w, self, d, false, f.src);
}

/**
 * From an outside client through this host's ingress L4 path: the device the
 * client's packets arrive by, the ingress table's DNAT for the address and
 * port and its backends, then the path to one backend as forwarding takes it.
 */
function ingressSide(w: Walk, f: ExplainFacts, i: IngressFact): void {
  const self = f.self.name;
  const svc = `${i.listen}:${i.port}/${i.protocol}`;
  const back = `ip route get ${i.client}`;
  const p = routeProblem(i.clientRoute, back);
  if (p) {
    w.add({ kind: 'ingress', host: self, what: `client ${i.client} -> ${svc}: ${back}`, source: 'kernel', verdict: 'drop', why: `no way back to the client: ${p.why}`, fix: "the ingress host must route its clients' addresses: replies and the reverse-path check need it" });
    return;
  }
  const cr = i.clientRoute as Extract<RouteFact, { ok: true }>;
  if (!w.add({ kind: 'ingress', host: self, what: `client ${i.client} -> ${svc}, in by ${cr.dev} (${back}: ${routeText(cr)})`, source: 'kernel', verdict: 'ok' })) return;
  const tbl = `ip ${i.table}`;
  const base = { kind: 'ingress' as const, host: self, source: `kernel (nftables ${tbl})` };
  const l4 = i.l4;
  if (!l4.chain && i.l7 && i.l7.services.length > 0) {
    l7Hops(w, f, i, i.l7);
    return;
  }
  if (!l4.exists) {
    w.add({ ...base, what: `nft ${tbl}`, verdict: 'drop',
      why: l4.error ? `the ingress's table ${tbl} cannot be read: ${l4.error}` : `there is no nftables table ${tbl}: no L4 service is programmed on ${self} (weft ingress is not running here, or runs with another --nft-table)`,
      fix: 'start weft ingress on this host (it programs the table at start); weft service list shows the services and their ports' });
    return;
  }
  if (!l4.chain) {
    w.add({ ...base, what: `nft ${tbl}: ${i.protocol}_svc, ${i.protocol}_any`, verdict: 'drop',
      why: `no element for ${svc} in ${i.protocol}_svc (address . port) or ${i.protocol}_any (any local address): the packet is not DNATed and goes to ${self} itself`,
      fix: `weft service list: is there a service with port ${i.port}/${i.protocol}? http ports go to the L7 proxy, not the kernel; the ingress must listen on ${i.listen}` });
    return;
  }
  const key = l4.by === 'address' ? `${i.listen} . ${i.port}` : `any local address . ${i.port}`;
  if (l4.backends.length === 0 || !i.backend) {
    w.add({ ...base, what: `nft ${tbl}: ${i.protocol} ${key} -> ${l4.chain}`, verdict: 'drop',
      why: `${l4.chain}'s map has no backend for port ${i.port}: the service has no healthy backend, and its packets are dropped`,
      fix: 'weft service list shows the service\'s backends; weft endpoints the containers its selector matches; check their health' });
    return;
  }
  const shown = l4.backends.slice(0, 8).map((b) => `${b.ip}:${b.port} (${b.buckets}/${l4.buckets ?? '?'} buckets)`).join(', ');
  const more = l4.backends.length > 8 ? `, and ${l4.backends.length - 8} more` : '';
  if (!w.add({ ...base, what: `nft ${tbl}: ${i.protocol} ${key} -> ${l4.chain}: DNAT by hash to ${shown}${more}`, verdict: 'ok',
    why: `each flow goes to one backend by a hash of the client's address${l4.chain.includes('_ip_') ? '' : ' and port'}; the path below is to ${i.backend.ip}:${i.backend.port}` })) return;
  forwardSide(w, f, `ip route get ${i.backend.ip} from ${i.client} iif ${cr.dev}`, undefined);
}

/** An http port: the ingress's L7 proxy listening here, the services routed on the port and their backends, then the proxy's own connection to one. */
function l7Hops(w: Walk, f: ExplainFacts, i: IngressFact, l7: NonNullable<IngressFact['l7']>): void {
  const self = f.self.name;
  const svc = `${i.listen}:${i.port}`;
  const names = l7.services.map((s) => `${s.name} (${s.route} -> port ${s.targetPort})`).join(', ');
  const source = 'kernel (listening sockets) + controller (services)';
  if (!l7.listening) {
    w.add({ kind: 'ingress', host: self, what: `L7 proxy for http port ${i.port}: ${names}`, source, verdict: 'drop',
      why: `nothing on ${self} listens on ${svc} (TCP): the L7 proxy of weft ingress does not serve it here, and the client's connection is refused`,
      fix: 'start weft ingress on this host (its --listen-address must include this address); its log says why a port could not be bound' });
    return;
  }
  const backends = l7.services.flatMap((s) => s.backends.map((b) => `${b.ip}:${s.targetPort} (${b.host})`));
  if (backends.length === 0 || !i.backend) {
    w.add({ kind: 'ingress', host: self, what: `L7 proxy on ${l7.listening}: ${names}`, source, verdict: 'drop',
      why: `no service routed on http port ${i.port} has a backend: the proxy answers 503`,
      fix: 'weft service list shows each service\'s backends; weft endpoints the containers its selector matches' });
    return;
  }
  const shown = backends.slice(0, 8).join(', ') + (backends.length > 8 ? `, and ${backends.length - 8} more` : '');
  if (!w.add({ kind: 'ingress', host: self, what: `L7 proxy on ${l7.listening}: ${names}: backends ${shown}`, source, verdict: 'ok',
    why: `the proxy picks a backend per request (route, rack policy, health) and connects to it from ${self} itself; the path below is to ${i.backend.ip}:${i.backend.port}` })) return;
  forwardSide(w, f, `ip route get ${i.backend.ip}`, undefined);
}

/** On a gateway that holds neither end: where the packet comes from (controller), the leg through here (kernel), where it goes. */
function transitSide(w: Walk, f: ExplainFacts, s: Owner, d: Owner): void {
  if (!w.add(s.endpoint
    ? { kind: 'container', host: s.host, what: `container ${short(s.endpoint.containerId)} ${s.endpoint.ifname} ${f.src} (network ${s.network})`, source: `controller; its kernel is read only by weft explain on ${s.host}`, verdict: 'ok' }
    : { kind: 'container', host: s.host, what: `${f.src} on ${s.host}`, source: 'controller', verdict: 'warn', why: `the controller has no endpoint for ${f.src}` })) return;
  const from = f.transit!.direction === 'out' ? `from ${s.host} over the overlay` : `from a gateway of ${s.datacenter} through WireGuard`;
  if (!w.add({ kind: 'gateway', host: f.self.name, what: `gateway ${f.self.name} of ${f.self.datacenter}: the packet arrives ${from} on ${f.transit!.inDev}`, source: 'topology', verdict: 'ok' })) return;
  if (d.network !== s.network && !isolationHop(w, f, f.self.name, s.network, d.network)) return;
  if (transitHops(w, f, d) && remoteHostHop(w, d)) remoteContainerHop(w, d, f.dst);
}

export function explainPath(f: ExplainFacts): Explanation {
  const w = new Walk(f.size);
  if (f.srcLocal) sendingSide(w, f, f.srcLocal);
  else if (f.ingress) ingressSide(w, f, f.ingress);
  else if (f.dstLocal) receivingSide(w, f, f.dstLocal);
  else if (f.transit && f.srcOwner && f.dstOwner) transitSide(w, f, f.srcOwner, f.dstOwner);
  else {
    const at = f.srcOwner ? ` (${f.srcOwner.host} holds ${f.src})` : '';
    w.add({ kind: 'locate', host: f.self.name, what: `who holds ${f.src} and ${f.dst}`, source: 'agent DB', verdict: 'drop',
      why: `no container on ${f.self.name} holds ${f.src} or ${f.dst}: weft explain reads the kernel of the host it runs on`,
      fix: `run weft explain on the host that holds ${f.src}${at}` });
  }
  return { src: f.src, dst: f.dst, ...(f.size !== undefined ? { size: f.size } : {}), complete: !w.broken, hops: w.hops, ...(w.broken ? { break: w.broken } : {}) };
}

// Judging the tunnel's hops (cni-plugin/agent/tunnel/README.md, "The path"):
// a VXLAN leg (neighbour, FDB entry, where its destination routes), the
// WireGuard peer that carries it when that is weft.wg0, the remote gateway,
// a gateway's report when its kernel cannot be read from here, and the leg
// through a gateway that holds neither end. Pure: facts in, hops out.
import { RULE } from '../tunnel/fail-closed';
import { WG_DEVICE, WG_OVERHEAD_V4, WG_OVERHEAD_V6, XDC_DEVICE, XDC_PORT } from '../state/tunnel';
import type { EncapFact, ExplainFacts, Owner, RouteFact, WireGuardFact } from './facts';
import { linkProblem, routeFound, routeProblem, routeText, vxlanOverhead, type Walk } from './walk';

/** A WireGuard session is gone once no handshake completed for this long (WireGuard's reject-after-time). */
export const SESSION_MAX_AGE_S = 180;

type OkRoute = Extract<RouteFact, { ok: true }>;
const wgOverhead = (ip: string) => (ip.includes(':') ? WG_OVERHEAD_V6 : WG_OVERHEAD_V4);
const ago = (s: number) => `${Math.round(s)} s ago`;
const keyShort = (k: string) => `${k.slice(0, 8)}…`;

/** The drop rule of inet weft_xdc a packet to another datacenter's address meets when it leaves by any other device. */
export const remoteRule = (dst: string) => (dst.includes(':') ? RULE.remote6 : RULE.remote4);

/**
 * A VXLAN leg on `host`: the device, the next hop's neighbour and FDB entry,
 * then the FDB destination's route: into weft.wg0 (the WireGuard peer and the
 * route to its endpoint) or out of the underlay.
 */
export function encapHops(w: Walk, f: ExplainFacts, host: string, e: EncapFact): boolean {
  const dev = e.device.name;
  const base = { kind: 'vxlan' as const, host, source: 'kernel' };
  const p = linkProblem(e.device, dev === XDC_DEVICE ? 'the tunnel\'s VXLAN device' : 'VXLAN device');
  if (p) return w.add({ ...base, what: dev, verdict: 'drop', ...p });
  const want = e.peer;
  const n = e.neigh;
  const resync = dev === XDC_DEVICE ? 'restart the agent on this gateway or wait for its resync' : 'restart the agent or wait for its resync';
  if (!n?.mac) {
    return w.add({ ...base, what: `${dev}: neighbour ${e.gw}`, verdict: 'drop',
      why: `no neighbour entry for ${e.gw} on ${dev}: the kernel cannot put a MAC on the inner frame (weft's entries are permanent; VXLAN devices do not ask ARP)`,
      fix: `${resync} (it adds \`${e.gw} lladdr ${want?.mac ?? '<MAC>'} dev ${dev} permanent\`)` });
  }
  if (want && n.mac !== want.mac) {
    return w.add({ ...base, what: `${dev}: neighbour ${e.gw} lladdr ${n.mac}`, verdict: 'drop', why: `the neighbour entry gives ${e.gw} the MAC ${n.mac}, but ${want.host}'s is ${want.mac}`, fix: `${resync}: it replaces the entry` });
  }
  const dsts = [...(dev === XDC_DEVICE ? [] : [want?.underlayIp]), want?.tunnelAddress].filter((x): x is string => x !== undefined);
  if (!e.fdb?.dst) {
    return w.add({ ...base, what: `${dev}: neighbour ${e.gw} lladdr ${n.mac}, FDB ${n.mac}`, verdict: 'drop',
      why: `no FDB entry for ${n.mac} on ${dev}: the kernel does not know where to send the VXLAN packet, and drops it`,
      fix: `${resync} (it adds \`bridge fdb append ${n.mac} dev ${dev} dst ${dsts[0] ?? '<address>'} self permanent\`)` });
  }
  const dst = e.fdb.dst;
  if (want && dsts.length > 0 && !dsts.includes(dst)) {
    return w.add({ ...base, what: `${dev}: FDB ${n.mac} dst ${dst}`, verdict: 'drop', why: `the FDB entry sends ${n.mac} to ${dst}, but ${want.host} is at ${dsts.join(' or ')}`, fix: `${resync}: it replaces the entry` });
  }
  const whose = want ? (dst === want.tunnelAddress && dst !== want.underlayIp ? ` (${want.host}'s tunnel address)` : ` (${want.host})`) : '';
  const what = `${dev}: neighbour ${e.gw} lladdr ${n.mac}, FDB dst ${dst}${whose}`;
  if (dev !== XDC_DEVICE && want?.datacenter && f.self.datacenter && want.datacenter !== f.self.datacenter) {
    return w.add({ ...base, what, verdict: 'drop',
      why: `the VXLAN packet would go to ${want.host} in datacenter ${want.datacenter}, across the WAN in cleartext${f.failClosed?.exists ? '; the fail-closed table inet weft_xdc drops VXLAN to a host of another datacenter' : ''}`,
      fix: 'the overlay never reaches another datacenter directly: restart the agent or wait for its resync, which routes that subnet via a local gateway' });
  }
  if (!w.add(w.sized({ ...base, what }, e.device.mtu, dev))) return false;
  if (!e.outer) return true;
  return outerHops(w, host, dev, e.outer, want?.host);
}

/** Where an encapsulated packet's outer destination routes: into weft.wg0 (then the peer), or out of the underlay. */
function outerHops(w: Walk, host: string, dev: string, o: NonNullable<EncapFact['outer']>, peerHost: string | undefined): boolean {
  const lookup = `ip route get ${o.dst}`;
  const port = dev === XDC_DEVICE ? XDC_PORT : undefined;
  const p = routeProblem(o.route, lookup);
  const fixRoute = dev === XDC_DEVICE ? `the agent routes each remote gateway's tunnel address \`${o.dst}/32 dev ${WG_DEVICE}\`: restart it or wait for its resync` : `the underlay must route ${o.dst}: check the host's routes and the network between the hosts`;
  if (p) return w.add({ kind: 'underlay', host, what: lookup, source: 'kernel', verdict: 'drop', ...p, fix: fixRoute });
  const r = o.route as OkRoute;
  const to = `VXLAN UDP${port ? ` port ${port}` : ''} to ${o.dst}${peerHost ? ` (${peerHost})` : ''}`;
  if (r.dev === WG_DEVICE) {
    const wg = o.wireguard;
    const mtu = wg?.device.mtu ?? o.mtu;
    if (!w.add(w.sized({ kind: 'route', host, what: `${lookup}: ${routeText(r)} (${to}, inside WireGuard)`, source: 'kernel' }, r.mtu ?? mtu, WG_DEVICE, vxlanOverhead(o.dst)))) return false;
    return wireGuardHops(w, host, wg, o.dst, peerHost, vxlanOverhead(o.dst));
  }
  if (r.dev.startsWith('weft.')) {
    return w.add({ kind: 'underlay', host, what: `${lookup}: ${routeText(r)}`, source: 'kernel', verdict: 'drop', why: `${o.dst} is routed into weft's own ${r.dev}: the VXLAN packet would loop`, fix: `route ${o.dst} through the underlay device` });
  }
  if (dev === XDC_DEVICE) {
    return w.add({ kind: 'underlay', host, what: `${lookup}: ${routeText(r)}`, source: 'kernel (route, nftables inet weft_xdc)', verdict: 'drop',
      why: `${o.dst}${peerHost ? `, ${peerHost}'s tunnel address,` : ''} is routed via ${r.dev}, not into ${WG_DEVICE}: the tunnel's VXLAN would cross the WAN in cleartext; the fail-closed table inet weft_xdc drops it (rule "${remoteRule(o.dst)}")`,
      fix: fixRoute });
  }
  return w.add(w.sized({ kind: 'underlay', host, what: `${lookup}: ${routeText(r)} (${to})`, source: 'kernel' }, r.mtu ?? o.mtu, r.dev, vxlanOverhead(o.dst)));
}

/** weft.wg0's peer for `dst`: there, with a live session, and the underlay route to its endpoint. */
export function wireGuardHops(w: Walk, host: string, wg: WireGuardFact | undefined, dst: string, expected: string | undefined, overheadIn: number): boolean {
  const base = { kind: 'wireguard' as const, host, source: 'kernel (WireGuard device)' };
  const name = expected ?? dst;
  if (!wg) return w.add({ ...base, what: WG_DEVICE, verdict: 'warn', why: `${WG_DEVICE}'s peers were not read` });
  const lp = linkProblem(wg.device, 'the WireGuard device');
  if (lp) return w.add({ ...base, what: WG_DEVICE, verdict: 'drop', ...lp, fix: `restart the agent: it starts ${WG_DEVICE} again (wireguard-go, or the kernel's)` });
  if (!wg.ok) {
    return w.add({ ...base, what: WG_DEVICE, verdict: 'drop', why: `${WG_DEVICE}'s peers cannot be read: ${wg.error}`,
      fix: 'run weft explain as root in the agent\'s namespaces; if wireguard-go is gone, restart the agent (it starts it again)' });
  }
  const p = wg.peer;
  if (!p) {
    return w.add({ ...base, what: `${WG_DEVICE}: peer with ${dst} in its allowed IPs`, verdict: 'drop',
      why: `no WireGuard peer of ${WG_DEVICE} has ${dst}${expected ? ` (${expected}'s tunnel address)` : ''} in its allowed IPs: WireGuard drops the packet (no session with ${name})`,
      fix: `the agent adds a peer for ${name} with the key it registered: restart the agent or wait for its resync; weft datacenter list shows the gateways and their keys` });
  }
  const who = p.host ?? expected ?? keyShort(p.publicKey);
  const ageS = p.lastHandshakeMs > 0 ? Math.max(0, (wg.nowMs - p.lastHandshakeMs) / 1000) : undefined;
  const what = `${WG_DEVICE}: peer ${who} (key ${keyShort(p.publicKey)}), endpoint ${p.endpoint ?? 'none'}, allowed IPs ${p.allowedIps.join(', ')}, last handshake ${ageS === undefined ? 'never' : ago(ageS)}`;
  if (expected && p.host && p.host !== expected) {
    return w.add({ ...base, what, verdict: 'drop', why: `${dst} is ${expected}'s tunnel address, but the peer holding it in its allowed IPs is ${p.host}`, fix: 'restart the agent or wait for its resync: it gives each peer only its own tunnel address' });
  }
  if (ageS === undefined || ageS > SESSION_MAX_AGE_S) {
    return w.add({ ...base, what, verdict: 'drop',
      why: `no WireGuard session with ${who}: ${ageS === undefined ? 'no handshake has ever completed' : `the last handshake was ${ago(ageS)}, over ${SESSION_MAX_AGE_S} s`}`,
      fix: `check that ${who}'s endpoint ${p.endpoint ?? '(none known)'} is reachable over UDP from here, and that the keys are the registered ones (weft datacenter list shows each gateway's key and handshakes)` });
  }
  if (!w.add(w.sized({ ...base, what }, wg.device.mtu, WG_DEVICE, overheadIn))) return false;
  const er = wg.endpointRoute;
  if (!er) return true;
  const lookup = `ip route get ${er.dst}`;
  const rp = routeProblem(er.route, lookup);
  if (rp) return w.add({ kind: 'underlay', host, what: lookup, source: 'kernel', verdict: 'drop', ...rp, fix: `the underlay must route ${who}'s endpoint ${er.dst}` });
  const r = er.route as OkRoute;
  if (r.dev.startsWith('weft.')) {
    return w.add({ kind: 'underlay', host, what: `${lookup}: ${routeText(r)}`, source: 'kernel', verdict: 'drop', why: `${who}'s endpoint ${er.dst} is routed into weft's own ${r.dev}: WireGuard's packets would loop`, fix: `route ${er.dst} through the underlay device` });
  }
  return w.add(w.sized({ kind: 'underlay', host, what: `${lookup}: ${routeText(r)} (WireGuard UDP to ${p.endpoint})`, source: 'kernel' }, r.mtu ?? er.mtu, r.dev, overheadIn + wgOverhead(er.dst)));
}

/** The remote gateway that decapsulates on weft.xdc and routes into its datacenter's overlay (topology; its kernel is not read from here). */
export function remoteGatewayHop(w: Walk, f: ExplainFacts, gateway: string | undefined, o: Owner): boolean {
  const g = f.gateways?.find((x) => x.host === gateway);
  if (!gateway || !g) {
    return w.add({ kind: 'gateway', host: gateway ?? '?', what: `a gateway of ${o.datacenter}`, source: 'topology', verdict: 'warn', why: `which gateway of ${o.datacenter} this is could not be told from the topology` });
  }
  const state = g.state === 'draining' ? ', draining (its traffic moves to its datacenter\'s other gateways)' : '';
  return w.add({ kind: 'gateway', host: g.host, what: `gateway ${g.host} of ${g.datacenter}${g.tunnelAddress ? ` (tunnel address ${g.tunnelAddress}` : ' ('}, WAN ${g.wanEndpoint})${state}: decapsulates on ${XDC_DEVICE}, routes ${o.subnet} into its overlay to ${o.host}`,
    source: `topology; its kernel is read only by weft explain on ${g.host}`, verdict: 'ok' });
}

/**
 * On a non-gateway host, the local gateway's side from what its agent last
 * reported (admin certificate): which gateway of the remote datacenter it
 * chose, and its WireGuard session with it. Returns the remote gateway.
 */
export function reportedGatewayHops(w: Walk, f: ExplainFacts, gateway: string, o: Owner): { ok: boolean; remote?: string } {
  const rep = f.tunnelReports?.[gateway];
  if (!rep) {
    const ok = w.add({ kind: 'tunnel', host: gateway, what: `gateway ${gateway} carries it through WireGuard to datacenter ${o.datacenter}`, source: 'topology', verdict: 'warn',
      why: `${gateway}'s kernel cannot be read from here${f.controller.ok && f.controller.identity === 'admin' ? ', and its agent has reported no tunnels' : ' (with an admin certificate, its agent\'s last tunnel report is shown)'}`,
      fix: `run weft explain ${f.src} ${f.dst} on ${gateway}: it reads weft.xdc, weft.wg0 and the WireGuard peer there` });
    return { ok };
  }
  const source = `controller; from ${gateway}'s report at ${new Date(rep.reportedAtMs).toISOString()}; its kernel is read only by weft explain on ${gateway}`;
  const chosen = rep.paths.find((p) => p.datacenter === o.datacenter)?.chosen;
  if (!chosen) {
    const ok = w.add({ kind: 'tunnel', host: gateway, what: `${gateway} towards ${o.datacenter}`, source, verdict: 'drop',
      why: `${gateway} has no gateway of ${o.datacenter} answering its probes: it routes nothing there`,
      fix: `weft datacenter list shows ${o.datacenter}'s gateways and the handshakes; run weft explain ${f.src} ${f.dst} on ${gateway} for its kernel's view` });
    return { ok };
  }
  const peer = rep.peers.find((p) => p.host === chosen);
  const age = peer?.handshakeAgeSeconds ?? -1;
  const what = `${gateway}: ${XDC_DEVICE} via ${chosen} (its choice for ${o.datacenter}), ${WG_DEVICE} peer ${chosen}${peer ? ` endpoint ${peer.endpoint}, last handshake ${age < 0 ? 'never' : ago(age)}` : ''}`;
  if (!peer || age < 0 || age > SESSION_MAX_AGE_S) {
    const ok = w.add({ kind: 'wireguard', host: gateway, what, source, verdict: 'drop',
      why: `no WireGuard session with ${chosen}: ${!peer ? `${gateway} reports no peer for it` : age < 0 ? 'no handshake has ever completed' : `the last handshake was ${ago(age)}, over ${SESSION_MAX_AGE_S} s`}`,
      fix: `run weft explain ${f.src} ${f.dst} on ${gateway}: it reads the peer from the device; check that ${chosen}'s WAN endpoint is reachable over UDP` });
    return { ok };
  }
  return { ok: w.add({ kind: 'wireguard', host: gateway, what, source, verdict: 'ok' }), remote: chosen };
}

/** The gateway a VXLAN leg on weft.xdc goes to. */
export const legGateway = (e: EncapFact | undefined): string | undefined => e?.peer?.host;

/**
 * On a gateway that holds neither end: `out`, from a host of this
 * datacenter, the route into weft.xdc (and the fail-closed table's say) then
 * the leg to the remote gateway; `in`, from a remote gateway, the route from
 * weft.xdc into the overlay and the leg to the host. Returns whether the walk
 * goes on to the destination host.
 */
export function transitHops(w: Walk, f: ExplainFacts, o: Owner): boolean {
  const t = f.transit!;
  const self = f.self.name;
  const lookup = `ip route get ${f.dst} from ${f.src} iif ${t.inDev}`;
  const ok = routeFound(w, self, lookup, t.route);
  if (!ok) return false;
  const rt = `${lookup}: ${routeText(ok)}`;
  if (t.direction === 'out') {
    const ifs = f.failClosed?.exists ? f.failClosed.tunnelIfs : undefined;
    if (ifs && !ifs.includes(ok.dev)) {
      return w.add({ kind: 'route', host: self, what: rt, source: 'kernel (route, nftables inet weft_xdc)', verdict: 'drop',
        why: `${f.dst} is in datacenter ${o.datacenter}; the fail-closed table inet weft_xdc lets it leave only by ${ifs.join(', ') || 'no device'}, and this route takes ${ok.dev}: dropped and counted by rule "${remoteRule(f.dst)}"`,
        fix: `this gateway routes ${o.subnet} into ${XDC_DEVICE} via the gateway of ${o.datacenter} it chose once one answers probes: weft datacenter list shows gateways and handshakes; nft list table inet weft_xdc the drop counters` });
    }
    if (ok.dev !== XDC_DEVICE) {
      return w.add({ kind: 'route', host: self, what: rt, source: 'kernel', verdict: 'drop',
        why: `${f.dst} is in datacenter ${o.datacenter}, but the route goes via ${ok.dev}, not ${XDC_DEVICE}: it would not enter the tunnel${f.failClosed?.exists ? '' : ' (and the fail-closed table inet weft_xdc is missing)'}`,
        fix: `restart the agent on ${self} or wait for its resync: it routes ${o.subnet} via the chosen gateway of ${o.datacenter} into ${XDC_DEVICE}` });
    }
    if (!w.add({ kind: 'route', host: self, what: rt, source: 'kernel', verdict: 'ok' })) return false;
    if (!t.encap || !encapHops(w, f, self, t.encap)) return false;
    return remoteGatewayHop(w, f, legGateway(t.encap), o);
  }
  const net = f.networks.find((n) => n.name === o.network);
  const vx = net ? `weft.vx${net.vni}` : undefined;
  if (ok.dev !== vx) {
    return w.add({ kind: 'route', host: self, what: rt, source: 'kernel', verdict: 'drop',
      why: `the route goes via ${ok.dev}, not the overlay's ${vx ?? 'VXLAN device'}: it would not reach ${o.host}`,
      fix: `restart the agent on ${self} or wait for its resync: it programs ${o.subnet} via ${o.host}'s VTEP on ${vx}; weft doctor shows programmed vs desired` });
  }
  if (!w.add({ kind: 'route', host: self, what: rt, source: 'kernel', verdict: 'ok' })) return false;
  return !!t.encap && encapHops(w, f, self, t.encap);
}


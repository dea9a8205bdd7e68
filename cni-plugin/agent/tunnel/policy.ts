// What this host is and wants for traffic between datacenters, computed from
// the topology alone (pure): its role, the inputs of the fail-closed rules,
// every gateway's tunnel address, the remote datacenters with the gateways a
// prober may choose between and the addresses it probes, and its WireGuard
// dataplane: on a gateway the peers and weft.xdc entries, and in a mesh
// datacenter a peer for every other host of it too. Every agent computes the
// same values from the same topology, so nothing here needs the controller
// to agree with anyone.
import { canonicalIp, formatCidr, ipFamily, networkOf, parseCidr } from '../../../dataplane/netlink/ip';
import { AF_INET } from '../../../dataplane/netlink/libc';
import { derivedMac, gatewayOf, vtepIpOf } from '../host/naming';
import type { DatacenterInfo, NetworkAttachment, RemoteHost, Topology } from '../state/types';
import { WG_DEVICE, XDC_DEVICE, type Candidate, type FailClosedPolicy, type GatewayChoices, type TunnelRole } from '../state/tunnel';

/** Seconds between keepalives on every gateway peer: keeps NAT and stateful firewalls on the WAN open. */
export const PEER_KEEPALIVE_SECONDS = 25;
/** A gateway probes at most this many hosts of a remote datacenter. */
export const MAX_GATEWAY_TARGETS = 3;

/** weft.xdc's MAC for a gateway host: derived from the name like the VTEP MAC, so every gateway computes every other's. */
export function xdcMacFor(hostName: string): string {
  return derivedMac(`weft-xdc\0${hostName}`);
}

/** A remote datacenter as a prober sees it. */
export type RemotePath = {
  datacenter: string;
  /** Gateways that can carry the traffic, rank order, draining ones last. */
  candidates: Candidate[];
  /** Bridge addresses the probes go to. */
  targets: string[];
};

export type WgPeerSpec = { host: string; datacenter: string; publicKey: string; endpoint: string; allowedIps: string[]; persistentKeepalive: number };
/** `<dst> via <gw> dev weft.xdc onlink`. */
export type XdcRoute = { dst: string; gw: string };
/** `<ip> lladdr <mac> dev weft.xdc` and `<mac> dst <ip> dev weft.xdc`: a remote gateway's weft.xdc, reached at its tunnel address. */
export type XdcPeer = { host: string; ip: string; mac: string };

/**
 * What this host's WireGuard device (and, on a gateway, weft.xdc) should
 * hold: a gateway's peers are the other datacenters' gateways; in a mesh
 * datacenter every host also has every other host of its datacenter as a
 * peer, reached at its underlay address.
 */
export type WireGuardDataplane = {
  /** This host's tunnel address: weft.xdc's local address, and in a mesh datacenter the overlay's VXLAN source. */
  tunnelAddress: string;
  /** weft.xdc exists: this host is a gateway (a mesh host that is not has weft.wg0 only). */
  xdc: boolean;
  mac: string;
  listenPort: number;
  /** The datacenter's configured MTU, 0: derive it. */
  mtu: number;
  peers: WgPeerSpec[];
  /** `<tunnel address>/32 dev weft.wg0`, one per remote gateway with a key. */
  wgRoutes: string[];
  xdcPeers: XdcPeer[];
  /** Remote subnets via the chosen remote gateway, one per remote subnet. */
  xdcRoutes: XdcRoute[];
};

export type TunnelPlan = {
  role: TunnelRole;
  datacenter: string;
  /** Whether any other datacenter exists: without one nothing here does anything. */
  multiDatacenter: boolean;
  policy: FailClosedPolicy;
  /** Gateway host -> its tunnel address, for every gateway of every datacenter (and every host of a mesh one) that has one. */
  tunnelAddresses: Map<string, string>;
  paths: RemotePath[];
  /**
   * This host's datacenter encrypts host-to-host traffic (full mesh): the
   * other hosts of it, by name, with the tunnel address their overlay
   * traffic is sent to inside weft.wg0. Undefined: not a mesh datacenter.
   */
  mesh?: Map<string, string>;
  /** On a gateway, and on every host of a mesh datacenter. */
  wireguard?: WireGuardDataplane;
};

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const canonCidr = (c: string) => formatCidr(networkOf(parseCidr(c)));

function tryCidr(c: string): string | undefined {
  try {
    return canonCidr(c);
  } catch {
    return undefined;
  }
}

/** Every subnet a host holds: its own record and what its datacenter lists for it. */
function subnetsOf(host: string, hostsByName: Map<string, RemoteHost>, dcs: DatacenterInfo[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const d of dcs) for (const s of d.subnets) if (s.host === host) out.set(s.network, s.subnet);
  for (const [n, s] of Object.entries(hostsByName.get(host)?.subnets ?? {})) out.set(n, s);
  return out;
}

/**
 * A gateway's tunnel address: the VTEP address of its subnet in the first
 * network by name that it has one in. The network address of a subnet is
 * never a container's or a bridge's, so only the gateways' own VXLAN packets
 * are routed to it.
 */
export function tunnelAddressOf(host: string, topology: Topology): string | undefined {
  const hostsByName = new Map(topology.hosts.map((h) => [h.name, h]));
  const subnets = subnetsOf(host, hostsByName, topology.datacenters ?? []);
  const names = [...new Set([...topology.networks.map((n) => n.name), ...subnets.keys()])].sort(byString);
  for (const n of names) {
    const s = subnets.get(n);
    if (s === undefined) continue;
    try {
      return vtepIpOf(s);
    } catch {
      continue;
    }
  }
  return undefined;
}

function bridgeAddressOf(host: string, topology: Topology, hostsByName: Map<string, RemoteHost>): string | undefined {
  const subnets = subnetsOf(host, hostsByName, topology.datacenters ?? []);
  const names = [...subnets.keys()].sort(byString);
  for (const n of names) {
    try {
      return gatewayOf(subnets.get(n)!);
    } catch {
      continue;
    }
  }
  return undefined;
}

/** Candidates in rank order (the datacenter's gateway order), draining ones last. */
function candidatesOf(dc: DatacenterInfo, usable: (g: DatacenterInfo['gateways'][number]) => boolean): Candidate[] {
  const gws = dc.gateways.filter(usable);
  return [...gws.filter((g) => g.state !== 'draining'), ...gws.filter((g) => g.state === 'draining')].map((g) => ({ host: g.host, draining: g.state === 'draining' }));
}

/** The datacenter's hosts: its records' subnets and the topology's hosts that name it. */
function hostsOfDc(dc: string, topology: Topology): string[] {
  const names = new Set<string>();
  for (const h of topology.hosts) if (h.datacenter === dc) names.add(h.name);
  for (const d of topology.datacenters ?? []) if (d.name === dc) for (const s of d.subnets) names.add(s.host);
  return [...names].sort(byString);
}

export type TunnelInputs = {
  topology: Topology;
  self: string;
  /** This host's datacenter (its own record's, else its configuration's). */
  datacenter: string;
  attachments: NetworkAttachment[];
  /** Which remote gateway carries each remote datacenter, as the prober chose (gateways only). */
  choices?: GatewayChoices;
};

/** The datacenter a host is in: its topology record's, else what it was configured with. */
export function selfDatacenter(topology: Topology, self: string, configured: string): string {
  return topology.hosts.find((h) => h.name === self)?.datacenter || configured;
}

export function planTunnel(i: TunnelInputs): TunnelPlan {
  const { topology, self, datacenter, attachments } = i;
  const dcs = topology.datacenters ?? [];
  const hostsByName = new Map(topology.hosts.map((h) => [h.name, h]));
  const own = dcs.find((d) => d.name === datacenter);
  const isGateway = own?.gateways.some((g) => g.host === self) ?? false;
  const role: TunnelRole = isGateway ? 'gateway' : 'host';

  const remoteDcs = new Set<string>();
  for (const d of dcs) if (d.name !== datacenter) remoteDcs.add(d.name);
  for (const h of topology.hosts) if (h.datacenter && h.datacenter !== datacenter) remoteDcs.add(h.datacenter);
  const multiDatacenter = remoteDcs.size > 0;

  const tunnelAddresses = new Map<string, string>();
  for (const d of dcs) {
    for (const g of d.gateways) {
      const a = tunnelAddressOf(g.host, topology);
      if (a !== undefined) tunnelAddresses.set(g.host, a);
    }
  }
  let mesh: Map<string, string> | undefined;
  if (own?.mesh) {
    mesh = new Map();
    for (const h of hostsOfDc(datacenter, topology)) {
      const a = tunnelAddressOf(h, topology);
      if (a === undefined) continue;
      tunnelAddresses.set(h, a);
      if (h !== self) mesh.set(h, a);
    }
  }

  const policy = failClosedPolicy(i, role, multiDatacenter, remoteDcs, mesh);

  const paths: RemotePath[] = [];
  for (const name of [...remoteDcs].sort(byString)) {
    const dc = dcs.find((d) => d.name === name);
    if (role === 'host') {
      // through a local gateway, to the remote datacenter's gateways' bridges
      const candidates = own ? candidatesOf(own, (g) => g.host !== self && tunnelAddresses.has(g.host)) : [];
      const targets = (dc?.gateways ?? []).map((g) => bridgeAddressOf(g.host, topology, hostsByName)).filter((a): a is string => a !== undefined);
      paths.push({ datacenter: name, candidates, targets });
    } else {
      // through a remote gateway, to a few of the remote datacenter's other hosts (its gateways when it has none)
      const candidates = dc ? candidatesOf(dc, (g) => g.wgPublicKey !== '' && tunnelAddresses.has(g.host)) : [];
      const gwNames = new Set((dc?.gateways ?? []).map((g) => g.host));
      const plain = hostsOfDc(name, topology).filter((h) => !gwNames.has(h));
      const pick = plain.length > 0 ? plain : [...gwNames].sort(byString);
      const targets = pick.map((h) => bridgeAddressOf(h, topology, hostsByName)).filter((a): a is string => a !== undefined).slice(0, MAX_GATEWAY_TARGETS);
      paths.push({ datacenter: name, candidates, targets });
    }
  }

  const plan: TunnelPlan = { role, datacenter, multiDatacenter, policy, tunnelAddresses, paths, ...(mesh ? { mesh } : {}) };
  if ((role === 'gateway' || mesh) && own) {
    const tunnelAddress = tunnelAddresses.get(self);
    if (tunnelAddress !== undefined) {
      plan.wireguard = wireGuardDataplane(i, own, tunnelAddress, tunnelAddresses, role === 'gateway' ? [...remoteDcs].sort(byString) : [], mesh);
    }
  }
  return plan;
}

const hostCidr = (addr: string) => `${addr}/${ipFamily(addr) === AF_INET ? 32 : 128}`;

/** A host's WireGuard endpoint inside its datacenter: its underlay address at the datacenter's port. */
function underlayEndpoint(ip: string, port: number): string | undefined {
  try {
    const c = canonicalIp(ip);
    return ipFamily(c) === AF_INET ? `${c}:${port}` : `[${c}]:${port}`;
  } catch {
    return undefined;
  }
}

function wireGuardDataplane(
  i: TunnelInputs, own: DatacenterInfo, tunnelAddress: string, tunnelAddresses: Map<string, string>, remoteDcs: string[],
  mesh: Map<string, string> | undefined,
): WireGuardDataplane {
  const { topology, attachments, choices } = i;
  const dcs = topology.datacenters ?? [];
  const hostsByName = new Map(topology.hosts.map((h) => [h.name, h]));
  const peers: WgPeerSpec[] = [];
  const xdcPeers: XdcPeer[] = [];
  const xdcRoutes: XdcRoute[] = [];
  const keys = new Set<string>();
  const attached = new Set(attachments.map((a) => a.network));
  // the other hosts of a mesh datacenter: their overlay traffic comes and goes inside weft.wg0
  for (const [name, addr] of mesh ?? []) {
    const h = hostsByName.get(name);
    const endpoint = h ? underlayEndpoint(h.underlayIp, own.listenPort) : undefined;
    if (!h || !h.wgPublicKey || endpoint === undefined || keys.has(h.wgPublicKey)) continue;
    keys.add(h.wgPublicKey);
    peers.push({ host: name, datacenter: own.name, publicKey: h.wgPublicKey, endpoint, allowedIps: [hostCidr(addr)], persistentKeepalive: PEER_KEEPALIVE_SECONDS });
  }
  for (const name of remoteDcs) {
    const dc = dcs.find((d) => d.name === name);
    if (!dc) continue;
    for (const g of dc.gateways) {
      const addr = tunnelAddresses.get(g.host);
      // a gateway without a key or a tunnel address cannot be a peer; two records with one key cannot both be
      if (g.wgPublicKey === '' || addr === undefined || keys.has(g.wgPublicKey)) continue;
      keys.add(g.wgPublicKey);
      peers.push({ host: g.host, datacenter: name, publicKey: g.wgPublicKey, endpoint: g.wanEndpoint, allowedIps: [hostCidr(addr)], persistentKeepalive: PEER_KEEPALIVE_SECONDS });
      xdcPeers.push({ host: g.host, ip: canonicalIp(addr), mac: xdcMacFor(g.host) });
    }
    const chosen = choices?.get(name);
    const via = chosen !== undefined ? xdcPeers.find((p) => p.host === chosen) : undefined;
    if (!via) continue; // no gateway chosen (or none usable): nothing routed, the fail-closed table drops it
    const subnets = new Set<string>();
    for (const h of hostsOfDc(name, topology)) {
      for (const [net, s] of subnetsOf(h, hostsByName, dcs)) {
        if (!attached.has(net)) continue;
        const c = tryCidr(s);
        if (c !== undefined) subnets.add(c);
      }
    }
    for (const dst of [...subnets].sort(byString)) xdcRoutes.push({ dst, gw: via.ip });
  }
  const wgRoutes = peers.map((p) => p.allowedIps[0]).sort(byString);
  return {
    tunnelAddress, xdc: remoteDcs.length > 0 || !mesh, mac: xdcMacFor(i.self), listenPort: own.listenPort, mtu: own.mtu,
    peers: peers.sort((a, b) => byString(a.host, b.host)), wgRoutes, xdcPeers: xdcPeers.sort((a, b) => byString(a.host, b.host)), xdcRoutes,
  };
}

/** Remove CIDRs another listed one contains, de-duplicate, sort: the elements an interval set can hold without overlap. */
export function coverCidrs(cidrs: Iterable<string>): string[] {
  const parsed = [...new Set([...cidrs].map(tryCidr).filter((c): c is string => c !== undefined))].map((c) => ({ c, p: parseCidr(c) }));
  const out = parsed.filter(({ p }) =>
    !parsed.some(({ p: q }) => q.family === p.family && q.prefixLen < p.prefixLen && networkOf({ ...p, prefixLen: q.prefixLen }).ip === networkOf(q).ip),
  );
  return out.map(({ c }) => c).sort(byString);
}

/** The devices traffic for another datacenter may leave by: the tunnel's on a gateway, the overlay's (towards a local gateway) elsewhere. */
export function tunnelDevices(p: FailClosedPolicy): string[] {
  return p.role === 'gateway' ? [WG_DEVICE, XDC_DEVICE] : p.overlayDevices;
}

/** Underlay addresses of these hosts, canonical; a bad one is the overlay's to report (it is programmed nowhere). */
function underlaysOf(hosts: Iterable<string>, hostsByName: Map<string, RemoteHost>): string[] {
  const out = new Set<string>();
  for (const name of hosts) {
    const h = hostsByName.get(name);
    if (!h) continue;
    try {
      out.add(canonicalIp(h.underlayIp));
    } catch {
      continue;
    }
  }
  return [...out];
}

function failClosedPolicy(
  i: TunnelInputs, role: TunnelRole, multi: boolean, remoteDcs: Set<string>, mesh: Map<string, string> | undefined,
): FailClosedPolicy {
  const { topology, datacenter, attachments } = i;
  const vxlanPort = topology.vxlanPort;
  const devices = attachments.map((a) => a.vxlanDevice);
  const hostsByName = new Map(topology.hosts.map((h) => [h.name, h]));
  // in a mesh datacenter no VXLAN goes to a neighbour's underlay in cleartext: only inside weft.wg0, to its tunnel address
  const meshUnderlays = mesh ? underlaysOf(mesh.keys(), hostsByName) : [];
  const meshFlag = mesh ? { mesh: true, meshTunnels: [...new Set(mesh.values())].sort(byString) } : {};
  // one datacenter: nothing is remote, and the rules speak for no address (as before datacenters)
  if (!multi) {
    return { role, pools: [], local: [], remoteUnderlays: meshUnderlays.sort(byString), vxlanPort, overlayDevices: [...new Set(devices)].sort(byString), ...meshFlag };
  }
  const dcs = topology.datacenters ?? [];
  const own = dcs.find((d) => d.name === datacenter);
  const pools = coverCidrs(topology.networks.map((n) => n.cidr));
  const local = new Set<string>();
  const withPool = new Set<string>();
  for (const [net, pool] of Object.entries(own?.pools ?? {})) {
    local.add(pool);
    withPool.add(net);
  }
  for (const h of hostsOfDc(datacenter, topology)) {
    for (const [net, s] of subnetsOf(h, hostsByName, dcs)) if (!withPool.has(net)) local.add(s);
  }
  for (const a of attachments) if (!withPool.has(a.network)) local.add(a.subnet);
  const remote = topology.hosts.filter((h) => h.datacenter && remoteDcs.has(h.datacenter)).map((h) => h.name);
  const remoteUnderlays = new Set([...underlaysOf(remote, hostsByName), ...meshUnderlays]);
  return {
    role, pools, local: coverCidrs(local), remoteUnderlays: [...remoteUnderlays].sort(byString), vxlanPort, overlayDevices: [...new Set(devices)].sort(byString),
    ...meshFlag,
  };
}

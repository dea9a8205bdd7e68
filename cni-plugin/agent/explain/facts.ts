// What `weft explain` judges, as plain data: gathered from this host's kernel,
// the agent's DB and the controller (hops.ts, locate.ts), judged without any
// of them (verdicts.ts), so every drop it can report is tested over data.

/** A route lookup as the kernel answered it, device named. */
export type RouteFact =
  | { ok: true; dev: string; gw?: string; src?: string; type: 'unicast' | 'local' | 'blackhole' | 'unreachable' | 'prohibit' | 'other'; mtu?: number }
  | { ok: false; errno: string; message: string };

export type LinkFact = { name: string; exists: boolean; up?: boolean; mtu?: number; master?: string; addrs?: string[] };

/** A container on this host that holds an address (agent DB) and what its namespace shows (kernel). */
export type LocalContainer = {
  network: string;
  vni: number;
  ip: string;
  containerId: string;
  ifname: string;
  netns?: string;
  /** Its interface inside the namespace; error: the namespace could not be entered. */
  iface?: LinkFact | { error: string };
  /** The route inside the container towards the other end. */
  route?: RouteFact;
  /** Host end of its veth and the network's bridge. */
  veth: LinkFact;
  bridge: LinkFact;
};

/** Who owns an address in the cluster, as the controller says. */
export type Owner = {
  host: string;
  network: string;
  subnet: string;
  underlayIp: string;
  vtepMac: string;
  datacenter: string;
  /** From ListHosts (admin certificate); undefined with a host certificate. */
  health?: { state: string; heartbeatAgeMs: number };
  /** The overlay summary the owner's agent last reported with a heartbeat. */
  report?: { desired: number; programmed: number; failed: number; reportedAtMs: number };
  /** The container holding the address, per the controller's endpoints; undefined: none registered. */
  endpoint?: { containerId: string; ifname: string };
};

export type NetworkFact = { name: string; vni: number; cidr: string };

/** A WireGuard peer as the device reports it. */
export type WireGuardPeerFact = { publicKey: string; endpoint?: string; allowedIps: string[]; lastHandshakeMs: number };

/**
 * weft.wg0 where an encapsulated packet's outer destination routes into it:
 * the peer whose allowed IPs hold that destination (undefined: none does),
 * named by the topology, and the underlay route to its endpoint.
 */
export type WireGuardFact =
  | {
    ok: true;
    device: LinkFact;
    peer?: WireGuardPeerFact & { host?: string; datacenter?: string };
    /** When the device was read (handshake ages are judged against it). */
    nowMs: number;
    endpointRoute?: { dst: string; route: RouteFact; mtu?: number };
  }
  | { ok: false; device: LinkFact; error: string };

/**
 * Whose VTEP (or weft.xdc) a VXLAN next hop is, per the topology: the MAC its
 * neighbour entry should give and the addresses its FDB entry may send to
 * (the underlay address on the overlay; the tunnel address on weft.xdc, and
 * on the overlay of a datacenter that sends it inside WireGuard).
 */
export type EncapPeer = { host: string; datacenter?: string; mac: string; underlayIp?: string; tunnelAddress?: string };

/**
 * One VXLAN leg (weft.vx<vni> or weft.xdc): the route's next hop, its
 * neighbour and FDB entry, whose address the FDB entry sends to, and how the
 * kernel routes that address: out of the underlay, or into weft.wg0.
 */
export type EncapFact = {
  device: LinkFact;
  /** The route's next hop the neighbour entry is looked up for. */
  gw: string;
  neigh?: { ip: string; mac?: string; state?: string };
  fdb?: { mac: string; dst?: string };
  /** Whose VTEP (or weft.xdc) `gw` is, per the topology. */
  peer?: EncapPeer;
  outer?: { dst: string; route: RouteFact; mtu?: number; wireguard?: WireGuardFact };
};

/**
 * On a gateway that holds neither end: the packet passing through it. `out`:
 * from a host of this datacenter, in by the overlay, towards another
 * datacenter; `in`: from a remote gateway, in by weft.xdc, towards a host here.
 */
export type TransitFact = { direction: 'out' | 'in'; inDev: string; route: RouteFact; encap?: EncapFact };

/** What a gateway's agent last reported about its tunnels (controller, admin certificate). */
export type TunnelReportFact = {
  reportedAtMs: number;
  paths: Array<{ datacenter: string; chosen: string }>;
  peers: Array<{ host: string; datacenter: string; endpoint: string; handshakeAgeSeconds: number }>;
};

/**
 * An outside client's packet to the ingress's L4 path on this host: the
 * device it arrives by (the route back to the client), what the ingress's
 * nftables table (family ip) does with the address and port, and the backend
 * whose path is followed from there.
 */
export type IngressFact = {
  client: string;
  listen: string;
  port: number;
  protocol: 'tcp' | 'udp';
  table: string;
  /** The route back to the client: its device is where the client's packets come in. */
  clientRoute: RouteFact;
  l4: {
    exists: boolean;
    error?: string;
    /** The chain the port's vmap element jumps to; by: the listen address's element, or the any-local-address one. */
    chain?: string;
    by?: 'address' | 'any';
    /** The backends the chain's map DNATs to, with how many of the map's buckets each holds. */
    backends: Array<{ ip: string; port: number; buckets: number }>;
    buckets?: number;
  };
  /**
   * When the kernel does not DNAT the port: the ingress's L7 proxy, from the
   * controller's http services on the port (with their backends) and this
   * host's listening TCP socket for it ("address:port"; undefined: none).
   */
  l7?: { listening?: string; services: Array<{ name: string; targetPort: number; route: string; backends: Array<{ ip: string; host: string }> }> };
  /** The backend the rest of the path goes to. */
  backend?: { ip: string; port: number };
};

/** A gateway of some datacenter, per the topology. */
export type GatewayFact = { host: string; datacenter: string; tunnelAddress?: string; wanEndpoint: string; state: string };

export type ExplainFacts = {
  src: string;
  dst: string;
  /** IP packet size to check against every MTU; undefined: MTUs are shown, not judged. */
  size?: number;
  self: { name: string; datacenter: string; gateway?: boolean };
  /** The controller's answer; error: it could not be asked (then owners are unknown). */
  controller: { ok: true; server: string; identity: 'admin' | 'host' } | { ok: false; server: string; error: string };
  networks: NetworkFact[];
  /** src and dst held by containers of this host. */
  srcLocal?: LocalContainer;
  dstLocal?: LocalContainer;
  /** Who owns each address per the controller (null: nobody; undefined: not asked). */
  srcOwner?: Owner | null;
  dstOwner?: Owner | null;
  /** Sending side: the host's route for the packet as it arrives from the container's bridge. */
  hostRoute?: RouteFact;
  /** Receiving side: the route as the packet arrives from the VXLAN device. */
  inboundRoute?: RouteFact;
  /** The device the packet arrives on there: the overlay's VXLAN device, or weft.xdc on a gateway for a packet from another datacenter. */
  inboundDev?: string;
  /** The devices the host route and the inbound route name. */
  devices: Record<string, LinkFact>;
  /** weft's WEFT-ISOLATION DROP rule that matches src -> dst, if one does; error: the rules could not be read. */
  isolation?: { rule?: string; error?: string };
  /** Neighbour of the route's gateway on the VXLAN device, and the FDB entry of its MAC. */
  neigh?: { ip: string; mac?: string; state?: string };
  fdb?: { mac: string; dst?: string };
  /** The host (this datacenter's) whose VTEP address the route's gateway is, per the topology. */
  nextHopHost?: { name: string; underlayIp: string; vtepMac: string; datacenter?: string; tunnelAddress?: string };
  /** Route to the FDB entry's underlay address, and the MTU of its device. */
  underlay?: { dst: string; route: RouteFact; mtu?: number };
  /**
   * The fail-closed table for other datacenters (undefined: not looked at):
   * whether it exists, and its tunnel_ifs set, the devices an address of
   * another datacenter may leave by.
   */
  failClosed?: { exists: boolean; tunnelIfs?: string[]; error?: string };
  /** When the host route goes into weft.xdc (src is on a gateway): that leg, down to the WireGuard peer. */
  gatewayLeg?: EncapFact;
  /** When the underlay route of the overlay's FDB entry goes into weft.wg0 (full mesh): the peer. */
  underlayWireGuard?: WireGuardFact;
  /** From an outside client through this host's ingress L4 path (then the path to the backend, as from a container). */
  ingress?: IngressFact;
  /** On a gateway holding neither end: the leg through it. */
  transit?: TransitFact;
  /** Every datacenter's gateways (topology). */
  gateways?: GatewayFact[];
  /** Gateways' last tunnel reports by host (admin certificate only). */
  tunnelReports?: Record<string, TunnelReportFact>;
};

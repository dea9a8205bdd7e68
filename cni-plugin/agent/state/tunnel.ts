// Plain data shared by the parts of the agent that carry traffic between
// datacenters: the fail-closed policy, the gateway dataplane, the probes that
// pick a gateway, and key rotation. See cni-plugin/agent/tunnel/README.md.

/** nftables table (family inet) that keeps cross-datacenter traffic inside the tunnel. */
export const FAIL_CLOSED_TABLE = 'weft_xdc';
/** A gateway's WireGuard device. */
export const WG_DEVICE = 'weft.wg0';
/** The VXLAN device gateways nest inside WireGuard, so any gateway accepts any other's traffic. */
export const XDC_DEVICE = 'weft.xdc';
/** VNI of weft.xdc: above any network's VNI the controller hands out. */
export const XDC_VNI = 16_777_215;
/** UDP port weft.xdc encapsulates on (only ever sent inside WireGuard). */
export const XDC_PORT = 4790;
/** UDP port of the probe responder every agent runs. */
export const DEFAULT_PROBE_PORT = 7472;
/** WireGuard's own overhead: outer IPv4 20 (IPv6 40) + UDP 8 + WireGuard 32. */
export const WG_OVERHEAD_V4 = 60;
export const WG_OVERHEAD_V6 = 80;
/** VXLAN overhead: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD = 50;

/** What this host is for cross-datacenter traffic. */
export type TunnelRole = 'host' | 'gateway';

/**
 * The inputs of the fail-closed rules, cached in the state dir so they are in
 * the kernel before anything else at the next start, even a cold boot with
 * the controller down.
 */
export type FailClosedPolicy = {
  role: TunnelRole;
  /** Every weft network's CIDR: the addresses the rules speak for. */
  pools: string[];
  /** This datacenter's subnets (and its datacenter pools where networks have them). */
  local: string[];
  /**
   * Underlay addresses no VXLAN may go to: hosts in other datacenters, and in
   * a mesh datacenter the other hosts of this one too (their overlay traffic
   * goes inside weft.wg0, to their tunnel addresses).
   */
  remoteUnderlays: string[];
  /**
   * This host's datacenter encrypts host-to-host traffic (full mesh). Cached
   * with the rest, so a restart builds the overlay's VXLAN devices with the
   * tunnel address as their source from the start, never flapping them.
   */
  mesh?: boolean;
  /** A mesh datacenter's other hosts' tunnel addresses: VXLAN to them leaves only by weft.wg0. */
  meshTunnels?: string[];
  /** The cluster's VXLAN UDP port. */
  vxlanPort: number;
  /** Overlay devices a non-gateway host may send remote traffic on (to its local gateway). */
  overlayDevices: string[];
};

/** One candidate a prober can pick: a gateway host, and whether it is draining (picked last). */
export type Candidate = { host: string; draining: boolean };

/** Which gateway carries traffic towards each remote datacenter, as this host has chosen. */
export type GatewayChoices = ReadonlyMap<string /* remote datacenter */, string /* gateway host */>;

/** Per remote datacenter, what the prober saw. */
export type PathHealth = {
  datacenter: string;
  chosen: string;
  /** ms since the epoch of the last probe answered, 0: never. */
  lastOkAt: number;
  consecutiveMisses: number;
  failovers: number;
  /** Round trip of the last answered probe, ms. */
  rttMs: number;
};

/** One WireGuard peer of a gateway, as reported. */
export type PeerReport = {
  host: string;
  datacenter: string;
  endpoint: string;
  /** seconds since the last handshake, -1: none yet. */
  handshakeAgeSeconds: number;
  rxBytes: number;
  txBytes: number;
};

/** What the agent says about its tunnels with each heartbeat and in metrics. */
export type TunnelSummary = {
  role: TunnelRole;
  datacenter: string;
  paths: PathHealth[];
  peers: PeerReport[];
  /** MTU of weft.wg0 / weft.xdc (0 on non-gateway hosts), and why (configured, derived, probed). */
  wgMtu: number;
  xdcMtu: number;
  mtuSource: 'configured' | 'derived' | 'probed' | 'none';
  /** ms since the epoch of the key the device holds now (0 unknown). */
  keySince: number;
};

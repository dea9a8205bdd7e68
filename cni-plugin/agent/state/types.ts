// Plain data passed between the agent's parts: the controller view (topology),
// the host's own attachments to weft networks, and the endpoint outbox.
import type { EndpointRecord as ContractEndpointRecord } from '../../../controller/api/proto';
import type { TunnelSummary } from './tunnel';

/** One weft network as this host is attached to it. */
export type NetworkAttachment = {
  network: string;
  vni: number;
  /** The network's whole CIDR (all hosts), e.g. 10.244.0.0/16. */
  networkCidr: string;
  /** This host's subnet in it, e.g. 10.244.3.0/24. */
  subnet: string;
  /** Gateway on the bridge: first usable address of the subnet, e.g. 10.244.3.1. */
  gateway: string;
  /** VXLAN device (VTEP) for this network: `weft.vx<vni>`. */
  vxlanDevice: string;
  /** Bridge the containers' veths join: `weft.br<vni>`. */
  bridge: string;
  /** MTU for container interfaces and the bridge (underlay MTU − 50 unless configured). */
  mtu: number;
};

/** A remote host as the agent needs it to program the overlay. */
export type RemoteHost = {
  name: string;
  underlayIp: string;
  vtepMac: string;
  rack: string;
  datacenter: string;
  /** network name -> that host's subnet CIDR */
  subnets: Record<string, string>;
  /** Raised by an operator (weft host rotate-key) to ask this host to rotate its WireGuard key; absent: never asked. */
  wgKeyRotation?: number;
  /** The host's registered WireGuard public key (base64); absent or "": none. Its mesh peers need it. */
  wgPublicKey?: string;
};

/** A datacenter as the controller describes it: how the other datacenters reach it over WireGuard. */
export type DatacenterInfo = {
  name: string;
  gateways: Array<{
    host: string;
    /** "ip:port" ("[ip]:port" for IPv6). */
    wanEndpoint: string;
    /** draining: takes no new peers; the other gateways carry its traffic. */
    state: 'active' | 'draining';
    /** The gateway host's registered public key; "" when it has none (left, or moved away): no tunnel to it. */
    wgPublicKey: string;
  }>;
  listenPort: number;
  /** 0: derived from the underlay. */
  mtu: number;
  /** Host-to-host traffic inside the datacenter is encrypted too. */
  mesh: boolean;
  /** The subnets leased to the datacenter's hosts, by network then subnet. */
  subnets: Array<{ network: string; subnet: string; host: string }>;
  /** network -> the datacenter's pool, where the network has datacenter pools. */
  pools: Record<string, string>;
};

export type Topology = {
  revision: number;
  /** Every host in the cluster, this one included. */
  hosts: RemoteHost[];
  networks: Array<{ name: string; vni: number; cidr: string }>;
  vxlanPort: number;
  /** Every datacenter with a record, by name; absent where a topology is built without them (tests of the overlay). */
  datacenters?: DatacenterInfo[];
};

/** An endpoint of this host: the contract's record without the host, which the client fills in. */
export type EndpointRecord = Omit<ContractEndpointRecord, 'host'>;

/**
 * Where the CNI handlers report container endpoints. It must never block or
 * fail an ADD/DEL because the controller is away: implementations queue
 * durably and deliver later.
 */
export type EndpointSink = {
  registered(ep: EndpointRecord): void;
  released(ep: EndpointRecord): void;
};

/** The last overlay reconcile, as the agent reports it with its heartbeats (kept by its metrics). */
export type OverlaySummary = {
  desired: number;
  /** Desired entries the kernel holds: desired minus the adds and replaces that failed. */
  programmed: number;
  failed: number;
  /** Hosts the render left out (e.g. no VTEP for a network). */
  skipped: number;
  /** ms since the epoch. */
  reconciledAt: number;
  topologyRevision: number;
};

/** What the agent says about itself with each heartbeat. */
export type HeartbeatReport = { agentVersion: string; overlay?: OverlaySummary; tunnel?: TunnelSummary };

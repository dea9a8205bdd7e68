// The agent's view of the controller (flannel's narrow subnet.Manager): a
// few calls about this host and the topology, folded from the client's raw
// watch events. The rest of the agent never sees gRPC or the proto's field
// names: it gets plain data, and errors it can classify with isTransient().
import {
  connectController, type ConnectOptions, type ConnectionState, type ControllerClient,
} from '../../../controller/api/client/client';
import {
  WEFT_CODE_TRAILER, endpointMessage, type ClusterConfigMsg, type HostSubnet, type TopologyEvent, type TunnelReport,
} from '../../../controller/api/proto';
import { silentLogger } from '../../../controller/common/log';
import type { EndpointRecord, Topology } from '../state/types';
import type { HeartbeatReport } from '../state/types';
import type { TunnelSummary } from '../state/tunnel';
import { applyTopologyEvent, emptyTopology } from './topology';

export type AgentClientOptions = Omit<ConnectOptions, 'trusted'> & {
  /** This host's name, as its certificate names it. */
  hostName: string;
};

/** What the agent says about itself in RegisterHost. */
export type HostRegistration = {
  underlayIp: string;
  vtepMac: string;
  rack: string;
  datacenter: string;
  wgPublicKey: string;
  agentVersion: string;
  /** Networks to hold a subnet in; empty: every network. */
  networks: string[];
};

export type Subnet = { network: string; subnet: string; leaseExpiresAt: number };

export type Registration = { subnets: Subnet[]; config: ClusterConfigMsg; revision: number };
export type HeartbeatResult = { subnets: Subnet[]; nextHeartbeatSeconds: number; revision: number };

export type TopologyWatchOptions = {
  /**
   * The topology the agent already has (revision included); the watch resumes
   * after it. Without it the watch starts from a snapshot.
   */
  initial?: Topology;
  /** Must equal initial.revision when both are given; a revision without its topology cannot be resumed. */
  fromRevision?: number;
  /** Called after each event that changed the topology, with the new topology. */
  onEvent(ev: TopologyEvent, topology: Topology): void;
};

export type TopologyWatch = {
  topology(): Topology;
  stop(): void;
};

export type AgentClient = {
  readonly hostName: string;
  registerHost(r: HostRegistration): Promise<Registration>;
  /** `report`: what the agent says about itself (version, last overlay reconcile); operators see it in `weft hosts`. */
  heartbeat(report?: HeartbeatReport): Promise<HeartbeatResult>;
  /** Graceful leave: the controller drops this host, its leases and its endpoints. */
  leave(): Promise<void>;
  registerEndpoint(ep: EndpointRecord): Promise<void>;
  /** false: the controller held nothing to release. */
  releaseEndpoint(ep: EndpointRecord): Promise<boolean>;
  watchTopology(o: TopologyWatchOptions): TopologyWatch;
  /**
   * Key rotation: this host's own gateway entries to `state`. Resolves with
   * the datacenters whose entry is now in that state (none: not a gateway).
   * Refused as the last active gateway: rejects with weftCode
   * WEFT_GATEWAY_LAST_ACTIVE (isLastActiveGateway).
   */
  setOwnGatewayState(state: 'active' | 'draining'): Promise<{ datacenters: string[] }>;
  /** Key rotation: this host's new WireGuard public key (only the public key leaves the host). */
  setWireGuardKey(publicKey: string): Promise<void>;
  connectionState(): ConnectionState;
  /** Called on every change of connectionState(); returns the unsubscribe function. */
  onConnectionState(fn: (s: ConnectionState) => void): () => void;
  close(): void;
};

/** A refused call's stable weft code (the controller sends it as trailing metadata), if any. */
export function weftCodeOf(err: unknown): string | undefined {
  const own = (err as { weftCode?: unknown })?.weftCode;
  if (typeof own === 'string') return own;
  const md = ((err as { cause?: { metadata?: { get(k: string): unknown[] } } })?.cause ?? (err as { metadata?: { get(k: string): unknown[] } }))?.metadata;
  const v = md?.get?.(WEFT_CODE_TRAILER)?.[0];
  return typeof v === 'string' ? v : undefined;
}

/** The controller refused to drain this host: it is its datacenter's last active gateway. */
export const isLastActiveGateway = (err: unknown): boolean => weftCodeOf(err) === 'WEFT_GATEWAY_LAST_ACTIVE';

/** The agent's tunnel summary as the heartbeat carries it: whole numbers where the proto has them, bounded as the controller checks. */
export function tunnelReportOf(t: TunnelSummary): TunnelReport {
  const count = (n: number) => (Number.isFinite(n) && n > 0 ? Math.min(Math.round(n), Number.MAX_SAFE_INTEGER) : 0);
  return {
    role: t.role,
    datacenter: t.datacenter,
    paths: t.paths.slice(0, MAX_REPORTED_PATHS).map((p) => ({
      datacenter: p.datacenter, chosen: p.chosen, last_ok_unix_ms: count(p.lastOkAt), consecutive_misses: count(p.consecutiveMisses),
      failovers: count(p.failovers), rtt_ms: Number.isFinite(p.rttMs) && p.rttMs > 0 ? Math.min(p.rttMs, 3_600_000) : 0,
    })),
    peers: t.peers.slice(0, MAX_REPORTED_PEERS).map((p) => ({
      host: p.host, datacenter: p.datacenter, endpoint: p.endpoint,
      handshake_age_seconds: p.handshakeAgeSeconds < 0 ? -1 : count(p.handshakeAgeSeconds), rx_bytes: count(p.rxBytes), tx_bytes: count(p.txBytes),
    })),
    wg_mtu: count(t.wgMtu),
    xdc_mtu: count(t.xdcMtu),
    mtu_source: t.mtuSource,
    key_since_unix_ms: count(t.keySince),
  };
}

/** What the controller accepts in one report (controller/api/validate.ts MAX_TUNNEL_PATHS, MAX_TUNNEL_PEERS). */
const MAX_REPORTED_PATHS = 64;
const MAX_REPORTED_PEERS = 1024;

const subnetOf = (s: HostSubnet): Subnet => ({ network: s.network, subnet: s.subnet, leaseExpiresAt: s.lease_expires_at_unix_ms });

/** The agent's client: the one controller client, connected with this host's identity. */
export function connectAgentClient(o: AgentClientOptions): AgentClient {
  const log = o.log ?? silentLogger;
  const client: ControllerClient = connectController({ ...o, trusted: 'the cluster CA this host joined with' });
  const hostName = o.hostName;

  function watchTopology(w: TopologyWatchOptions): TopologyWatch {
    if (w.fromRevision !== undefined && w.fromRevision !== (w.initial?.revision ?? 0)) {
      throw new TypeError(`watchTopology: fromRevision ${w.fromRevision} needs the topology at that revision (initial); resuming without it would miss every host not changed since`);
    }
    let topology = w.initial ?? emptyTopology();
    const watch = client.watch('WatchTopology', {
      fromRevision: topology.revision,
      onEvent(ev) {
        if (ev.kind === 'SNAPSHOT' && ev.revision < topology.revision) {
          // Revisions went backwards: the controller's store was wiped or replaced. Its snapshot is the truth now.
          log.warn({ had: topology.revision, snapshot: ev.revision }, 'controller revision went backwards; taking its snapshot');
          topology = emptyTopology();
        }
        const next = applyTopologyEvent(topology, ev);
        if (next === topology) return;
        topology = next;
        w.onEvent(ev, topology);
      },
    });
    return { topology: () => topology, stop: () => watch.stop() };
  }

  return {
    hostName,
    async registerHost(r) {
      const res = await client.call('RegisterHost', {
        name: hostName, underlay_ip: r.underlayIp, vtep_mac: r.vtepMac, rack: r.rack, datacenter: r.datacenter,
        wg_public_key: r.wgPublicKey, agent_version: r.agentVersion, networks: r.networks,
      });
      if (!res.config) throw new Error(`RegisterHost via ${o.server}: the answer holds no cluster config`);
      return { subnets: (res.host?.subnets ?? []).map(subnetOf), config: res.config, revision: res.revision };
    },
    async heartbeat(report) {
      const overlay = report?.overlay && {
        desired: report.overlay.desired, programmed: report.overlay.programmed, failed: report.overlay.failed, skipped: report.overlay.skipped,
        reconciled_at_unix_ms: Math.round(report.overlay.reconciledAt), topology_revision: report.overlay.topologyRevision,
      };
      const tunnel = report?.tunnel && tunnelReportOf(report.tunnel);
      const res = await client.call('Heartbeat', { name: hostName, ...(report && { agent_version: report.agentVersion, overlay, tunnel }) });
      return { subnets: res.subnets.map(subnetOf), nextHeartbeatSeconds: res.next_heartbeat_seconds, revision: res.revision };
    },
    async leave() {
      await client.call('LeaveHost', { name: hostName });
    },
    async registerEndpoint(ep) {
      await client.call('RegisterEndpoint', { endpoint: endpointMessage({ ...ep, host: hostName }) });
    },
    async releaseEndpoint(ep) {
      const res = await client.call('ReleaseEndpoint', { network: ep.network, ip: ep.ip, container_id: ep.containerId });
      return res.released;
    },
    watchTopology,
    async setOwnGatewayState(state) {
      try {
        const res = await client.call('SetOwnGatewayState', { name: hostName, state });
        return { datacenters: res.datacenters };
      } catch (err) {
        const code = weftCodeOf(err);
        throw code ? Object.assign(err as Error, { weftCode: code }) : err;
      }
    },
    async setWireGuardKey(publicKey) {
      await client.call('SetWireGuardKey', { name: hostName, wg_public_key: publicKey });
    },
    connectionState: () => client.connectionState(),
    onConnectionState: (fn) => client.onConnectionState(fn),
    close: () => client.close(),
  };
}

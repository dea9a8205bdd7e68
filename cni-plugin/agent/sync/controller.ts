// The agent's view of the controller (flannel's narrow subnet.Manager): a
// few calls about this host and the topology, folded from the client's raw
// watch events. The rest of the agent never sees gRPC or the proto's field
// names: it gets plain data, and errors it can classify with isTransient().
import {
  connectController, type ConnectOptions, type ConnectionState, type ControllerClient,
} from '../../../controller/api/client/client';
import { endpointMessage, type ClusterConfigMsg, type HostSubnet, type TopologyEvent } from '../../../controller/api/proto';
import { silentLogger } from '../../../controller/common/log';
import type { EndpointRecord, Topology } from '../state/types';
import type { HeartbeatReport } from '../state/types';
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
  connectionState(): ConnectionState;
  /** Called on every change of connectionState(); returns the unsubscribe function. */
  onConnectionState(fn: (s: ConnectionState) => void): () => void;
  close(): void;
};

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
      const res = await client.call('Heartbeat', { name: hostName, ...(report && { agent_version: report.agentVersion, overlay }) });
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
    connectionState: () => client.connectionState(),
    onConnectionState: (fn) => client.onConnectionState(fn),
    close: () => client.close(),
  };
}

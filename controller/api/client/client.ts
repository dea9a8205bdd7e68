// The agent's only door to the controller: a few calls and the topology
// watch (flannel's narrow subnet.Manager). The rest of the agent never sees
// gRPC: it gets plain data, and errors it can classify with isTransient().
//
// The watch never gives up: it reconnects with jittered exponential backoff
// and resumes from the last revision it applied, so an outage costs neither
// a gap nor a duplicate; when the controller can no longer resume (history
// compacted) it answers with a SNAPSHOT, applied as a full replacement.
//
// A failure that is the controller's certificate rather than an outage (its
// names no longer include --server, another CA, expired) is retried like an
// outage, since the controller may be fixed while the agent waits, but each
// time it is logged as an error that says what to change.
import * as grpc from '@grpc/grpc-js';
import {
  controllerClientConstructor, type ClusterConfigMsg, type Endpoint, type HeartbeatResponse, type HostSubnet,
  type RegisterHostRequest, type RegisterHostResponse, type ReleaseEndpointResponse, type TopologyEvent,
} from '../proto';
import type { EndpointRecord, Topology } from '../../../cni-plugin/agent/types';
import { type Logger, silentLogger } from '../../common/log';
import { backoff, type BackoffOptions } from './backoff';
import { fetchServerChain } from './credentials';
import { certNames, certProblemMessage, certProblemOf } from './server-cert';
import { applyTopologyEvent, emptyTopology } from '../../../cni-plugin/agent/sync/topology';

export type ConnectionState = 'connected' | 'connecting' | 'disconnected';

export type ConnectOptions = {
  /** host:port of the controller (or of a load balancer in front of several). */
  server: string;
  credentials: grpc.ChannelCredentials;
  /** This host's name, as its certificate names it. */
  hostName: string;
  /** Deadline of each unary call; default 10 s. */
  callTimeoutMs?: number;
  /** Watch reconnects; default 250 ms doubling to 10 s. */
  backoff?: BackoffOptions;
  log?: Logger;
  channelOptions?: grpc.ChannelOptions;
  /** The agent's state dir, named in the fix for a controller certificate from another CA. */
  stateDir?: string;
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

export type ControllerClient = {
  readonly hostName: string;
  registerHost(r: HostRegistration): Promise<Registration>;
  heartbeat(): Promise<HeartbeatResult>;
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

/** Worth retrying unchanged: the controller was away, busy or cut short. Anything else needs a different request. */
export function isTransient(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== 'number') return true; // not a gRPC status: a local failure, try again
  return [
    grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.RESOURCE_EXHAUSTED, grpc.status.ABORTED,
    grpc.status.INTERNAL, grpc.status.UNKNOWN, grpc.status.CANCELLED,
  ].includes(code);
}

export function grpcCode(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? grpc.status[code] ?? String(code) : 'LOCAL';
}

const subnetOf = (s: HostSubnet): Subnet => ({ network: s.network, subnet: s.subnet, leaseExpiresAt: s.lease_expires_at_unix_ms });

function stateOf(c: grpc.connectivityState, everReady: boolean): ConnectionState {
  switch (c) {
    case grpc.connectivityState.READY:
      return 'connected';
    case grpc.connectivityState.CONNECTING:
      return 'connecting';
    case grpc.connectivityState.IDLE:
      // Idle before the first connection is "not tried yet"; after one it means the connection dropped.
      return everReady ? 'disconnected' : 'connecting';
    default:
      return 'disconnected';
  }
}

export function connectController(o: ConnectOptions): ControllerClient {
  const log = o.log ?? silentLogger;
  const callTimeoutMs = o.callTimeoutMs ?? 10_000;
  const Client = controllerClientConstructor();
  const client = new Client(o.server, o.credentials, {
    // Find a controller that vanished without closing the connection (host crash, partition).
    'grpc.keepalive_time_ms': 20_000,
    'grpc.keepalive_timeout_ms': 10_000,
    // grpc-js's own reconnect backoff grows to 2 minutes by default: an agent would then notice a returned
    // controller long after our 10 s cap. Keep the channel's cap at ours.
    'grpc.initial_reconnect_backoff_ms': 250,
    'grpc.max_reconnect_backoff_ms': o.backoff?.maxMs ?? 10_000,
    ...o.channelOptions,
  });
  const channel = client.getChannel();
  let closed = false;
  let everReady = false;
  let state: ConnectionState = 'connecting';
  const listeners = new Set<(s: ConnectionState) => void>();

  function setState(s: ConnectionState): void {
    if (s === state) return;
    state = s;
    log.info({ server: o.server, state: s }, 'controller connection');
    for (const l of [...listeners]) {
      try {
        l(s);
      } catch (err) {
        log.error({ err }, 'connection state listener failed');
      }
    }
  }

  // Follow the channel; the watch also reports a broken stream at once (the channel may notice later).
  const follow = () => {
    if (closed) return;
    const c = channel.getConnectivityState(false);
    if (c === grpc.connectivityState.SHUTDOWN) return;
    if (c === grpc.connectivityState.READY) everReady = true;
    setState(stateOf(c, everReady));
    channel.watchConnectivityState(c, Infinity, follow);
  };
  channel.getConnectivityState(true);
  follow();

  // Reading the certificate's names takes a handshake; one at a time is enough.
  let readingNames = false;
  function reportCertProblem(err: unknown): void {
    const problem = certProblemOf(err);
    if (!problem || closed) return;
    const report = (names?: string[]) => {
      if (closed) return;
      const message = certProblemMessage(problem, o.server, { names, trusted: 'the cluster CA this host joined with', stateDir: o.stateDir });
      log.error({ server: o.server, problem, err }, `cannot connect to the controller: ${message}`);
    };
    if (problem !== 'name') return report();
    if (readingNames) return;
    readingNames = true;
    fetchServerChain(o.server, 5000)
      .then((chain) => report(chain[0] ? certNames(chain[0]) : undefined), () => report())
      .finally(() => (readingNames = false));
  }

  function unary<Req, Res>(method: string, req: Req): Promise<Res> {
    if (closed) return Promise.reject(new Error(`controller client is closed (${method})`));
    return new Promise((resolve, reject) => {
      (client as any)[method](req, { deadline: Date.now() + callTimeoutMs }, (err: grpc.ServiceError | null, res: Res) => {
        if (err) {
          // Keep the code and details reachable for callers that classify errors.
          const e = Object.assign(new Error(`${method} via ${o.server}: ${grpcCode(err)}: ${err.details || err.message}`), { code: err.code, details: err.details });
          reportCertProblem(err);
          reject(e);
        } else resolve(res);
      });
    });
  }

  const endpointMsg = (ep: EndpointRecord): Endpoint => ({
    network: ep.network, ip: ep.ip, container_id: ep.containerId, host: o.hostName, labels: ep.labels, ifname: ep.ifname,
  });

  function watchTopology(w: TopologyWatchOptions): TopologyWatch {
    if (w.fromRevision !== undefined && w.fromRevision !== (w.initial?.revision ?? 0)) {
      throw new TypeError(`watchTopology: fromRevision ${w.fromRevision} needs the topology at that revision (initial); resuming without it would miss every host not changed since`);
    }
    let topology = w.initial ?? emptyTopology();
    let stopped = false;
    let call: grpc.ClientReadableStream<TopologyEvent> | null = null;
    let timer: NodeJS.Timeout | null = null;
    const delays = backoff(o.backoff);

    const open = () => {
      timer = null;
      if (stopped || closed) return;
      let over = false;
      const s: grpc.ClientReadableStream<TopologyEvent> = (client as any).WatchTopology({ from_revision: topology.revision });
      call = s;
      // A stream that failed on a live connection left us "disconnected"; the channel will not say otherwise on its own.
      setState(stateOf(channel.getConnectivityState(false), everReady));
      log.debug({ from: topology.revision }, 'watching topology');
      s.on('data', (ev: TopologyEvent) => {
        delays.reset();
        if (ev.kind === 'SNAPSHOT' && ev.revision < topology.revision) {
          // Revisions went backwards: the controller's store was wiped or replaced. Its snapshot is the truth now.
          log.warn({ had: topology.revision, snapshot: ev.revision }, 'controller revision went backwards; taking its snapshot');
          topology = emptyTopology();
        }
        const next = applyTopologyEvent(topology, ev);
        if (next === topology) return;
        topology = next;
        try {
          w.onEvent(ev, topology);
        } catch (err) {
          log.error({ err, kind: ev.kind, revision: ev.revision }, 'topology event handler failed');
        }
      });
      const again = (why: string, err?: grpc.ServiceError) => {
        if (over) return;
        over = true;
        if (stopped || closed) return;
        setState('disconnected');
        const ms = delays.next();
        log.warn({ why, code: err ? grpcCode(err) : undefined, err, retryInMs: ms, from: topology.revision }, 'topology watch interrupted');
        if (err) reportCertProblem(err);
        timer = setTimeout(open, ms);
      };
      s.on('error', (err: grpc.ServiceError) => again('error', err));
      // A clean end means the controller is going away (its store closed): reconnect, maybe elsewhere.
      s.on('end', () => again('ended by the controller'));
    };
    open();
    return {
      topology: () => topology,
      stop() {
        stopped = true;
        if (timer) clearTimeout(timer);
        call?.cancel();
      },
    };
  }

  return {
    hostName: o.hostName,
    async registerHost(r) {
      const req: RegisterHostRequest = {
        name: o.hostName, underlay_ip: r.underlayIp, vtep_mac: r.vtepMac, rack: r.rack, datacenter: r.datacenter,
        wg_public_key: r.wgPublicKey, agent_version: r.agentVersion, networks: r.networks,
      };
      const res = await unary<RegisterHostRequest, RegisterHostResponse>('RegisterHost', req);
      if (!res.config) throw new Error(`RegisterHost via ${o.server}: the answer holds no cluster config`);
      return { subnets: (res.host?.subnets ?? []).map(subnetOf), config: res.config, revision: res.revision };
    },
    async heartbeat() {
      const res = await unary<{ name: string }, HeartbeatResponse>('Heartbeat', { name: o.hostName });
      return { subnets: res.subnets.map(subnetOf), nextHeartbeatSeconds: res.next_heartbeat_seconds, revision: res.revision };
    },
    async leave() {
      await unary('LeaveHost', { name: o.hostName });
    },
    async registerEndpoint(ep) {
      await unary('RegisterEndpoint', { endpoint: endpointMsg(ep) });
    },
    async releaseEndpoint(ep) {
      const res = await unary<unknown, ReleaseEndpointResponse>('ReleaseEndpoint', { network: ep.network, ip: ep.ip, container_id: ep.containerId });
      return res.released;
    },
    watchTopology,
    connectionState: () => state,
    onConnectionState(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    close() {
      closed = true;
      client.close();
      setState('disconnected');
    },
  };
}

// The Controller service's handlers. Each one: who is calling, is every field
// valid (nothing is written otherwise), may this caller touch this record,
// then the registry / IPAM call, then the reply. Errors become gRPC statuses
// in one place (status.ts).
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../common/log';
import {
  type ClusterConfig, type Lease, type LeaseOptions, LeaseLostError, acquireLease, loadClusterConfig,
  releaseLease, renewLease,
} from '../ipam';
import { type Ca, issueClientCert } from '../pki';
import { hostLeases } from '../ipam/leases';
import { LEASES_PREFIX } from '../ipam/records';
import { type HostRecord, type RegisterHostOptions, checkHostClaims, deleteHost, getHost, registerHost, touchHost } from '../registry/hosts';
import { HostConflictError } from '../registry/errors';
import { getEndpoint, listEndpoints, registerEndpoint, releaseEndpoint } from '../registry/endpoints';
import { ENDPOINTS_PREFIX, HOSTS_PREFIX, SERVICES_PREFIX } from '../registry/keys';
import { deleteService, listServices, putService } from '../registry/services';
import type { Store } from '../store/types';
import { verifyToken } from '../pki/tokens';
import { type Identity, type IdentityFn, describeIdentity } from './caller';
import type * as pb from '../api/proto';
import { endpointMessage } from '../api/proto';
import {
  checkCreateService, checkJoin, checkListEndpoints, checkRegisterEndpoint, checkRegisterHost, checkReleaseEndpoint,
} from './requests';
import { SERVICES_KEYS, type ServicesState, servicesChanges, servicesFromKvs, servicesSnapshot, serviceMessage } from './service-state';
import { PermissionError, UnauthenticatedError, WatchLimitError, toServiceError } from './status';
import {
  TOPOLOGY_KEYS, type TopologyState, configMessage, hostMessage, sortSubnets, topologyChanges, topologyFromKvs, topologySnapshot,
} from './topology';
import { type Role, checkHostName, checkIpInSubnet, checkName, checkRevision, fail, must } from '../api/validate';
import { HUB_LOG, type Hub, createHub } from './watch-hub';
import { type QueueLimit, createSink } from './watch-sink';
import { datacenterHandlers } from './datacenter-handlers';

export type LeaseFns = {
  acquireLease: typeof acquireLease;
  renewLease: typeof renewLease;
  releaseLease: typeof releaseLease;
};

export type ControllerDeps = {
  store: Store;
  identity: IdentityFn;
  logger: Logger;
  controllerId: string;
  /** Join is served only when the controller holds the CA. */
  join?: { ca: Ca; clientCertTtlDays: number };
  leases?: LeaseFns;
  loadConfig?: (store: Store) => Promise<ClusterConfig>;
  /** ms since the epoch; injectable for tests. */
  now?: () => number;
  isLeader?: () => boolean;
  version?: string;
  /** What a watch stream may have waiting for its client before it is ended (default WATCH_QUEUE_LIMIT). */
  watchQueue?: QueueLimit;
  /** Bounds of each watch hub's log of recent messages, which resumes are replayed from (default HUB_LOG). */
  watchLog?: QueueLimit;
  /** Watch streams of one kind one caller may have open at once, per kind of caller (default WATCH_STREAMS_PER_CALLER). */
  watchStreams?: Partial<WatchStreamLimits>;
};

export type WatchStreamLimits = Record<'host' | 'ingress' | 'admin', number>;

/**
 * Each open stream costs the controller a sink, HTTP/2 state and a share of
 * every message's fan-out, so one certificate must not be able to open
 * thousands. An agent holds one stream per kind and briefly a second while
 * it reconnects; an ingress or an operator's CLI a few more. A client that
 * reaches the cap gets RESOURCE_EXHAUSTED until one of its streams closes.
 */
export const WATCH_STREAMS_PER_CALLER: WatchStreamLimits = { host: 8, ingress: 8, admin: 8 };

/**
 * A client this far behind is ended and resumes. Far above what a live
 * agent lags (one message per topology change) or a burst brings (the
 * SQLite store hands out at most 1000 revisions per batch), and the
 * messages are shared, so a waiting stream holds pointers, not copies.
 * Half the hub's log, so the client's resume is usually served from memory.
 */
export const WATCH_QUEUE_LIMIT: QueueLimit = { messages: HUB_LOG.messages / 2, bytes: HUB_LOG.bytes / 2 };

type Who = Exclude<Identity, null>;
/**
 * Who may call: 'reader' is every identity, ingresses included (they read
 * services and status, nothing else); 'any' is hosts and admins; 'host'
 * hosts only; 'admin' admins only.
 */
type Auth = 'anonymous' | 'reader' | 'any' | 'host' | 'admin';

/** What an ingress certificate may call: everything else is PERMISSION_DENIED. */
export const INGRESS_METHODS = ['ListServices', 'WatchServices', 'GetStatus'] as const;

const IPAM: LeaseFns = { acquireLease, renewLease, releaseLease };

const ROLE_TOKEN: Record<Role, string> = {
  host: 'a host token (for `weft agent`)',
  ingress: 'an ingress token (for `weft ingress`)',
};
const ROLE_TOKEN_FIX: Record<Role, string> = {
  host: 'a host joins with a token from `weft token create`',
  ingress: 'an ingress joins with a token from `weft token create --role ingress`',
};

export function createControllerService(deps: ControllerDeps): grpc.UntypedServiceImplementation {
  const { store, logger } = deps;
  const now = deps.now ?? Date.now;
  const ipam = deps.leases ?? IPAM;
  const loadConfig = deps.loadConfig ?? loadClusterConfig;
  const leaseOpts: LeaseOptions = { now };

  function authorize(method: string, auth: Auth, call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): Who | null {
    if (auth === 'anonymous') return null;
    const who = deps.identity(call as never);
    if (who === null) throw new UnauthenticatedError(`${method} needs a client certificate issued by this cluster's CA`);
    if (who !== 'admin' && 'ingress' in who && auth !== 'reader') {
      throw new PermissionError(`${method} is not open to ${describeIdentity(who)}: an ingress may call only ${INGRESS_METHODS.join(', ')}`);
    }
    if (auth === 'host' && who === 'admin') throw new PermissionError(`${method} is for hosts; an admin certificate cannot act as a host`);
    if (auth === 'admin' && who !== 'admin') throw new PermissionError(`${method} needs an admin certificate (${describeIdentity(who)} is not one)`);
    return who;
  }

  /** A host may act only on itself; refusals are logged, as they mean a misconfigured or hostile agent. */
  function mustBeSelf(method: string, who: Who | null, host: string, field: string): void {
    if (who === 'admin' || (who && 'host' in who && who.host === host)) return;
    logger.warn({ method, caller: describeIdentity(who), target: host }, 'refused: host acting on another host\'s records');
    throw new PermissionError(`${field}: ${describeIdentity(who)} may not act for host "${host}"`);
  }

  function unary<Req, Res>(method: string, auth: Auth, fn: (req: Req, who: Who | null) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      let who: Who | null = null;
      Promise.resolve()
        .then(() => {
          who = authorize(method, auth, call as never);
          return fn(call.request, who);
        })
        .then(
          (res) => callback(null, res),
          (err) => callback(toServiceError(err, { logger, method, caller: describeIdentity(who) })),
        );
    };
  }

  /** Through the host index: registrations and heartbeats must not cost a read of every lease in the cluster. */
  async function hostSubnets(host: string, config?: ClusterConfig): Promise<Lease[]> {
    // Leases exist only in configured networks: saveClusterConfig refuses a change that would orphan one.
    const networks = (config ?? (await loadConfig(store))).networks.map((n) => n.name);
    return hostLeases(store, host, networks);
  }

  const subnetMsg = (l: Lease): pb.HostSubnet => ({ network: l.network, subnet: l.subnet, lease_expires_at_unix_ms: l.expiresAt });

  // ---- hosts --------------------------------------------------------------

  const Join = unary<pb.JoinRequest, pb.JoinResponse>('Join', 'anonymous', async (req) => {
    checkJoin(req);
    if (!deps.join) throw new PermissionError('this controller does not hold the cluster CA and cannot serve Join');
    const role: Role = req.role === 'ingress' ? 'ingress' : 'host';
    const v = await verifyToken(store, req.token);
    if (!v.ok) {
      logger.warn({ method: 'Join', host: req.host_name, role, reason: v.reason }, 'refused join');
      throw new UnauthenticatedError(`token: refused (${v.reason})`);
    }
    if (v.role !== role) {
      logger.warn({ method: 'Join', host: req.host_name, role, token: v.id, tokenRole: v.role }, 'refused join: token made for another role');
      throw new PermissionError(`token: ${v.id} is ${ROLE_TOKEN[v.role]}; ${ROLE_TOKEN_FIX[role]}`);
    }
    // Tokens are reusable, so a token alone must not let its holder take over
    // a host that is alive: only a name that is free or has gone quiet for a
    // whole lease TTL can be joined again. Ingresses keep no record here, and
    // their certificates only read, so their names are not checked for
    // uniqueness; being of another kind, they never collide with a host's.
    const existing = role === 'host' ? await getHost(store, req.host_name) : undefined;
    if (existing) {
      const ttlMs = (await loadConfig(store)).leaseTtlSeconds * 1000;
      const quietMs = now() - existing.lastHeartbeat;
      if (quietMs < ttlMs) {
        logger.warn({ method: 'Join', host: req.host_name, token: v.id, lastHeartbeatMsAgo: quietMs }, 'refused join: host is registered and alive');
        throw new PermissionError(
          `host_name: host "${req.host_name}" is registered and alive (last heartbeat ${Math.round(quietMs / 1000)}s ago); ` +
            `a token cannot take over a live host's name. Stop that host's agent or let it leave, then retry in ${Math.ceil((ttlMs - quietMs) / 1000)}s`,
        );
      }
    }
    const issued = await issueClientCert(deps.join.ca, { host: req.host_name, role, publicKeyPem: req.public_key_pem, ttlDays: deps.join.clientCertTtlDays });
    logger.info({ method: 'Join', host: req.host_name, role, token: v.id }, role === 'host' ? 'host joined' : 'ingress joined');
    return { certificate_pem: issued.certPem, ca_pem: deps.join.ca.certPem, expires_at_unix_ms: issued.notAfter.getTime() };
  });

  const RegisterHost = unary<pb.RegisterHostRequest, pb.RegisterHostResponse>('RegisterHost', 'host', async (req, who) => {
    const config = await loadConfig(store);
    const input = checkRegisterHost(req, config.networks);
    mustBeSelf('RegisterHost', who, input.name, 'name');
    const datacenter = input.datacenter || undefined;
    const { networks: _, ...fields } = input;
    const record: HostRecord = { ...fields, lastHeartbeat: now() };
    // A host silent past its lease TTL and the reclaim grace has lost its
    // subnets, so no agent routes to it any more: its underlay address (which
    // clouds hand to the next machine) and MAC are free again.
    const claims: RegisterHostOptions = { now: record.lastHeartbeat, goneAfterMs: (config.leaseTtlSeconds + config.reclaimGraceSeconds) * 1000 };
    // Refused before any lease is taken; registerHost below decides for good, in the write of the record.
    const plan = await refuseConflict(input.name, () => checkHostClaims(store, record, claims));
    // Leases first, host record last: watchers then see the host once, with its subnets.
    const leases: Lease[] = [];
    for (const network of input.networks) {
      leases.push(await ipam.acquireLease(store, { network, host: input.name, datacenter }, leaseOpts));
    }
    // Registration declares the host's networks: leases elsewhere go back to the pool.
    for (const l of await hostSubnets(input.name, config)) {
      if (!input.networks.includes(l.network)) await ipam.releaseLease(store, { network: l.network, subnet: l.subnet, host: l.host });
    }
    const { revision } = await refuseConflict(input.name, () => registerHost(store, record, claims, plan));
    logger.info({ method: 'RegisterHost', host: input.name, subnets: leases.map((l) => `${l.network}:${l.subnet}`) }, 'host registered');
    return { host: hostMessage(record, sortSubnets(leases.map(subnetMsg))), config: configMessage(config), revision };
  });

  /** A host claiming another's MAC, address or key is hostile or misconfigured: logged with the holder, whom the caller is not told. */
  async function refuseConflict<T>(host: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      if (err instanceof HostConflictError) {
        logger.warn({ method: 'RegisterHost', host, field: err.field, holder: err.holder }, 'refused: host claims a value another host holds');
      }
      throw err;
    }
  }

  const Heartbeat = unary<pb.HeartbeatRequest, pb.HeartbeatResponse>('Heartbeat', 'host', async (req, who) => {
    must(checkHostName(req.name, 'name'));
    mustBeSelf('Heartbeat', who, req.name, 'name');
    const config = await loadConfig(store);
    const { host } = await touchHost(store, req.name, now());
    const subnets: Lease[] = [];
    for (const l of await hostSubnets(req.name, config)) {
      try {
        subnets.push(await ipam.renewLease(store, { network: l.network, subnet: l.subnet, host: l.host }, leaseOpts));
      } catch (err) {
        if (!(err instanceof LeaseLostError)) throw err;
        // Reclaimed between our list and renew: take a subnet again (the host learns it from this reply and the watch).
        subnets.push(await ipam.acquireLease(store, { network: l.network, host: l.host, datacenter: host.datacenter || undefined }, leaseOpts));
      }
    }
    return {
      subnets: sortSubnets(subnets.map(subnetMsg)),
      // Three chances per TTL: one lost heartbeat never costs a lease.
      next_heartbeat_seconds: Math.max(1, Math.floor(config.leaseTtlSeconds / 3)),
      revision: await store.revision(),
    };
  });

  const LeaveHost = unary<pb.LeaveHostRequest, pb.LeaveHostResponse>('LeaveHost', 'host', async (req, who) => {
    must(checkHostName(req.name, 'name'));
    mustBeSelf('LeaveHost', who, req.name, 'name');
    // The host record goes first, so watchers see one HOST_DELETE rather than
    // the host shrinking lease by lease. A host that left has no containers:
    // its endpoints go too, or the ingress would keep sending to them.
    await deleteHost(store, req.name);
    const { endpoints } = await listEndpoints(store, { host: req.name });
    for (const e of endpoints) await releaseEndpoint(store, e.network, e.ip, { host: req.name, containerId: e.containerId });
    for (const l of await hostSubnets(req.name)) await ipam.releaseLease(store, { network: l.network, subnet: l.subnet, host: l.host });
    const revision = await store.revision();
    logger.info({ method: 'LeaveHost', host: req.name, endpoints: endpoints.length }, 'host left');
    return { revision };
  });

  // ---- endpoints ----------------------------------------------------------

  const RegisterEndpoint = unary<pb.RegisterEndpointRequest, pb.Endpoint>('RegisterEndpoint', 'host', async (req, who) => {
    const config = await loadConfig(store);
    const e = checkRegisterEndpoint(req, config.networks);
    mustBeSelf('RegisterEndpoint', who, e.host, 'endpoint.host');
    const [lease] = await hostLeases(store, e.host, [e.network]);
    if (!lease) fail(`endpoint.network: host "${e.host}" holds no subnet in network "${e.network}" (RegisterHost first)`);
    must(checkIpInSubnet(e.ip, 'endpoint.ip', lease.subnet, e.host));
    const res = await registerEndpoint(store, e);
    if (res.created) logger.info({ method: 'RegisterEndpoint', network: e.network, ip: e.ip, container: e.containerId, host: e.host }, 'endpoint registered');
    return endpointMessage(res.endpoint);
  });

  const ReleaseEndpoint = unary<pb.ReleaseEndpointRequest, pb.ReleaseEndpointResponse>('ReleaseEndpoint', 'any', async (req, who) => {
    const r = checkReleaseEndpoint(req);
    const held = await getEndpoint(store, r.network, r.ip);
    if (!held) return { released: false };
    mustBeSelf('ReleaseEndpoint', who, held.host, 'ip');
    const res = await releaseEndpoint(store, r.network, r.ip, { host: held.host, containerId: r.containerId });
    return { released: res.released };
  });

  const ListEndpoints = unary<pb.ListEndpointsRequest, pb.ListEndpointsResponse>('ListEndpoints', 'any', async (req) => {
    const f = checkListEndpoints(req);
    const { endpoints, revision } = await listEndpoints(store, f);
    return { endpoints: endpoints.map(endpointMessage), revision };
  });

  // ---- services -----------------------------------------------------------

  const CreateService = unary<pb.CreateServiceRequest, pb.Service>('CreateService', 'admin', async (req) => {
    const config = await loadConfig(store);
    const svc = checkCreateService(req, config.networks);
    const { created } = await putService(store, svc);
    logger.info({ method: 'CreateService', service: svc.name, created }, created ? 'service created' : 'service updated');
    return serviceMessage(svc);
  });

  const DeleteService = unary<pb.DeleteServiceRequest, pb.DeleteServiceResponse>('DeleteService', 'admin', async (req) => {
    must(checkName(req.name, 'name'));
    const { deleted } = await deleteService(store, req.name);
    if (deleted) logger.info({ method: 'DeleteService', service: req.name }, 'service deleted');
    return { deleted };
  });

  const ListServices = unary<pb.ListServicesRequest, pb.ListServicesResponse>('ListServices', 'reader', async () => {
    const { services, revision } = await listServices(store);
    return { services: services.map(serviceMessage), revision };
  });

  const GetStatus = unary<pb.GetStatusRequest, pb.Status>('GetStatus', 'reader', async () => {
    const count = async (p: string) => (await store.range(p)).kvs.length;
    return {
      controller_id: deps.controllerId,
      leader: deps.isLeader ? deps.isLeader() : true,
      revision: await store.revision(),
      store: store.kind,
      hosts: await count(HOSTS_PREFIX),
      leases: await count(LEASES_PREFIX),
      endpoints: await count(ENDPOINTS_PREFIX),
      services: await count(SERVICES_PREFIX),
      version: deps.version ?? '',
    };
  });

  // ---- watches ------------------------------------------------------------

  // One hub per kind for the whole process: every stream of a kind shares
  // its store watch, its state and the messages it derives (watch-hub.ts).
  const hubOpts = { store, logger, log: deps.watchLog };
  const topologyHub = createHub<TopologyState, pb.TopologyEvent>(
    { name: 'topology', prefixes: TOPOLOGY_KEYS, init: topologyFromKvs, snapshot: topologySnapshot, changes: topologyChanges },
    hubOpts,
  );
  const servicesHub = createHub<ServicesState, pb.ServiceEvent>(
    { name: 'services', prefixes: SERVICES_KEYS, init: servicesFromKvs, snapshot: servicesSnapshot, changes: servicesChanges },
    hubOpts,
  );
  const queueLimit = deps.watchQueue ?? WATCH_QUEUE_LIMIT;
  const streamLimits: WatchStreamLimits = { ...WATCH_STREAMS_PER_CALLER, ...deps.watchStreams };
  /** Open streams per method and caller; an entry goes when its count reaches 0, so the map holds only callers with streams open. */
  const openStreams = new Map<string, number>();

  /** Counts the stream against its caller's cap until `signal` aborts (the stream ended, however it ended); throws at the cap. */
  function takeStreamSlot(method: string, who: Who, signal: AbortSignal): void {
    if (signal.aborted) return;
    const kind = who === 'admin' ? 'admin' : 'ingress' in who ? 'ingress' : 'host';
    const cap = streamLimits[kind];
    const key = `${method}\0${describeIdentity(who)}`;
    const n = openStreams.get(key) ?? 0;
    if (n >= cap) {
      logger.warn({ method, caller: describeIdentity(who), open: n, cap }, 'refused watch stream: caller is at its cap');
      throw new WatchLimitError(`${method}: ${describeIdentity(who)} already has ${n} ${method} streams open (at most ${cap} per ${kind}); close one before opening another`);
    }
    openStreams.set(key, n + 1);
    signal.addEventListener('abort', () => {
      const left = (openStreams.get(key) ?? 1) - 1;
      if (left > 0) openStreams.set(key, left);
      else openStreams.delete(key);
    }, { once: true });
  }

  /**
   * One watch stream: snapshot or resume, then one message per revision
   * that matters, from the kind's hub. A client that does not keep up is
   * ended with RESOURCE_EXHAUSTED (watch-sink.ts) and resumes.
   */
  function stream<Req extends { from_revision: number }, Msg extends { revision: number }>(
    method: string,
    auth: Auth,
    hub: Hub<Msg>,
  ): grpc.handleServerStreamingCall<Req, Msg> {
    return (call) => {
      let who: Who | null = null;
      const sink = createSink(call, {
        limit: queueLimit,
        toStatus: (err) => toServiceError(err, { logger, method, caller: describeIdentity(who) }),
        onOverflow: (resumeFrom) =>
          logger.warn({ method, caller: describeIdentity(who), limit: queueLimit, resumeFrom }, 'watch stream fell behind: ended it for the client to resume'),
      });
      Promise.resolve()
        .then(() => {
          const caller = authorize(method, auth, call as never);
          who = caller;
          must(checkRevision(call.request.from_revision, 'from_revision'));
          // Only 'anonymous' methods have no caller, and no watch is one.
          if (caller) takeStreamSlot(method, caller, sink.signal);
          return hub.attach(sink, call.request.from_revision, { method, caller: describeIdentity(who) });
        })
        .catch((err) => sink.fail(err));
    };
  }

  const WatchTopology = stream<pb.WatchTopologyRequest, pb.TopologyEvent>('WatchTopology', 'any', topologyHub);
  const WatchServices = stream<pb.WatchServicesRequest, pb.ServiceEvent>('WatchServices', 'reader', servicesHub);

  return {
    Join, RegisterHost, Heartbeat, LeaveHost, WatchTopology,
    RegisterEndpoint, ReleaseEndpoint, ListEndpoints,
    CreateService, DeleteService, ListServices, WatchServices,
    GetStatus,
    ...datacenterHandlers({ store, logger, loadConfig, unary }),
  } as grpc.UntypedServiceImplementation;
}

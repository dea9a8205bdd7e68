// The Controller service's handlers. Each one: who is calling, is every field
// valid (nothing is written otherwise), may this caller touch this record,
// then the registry / IPAM call, then the reply. Errors become gRPC statuses
// in one place (status.ts).
import { X509Certificate } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../common/log';
import {
  type ClusterConfig, type Lease, type LeaseOptions, LeaseLostError, acquireLease, loadClusterConfig,
  releaseLease, renewLease,
} from '../ipam';
import { type Ca, issueClientCert, verifyPossession } from '../pki';
import type { PossessionProof__Output } from '../api/gen/weft/v1/PossessionProof';
import type { RenewCertificateRequest__Output } from '../api/gen/weft/v1/RenewCertificateRequest';
import { type CertKind, listIssuedCerts, recordIssuedCert, revokeCerts } from '../registry/certificates';
import { revokedKey } from '../registry/keys';
import { removeHost } from './host-removal';
import { JOIN_LIMIT, type JoinLimit, createJoinGuard } from './join-guard';
import type { RevocationSet } from './revocations';
import { hostLeases } from '../ipam/leases';
import { LEASES_PREFIX } from '../ipam/records';
import { type HostRecord, type RegisterHostOptions, checkHostClaims, getHost, registerHost, touchHost } from '../registry/hosts';
import { HostConflictError } from '../registry/errors';
import { getEndpoint, listEndpoints, registerEndpoint, releaseEndpoint } from '../registry/endpoints';
import { ENDPOINTS_PREFIX, HOSTS_PREFIX, SERVICES_PREFIX } from '../registry/keys';
import { deleteService, listServices, putService } from '../registry/services';
import type { Store } from '../store/types';
import { verifyToken } from '../pki/tokens';
import { type Identity, type IdentityFn, describeIdentity } from './caller';
import type * as pb from '../api/proto';
import { UndecodableRequest, endpointMessage } from '../api/proto';
import {
  checkCreateService, checkJoin, checkListEndpoints, checkRegisterEndpoint, checkRegisterHost, checkReleaseEndpoint,
} from './requests';
import { SERVICES_KEYS, type ServicesState, servicesChanges, servicesFromKvs, servicesProgress, servicesSnapshot, serviceMessage } from './service-state';
import { HostNameTakenError, JoinRateLimitedError, PermissionError, UnauthenticatedError, WatchLimitError, toServiceError } from './status';
import {
  TOPOLOGY_KEYS, type TopologyState, configMessage, hostMessage, sortSubnets, topologyChanges, topologyFromKvs, topologyMerge, topologyMergeable, topologyProgress, topologySnapshot,
} from './topology';
import { checkAgentVersion, checkOverlayReport, checkTunnelReport } from '../api/validate';
import { type Role, checkPossessionProof, normalizeSerial, checkHostName, checkIpInSubnet, checkName, checkRevision, fail, must } from '../api/validate';
import { HUB_LOG, type Hub, createHub } from './watch-hub';
import { type QueueLimit, createSink } from './watch-sink';
import { datacenterHandlers } from './datacenter-handlers';
import { clusterViewHandlers, overlaySummaryOf } from './cluster-view';
import { tunnelHandlers } from './tunnel-handlers';
import { tunnelRecordOf } from './tunnel-view';
import { DATACENTERS_PREFIX } from '../registry/keys';

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
  /**
   * Join and RenewCertificate are served only when the controller holds the
   * CA. renewGraceMs: how long after expiry a certificate's key may still
   * renew it or prove a rejoining host is itself (default RENEW_GRACE_MS).
   */
  join?: { ca: Ca; clientCertTtlDays: number; renewGraceMs?: number };
  /** The revoked serials (revocations.ts); what this controller revokes is added at once. */
  revocations?: Pick<RevocationSet, 'has' | 'add'> & Partial<Pick<RevocationSet, 'onRevoked'>>;
  /** Join attempts per peer address and refusal log lines (default JOIN_LIMIT). */
  joinLimit?: Partial<JoinLimit>;
  leases?: LeaseFns;
  loadConfig?: (store: Store) => Promise<ClusterConfig>;
  /** ms since the epoch; injectable for tests. */
  now?: () => number;
  isLeader?: () => boolean;
  /** The id of the leading controller as this one last saw it (election.ts), for GetStatus. */
  leader?: () => string | undefined;
  version?: string;
  /** What a watch stream may have waiting for its client before it is ended (default WATCH_QUEUE_LIMIT). */
  watchQueue?: QueueLimit;
  /** Bounds of each watch hub's log of recent messages, which resumes are replayed from (default HUB_LOG). */
  watchLog?: QueueLimit;
  /** How often watch streams that asked are told the revision when nothing changed for them (default PROGRESS_MS). */
  watchProgressMs?: number;
  /** Snapshots each watch hub writes at once (default SNAPSHOTS_IN_FLIGHT). */
  watchSnapshotsInFlight?: number;
  /** Spacing of a watch hub's fan-outs, by the streams it serves (default PACE; zero: every message at once). */
  watchPace?: { usPerStream: number; maxMs: number };
  /** Watch streams of one kind one caller may have open at once, per kind of caller (default WATCH_STREAMS_PER_CALLER). */
  watchStreams?: Partial<WatchStreamLimits>;
};

/** A certificate that expired at most this long ago may still be renewed with its key (a host that was down over a weekend). */
export const RENEW_GRACE_MS = 7 * 86_400_000;

/** What a refused Join says, whatever the reason: it must not tell which token ids exist. */
export const JOIN_TOKEN_REFUSED = 'token: refused (unknown, expired or deleted token, or wrong secret)';

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
  const graceMs = deps.join?.renewGraceMs ?? RENEW_GRACE_MS;
  const joinGuard = createJoinGuard({ ...JOIN_LIMIT, ...deps.joinLimit }, logger, now);

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

  /** A body that was not the method's message at all (proto.ts): the caller's mistake, refused before any handler reads it. */
  function refuseUndecodable(method: string, req: unknown): void {
    if (req instanceof UndecodableRequest) fail(`request: not a valid ${method} request message (${req.reason})`);
  }

  function unary<Req, Res>(
    method: string, auth: Auth, fn: (req: Req, who: Who | null, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>,
  ): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      let who: Who | null = null;
      Promise.resolve()
        .then(() => {
          who = authorize(method, auth, call as never);
          refuseUndecodable(method, call.request);
          return fn(call.request, who, call);
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

  /** A new client certificate for `name`, recorded under its identity so deleting or leaving can revoke it. */
  async function issueRecorded(ca: Ca, kind: CertKind, name: string, publicKeyPem: string): Promise<pb.JoinResponse> {
    const issued = await issueClientCert(ca, { host: name, role: kind, publicKeyPem, ttlDays: deps.join!.clientCertTtlDays });
    await recordIssuedCert(store, { kind, name, serial: issued.serial, notAfter: issued.notAfter.getTime(), issuedAt: now() }, { now: now(), keepMs: graceMs });
    return { certificate_pem: issued.certPem, ca_pem: ca.certPem, expires_at_unix_ms: issued.notAfter.getTime() };
  }

  /** A proof of possession that holds: signed now by the key of an unrevoked certificate of this CA, expired at most graceMs ago. */
  function provenIdentity(ca: Ca, proof: PossessionProof__Output, purpose: 'join' | 'renew', publicKeyPem: string) {
    const r = verifyPossession(ca, proof, { purpose, publicKeyPem, now: now(), graceMs });
    if (!r.ok) return r;
    if (deps.revocations?.has(r.serial)) return { ok: false as const, reason: `certificate ${r.serial} has been revoked` };
    return r;
  }

  const Join = unary<pb.JoinRequest, pb.JoinResponse>('Join', 'anonymous', async (req, _who, call) => {
    const peer = call.getPeer();
    const waitMs = joinGuard.take(peer);
    if (waitMs > 0) {
      joinGuard.refused({ method: 'Join', peer, retryInMs: waitMs }, 'refused join: too many attempts from this address');
      throw new JoinRateLimitedError(`too many join attempts from this address; retry in ${Math.ceil(waitMs / 1000)}s`);
    }
    checkJoin(req);
    must(checkPossessionProof(req.previous, 'previous'));
    if (!deps.join) throw new PermissionError('this controller does not hold the cluster CA and cannot serve Join');
    const role: Role = req.role === 'ingress' ? 'ingress' : 'host';
    const v = await verifyToken(store, req.token);
    if (!v.ok) {
      joinGuard.refused({ method: 'Join', peer, host: req.host_name, role, reason: v.reason }, 'refused join');
      throw new UnauthenticatedError(JOIN_TOKEN_REFUSED);
    }
    if (v.role !== role) {
      joinGuard.refused({ method: 'Join', peer, host: req.host_name, role, token: v.id, tokenRole: v.role }, 'refused join: token made for another role');
      throw new PermissionError(`token: ${v.id} is ${ROLE_TOKEN[v.role]}; ${ROLE_TOKEN_FIX[role]}`);
    }
    // Tokens are reusable, so a token alone must not let its holder take
    // over a host, alive or quiet: a name that is registered, or holds a
    // certificate not yet expired, is joined again only by that host itself
    // (a proof signed with the key of its certificate), or after an operator
    // deleted it (`weft host delete`). Ingresses keep no record here and
    // only read, so their names are not reserved.
    if (role === 'host') {
      const registered = await getHost(store, req.host_name);
      const certified = registered ? [] : await listIssuedCerts(store, { kind: 'host', name: req.host_name });
      if (registered || certified.some((c) => c.notAfter > now())) {
        const proof = req.previous ? provenIdentity(deps.join.ca, req.previous, 'join', req.public_key_pem) : undefined;
        const self = proof?.ok && 'host' in proof.id && proof.id.host === req.host_name;
        if (!self) {
          const why = !proof ? 'no proof of being that host' : proof.ok ? 'the proof is for another identity' : proof.reason;
          joinGuard.refused({ method: 'Join', peer, host: req.host_name, token: v.id, why }, 'refused join: name belongs to an existing host');
          throw new HostNameTakenError(
            `host_name: host "${req.host_name}" exists; a token cannot take over an existing host's name (${why}). ` +
              `If that machine is gone for good, delete it first (weft host delete ${req.host_name}); a host rejoining keeps its host.key`,
          );
        }
      }
    }
    const res = await issueRecorded(deps.join.ca, role, req.host_name, req.public_key_pem);
    logger.info({ method: 'Join', host: req.host_name, role, token: v.id, selfProven: req.previous !== null && req.previous !== undefined }, role === 'host' ? 'host joined' : 'ingress joined');
    return res;
  });

  /**
   * A new certificate for the caller's own identity and its new public key.
   * The caller is its current certificate (mTLS), or, when that expired
   * while the host was down, a proof signed with its key within the grace
   * window. Revoked certificates renew nothing, and a revocation that lands
   * while this runs also revokes what it issued.
   */
  const RenewCertificate = unary<RenewCertificateRequest__Output, pb.JoinResponse>('RenewCertificate', 'anonymous', async (req, _who, call) => {
    if (typeof req.public_key_pem !== 'string' || !req.public_key_pem.includes('-----BEGIN PUBLIC KEY-----')) {
      fail('public_key_pem: must be the new public key as an SPKI PEM ("-----BEGIN PUBLIC KEY-----")');
    }
    must(checkPossessionProof(req.expired, 'expired'));
    if (!deps.join) throw new PermissionError('this controller does not hold the cluster CA and cannot renew certificates');
    const who = deps.identity(call as never);
    if (who === 'admin') throw new PermissionError('RenewCertificate: admin certificates are made on the controller (weft admin-cert), not renewed');
    let kind: CertKind, name: string, serial: string | undefined;
    if (who) {
      [kind, name, serial] = 'ingress' in who ? ['ingress', who.ingress, who.serial] : ['host', who.host, who.serial];
    } else {
      if (!req.expired) throw new UnauthenticatedError('RenewCertificate needs a valid client certificate, or (after it expired) a proof signed with its key in `expired`');
      const proof = provenIdentity(deps.join.ca, req.expired, 'renew', req.public_key_pem);
      if (!proof.ok) {
        logger.warn({ method: 'RenewCertificate', peer: call.getPeer(), reason: proof.reason }, 'refused renewal of an expired certificate');
        throw new UnauthenticatedError(`expired: refused (${proof.reason}); past the grace window a host joins again with a token`);
      }
      [kind, name, serial] = 'ingress' in proof.id ? ['ingress', proof.id.ingress, proof.serial] : ['host', proof.id.host, proof.serial];
    }
    const res = await issueRecorded(deps.join.ca, kind, name, req.public_key_pem);
    if (serial && (await store.get(revokedKey(serial)))) {
      const issuedSerial = normalizeSerial(new X509Certificate(res.certificate_pem).serialNumber);
      await revokeCerts(store, [{ serial: issuedSerial, kind, name, notAfter: res.expires_at_unix_ms }], { now: now(), keepMs: graceMs, reason: 'renewed by a revoked certificate' });
      deps.revocations?.add([issuedSerial]);
      throw new UnauthenticatedError(`client certificate ${serial} has been revoked; join again with a new token`);
    }
    logger.info({ method: 'RenewCertificate', [kind]: name, expired: !who, notAfter: new Date(res.expires_at_unix_ms).toISOString() }, 'certificate renewed');
    return res;
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
    must(checkOverlayReport(req.overlay, 'overlay'));
    must(checkAgentVersion(req.agent_version, 'agent_version'));
    must(checkTunnelReport(req.tunnel, 'tunnel'));
    const config = await loadConfig(store);
    // An agent that reports nothing (older, or not yet reconciled) leaves its last report as it was.
    const report = req.overlay || req.agent_version || req.tunnel
      ? { agentVersion: req.agent_version, overlay: overlaySummaryOf(req.overlay), tunnel: tunnelRecordOf(req.tunnel) }
      : undefined;
    const { host } = await touchHost(store, req.name, now(), report);
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
    const gone = await removeHost(store, req.name, { now: now(), keepMs: graceMs, reason: 'left', releaseLease: ipam.releaseLease, loadConfig });
    deps.revocations?.add(gone.revoked.map((r) => r.serial));
    const revision = await store.revision();
    logger.info({ method: 'LeaveHost', host: req.name, endpoints: gone.endpoints, revokedCerts: gone.revoked.length }, 'host left');
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
      leader_id: deps.leader ? deps.leader() ?? '' : deps.isLeader?.() === false ? '' : deps.controllerId,
      datacenters: await count(DATACENTERS_PREFIX),
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
  const hubOpts = { store, logger, log: deps.watchLog, progressMs: deps.watchProgressMs, snapshotsInFlight: deps.watchSnapshotsInFlight, pace: deps.watchPace };
  const topologyHub = createHub<TopologyState, pb.TopologyEvent>(
    {
      name: 'topology', prefixes: TOPOLOGY_KEYS, init: topologyFromKvs, snapshot: topologySnapshot, changes: topologyChanges, progress: topologyProgress,
      mergeable: topologyMergeable, merge: topologyMerge,
    },
    hubOpts,
  );
  const servicesHub = createHub<ServicesState, pb.ServiceEvent>(
    { name: 'services', prefixes: SERVICES_KEYS, init: servicesFromKvs, snapshot: servicesSnapshot, changes: servicesChanges, progress: servicesProgress },
    hubOpts,
  );
  // A revoked certificate's open watch streams end with it: a stream is
  // authorized once, when it opens, so revocation must reach it here.
  const streamsBySerial = new Map<string, Set<() => void>>();
  deps.revocations?.onRevoked?.((serial) => {
    for (const end of [...(streamsBySerial.get(serial) ?? [])]) end();
  });
  function endOnRevocation(serial: string, method: string, sink: { signal: AbortSignal; fail(err: unknown): void }): void {
    if (sink.signal.aborted) return;
    let set = streamsBySerial.get(serial);
    if (!set) streamsBySerial.set(serial, (set = new Set()));
    const end = () => {
      logger.info({ method, serial }, 'ended watch stream: its certificate was revoked');
      sink.fail(new UnauthenticatedError(`client certificate ${serial} has been revoked; join again with a new token`));
    };
    set.add(end);
    sink.signal.addEventListener('abort', () => {
      set!.delete(end);
      if (set!.size === 0) streamsBySerial.delete(serial);
    }, { once: true });
  }
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
  function stream<Req extends { from_revision: number; progress: boolean }, Msg extends { revision: number }>(
    method: string,
    auth: Auth,
    hub: Hub<Msg>,
  ): grpc.handleServerStreamingCall<Req, Msg> {
    return (call) => {
      let who: Who | null = null;
      const sink = createSink(call, {
        limit: queueLimit,
        progress: call.request?.progress === true,
        toStatus: (err) => toServiceError(err, { logger, method, caller: describeIdentity(who) }),
        onOverflow: (resumeFrom) =>
          logger.warn({ method, caller: describeIdentity(who), limit: queueLimit, resumeFrom }, 'watch stream fell behind: ended it for the client to resume'),
      });
      Promise.resolve()
        .then(() => {
          const caller = authorize(method, auth, call as never);
          who = caller;
          refuseUndecodable(method, call.request);
          must(checkRevision(call.request.from_revision, 'from_revision'));
          // Only 'anonymous' methods have no caller, and no watch is one.
          if (caller) takeStreamSlot(method, caller, sink.signal);
          if (caller && caller !== 'admin' && caller.serial) endOnRevocation(caller.serial, method, sink);
          return hub.attach(sink, call.request.from_revision, { method, caller: describeIdentity(who) });
        })
        .catch((err) => sink.fail(err));
    };
  }

  const WatchTopology = stream<pb.WatchTopologyRequest, pb.TopologyEvent>('WatchTopology', 'any', topologyHub);
  const WatchServices = stream<pb.WatchServicesRequest, pb.ServiceEvent>('WatchServices', 'reader', servicesHub);

  return {
    Join, RenewCertificate, RegisterHost, Heartbeat, LeaveHost, WatchTopology,
    RegisterEndpoint, ReleaseEndpoint, ListEndpoints,
    CreateService, DeleteService, ListServices, WatchServices,
    GetStatus,
    ...datacenterHandlers({ store, logger, loadConfig, unary }),
    ...clusterViewHandlers({ store, loadConfig, now, unary }),
    ...tunnelHandlers({ store, logger, loadConfig, now, unary, mustBeSelf }),
  } as grpc.UntypedServiceImplementation;
}

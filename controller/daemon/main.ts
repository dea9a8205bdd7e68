// The controller daemon: wires the store, PKI, cluster config, gRPC API,
// metrics and leader election together, and takes them down again in order.
// Flag parsing and exit codes live in cli/commands.ts; this module only runs a
// config that is already known to be good.
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { relative, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../common/log';
import { certificateIdentity, type IdentityFn } from '../service/caller';
import { controllerServiceDefinition } from '../api/proto';
import { createControllerService, type LeaseFns } from '../service/service';
import { watchRevocations } from '../service/revocations';
import { serverOptions } from '../service/server-options';
import { ADMIN_NAME } from '../api/validate';
import { advertisedServer, currentMachine, servingAddresses, type Advertised } from './advertise';
import { type ControllerConfig, certNames, formatHostPort } from './config';
import { leaderCompactor } from './compaction';
import { startElection, type Election } from './election';
import { createHttpServer, listenHttp } from '../common/http';
import {
  acquireLease, reclaimExpired, releaseLease, renewLease,
} from '../ipam';
import { initClusterConfig, readClusterConfig } from '../ipam/cluster-config';
import { joinCommand, writeJoinInfo } from './join-info';
import { TOPOLOGY_PATHS, topologyResponse } from './topology-page';
import { createMetrics, instrumentLeases, instrumentService } from './metrics';
import { caCertHash, ensureCa, reloadableServerCredentials, serverCertFor } from '../pki';
import { openStore, type Store } from '../store/index';

export type RunningController = {
  id: string;
  grpcPort: number;
  metricsPort: number;
  election: Election;
  /** Stops accepting calls, ends watch streams, steps down and closes the store. */
  stop(): Promise<void>;
};

export type StartOptions = { logger: Logger; version: string };

const SHUTDOWN_GRACE_MS = 3000;

export async function startController(config: ControllerConfig, opts: StartOptions): Promise<RunningController> {
  const { logger: log, version } = opts;
  for (const w of config.warnings) log.warn(w);
  const freshDataDir = !existsSync(config.dataDir);
  const undo: Array<() => Promise<unknown>> = [];
  try {
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    // A start that fails before serving leaves no half-made data dir behind.
    if (freshDataDir) undo.push(() => rm(config.dataDir, { recursive: true, force: true }));

    const ca = await ensureCa(config.dataDir);
    // One look at the machine's interfaces and default routes serves the certificate and the join command.
    const machine = currentMachine();
    const names = certNames(config, hostname(), servingAddresses(config.listen.host, machine));
    const serving = await serverCertFor(config.dataDir, names, { ca });
    if (serving.renewed) log.info({ reason: serving.renewed, names, notAfter: serving.notAfter.toISOString() }, 'wrote serving certificate');

    const store = await openStore(config.storeUrl, { sqlite: { logger: log } });
    undo.push(() => store.close());
    const created = await initClusterConfig(store);
    if (created) {
      const cc = created.config;
      log.info({ networks: cc.networks.map((n) => `${n.name}:${n.cidr}`), leaseTtlSeconds: cc.leaseTtlSeconds }, 'first start: stored the default cluster config');
    }

    const id = `${hostname()}:${config.listen.port}#${process.pid}`;
    const reclaimer = leaderReclaimer(store, log);
    // asked only from its timer, after start() (onElected), when `election` below is set
    const compactor = leaderCompactor(store, log, { isLeader: () => election.isLeader() });
    const election = startElection(store, id, {
      logger: log,
      onElected: () => {
        reclaimer.start();
        compactor.start();
      },
      onDemoted: () => {
        reclaimer.stop();
        compactor.stop();
      },
    });
    undo.push(() => election.stop());
    reclaimer.isLeader = election.isLeader;

    const metrics = createMetrics({ store, isLeader: election.isLeader, controllerId: id, version });
    reclaimer.onReclaimed = (n) => metrics.reclaimed.inc(n);
    const ipam: LeaseFns = instrumentLeases({ acquireLease, renewLease, releaseLease }, metrics);

    // Watch streams read through this view of the store, so shutdown can end
    // them all (each then closes cleanly and its client reconnects elsewhere)
    // while unary calls still finish against the open store.
    const shutdown = new AbortController();
    const serviceStore = endWatchesOn(store, shutdown.signal);
    // Revoked serials, in memory before the first call is served, kept current by a watch.
    const revocations = await watchRevocations(store, { logger: log });
    undo.push(async () => revocations.stop());
    log.info({ revoked: revocations.size(), clientCertTtlHours: config.clientCertTtlMs / 3_600_000 }, 'certificate revocations loaded');
    const definition = controllerServiceDefinition();
    const service = createControllerService({
      store: serviceStore,
      identity: config.tls ? certificateIdentity(ca, revocations) : headerIdentity,
      logger: log,
      controllerId: id,
      join: { ca, clientCertTtlDays: config.clientCertTtlMs / 86_400_000, renewGraceMs: config.certRenewGraceMs },
      revocations,
      joinLimit: { perSecond: config.joinRatePerSecond, burst: config.joinBurst },
      leases: ipam,
      isLeader: election.isLeader,
      leader: election.leader,
      version,
    });
    const server = new grpc.Server(serverOptions());
    server.addService(definition, instrumentService(service, definition, metrics, log));
    // The CA follows the serving certificate in the chain, so a joining agent can check it against its --ca-cert-hash pin.
    const creds = config.tls
      ? reloadableServerCredentials({ caPem: ca.certPem, certPem: serving.certPem + ca.certPem, keyPem: serving.keyPem }).credentials
      : grpc.ServerCredentials.createInsecure();
    const listen = formatHostPort(config.listen);
    const grpcPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(listen, creds, (err, port) => (err ? reject(new Error(`cannot listen on ${listen} for gRPC: ${err.message}`)) : resolve(port))),
    );
    undo.push(async () => server.forceShutdown());

    const http = createHttpServer({
      registry: metrics.registry,
      pages: (path, query) => (TOPOLOGY_PATHS.has(path) ? topologyResponse(store, path, query) : undefined),
      readiness: async () => {
        const checks: Record<string, string> = {};
        try {
          checks.store = `ok (revision ${await withTimeout(store.revision(), 2000, 'store did not answer within 2s')})`;
        } catch (err) {
          checks.store = (err as Error).message;
        }
        checks.grpc = shutdown.signal.aborted ? 'shutting down' : `serving on ${listen}`;
        const ready = checks.store.startsWith('ok') && !shutdown.signal.aborted;
        // Said, not required: every controller serves without a leader; only lease reclaim waits for one.
        let leader: Record<string, unknown> | undefined;
        try {
          const { text, ...status } = await withTimeout(election.leaderStatus(), 2000, 'store did not answer within 2s');
          checks.leader = text;
          leader = status;
        } catch (err) {
          checks.leader = `${election.leader() ?? 'none'} (cannot tell whether it is alive: ${(err as Error).message})`;
        }
        return { ready, checks, ...(leader && { leader }) };
      },
    });
    const metricsPort = await listenHttp(http, config.metricsListen.host, config.metricsListen.port);

    const advertised = advertisedServer(config, grpcPort, machine);
    const hash = caCertHash(ca.cert);
    try {
      await writeJoinInfo(config.dataDir, {
        server: advertised.server, serverSource: advertised.source, caCertHash: hash, certNames: names, tls: config.tls, writtenAt: new Date().toISOString(),
      });
    } catch (err) {
      log.warn({ err }, 'cannot record the join address in the data dir; weft token create will work it out itself');
    }

    announce(log, { config, id, hash, names, advertised, grpcPort, metricsPort, version });

    let stopped: Promise<void> | undefined;
    return {
      id,
      grpcPort,
      metricsPort,
      election,
      stop: () =>
        (stopped ??= (async () => {
          log.info('shutting down: no new calls, ending watch streams');
          reclaimer.stop();
          compactor.stop();
          const drained = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
          shutdown.abort();
          const timer = setTimeout(() => {
            log.warn({ graceMs: SHUTDOWN_GRACE_MS }, 'calls still running after the grace period; closing them');
            server.forceShutdown();
          }, SHUTDOWN_GRACE_MS);
          await drained;
          clearTimeout(timer);
          http.closeAllConnections();
          await new Promise<void>((resolve) => http.close(() => resolve()));
          await election.stop();
          revocations.stop();
          await store.close();
          log.info('stopped');
        })()),
    };
  } catch (err) {
    for (const f of undo.reverse()) await f().catch(() => undefined);
    throw err;
  }
}

/**
 * The leader deletes leases that expired (plus the configured grace). The
 * first run waits one lease TTL after winning: leases may have lapsed only
 * because no controller was there to take heartbeats.
 */
function leaderReclaimer(store: Store, log: Logger) {
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  const r = {
    isLeader: () => false,
    onReclaimed: (_n: number) => {},
    start() {
      r.stop();
      running = true;
      readClusterConfig(store).then(
        ({ config }) => schedule(config.leaseTtlSeconds * 1000, Math.max(1000, (config.leaseTtlSeconds * 1000) / 3)),
        (err) => {
          log.error({ err }, 'cannot read the cluster config; reclaiming expired leases with a 60s period');
          schedule(60_000, 20_000);
        },
      );
    },
    stop() {
      running = false;
      clearTimeout(timer);
      timer = undefined;
    },
  };
  function schedule(firstMs: number, everyMs: number) {
    if (!running) return;
    log.info({ firstInSeconds: Math.round(firstMs / 1000), everySeconds: Math.round(everyMs / 1000) }, 'leader: reclaiming expired leases');
    const tick = async () => {
      if (!running || !r.isLeader()) return;
      try {
        const res = await reclaimExpired(store, Date.now());
        for (const l of res.reclaimed) {
          log.info({ network: l.network, subnet: l.subnet, host: l.host, expiredAt: new Date(l.expiresAt).toISOString() }, 'reclaimed expired lease');
        }
        for (const m of res.malformed) log.warn({ key: m.key, err: m.error }, 'unreadable lease left in place');
        if (res.reclaimed.length) r.onReclaimed(res.reclaimed.length);
      } catch (err) {
        log.warn({ err }, 'reclaiming expired leases failed; will retry');
      }
      if (running) timer = setTimeout(tick, everyMs);
    };
    timer = setTimeout(tick, firstMs);
  }
  return r;
}

/** In --insecure mode there are no certificates: the caller names itself (x-weft-host: <host> or admin). */
const headerIdentity: IdentityFn = (call) => {
  const v = (call as unknown as grpc.ServerUnaryCall<unknown, unknown>).metadata?.get('x-weft-host')[0];
  if (typeof v !== 'string' || v === '') return null;
  if (v === ADMIN_NAME) return 'admin';
  // The same spelling the API tests use: "ingress:<name>" is the read-only ingress kind, not a host of that name.
  return v.startsWith('ingress:') ? { ingress: v.slice('ingress:'.length) } : { host: v };
};

function endWatchesOn(store: Store, signal: AbortSignal): Store {
  return {
    ...store,
    kind: store.kind,
    watch: (prefix, opts = {}) => store.watch(prefix, { ...opts, signal: opts.signal ? AbortSignal.any([opts.signal, signal]) : signal }),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(t));
}

function announce(
  log: Logger,
  a: { config: ControllerConfig; id: string; hash: string; names: string[]; advertised: Advertised; grpcPort: number; metricsPort: number; version: string },
): void {
  const { config, advertised } = a;
  const dataDir = resolve(config.dataDir);
  const storeFlags = config.storeUrl.startsWith('sqlite:') ? `--data-dir ${dataDir}` : `--data-dir ${dataDir} --store ${config.storeUrl}`;
  const tokenCommand = `${selfCommand()} token create ${storeFlags}`;
  const agentCommand = joinCommand(advertised.server, '<token>', a.hash);
  log.info(
    {
      id: a.id, version: a.version, grpc: formatHostPort({ host: config.listen.host, port: a.grpcPort }), tls: config.tls,
      metrics: `http://${formatHostPort({ host: config.metricsListen.host, port: a.metricsPort })}/metrics`,
      store: config.storeUrl, dataDir: config.dataDir,
    },
    'controller listening',
  );
  if (advertised.source.startsWith('loopback')) {
    log.warn({ server: advertised.server }, 'this machine has no address but loopback: only agents on this machine can join; give --advertise with the address hosts reach it at');
  }
  log.info(
    { tokenCommand, agentCommand, server: advertised.server, serverFrom: advertised.source, certNames: a.names },
    `to join a host: run "${tokenCommand}" here; it prints the command to run on the host: ${agentCommand} ` +
      `(--server may name any of ${a.names.join(', ')}; add others with --advertise)`,
  );
}

/** How the operator runs this same command here: `weft` once installed, else the bundle from a checkout (npm start). */
function selfCommand(): string {
  const script = process.argv[1] ?? '';
  if (!script.endsWith('.mjs') && !script.endsWith('.js')) return 'weft';
  const rel = relative(process.cwd(), script);
  return `node ${rel.startsWith('..') ? script : rel}`;
}

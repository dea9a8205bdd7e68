// The ingress process (`weft ingress`): startIngress runs these steps in
// order and stop() takes them down again.
//   state dir            0700; a running ingress on it is refused (unless --takeover)
//   takeover             --takeover: the running ingress's listening sockets
//   identity             stored credentials, else a join with the token (waits for the controller)
//   saved state          the services of the last run (state-file.ts), if usable
//   parts                L7 proxy, L4 programmer, pools and checks (parts.ts), wired by runtime.ts
//   serve saved state    listeners up (or adopted) before the controller is asked anything
//   controller           the one client; WatchServices resumes from the saved revision
//   handoff socket       where a later --takeover finds this process
//   metrics and health   /metrics /healthz /readyz
// Each step pushes its undo right after it opens something, so a start that
// fails part-way closes what it opened.
//
// Promises the order keeps:
//  - A controller that is down changes nothing: the saved state is served
//    before the controller is dialled, the watch keeps the last state while
//    it is away, and only the controller's own events change what is served.
//  - A takeover refuses no connection: the new process serves on the old
//    one's sockets before the old one stops accepting (handoff.ts), and
//    adopts its L4 table as it is (the first sync finds nothing to change).
//  - Stopping removes the L4 rules (a stopped load balancer must not keep
//    sending traffic to backends it no longer checks); a handover keeps them.
import { keepRenewed } from '../controller/api/client/renewal';
import { ensurePrivateDir, ensureCredentials, IdentityError, joinIsTransient, loadCredentials, channelCredentials, type Credentials } from '../controller/api/client/credentials';
import { connectController, type ControllerClient } from '../controller/api/client/client';
import { backoff, sleep } from '../controller/api/client/backoff';
import { createHttpServer, listenHttp } from '../controller/common/http';
import type { Logger } from '../controller/common/log';
import type { IngressConfig } from './config';
import { serveHandoff, takeOver, type HandoffServer, type Takeover } from './handoff';
import { latestOnly } from './latest-only';
import { createIngressMetrics } from './metrics';
import { createParts } from './parts';
import { createRuntime } from './runtime';
import { readStateFile, stateSaver } from './state-file';
import { emptyState, watchServices, type IngressState, type ServiceSync } from './sync';

export type RunningIngress = {
  metricsPort: number;
  /** Resolves (with the new process's pid) once a --takeover process serves on our listeners. */
  handedOver: Promise<number | undefined>;
  /** Stops accepting, drains (drain timeout), closes; removes the L4 rules unless the listeners were handed over. */
  stop(): Promise<void>;
};

export type IngressStartOptions = { logger: Logger; version: string; signal?: AbortSignal };

import { StartAborted } from '../controller/common/command';
export { StartAborted };

type Undo = Array<() => void | Promise<void>>;

async function runUndo(undo: Undo, log: Logger): Promise<void> {
  for (const step of undo.reverse()) {
    try {
      await step();
    } catch (err) {
      log.error({ err }, 'stop step failed');
    }
  }
  undo.length = 0;
}

export async function startIngress(config: IngressConfig, opts: IngressStartOptions): Promise<RunningIngress> {
  const { logger: log, version, signal } = opts;
  const undo: Undo = [];
  const lifecycle = { stopping: false, handedOver: false };
  let resolveHandedOver!: (pid: number | undefined) => void;
  const handedOver = new Promise<number | undefined>((r) => (resolveHandedOver = r));
  try {
    await ensurePrivateDir(config.stateDir);

    let takeover: Takeover | undefined;
    let handoff: HandoffServer | undefined;
    // Hooks of the handoff socket, filled in once the parts exist.
    const hooks = { offer: () => ({ listeners: [] as { port: number; host: string; fd: number }[], nftTable: config.nftTable, version }), stopAccepting: async () => {} };
    const openHandoff = async () => {
      handoff = await serveHandoff(config.stateDir, {
        offer: () => hooks.offer(),
        stopAccepting: () => hooks.stopAccepting(),
        handedOver: (pid) => {
          lifecycle.handedOver = true;
          resolveHandedOver(pid);
        },
      }, log);
      undo.push(() => handoff!.close());
    };
    if (config.takeover) {
      takeover = takeOver(config.stateDir);
      undo.push(() => takeover!.abandon());
      log.info({ from: takeover.offer.pid, version: takeover.offer.version, listeners: takeover.offer.listeners }, 'takeover: received the running ingress\'s listeners');
      if (takeover.offer.nftTable !== config.nftTable) {
        log.warn({ theirs: takeover.offer.nftTable, ours: config.nftTable }, 'takeover: the running ingress uses another nftables table; its L4 rules stay until it stops');
      }
    } else {
      // First, so a second ingress on the same state dir stops before it binds anything.
      await openHandoff();
    }

    const credentials = await establishIdentity(config, log, signal);
    // Short-lived: renewed at half its lifetime; the client below follows each renewal by itself.
    const renewal = keepRenewed({ server: config.server, stateDir: config.stateDir, credentials, log });
    undo.push(() => renewal.stop());

    const metrics = createIngressMetrics({ name: config.name, version });
    const saved = await readStateFile(config.stateDir, log);
    const initial: IngressState = saved ?? emptyState();
    let source: 'controller' | 'file' | 'none' = saved ? 'file' : 'none';
    metrics.setState({ revision: initial.revision, services: initial.services.size, source });
    if (saved) log.info({ revision: saved.revision, services: saved.services.size }, 'serving the saved service state until the controller answers');

    const parts = await createParts(config, metrics, log);
    undo.push(() => parts.close());
    const runtime = createRuntime({
      ...(config.listenAddress ? { listenAddress: config.listenAddress } : {}),
      drainMs: config.drainTimeoutMs,
      l7: parts.l7,
      l4: parts.l4,
      makePool: parts.makePool,
      makeChecker: parts.makeChecker,
      onL4Synced: (r) => metrics.l4Synced(r),
      onL4Failed: () => metrics.l4Failed(),
      log,
    });
    undo.push(() => runtime.close());
    metrics.readPools(() => runtime.pools());
    hooks.offer = () => ({ listeners: parts.l7.listenerFds(), nftTable: config.nftTable, version });
    hooks.stopAccepting = () => parts.l7.stopAccepting();

    if (takeover) parts.l7.reserve(takeover.listeners);
    await runtime.apply(initial);
    if (takeover) {
      // The old process answers well until we accept: give every backend its first check before taking a share
      // of the accept queue, so the first requests here do not find every endpoint still pending (503).
      if (!(await runtime.healthKnown(5000))) log.warn('takeover: some backends are still unchecked after 5 s; accepting anyway');
      await parts.l7.adopt();
    }

    // Changes are applied one at a time and in order; only the newest waiting one matters.
    const saver = stateSaver(config.stateDir, log);
    const applies = latestOnly((s: IngressState) => runtime.apply(s).catch((err: unknown) => log.error({ err }, 'applying the service state failed')));
    const onState = (s: IngressState) => {
      source = 'controller';
      metrics.setState({ revision: s.revision, services: s.services.size, source });
      saver.save(s);
      applies.push(s);
    };

    const client: ControllerClient = connectController({
      server: config.server, credentials: channelCredentials(credentials), log, stateDir: config.stateDir, trusted: `the CA in ${config.stateDir}/ca.crt`,
    });
    undo.push(() => client.close());
    client.onConnectionState((s) => metrics.setConnection(s));
    metrics.setConnection(client.connectionState());
    const sync: ServiceSync = watchServices(client, initial, onState, log);
    undo.push(() => sync.stop());
    undo.push(() => saver.flush());

    if (takeover) {
      // We serve on every listener: the old process may stop accepting now.
      await takeover.confirm();
      log.info({ from: takeover.offer.pid }, 'takeover complete: the previous ingress stopped accepting and drains');
      await openHandoff();
    }

    const http = createHttpServer({
      registry: metrics.registry,
      readiness: async () => {
        const loaded = sync.fromController || saved !== undefined;
        const errors = runtime.listenErrors();
        const checks = {
          controller: client.connectionState(),
          state: loaded ? `revision ${sync.state().revision} from the ${sync.fromController ? 'controller' : 'state file'}` : 'waiting for the controller (no saved state)',
          listeners: errors.size ? [...errors].map(([p, e]) => `${p}: ${e}`).join('; ') : parts.l7.listening().join(',') || 'none needed',
          ingress: lifecycle.stopping ? 'shutting down' : lifecycle.handedOver ? 'handed over' : 'serving',
        };
        return { ready: loaded && errors.size === 0 && !lifecycle.stopping && !lifecycle.handedOver, checks };
      },
    });
    // After a takeover the old process still holds the metrics port until it has let go of it (first thing once
    // handed over): wait for it rather than fail.
    const metricsPort = await retryWhileInUse(() => listenHttp(http, config.metricsListen.host, config.metricsListen.port), takeover ? 10_000 : 0);
    let httpClosed: Promise<void> | undefined;
    const closeHttp = () =>
      (httpClosed ??= new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }));
    undo.push(closeHttp);
    log.info({ metrics: `http://${config.metricsListen.host}:${metricsPort}/metrics`, listeners: parts.l7.listening() }, 'weft ingress running');

    let stopped: Promise<void> | undefined;
    return {
      metricsPort,
      handedOver,
      stop: () =>
        (stopped ??= (async () => {
          lifecycle.stopping = true;
          const keepL4 = lifecycle.handedOver;
          log.info({ drainMs: config.drainTimeoutMs, keepL4 }, keepL4 ? 'handed over: draining; the L4 rules stay for the new process' : 'stopping: draining, then removing the L4 rules');
          // The new process serves metrics on the same address now.
          if (keepL4) await closeHttp();
          await handoff?.close();
          // Stops accepting, then closes each connection once it has nothing left to wait for (a connection accepted
          // just before gets a grace to send its request); ends early when none is left.
          await parts.l7.drain(config.drainTimeoutMs);
          if (!keepL4) await parts.removeL4().catch((err: unknown) => log.error({ err }, 'cannot remove the L4 rules'));
          await runUndo(undo, log);
          log.info('stopped');
        })()),
    };
  } catch (err) {
    await runUndo(undo, log);
    throw err;
  }
}

/** `listen()` again while it fails with EADDRINUSE, for up to `ms`. */
async function retryWhileInUse<T>(listen: () => Promise<T>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await listen();
    } catch (err) {
      if (!/EADDRINUSE/.test((err as Error).message) || Date.now() >= deadline) throw err;
      await sleep(100);
    }
  }
}

/**
 * Stored credentials if this ingress has joined, else a join with the token,
 * waiting out a controller that is not reachable yet. Stored credentials are
 * used without asking the controller: a restart with it down still serves.
 */
async function establishIdentity(config: IngressConfig, log: Logger, signal: AbortSignal | undefined): Promise<Credentials> {
  const have = await loadCredentials(config.stateDir);
  if (have) {
    if (have.hostName !== config.name || have.role !== 'ingress') {
      throw new IdentityError(`${config.stateDir} holds the identity of ${have.role} "${have.hostName}", not ingress "${config.name}"; use --name ${have.hostName} or another --state-dir`);
    }
    return have;
  }
  const delays = backoff();
  for (;;) {
    if (signal?.aborted) throw new StartAborted('the ingress');
    try {
      const c = await ensureCredentials({
        server: config.server, hostName: config.name, stateDir: config.stateDir, role: 'ingress',
        ...(config.token ? { token: config.token } : {}), ...(config.caCertHash ? { caCertHash: config.caCertHash } : {}),
        ...(config.caPem ? { caPem: config.caPem } : {}),
      });
      log.info({ name: c.hostName, certExpiresAt: c.certExpiresAt.toISOString() }, 'joined the cluster as an ingress');
      return c;
    } catch (err) {
      if (!joinIsTransient(err)) throw err;
      const ms = delays.next();
      log.warn({ err, retryInMs: ms }, 'cannot reach the controller to join; retrying');
      await sleep(ms, signal).catch(() => {});
    }
  }
}

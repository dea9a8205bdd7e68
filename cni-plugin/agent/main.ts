// The host agent (`weft agent`): startAgent runs its phases in this order,
// each in a start-*.ts module beside this one, and stop() takes them down
// again without touching the dataplane.
//   checkHost              netlink handle, underlay address, VTEP MAC, preflight
//   closeByCache           the fail-closed table as last cached, before any route
//   establishIdentity      cluster credentials (join with the token) and WireGuard keys
//   openAgentDb            container addresses and the endpoint outbox
//   connectToController,
//   registerThisHost       the controller client, and this host's leases
//   setUpHostNetwork       devices, addresses and iptables for those leases
//   serveCni               orphan release, the outbox's delivery, the CNI socket
//   startTunnel            probe responder, gateway chooser, gateway dataplane hooks
//   syncOverlay            topology watch -> coalesced reconcile (tunnel, overlay), periodic resync
//   keepLeases             heartbeats, lease events, background registration
//   serveMetricsAndHealth  /metrics /healthz /readyz
// Each phase takes and returns plain values and pushes onto `undo` right
// after it opens or starts something, so a start that fails part-way closes
// all it opened (the dataplane stays, as on stop), and a signal while start
// waits for the controller ends it with StartAborted after the same undo. Flag parsing and exit codes live in
// command.ts; this module runs a config that is already known to be good.
//
// Two promises the order keeps:
//  - No route flap on restart. Nothing is reconciled before the controller's
//    first snapshot has arrived, and that reconcile diffs against what the
//    kernel already holds, so an agent restarted with nothing changed sends
//    the kernel nothing.
//  - An unreachable controller changes nothing. The watch keeps the last
//    topology it had and resumes from its revision; reconciles (periodic ones
//    included) use that topology, never an empty one.
import type { Logger } from '../../controller/common/log';
import type { AgentConfig } from './config';
import { createAgentMetrics } from './metrics';
import { openAgentDb, serveCni } from './start-cni';
import { keepLeases } from './start-heartbeats';
import { checkHost } from './start-host-checks';
import { setUpHostNetwork } from './start-host-network';
import { establishIdentity } from './start-identity';
import { serveMetricsAndHealth } from './start-health';
import { syncOverlay } from './start-overlay';
import { closeByCache, startTunnel } from './start-tunnel';
import { connectToController, hostRegistration, registerThisHost } from './start-registration';
import { runUndo, type Undo } from './start-undo';

export { vtepMacFor } from './start-host-checks';
export { StartAborted } from './start-retrying';

export type RunningAgent = {
  metricsPort: number;
  /** Stops serving (CNI requests in flight finish), stops talking to the controller, closes the DB; the dataplane stays. */
  stop(): Promise<void>;
};

export type AgentStartOptions = { logger: Logger; version: string; signal?: AbortSignal };

export async function startAgent(config: AgentConfig, opts: AgentStartOptions): Promise<RunningAgent> {
  const { logger: log, version, signal } = opts;
  const undo: Undo = [];
  try {
    const { h, underlayIp, vtepMac } = await checkHost(config, log, undo);
    // before anything that could route traffic to another datacenter: closed from the first packet
    const failClosed = await closeByCache(config, log, undo);
    const { credentials, wgPublicKey, renewal } = await establishIdentity(config, log, signal);
    undo.push(() => renewal.stop());
    const { ipam, outbox } = openAgentDb(config, log, undo);

    const metrics = createAgentMetrics({ hostName: config.hostName, version, outboxPending: () => outbox.pending().length });
    const client = connectToController(config, credentials, metrics, log, undo);
    const registration = hostRegistration(config, { underlayIp, vtepMac, wgPublicKey }, version);
    const { registered, initial } = await registerThisHost(config, client, registration, log, signal);

    // the cached policy says whether the VXLAN devices send from the tunnel address (a mesh datacenter), so a restart never remakes them
    const network = setUpHostNetwork(config, { h, underlayIp, vtepMac, mesh: failClosed.policy?.mesh === true }, initial, log);
    await serveCni(config, { ipam, outbox, network, client, metrics }, log, undo);
    const tunnel = await startTunnel(config, { h, underlayIp, table: failClosed, metrics, client, registration, network }, log, undo);
    const overlay = syncOverlay(config, { h, network, client, metrics, tunnel }, log, undo);
    keepLeases(config, { client, registration, registered, initial, ipam, network, overlay, report: metrics.heartbeatReport }, log, undo);

    const lifecycle = { stopping: false };
    const metricsPort = await serveMetricsAndHealth(config, { metrics, client, network, overlay, lifecycle }, log, undo);
    log.info({ metrics: `http://${config.metricsListen.host}:${metricsPort}/metrics` }, 'weft agent running');

    let stopped: Promise<void> | undefined;
    return {
      metricsPort,
      stop: () =>
        (stopped ??= (async () => {
          lifecycle.stopping = true;
          log.info('stopping: CNI requests in flight finish; the dataplane stays as it is');
          await runUndo(undo, log);
          log.info('stopped');
        })()),
    };
  } catch (err) {
    await runUndo(undo, log);
    throw err;
  }
}

// startAgent, third phase: the controller client, and this host's
// registration, which leases its subnets. With a registration cached from an
// earlier start, one attempt is made: an unreachable controller must not keep
// containers from starting, so the agent goes on from the cache. Without one
// it waits for the controller (a signal ends the wait: StartAborted).
import { isTransient } from '../../controller/api/client/client';
import { channelCredentials, type Credentials } from '../../controller/api/client/credentials';
import type { Logger } from '../../controller/common/log';
import type { AgentConfig } from './config';
import type { AgentMetrics } from './metrics';
import { retrying } from './start-retrying';
import type { Undo } from './start-undo';
import { connectAgentClient, type AgentClient, type HostRegistration, type Registration } from './sync/controller';
import { loadRegistration, saveRegistration } from './sync/registration-cache';

export type HostLeases = {
  /** The controller's answer; undefined when it was unreachable and the start goes on from the cached registration. */
  registered: Registration | undefined;
  /**
   * What the host network is built from: the answer, else the cached leases
   * and cluster config (revision 0). With the answer, also the networks the
   * cached registration had that the answer no longer has: deleted while
   * this agent was away, so the watch never said so.
   */
  initial: Registration & { deletedWhileAway?: Array<{ name: string; vni: number }> };
};

/** The client, closed by the undo step this pushes; its connection state feeds the metrics. */
export function connectToController(config: AgentConfig, credentials: Credentials, metrics: AgentMetrics, log: Logger, undo: Undo): AgentClient {
  const client = connectAgentClient({
    server: config.server, credentials: channelCredentials(credentials), hostName: config.hostName, log, stateDir: config.stateDir,
  });
  undo.push(() => client.close());
  metrics.setConnection(client.connectionState());
  client.onConnectionState((s) => metrics.setConnection(s));
  return client;
}

/** What this host says about itself in RegisterHost. */
export function hostRegistration(
  config: AgentConfig, self: { underlayIp: string; vtepMac: string; wgPublicKey: string }, version: string,
): HostRegistration {
  const { underlayIp, vtepMac, wgPublicKey } = self;
  return {
    underlayIp, vtepMac, rack: config.rack, datacenter: config.datacenter, wgPublicKey, agentVersion: version, networks: config.networks,
  };
}

export async function registerThisHost(
  config: AgentConfig, client: AgentClient, registration: HostRegistration, log: Logger, signal: AbortSignal | undefined,
): Promise<HostLeases> {
  // With a cached registration, one attempt: an unreachable controller must not keep containers from starting.
  const cached = await loadRegistration(config.stateDir);
  if (cached.problem) log.warn({}, cached.problem);
  let registered: Registration | undefined;
  if (cached.value) {
    try {
      registered = await client.registerHost(registration);
    } catch (err) {
      if (!isTransient(err)) throw err;
      log.warn(
        { err, subnets: cached.value.subnets.map((s) => `${s.network}=${s.subnet}`), savedAt: cached.value.savedAt },
        'controller unreachable: starting from the last registration; the overlay stays as it is until the controller answers',
      );
    }
  } else {
    registered = await retrying('registering this host', () => client.registerHost(registration), isTransient, log, signal);
  }
  if (registered) {
    log.info({ subnets: registered.subnets.map((s) => `${s.network}=${s.subnet}`), revision: registered.revision }, 'host registered');
    await saveRegistration(config.stateDir, registered);
  }
  if (!registered) return { registered, initial: { subnets: cached.value!.subnets, config: cached.value!.config, revision: 0 } };
  const now = new Set(registered.config.networks.map((n) => n.name));
  const deletedWhileAway = (cached.value?.config.networks ?? []).filter((n) => !now.has(n.name)).map((n) => ({ name: n.name, vni: n.vni }));
  return { registered, initial: { ...registered, deletedWhileAway } };
}

// startAgent, fifth phase: serving the CNI plugin. The agent DB (container
// addresses and the endpoint outbox) opens early, before the controller is
// contacted; once the host network is up, addresses of containers that are
// gone are released (then again every --gc-interval), the outbox starts
// delivering to the controller, and the socket the plugin talks to opens.
import type { Logger } from '../../controller/common/log';
import { startCniServer, type CniServer } from '../cni/server';
import { agentDbPath } from './state/agent-db';
import { createCniHandlers } from './cni-handlers';
import type { AgentConfig } from './config';
import { openIpamStore, type IpamStore } from './ipam-store';
import type { AgentMetrics } from './metrics';
import type { HostNetwork } from './start-host-network';
import type { Undo } from './start-undo';
import { openEndpointOutbox, type EndpointDelivery, type EndpointOutbox } from './sync/endpoint-outbox';

export type AgentDb = { ipam: IpamStore; outbox: EndpointOutbox };

/** Both stores live in one SQLite file in the state dir; each is closed by the undo step pushed after it opened. */
export function openAgentDb(config: AgentConfig, log: Logger, undo: Undo): AgentDb {
  const ipam: IpamStore = openIpamStore({ path: agentDbPath(config.stateDir) });
  undo.push(() => ipam.close());
  const outbox: EndpointOutbox = openEndpointOutbox({ path: agentDbPath(config.stateDir), log });
  undo.push(() => outbox.close());
  return { ipam, outbox };
}

export async function serveCni(
  config: AgentConfig,
  deps: AgentDb & { network: HostNetwork; client: EndpointDelivery; metrics: AgentMetrics },
  log: Logger,
  undo: Undo,
): Promise<CniServer> {
  const { ipam, outbox, network, client, metrics } = deps;
  const handlers = createCniHandlers({ attachment: (n) => network.attachments.get(n), absence: (n) => network.absence(n), ipam, endpoints: outbox, logger: log });
  await handlers.gcOrphans();
  // Runtimes do not always send DEL (`ctr run` killed and removed, `podman rm` while the
  // agent was down), and not all send GC: leaks are found by looking, every gcInterval.
  const gc = setInterval(() => {
    handlers.gcOrphans().catch((err: unknown) => log.warn({ err }, 'periodic release of what gone containers left failed; the next run retries'));
  }, config.gcIntervalMs);
  undo.push(() => clearInterval(gc));
  outbox.start(client);
  undo.push(() => outbox.stop());
  const server = await startCniServer({ socketPath: config.cniSocket, handlers: metrics.instrumentCni(handlers), logger: log });
  undo.push(() => server.close());
  log.info({ socket: config.cniSocket }, 'CNI socket listening');
  return server;
}

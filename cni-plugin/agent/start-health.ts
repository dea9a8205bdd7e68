// startAgent, last phase: /metrics, /healthz and /readyz. Ready means the
// first topology snapshot has arrived, the host holds at least one network
// and the agent is not stopping; /readyz names each of these and the
// controller connection.
import type { Server } from 'node:http';
import { createHttpServer, listenHttp } from '../../controller/common/http';
import type { Logger } from '../../controller/common/log';
import type { AgentConfig } from './config';
import type { AgentMetrics } from './metrics';
import type { HostNetwork } from './start-host-network';
import type { OverlaySync } from './start-overlay';
import type { Undo } from './start-undo';
import type { AgentClient } from './sync/controller';

/** Returns the port it listens on; the undo step it pushes closes the server and its connections. */
export async function serveMetricsAndHealth(
  config: AgentConfig,
  deps: {
    metrics: AgentMetrics; client: Pick<AgentClient, 'connectionState'>; network: HostNetwork; overlay: OverlaySync;
    /** Set by stop(); /readyz reports the agent as shutting down from then on. */
    lifecycle: { stopping: boolean };
  },
  log: Logger,
  undo: Undo,
): Promise<number> {
  const { metrics, client, network, overlay, lifecycle } = deps;
  const http: Server = createHttpServer({
    registry: metrics.registry,
    readiness: async () => {
      const checks = {
        controller: client.connectionState(),
        topology: overlay.synced ? `revision ${overlay.topology().revision}` : 'waiting for the first snapshot',
        cni: lifecycle.stopping ? 'shutting down' : `listening on ${config.cniSocket}`,
        networks: [...network.attachments.values()].map((a) => `${a.network}=${a.subnet}`).join(',') || 'none',
      };
      return { ready: overlay.synced && !lifecycle.stopping && network.attachments.size > 0, checks };
    },
  });
  const metricsPort = await listenHttp(http, config.metricsListen.host, config.metricsListen.port);
  undo.push(
    () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  );
  return metricsPort;
}

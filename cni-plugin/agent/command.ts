// `weft agent`: flags to config (exit 2 on a bad one, naming it), then the
// daemon until SIGTERM/SIGINT. Exit 1 when it cannot start.
import { loadCommandConfig, shutdownSignal, stopOnSignal } from '../../controller/common/command';
import { createLogger } from '../../controller/common/log';
import { weftVersion } from '../../controller/common/version';
import { AGENT_DEFAULTS, ConfigError, loadAgentConfig } from './config';
import type { RunningAgent } from './main';

const HELP = `usage: weft agent --server host:port [flags]

  --server host:port          the controller (required)
  --token-file FILE           file holding the bootstrap token from "weft token create" (first start only; mode 0600)
  --token ID.SECRET           or: the token itself (visible to every local user in ps; prefer --token-file or WEFT_TOKEN)
  --ca-cert-hash sha256:HEX   pin of the cluster CA, as the controller prints it (first start)
  --ca-cert FILE              or: the cluster CA certificate itself
  --host-name NAME            this host's name in the cluster (default: the machine's hostname)
  --underlay-ip IP            address other hosts reach this one at (default: source address of the route to the controller)
  --rack NAME, --datacenter NAME
  --networks a,b              networks to join (default: all)
  --state-dir DIR             credentials and the agent DB (default ${AGENT_DEFAULTS.stateDir})
  --cni-socket PATH           where the weft CNI plugin reaches the agent (default ${AGENT_DEFAULTS.cniSocket})
  --metrics-listen host:port  /metrics /healthz /readyz (default ${AGENT_DEFAULTS.metricsListen})
  --mtu N                     overlay MTU (default: cluster setting, else underlay MTU - 50)
  --vtep-mac MAC              this host's VTEP MAC (default: derived from the host name)
  --vxlan-tx-checksum MODE    auto|on|off: TX checksum offload on VXLAN devices (auto: off only before kernel 5.7)
  --resync-interval DURATION  full overlay reconcile against drift (default ${AGENT_DEFAULTS.resyncInterval})
  --gc-interval DURATION      release addresses and host ends of containers gone without a DEL (default ${AGENT_DEFAULTS.gcInterval})
  --tunnel-probe-port PORT    UDP port of the probes that pick gateways between datacenters (default ${AGENT_DEFAULTS.tunnelProbePort})
  --tunnel-probe-interval DURATION
                              how often each remote datacenter's path is probed (default ${AGENT_DEFAULTS.tunnelProbeInterval})
  --log-level LEVEL           fatal|error|warn|info|debug|trace|silent (default info)
  --config FILE               JSON file with the same settings (keys server, token, caCertHash, hostName, ...)
Every flag also reads from WEFT_<NAME> (WEFT_SERVER, WEFT_TOKEN, ...).
`;

export async function agentCommand(argv: string[]): Promise<number> {
  const loaded = loadCommandConfig('agent', argv, HELP, () => loadAgentConfig(argv, process.env));
  if ('exit' in loaded) return loaded.exit;
  const config = loaded.config;
  const log = createLogger({ level: config.logLevel, base: { host: config.hostName } });
  for (const warning of config.warnings ?? []) log.warn({ tokenSource: config.tokenSource }, warning);

  // The daemon (gRPC, netlink, SQLite, metrics) is loaded only once the flags
  // are good, so --help and a bad flag answer at once.
  const { StartAborted, startAgent } = await import('./main');

  const aborted = new AbortController();
  let received: NodeJS.Signals | undefined;
  const signal = shutdownSignal(log, (s) => {
    received = s;
    aborted.abort();
  });

  let running: RunningAgent;
  try {
    running = await startAgent(config, { logger: log, version: weftVersion(), signal: aborted.signal });
  } catch (err) {
    if (err instanceof StartAborted) {
      log.info({ signal: received }, 'stopped before the agent was running');
      return 0;
    }
    if (err instanceof ConfigError) {
      log.fatal({ err }, 'cannot start the agent');
      process.stderr.write(`weft agent: ${err.message}\n`);
      return 2;
    }
    log.fatal({ err }, 'cannot start the agent');
    process.stderr.write(`weft agent: ${(err as Error).message}\n`);
    return 1;
  }
  return stopOnSignal(log, await signal, () => running.stop());
}

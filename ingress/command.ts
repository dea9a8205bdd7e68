// `weft ingress`: flags to config (exit 2 on a bad one, naming it), then the
// ingress until SIGTERM/SIGINT or until a `--takeover` process has taken its
// listeners (exit 0 after draining either way). Exit 1 when it cannot start.
import { loadCommandConfig, shutdownSignal } from '../controller/common/command';
import { createLogger } from '../controller/common/log';
import { weftVersion } from '../controller/common/version';
import { ConfigError, INGRESS_DEFAULTS, loadIngressConfig } from './config';
import { missingNodeOptions } from './l7/node-options';
import type { RunningIngress } from './main';

const HELP = `usage: weft ingress --server host:port [flags]

Serves the cluster's services to outside clients: HTTP (host and path
routing, rack-aware balancing, health checks, draining) and TCP/UDP (kernel
DNAT with nftables). Backends come from the controller's service watch.

  --server host:port          the controller (required)
  --token-file FILE           file holding the bootstrap token from "weft token create --role ingress" (first start only; mode 0600)
  --token ID.SECRET           or: the token itself (visible to every local user in ps; prefer --token-file or WEFT_TOKEN)
  --ca-cert-hash sha256:HEX   pin of the cluster CA, as the controller prints it (first start)
  --ca-cert FILE              or: the cluster CA certificate itself
  --name NAME                 this ingress's name in the cluster (default: the machine's hostname)
  --rack NAME, --datacenter NAME
                              where this ingress is: backends in its rack are preferred
  --state-dir DIR             credentials, saved services, takeover socket (default ${INGRESS_DEFAULTS.stateDir})
  --listen-address IP         address HTTP listeners bind and L4 rules match (default: every address)
  --metrics-listen host:port  /metrics /healthz /readyz (default ${INGRESS_DEFAULTS.metricsListen})
  --accept-proxy-from CIDRS   peers whose PROXY protocol header is believed, comma-separated (default: none)
  --max-connections N         client connections over all listeners (default ${INGRESS_DEFAULTS.maxConnections})
  --max-header-bytes N        request line plus headers; larger gets 431 (default ${INGRESS_DEFAULTS.maxHeaderBytes})
  --header-timeout DURATION   to receive the request headers; then 408 (default ${INGRESS_DEFAULTS.headerTimeout})
  --idle-timeout DURATION     idle keep-alive client connections are closed (default ${INGRESS_DEFAULTS.idleTimeout})
  --connect-timeout DURATION  to connect to a backend; then the next one or 504 (default ${INGRESS_DEFAULTS.connectTimeout})
  --upstream-timeout DURATION for a backend's response, and the longest silence in it (default ${INGRESS_DEFAULTS.upstreamTimeout})
  --drain-timeout DURATION    how long removed backends, unused ports and a stopping ingress finish requests (default ${INGRESS_DEFAULTS.drainTimeout})
  --l4-source-nat MODE        masquerade|none: source address of L4 traffic to backends (default ${INGRESS_DEFAULTS.l4SourceNat})
  --nft-table NAME            the nftables table of the L4 rules (default ${INGRESS_DEFAULTS.nftTable})
  --access-log-sample F       fraction of requests logged, 0 to 1 (default ${INGRESS_DEFAULTS.accessLogSample})
  --takeover                  take the listening sockets over from the ingress running with this state dir,
                              then let it drain and exit: an upgrade without refusing a connection
  --log-level LEVEL           fatal|error|warn|info|debug|trace|silent (default info)
  --config FILE               JSON file with the same settings (keys server, token, caCertHash, name, ...)
Every flag also reads from WEFT_<NAME> (WEFT_SERVER, WEFT_TOKEN, WEFT_LISTEN_ADDRESS, ...).
`;

export async function ingressCommand(argv: string[]): Promise<number> {
  const loaded = loadCommandConfig('ingress', argv, HELP, () => loadIngressConfig(argv, process.env));
  if ('exit' in loaded) return loaded.exit;
  const config = loaded.config;
  const log = createLogger({ level: config.logLevel, base: { ingress: config.name } });
  for (const warning of config.warnings ?? []) log.warn({ tokenSource: config.tokenSource }, warning);
  const missing = missingNodeOptions(process.execArgv);
  if (missing.length > 0) {
    log.warn(
      { missing, example: `node ${missing.join(' ')} /path/to/weft.mjs ingress ...` },
      `node runs the ingress without ${missing.join(' ')}: with V8's default 1 MB young generation the HTTP proxy stops for garbage collection every few dozen requests (ingress/l7/README.md, "Latency")`,
    );
  }

  // The proxy, gRPC and koffi are loaded only once the flags are good, so --help and a bad flag answer at once.
  const { StartAborted, startIngress } = await import('./main');

  const aborted = new AbortController();
  let received: NodeJS.Signals | undefined;
  const signal = shutdownSignal(log, (s) => {
    received = s;
    aborted.abort();
  });

  let running: RunningIngress;
  try {
    running = await startIngress(config, { logger: log, version: weftVersion(), signal: aborted.signal });
  } catch (err) {
    if (err instanceof StartAborted) {
      log.info({ signal: received }, 'stopped before the ingress was running');
      return 0;
    }
    log.fatal({ err }, 'cannot start the ingress');
    process.stderr.write(`weft ingress: ${(err as Error).message}\n`);
    return err instanceof ConfigError ? 2 : 1;
  }

  const why = await Promise.race([signal.then((s) => ({ signal: s })), running.handedOver.then((pid) => ({ takenOverBy: pid }))]);
  log.info(why, 'stopping');
  // Draining may take the whole drain timeout; whatever hangs beyond it, the process still ends.
  setTimeout(() => {
    log.error('shutdown did not finish after the drain timeout; exiting');
    process.exit(1);
  }, config.drainTimeoutMs + 10_000).unref();
  await running.stop();
  // A client library may keep idle sockets open; nothing of ours is left to wait for.
  setTimeout(() => process.exit(0), 200).unref();
  return 0;
}

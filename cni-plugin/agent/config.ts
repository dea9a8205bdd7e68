// The host agent's settings: which controller, who this host is, where its
// state lives, where it listens. Read like the controller's (flags, then
// WEFT_* variables, then a JSON file given by --config or WEFT_CONFIG, then
// defaults) and checked before anything starts; every error names the flag,
// variable or file key it came from and the form it must take.
//
// Two defaults need the machine: the host name (its hostname) and the
// underlay address (the source address the kernel picks for the route to the
// controller, so a multi-homed host uses the interface that reaches the
// controller). The first is read here; the second needs a netlink lookup and
// a DNS answer, so it is resolveUnderlayIp's job, run by the agent at start.
import { validateMac } from '../../dataplane/netlink/link';
import { TX_CHECKSUM_MODES, type TxChecksumMode } from './host/checksum-policy';
import { readFileSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { checkHostName, checkName } from '../../controller/api/validate';
import {
  ConfigError, parseAbsolutePath, parseDurationWithin, parseHostPort, parseLogLevel, parseWholeNumber, readSources,
  type HostPort, type LogLevel, type OptionSpec, type Raw,
} from '../../controller/common/config-sources';
import { AGENT_JOIN, joinOptions, readJoinFlags, type JoinKey, type JoinSettings } from '../../controller/api/client/join-flags';
import type { Handle } from '../../dataplane/netlink/handle';
import { routeGet } from '../../dataplane/netlink/route';
import { DEFAULT_AGENT_SOCKET } from '../cni/parse';
import { DEFAULT_STATE_DIR } from './state/paths';

export { ConfigError };

/** The join settings (controller, token, CA pin: join-flags.ts), then this host's own. */
export type AgentConfig = JoinSettings & {
  hostName: string;
  /** Undefined: the source address of the route to the controller (resolveUnderlayIp). */
  underlayIp?: string;
  rack: string;
  datacenter: string;
  /** Empty: every network of the cluster. */
  networks: string[];
  stateDir: string;
  cniSocket: string;
  metricsListen: HostPort;
  /** Undefined: underlay MTU − 50. */
  mtu?: number;
  /** Undefined: derived from the host name (stable across reinstalls). */
  vtepMac?: string;
  resyncIntervalMs: number;
  /** How often addresses and host ends of containers that are gone (no DEL was sent) are released. */
  gcIntervalMs: number;
  /** TX checksum offload on weft's VXLAN devices: auto turns it off only on kernels that need it. */
  vxlanTxChecksum: TxChecksumMode;
  /** UDP port the probe responder listens on and other agents' probes go to (tunnels between datacenters). */
  tunnelProbePort: number;
  /** How often each remote datacenter's path is probed. */
  tunnelProbeIntervalMs: number;
  /** WireGuard key rotation interval; 0: only when an operator asks (weft host rotate-key). */
  wgKeyRotationMs: number;
  logLevel: LogLevel;
  configFile?: string;
};

export const AGENT_DEFAULTS = {
  stateDir: DEFAULT_STATE_DIR,
  /** Where the plugin looks when its config names no agentSocket: the two must agree. */
  cniSocket: DEFAULT_AGENT_SOCKET,
  metricsListen: '127.0.0.1:7081',
  resyncInterval: '60s',
  gcInterval: '60s',
  vxlanTxChecksum: 'auto' as TxChecksumMode,
  tunnelProbePort: 7472,
  tunnelProbeInterval: '250ms',
  wgKeyRotation: '720h',
  logLevel: 'info' as LogLevel,
};

type Key =
  | JoinKey | 'hostName' | 'underlayIp' | 'rack' | 'datacenter' | 'networks'
  | 'stateDir' | 'cniSocket' | 'metricsListen' | 'mtu' | 'vtepMac' | 'resyncInterval' | 'gcInterval' | 'vxlanTxChecksum' | 'logLevel'
  | 'tunnelProbePort' | 'tunnelProbeInterval' | 'wgKeyRotation';

const NAME_FORM = 'a DNS label: 1-63 of a-z, 0-9 and "-"';
export const AGENT_OPTIONS: Array<OptionSpec<Key>> = [
  // --server, --token, --token-file, --ca-cert-hash, --ca-cert: read as every role that joins reads them.
  ...joinOptions(AGENT_JOIN),
  { key: 'hostName', flag: '--host-name', env: 'WEFT_HOST_NAME', kind: 'string', form: NAME_FORM },
  { key: 'underlayIp', flag: '--underlay-ip', env: 'WEFT_UNDERLAY_IP', kind: 'string', form: 'an IP address of this host' },
  { key: 'rack', flag: '--rack', env: 'WEFT_RACK', kind: 'string', form: NAME_FORM },
  { key: 'datacenter', flag: '--datacenter', env: 'WEFT_DATACENTER', kind: 'string', form: NAME_FORM },
  { key: 'networks', flag: '--networks', env: 'WEFT_NETWORKS', kind: 'list', form: 'network names, comma-separated' },
  { key: 'stateDir', flag: '--state-dir', env: 'WEFT_STATE_DIR', kind: 'string', form: 'an absolute directory path' },
  { key: 'cniSocket', flag: '--cni-socket', env: 'WEFT_CNI_SOCKET', kind: 'string', form: 'an absolute socket path of at most 107 bytes' },
  { key: 'metricsListen', flag: '--metrics-listen', env: 'WEFT_METRICS_LISTEN', kind: 'string', form: 'host:port (port 1-65535)' },
  { key: 'mtu', flag: '--mtu', env: 'WEFT_MTU', kind: 'string', form: 'a whole number from 1280 to 65485' },
  { key: 'vtepMac', flag: '--vtep-mac', env: 'WEFT_VTEP_MAC', kind: 'string', form: 'a unicast MAC address like 02:00:00:00:00:01 (default: derived from the host name)' },
  { key: 'resyncInterval', flag: '--resync-interval', env: 'WEFT_RESYNC_INTERVAL', kind: 'string', form: 'a duration from 1s to 24h (e.g. 30s, 5m, 1h)' },
  { key: 'gcInterval', flag: '--gc-interval', env: 'WEFT_GC_INTERVAL', kind: 'string', form: 'a duration from 1s to 24h (e.g. 30s, 5m, 1h)' },
  { key: 'vxlanTxChecksum', flag: '--vxlan-tx-checksum', env: 'WEFT_VXLAN_TX_CHECKSUM', kind: 'string', form: 'auto|on|off (auto: off only on kernels before 5.7)' },
  { key: 'tunnelProbePort', flag: '--tunnel-probe-port', env: 'WEFT_TUNNEL_PROBE_PORT', kind: 'string', form: 'a UDP port from 1 to 65535' },
  { key: 'tunnelProbeInterval', flag: '--tunnel-probe-interval', env: 'WEFT_TUNNEL_PROBE_INTERVAL', kind: 'string', form: 'a duration from 50ms to 10s (e.g. 250ms, 1s)' },
  { key: 'wgKeyRotation', flag: '--wg-key-rotation', env: 'WEFT_WG_KEY_ROTATION', kind: 'string', form: 'a duration up to 8760h (e.g. 720h); 0 turns scheduled rotation off' },
  { key: 'logLevel', flag: '--log-level', env: 'WEFT_LOG_LEVEL', kind: 'string', form: 'fatal|error|warn|info|debug|trace|silent' },
];

const formOf = (k: Key) => AGENT_OPTIONS.find((o) => o.key === k)!.form;
const fail = (raw: Raw, k: Key, shown = JSON.stringify(raw.value)) => new ConfigError(`${raw.source}: ${shown} is not ${formOf(k)}`);

function name(raw: Raw | undefined, k: Key, check: typeof checkName): string {
  if (!raw) return '';
  const problem = check(raw.value, raw.source);
  if (problem) throw new ConfigError(problem);
  return raw.value as string;
}

export function loadAgentConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  opts: { readFile?: (path: string) => string; fileMode?: (path: string) => number; machineHostname?: () => string } = {},
): AgentConfig {
  const readFile = opts.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const { pick, configFile } = readSources(AGENT_OPTIONS, argv, env, readFile);
  const join = readJoinFlags(AGENT_JOIN, pick, { readFile, fileMode: opts.fileMode });

  const hostRaw = pick('hostName') ?? { value: (opts.machineHostname ?? hostname)(), source: "the machine's hostname (set --host-name)" };
  const hostName = name(hostRaw, 'hostName', checkHostName);

  const ulRaw = pick('underlayIp');
  if (ulRaw && !isIP(ulRaw.value as string)) throw fail(ulRaw, 'underlayIp');

  const netRaw = pick('networks');
  const networks: string[] = [];
  for (const n of (netRaw?.value as string[] | undefined) ?? []) {
    const problem = checkName(n, netRaw!.source);
    if (problem) throw new ConfigError(problem);
    if (!networks.includes(n)) networks.push(n);
  }

  const mtuRaw = pick('mtu');
  const mtu = mtuRaw ? parseWholeNumber(mtuRaw, formOf('mtu'), 1280, 65485) : undefined;

  const macRaw = pick('vtepMac');
  if (macRaw) {
    try {
      validateMac(macRaw.value);
    } catch {
      throw fail(macRaw, 'vtepMac');
    }
  }

  const resyncRaw = pick('resyncInterval') ?? { value: AGENT_DEFAULTS.resyncInterval, source: 'default' };
  const resyncIntervalMs = parseDurationWithin(resyncRaw, formOf('resyncInterval'), 1000, 86_400_000);

  const gcRaw = pick('gcInterval') ?? { value: AGENT_DEFAULTS.gcInterval, source: 'default' };
  const gcIntervalMs = parseDurationWithin(gcRaw, formOf('gcInterval'), 1000, 86_400_000);

  const probePortRaw = pick('tunnelProbePort');
  const tunnelProbePort = probePortRaw ? parseWholeNumber(probePortRaw, formOf('tunnelProbePort'), 1, 65535) : AGENT_DEFAULTS.tunnelProbePort;
  const probeIntervalRaw = pick('tunnelProbeInterval') ?? { value: AGENT_DEFAULTS.tunnelProbeInterval, source: 'default' };
  const tunnelProbeIntervalMs = parseDurationWithin(probeIntervalRaw, formOf('tunnelProbeInterval'), 50, 10_000);
  const rotationRaw = pick('wgKeyRotation') ?? { value: AGENT_DEFAULTS.wgKeyRotation, source: 'default' };
  const wgKeyRotationMs = parseDurationWithin(rotationRaw, formOf('wgKeyRotation'), 0, 8760 * 3_600_000);

  const metricsRaw = pick('metricsListen') ?? { value: AGENT_DEFAULTS.metricsListen, source: 'default metrics-listen' };

  const csumRaw = pick('vxlanTxChecksum');
  if (csumRaw && !TX_CHECKSUM_MODES.includes(csumRaw.value as TxChecksumMode)) throw fail(csumRaw, 'vxlanTxChecksum');
  const vxlanTxChecksum = (csumRaw?.value as TxChecksumMode | undefined) ?? AGENT_DEFAULTS.vxlanTxChecksum;

  return {
    ...join,
    hostName,
    ...(ulRaw ? { underlayIp: ulRaw.value as string } : {}),
    rack: name(pick('rack'), 'rack', checkName),
    datacenter: name(pick('datacenter'), 'datacenter', checkName),
    networks,
    stateDir: parseAbsolutePath(pick('stateDir'), formOf('stateDir'), AGENT_DEFAULTS.stateDir),
    cniSocket: parseAbsolutePath(pick('cniSocket'), formOf('cniSocket'), AGENT_DEFAULTS.cniSocket, 107),
    metricsListen: parseHostPort(metricsRaw, formOf('metricsListen')),
    ...(mtu !== undefined ? { mtu } : {}),
    ...(macRaw ? { vtepMac: (macRaw.value as string).toLowerCase() } : {}),
    resyncIntervalMs,
    gcIntervalMs,
    vxlanTxChecksum,
    tunnelProbePort,
    tunnelProbeIntervalMs,
    wgKeyRotationMs,
    logLevel: parseLogLevel(pick('logLevel'), AGENT_DEFAULTS.logLevel),
    ...(configFile !== undefined ? { configFile } : {}),
  };
}

/**
 * The underlay address: the configured one, or the source address the
 * kernel would use towards the controller (the controller's name resolved
 * first). Errors say how to set it by hand.
 */
export async function resolveUnderlayIp(config: AgentConfig, h: Handle): Promise<string> {
  if (config.underlayIp) return config.underlayIp;
  const host = config.serverHostPort.host;
  let ip = host;
  if (!isIP(host)) {
    try {
      ip = (await lookup(host)).address;
    } catch (e) {
      throw new ConfigError(`cannot resolve the controller's name ${host} to find the underlay address (${(e as Error).message}); give --underlay-ip`);
    }
  }
  let src: string | undefined;
  try {
    src = routeGet(h, ip).src;
  } catch (e) {
    throw new ConfigError(`no route to the controller at ${ip} to take the underlay address from (${(e as Error).message}); give --underlay-ip`);
  }
  if (!src) throw new ConfigError(`the route to the controller at ${ip} has no source address; give --underlay-ip`);
  if (src.startsWith('127.') || src === '::1') {
    const named = ip === host ? `--server ${host} is` : `--server ${host} resolves to ${ip},`;
    throw new ConfigError(
      `${named} a loopback address of this machine, so it tells nothing about the address other hosts reach this one at: ` +
        "give --server the controller's address as other hosts reach it (the line weft token create prints on the controller has it), " +
        'or, with the controller on this machine, give --underlay-ip with this host\'s address',
    );
  }
  return src;
}

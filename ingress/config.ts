// The ingress's settings, read like the agent's (flags, then WEFT_*
// variables, then the JSON file named by --config or WEFT_CONFIG, then
// defaults) and checked before anything starts: every bad value is a
// ConfigError naming the flag, variable or file key it came from and the
// form it must take, so `weft ingress` exits 2 before it opens a socket.
//
// This module loads nothing heavy (no gRPC, no koffi): --help and a bad flag
// answer at once.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { INGRESS_JOIN, joinOptions, readJoinFlags, type JoinKey, type JoinSettings } from '../controller/api/client/join-flags';
import { checkHostName, checkName } from '../controller/api/validate';
import { DEFAULT_INGRESS_TABLE } from '../dataplane/nftables/keys';
import { parseCidr } from '../controller/common/cidr';
import {
  ConfigError, parseAbsolutePath, parseDurationWithin, parseHostPort, parseLogLevel, parseWholeNumber, readSources,
  type HostPort, type LogLevel, type OptionSpec, type Raw,
} from '../controller/common/config-sources';

export { ConfigError };

export type SourceNat = 'masquerade' | 'none';

/** What the L7 proxy enforces per connection and request. */
export type IngressLimits = {
  maxConnections: number;
  maxHeaderBytes: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  upstreamTimeoutMs: number;
};

/**
 * The join settings (controller, token from `weft token create --role
 * ingress`, CA pin: join-flags.ts, as the agent reads them), then the
 * ingress's own.
 */
export type IngressConfig = JoinSettings & {
  /** This ingress's name in the cluster (its certificate names it). */
  name: string;
  /** Rack and datacenter of this ingress: "local" for rack-aware balancing. */
  rack: string;
  datacenter: string;
  stateDir: string;
  /** The address L7 listeners bind and L4 rules match; undefined: every address. */
  listenAddress?: string;
  metricsListen: HostPort;
  /** Peers whose PROXY protocol header is believed (a load balancer in front); empty: nobody's. */
  acceptProxyFrom: string[];
  limits: IngressLimits;
  drainTimeoutMs: number;
  l4SourceNat: SourceNat;
  nftTable: string;
  /** Fraction of requests written to the access log, 0 to 1. */
  accessLogSample: number;
  /** Take the listening sockets over from a running ingress with the same state dir. */
  takeover: boolean;
  logLevel: LogLevel;
  configFile?: string;
};

export const DEFAULT_INGRESS_STATE_DIR = '/var/lib/weft/ingress';

export const INGRESS_DEFAULTS = {
  stateDir: DEFAULT_INGRESS_STATE_DIR,
  // The controller serves on 7080 and the agent on 7081; an ingress may share a machine with both.
  metricsListen: '127.0.0.1:7082',
  maxConnections: '10000',
  maxHeaderBytes: '16384',
  headerTimeout: '10s',
  idleTimeout: '60s',
  connectTimeout: '3s',
  upstreamTimeout: '60s',
  drainTimeout: '30s',
  l4SourceNat: 'masquerade' as SourceNat,
  nftTable: DEFAULT_INGRESS_TABLE,
  accessLogSample: '0',
  logLevel: 'info' as LogLevel,
};

type Key =
  | JoinKey | 'name' | 'rack' | 'datacenter' | 'stateDir' | 'listenAddress' | 'metricsListen'
  | 'acceptProxyFrom' | 'maxConnections' | 'maxHeaderBytes' | 'headerTimeout' | 'idleTimeout' | 'connectTimeout' | 'upstreamTimeout'
  | 'drainTimeout' | 'l4SourceNat' | 'nftTable' | 'accessLogSample' | 'takeover' | 'logLevel';

const NAME_FORM = 'a DNS label: 1-63 of a-z, 0-9 and "-"';
const DURATION_FORM = (min: string, max: string) => `a duration from ${min} to ${max} (e.g. 500ms, 30s, 5m)`;

export const INGRESS_OPTIONS: Array<OptionSpec<Key>> = [
  // --server, --token, --token-file, --ca-cert-hash, --ca-cert: read as every role that joins reads them.
  ...joinOptions(INGRESS_JOIN),
  { key: 'name', flag: '--name', env: 'WEFT_NAME', kind: 'string', form: NAME_FORM },
  { key: 'rack', flag: '--rack', env: 'WEFT_RACK', kind: 'string', form: NAME_FORM },
  { key: 'datacenter', flag: '--datacenter', env: 'WEFT_DATACENTER', kind: 'string', form: NAME_FORM },
  { key: 'stateDir', flag: '--state-dir', env: 'WEFT_STATE_DIR', kind: 'string', form: 'an absolute directory path (at most 90 bytes: it holds a unix socket)' },
  { key: 'listenAddress', flag: '--listen-address', env: 'WEFT_LISTEN_ADDRESS', kind: 'string', form: 'an IPv4 or IPv6 address of this machine' },
  { key: 'metricsListen', flag: '--metrics-listen', env: 'WEFT_METRICS_LISTEN', kind: 'string', form: 'host:port (port 1-65535)' },
  { key: 'acceptProxyFrom', flag: '--accept-proxy-from', env: 'WEFT_ACCEPT_PROXY_FROM', kind: 'list', form: 'CIDRs, comma-separated (e.g. 10.0.0.0/8,192.0.2.7/32)' },
  { key: 'maxConnections', flag: '--max-connections', env: 'WEFT_MAX_CONNECTIONS', kind: 'string', form: 'a whole number from 1 to 1000000' },
  { key: 'maxHeaderBytes', flag: '--max-header-bytes', env: 'WEFT_MAX_HEADER_BYTES', kind: 'string', form: 'a whole number of bytes from 1024 to 1048576' },
  { key: 'headerTimeout', flag: '--header-timeout', env: 'WEFT_HEADER_TIMEOUT', kind: 'string', form: DURATION_FORM('100ms', '10m') },
  { key: 'idleTimeout', flag: '--idle-timeout', env: 'WEFT_IDLE_TIMEOUT', kind: 'string', form: DURATION_FORM('100ms', '24h') },
  { key: 'connectTimeout', flag: '--connect-timeout', env: 'WEFT_CONNECT_TIMEOUT', kind: 'string', form: DURATION_FORM('10ms', '10m') },
  { key: 'upstreamTimeout', flag: '--upstream-timeout', env: 'WEFT_UPSTREAM_TIMEOUT', kind: 'string', form: DURATION_FORM('100ms', '24h') },
  { key: 'drainTimeout', flag: '--drain-timeout', env: 'WEFT_DRAIN_TIMEOUT', kind: 'string', form: DURATION_FORM('0s', '1h') },
  { key: 'l4SourceNat', flag: '--l4-source-nat', env: 'WEFT_L4_SOURCE_NAT', kind: 'string', form: 'masquerade|none' },
  { key: 'nftTable', flag: '--nft-table', env: 'WEFT_NFT_TABLE', kind: 'string', form: 'an nftables table name: 1-32 of a-z, A-Z, 0-9, "_" and "-", starting with a letter' },
  { key: 'accessLogSample', flag: '--access-log-sample', env: 'WEFT_ACCESS_LOG_SAMPLE', kind: 'string', form: 'a fraction from 0 (none) to 1 (every request)' },
  { key: 'takeover', flag: '--takeover', env: 'WEFT_TAKEOVER', kind: 'bool', form: 'true or false' },
  { key: 'logLevel', flag: '--log-level', env: 'WEFT_LOG_LEVEL', kind: 'string', form: 'fatal|error|warn|info|debug|trace|silent' },
];

const formOf = (k: Key) => INGRESS_OPTIONS.find((o) => o.key === k)!.form;
const fail = (raw: Raw, k: Key, shown = JSON.stringify(raw.value)) => new ConfigError(`${raw.source}: ${shown} is not ${formOf(k)}`);

export function loadIngressConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  opts: { readFile?: (path: string) => string; fileMode?: (path: string) => number; machineHostname?: () => string } = {},
): IngressConfig {
  const readFile = opts.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const { pick, configFile } = readSources(INGRESS_OPTIONS, argv, env, readFile);
  const withDefault = (k: Key, value: string): Raw => pick(k) ?? { value, source: `default ${INGRESS_OPTIONS.find((o) => o.key === k)!.flag}` };

  const join = readJoinFlags(INGRESS_JOIN, pick, { readFile, fileMode: opts.fileMode });

  const nameRaw = pick('name') ?? { value: (opts.machineHostname ?? hostname)(), source: "the machine's hostname (set --name)" };
  const nameProblem = checkHostName(nameRaw.value, nameRaw.source);
  if (nameProblem) throw new ConfigError(nameProblem);

  const optionalName = (k: 'rack' | 'datacenter'): string => {
    const raw = pick(k);
    if (!raw) return '';
    const problem = checkName(raw.value, raw.source);
    if (problem) throw new ConfigError(problem);
    return raw.value as string;
  };

  // The handoff socket lives in it, and a unix socket path has at most 107 bytes.
  const stateDir = parseAbsolutePath(pick('stateDir'), formOf('stateDir'), INGRESS_DEFAULTS.stateDir, 90);

  const listenRaw = pick('listenAddress');
  if (listenRaw && !isIP(listenRaw.value as string)) throw fail(listenRaw, 'listenAddress');

  const metricsListen = parseHostPort(withDefault('metricsListen', INGRESS_DEFAULTS.metricsListen), formOf('metricsListen'));

  const proxyRaw = pick('acceptProxyFrom');
  const acceptProxyFrom: string[] = [];
  for (const c of (proxyRaw?.value as string[] | undefined) ?? []) {
    try {
      parseCidr(c);
    } catch (e) {
      throw new ConfigError(`${proxyRaw!.source}: ${JSON.stringify(c)} is not a CIDR (${(e as Error).message}); give ${formOf('acceptProxyFrom')}`);
    }
    if (!acceptProxyFrom.includes(c)) acceptProxyFrom.push(c);
  }

  const whole = (k: Key, fallback: string, min: number, max: number) => parseWholeNumber(withDefault(k, fallback), formOf(k), min, max);
  const duration = (k: Key, fallback: string, minMs: number, maxMs: number) => parseDurationWithin(withDefault(k, fallback), formOf(k), minMs, maxMs);

  const natRaw = withDefault('l4SourceNat', INGRESS_DEFAULTS.l4SourceNat);
  if (natRaw.value !== 'masquerade' && natRaw.value !== 'none') throw fail(natRaw, 'l4SourceNat');

  const tableRaw = withDefault('nftTable', INGRESS_DEFAULTS.nftTable);
  if (!/^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(tableRaw.value as string)) throw fail(tableRaw, 'nftTable');

  const sampleRaw = withDefault('accessLogSample', INGRESS_DEFAULTS.accessLogSample);
  const sample = Number(sampleRaw.value);
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test((sampleRaw.value as string).trim()) || !(sample >= 0 && sample <= 1)) throw fail(sampleRaw, 'accessLogSample');

  return {
    ...join,
    name: nameRaw.value as string,
    rack: optionalName('rack'),
    datacenter: optionalName('datacenter'),
    stateDir,
    ...(listenRaw ? { listenAddress: listenRaw.value as string } : {}),
    metricsListen,
    acceptProxyFrom,
    limits: {
      maxConnections: whole('maxConnections', INGRESS_DEFAULTS.maxConnections, 1, 1_000_000),
      maxHeaderBytes: whole('maxHeaderBytes', INGRESS_DEFAULTS.maxHeaderBytes, 1024, 1_048_576),
      headerTimeoutMs: duration('headerTimeout', INGRESS_DEFAULTS.headerTimeout, 100, 600_000),
      idleTimeoutMs: duration('idleTimeout', INGRESS_DEFAULTS.idleTimeout, 100, 86_400_000),
      connectTimeoutMs: duration('connectTimeout', INGRESS_DEFAULTS.connectTimeout, 10, 600_000),
      upstreamTimeoutMs: duration('upstreamTimeout', INGRESS_DEFAULTS.upstreamTimeout, 100, 86_400_000),
    },
    drainTimeoutMs: duration('drainTimeout', INGRESS_DEFAULTS.drainTimeout, 0, 3_600_000),
    l4SourceNat: natRaw.value as SourceNat,
    nftTable: tableRaw.value as string,
    accessLogSample: sample,
    takeover: (pick('takeover')?.value as boolean | undefined) ?? false,
    logLevel: parseLogLevel(pick('logLevel'), INGRESS_DEFAULTS.logLevel),
    ...(configFile !== undefined ? { configFile } : {}),
  };
}

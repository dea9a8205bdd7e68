// The controller daemon's own settings (where it listens, where it keeps its
// data), not the cluster's network configuration, which lives in the Store.
//
// Sources, strongest first: flags (--listen 0.0.0.0:7443 or --listen=...),
// WEFT_* environment variables (WEFT_LISTEN), a JSON file (--config FILE or
// WEFT_CONFIG, keys as in FileConfig), then defaults. Everything is checked
// before anything starts, and each error names the flag, variable or file
// key it came from and the form it must take.
//
// Defaults: gRPC on 0.0.0.0:7443, because hosts on other machines must reach
// it and it is mTLS-protected; metrics and health on 127.0.0.1:7080, because
// they are unauthenticated and a scraper on the machine (or an explicit
// --metrics-listen) is the safe starting point.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ConfigError, formatHostPort, isLoopback, LOG_LEVELS, parseDurationWithin, parseHostPort as hostPort, parseLogLevel, parseWholeNumber, readSources,
  type HostPort, type LogLevel, type OptionSpec,
} from '../common/config-sources';
import { isDnsName, sanName } from '../common/names';
import { parseStoreUrl } from '../store/index';

export { ConfigError, formatHostPort, LOG_LEVELS, type HostPort, type LogLevel };

export type ControllerConfig = {
  /** gRPC API. */
  listen: HostPort;
  /** /metrics and /healthz over plain HTTP. */
  metricsListen: HostPort;
  dataDir: string;
  storeUrl: string;
  /** Extra names (DNS or IP) hosts use to reach this controller; they go into its serving certificate. */
  advertise: string[];
  logLevel: LogLevel;
  /** False only with --insecure. */
  tls: boolean;
  configFile?: string;
  /** Things the daemon must log loudly at start. */
  warnings: string[];
  /** Lifetime of the client certificates Join and RenewCertificate issue (clients renew at half of it). */
  clientCertTtlMs: number;
  /** How long after expiry a certificate's key may still renew it (a host that was down meanwhile). */
  certRenewGraceMs: number;
  /** Join attempts per peer address: refilled per second, and the burst. */
  joinRatePerSecond: number;
  joinBurst: number;
};

export const DEFAULTS = {
  listen: '0.0.0.0:7443',
  metricsListen: '127.0.0.1:7080',
  dataDir: '/var/lib/weft',
  logLevel: 'info' as LogLevel,
  clientCertTtl: '24h',
  certRenewGrace: '168h',
  joinRate: 1,
  joinBurst: 10,
};

const HOUR_MS = 3_600_000;
/** Long enough for a renewal at half-life to survive a controller restart; at most the old fixed 365 days. */
const CLIENT_CERT_TTL_RANGE = { min: 10 * 60_000, max: 365 * 24 * HOUR_MS };
const RENEW_GRACE_RANGE = { min: 0, max: 90 * 24 * HOUR_MS };

type Key = 'listen' | 'metricsListen' | 'dataDir' | 'store' | 'advertise' | 'logLevel' | 'insecure'
  | 'clientCertTtl' | 'certRenewGrace' | 'joinRate' | 'joinBurst';

const OPTIONS: Array<OptionSpec<Key>> = [
  { key: 'listen', flag: '--listen', env: 'WEFT_LISTEN', kind: 'string', form: 'host:port (port 1-65535)' },
  { key: 'metricsListen', flag: '--metrics-listen', env: 'WEFT_METRICS_LISTEN', kind: 'string', form: 'host:port (port 1-65535)' },
  { key: 'dataDir', flag: '--data-dir', env: 'WEFT_DATA_DIR', kind: 'string', form: 'a directory path' },
  { key: 'store', flag: '--store', env: 'WEFT_STORE', kind: 'string', form: 'sqlite:PATH or etcd:http://host:port[,...]' },
  { key: 'advertise', flag: '--advertise', env: 'WEFT_ADVERTISE', kind: 'list', form: 'DNS names or IP addresses, comma-separated' },
  { key: 'logLevel', flag: '--log-level', env: 'WEFT_LOG_LEVEL', kind: 'string', form: LOG_LEVELS.join('|') },
  { key: 'insecure', flag: '--insecure', env: 'WEFT_INSECURE', kind: 'bool', form: 'true or false' },
  { key: 'clientCertTtl', flag: '--client-cert-ttl', env: 'WEFT_CLIENT_CERT_TTL', kind: 'string', form: 'a duration from 10m to 8760h (e.g. 24h)' },
  { key: 'certRenewGrace', flag: '--cert-renew-grace', env: 'WEFT_CERT_RENEW_GRACE', kind: 'string', form: 'a duration from 0s to 2160h (e.g. 168h)' },
  { key: 'joinRate', flag: '--join-rate', env: 'WEFT_JOIN_RATE', kind: 'string', form: 'a whole number of Join attempts per second per address, 1 to 1000' },
  { key: 'joinBurst', flag: '--join-burst', env: 'WEFT_JOIN_BURST', kind: 'string', form: 'a whole number of Join attempts in a burst per address, 1 to 10000' },
];

/** --data-dir and --store: the other commands take them as weft controller does, to find its data. */
export const STORE_OPTIONS: ReadonlyArray<OptionSpec<Key>> = OPTIONS.filter((o) => o.key === 'dataDir' || o.key === 'store');

/** Every option of weft controller: the README's flag reference is generated from it (npm run gen:flags). */
export const CONTROLLER_OPTIONS: ReadonlyArray<OptionSpec<Key>> = OPTIONS;

/** The JSON file's shape. */
export type FileConfig = Partial<{
  listen: string;
  metricsListen: string;
  dataDir: string;
  store: string;
  advertise: string[] | string;
  logLevel: LogLevel;
  insecure: boolean;
  clientCertTtl: string;
  certRenewGrace: string;
  joinRate: number | string;
  joinBurst: number | string;
}>;

export function loadControllerConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
  defaultDataDir: string = DEFAULTS.dataDir,
): ControllerConfig {
  const { pick, configFile } = readSources(OPTIONS, argv, env, readFile);

  const listen = hostPort(pick('listen') ?? { value: DEFAULTS.listen, source: 'default listen' }, 'host:port (port 1-65535)');
  const metricsListen = hostPort(pick('metricsListen') ?? { value: DEFAULTS.metricsListen, source: 'default metrics-listen' }, 'host:port (port 1-65535)');

  const dataDirRaw = pick('dataDir');
  const dataDir = dataDirRaw ? (dataDirRaw.value as string) : defaultDataDir;
  if (dataDirRaw && (dataDir.trim() === '' || dataDir.includes('\0'))) throw new ConfigError(`${dataDirRaw.source}: ${JSON.stringify(dataDir)} is not a directory path`);

  const storeRaw = pick('store');
  const storeUrl = storeRaw ? (storeRaw.value as string) : `sqlite:${join(dataDir, 'weft.db')}`;
  if (storeRaw) {
    try {
      parseStoreUrl(storeUrl);
    } catch (e) {
      throw new ConfigError(`${storeRaw.source}: ${(e as Error).message}`);
    }
  }

  const advRaw = pick('advertise');
  const advertise: string[] = [];
  for (const n of advRaw ? (advRaw.value as string[]) : []) {
    const san = sanName(n);
    if (!san) throw new ConfigError(`${advRaw!.source}: ${JSON.stringify(n)} is not a DNS name or IP address (give ${OPTIONS[4].form})`);
    if (!advertise.includes(san.value)) advertise.push(san.value);
  }

  const logLevel = parseLogLevel(pick('logLevel'), DEFAULTS.logLevel);

  const insRaw = pick('insecure');
  const insecure = insRaw?.value === true;
  const warnings: string[] = [];
  if (insecure) {
    if (!isLoopback(listen.host)) {
      throw new ConfigError(
        `${insRaw!.source}: plaintext gRPC is only for local testing and needs a loopback listen address (127.0.0.1, ::1 or localhost), ` +
          `but listen is ${formatHostPort(listen)}; add --listen 127.0.0.1:${listen.port}`,
      );
    }
    warnings.push(
      `TLS IS OFF (${insRaw!.source}): the gRPC API on ${formatHostPort(listen)} accepts anyone who can reach it as any host, with no authentication. Use this only for local testing.`,
    );
  }

  const optionForm = (k: Key) => OPTIONS.find((o) => o.key === k)!.form;
  const clientCertTtlMs = parseDurationWithin(
    pick('clientCertTtl') ?? { value: DEFAULTS.clientCertTtl, source: 'default client-cert-ttl' }, optionForm('clientCertTtl'), CLIENT_CERT_TTL_RANGE.min, CLIENT_CERT_TTL_RANGE.max,
  );
  const certRenewGraceMs = parseDurationWithin(
    pick('certRenewGrace') ?? { value: DEFAULTS.certRenewGrace, source: 'default cert-renew-grace' }, optionForm('certRenewGrace'), RENEW_GRACE_RANGE.min, RENEW_GRACE_RANGE.max,
  );
  const whole = (k: Key, fallback: number, max: number) => {
    const raw = pick(k);
    return raw ? parseWholeNumber({ ...raw, value: String(raw.value) }, optionForm(k), 1, max) : fallback;
  };
  const joinRatePerSecond = whole('joinRate', DEFAULTS.joinRate, 1000);
  const joinBurst = whole('joinBurst', DEFAULTS.joinBurst, 10_000);

  return {
    listen,
    metricsListen,
    dataDir,
    storeUrl,
    advertise,
    logLevel,
    tls: !insecure,
    ...(configFile !== undefined ? { configFile } : {}),
    warnings,
    clientCertTtlMs,
    certRenewGraceMs,
    joinRatePerSecond,
    joinBurst,
  };
}

/**
 * The names for the controller's serving certificate: what the operator
 * advertises, the machine's own name, the addresses hosts can reach it at
 * (the listen address if it is a specific one, else `addresses`: the
 * machine's non-loopback, non-link-local addresses, see servingAddresses in
 * advertise.ts), and loopback (for `weft` commands run on the controller).
 */
export function certNames(config: ControllerConfig, hostname: string, addresses: readonly string[] = []): string[] {
  const names = [...config.advertise];
  const add = (n: string) => {
    if (!names.includes(n)) names.push(n);
  };
  const h = hostname.toLowerCase();
  if (isDnsName(h)) add(h);
  if (!['0.0.0.0', '::'].includes(config.listen.host)) add(config.listen.host.toLowerCase());
  else for (const a of addresses) add(a.toLowerCase());
  for (const n of ['localhost', '127.0.0.1', '::1']) add(n);
  return names;
}

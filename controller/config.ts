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
import { isIP } from 'node:net';
import { join } from 'node:path';
import { isDnsName } from './pki/names';
import { parseStoreUrl } from './store/index';

export type HostPort = { host: string; port: number };
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

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
};

export const DEFAULTS = {
  listen: '0.0.0.0:7443',
  metricsListen: '127.0.0.1:7080',
  dataDir: '/var/lib/weft',
  logLevel: 'info' as LogLevel,
};

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Kind = 'string' | 'bool' | 'list';
type Key = 'listen' | 'metricsListen' | 'dataDir' | 'store' | 'advertise' | 'logLevel' | 'insecure';
type Option = { key: Key; flag: string; env: string; kind: Kind; form: string };

const OPTIONS: Option[] = [
  { key: 'listen', flag: '--listen', env: 'WEFT_LISTEN', kind: 'string', form: 'host:port (port 1-65535)' },
  { key: 'metricsListen', flag: '--metrics-listen', env: 'WEFT_METRICS_LISTEN', kind: 'string', form: 'host:port (port 1-65535)' },
  { key: 'dataDir', flag: '--data-dir', env: 'WEFT_DATA_DIR', kind: 'string', form: 'a directory path' },
  { key: 'store', flag: '--store', env: 'WEFT_STORE', kind: 'string', form: 'sqlite:PATH or etcd:http://host:port[,...]' },
  { key: 'advertise', flag: '--advertise', env: 'WEFT_ADVERTISE', kind: 'list', form: 'DNS names or IP addresses, comma-separated' },
  { key: 'logLevel', flag: '--log-level', env: 'WEFT_LOG_LEVEL', kind: 'string', form: LOG_LEVELS.join('|') },
  { key: 'insecure', flag: '--insecure', env: 'WEFT_INSECURE', kind: 'bool', form: 'true or false' },
];
const CONFIG_FLAG = '--config';
const CONFIG_ENV = 'WEFT_CONFIG';

/** The JSON file's shape. */
export type FileConfig = Partial<{
  listen: string;
  metricsListen: string;
  dataDir: string;
  store: string;
  advertise: string[] | string;
  logLevel: LogLevel;
  insecure: boolean;
}>;

type Raw = { value: string | string[] | boolean; source: string };

export function loadControllerConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): ControllerConfig {
  const { values: fromFlags, configPath: flagConfig } = parseFlags(argv);
  const fromEnv = parseEnv(env);
  const configPath = flagConfig ?? (nonEmpty(env[CONFIG_ENV]) ? { value: env[CONFIG_ENV]!, source: CONFIG_ENV } : undefined);
  const fromFile = configPath ? parseFile(configPath.value, configPath.source, readFile) : new Map<Key, Raw>();

  const pick = (k: Key): Raw | undefined => fromFlags.get(k) ?? fromEnv.get(k) ?? fromFile.get(k);

  const listen = hostPort(pick('listen') ?? { value: DEFAULTS.listen, source: 'default listen' }, 'host:port (port 1-65535)');
  const metricsListen = hostPort(pick('metricsListen') ?? { value: DEFAULTS.metricsListen, source: 'default metrics-listen' }, 'host:port (port 1-65535)');

  const dataDirRaw = pick('dataDir');
  const dataDir = dataDirRaw ? (dataDirRaw.value as string) : DEFAULTS.dataDir;
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
    const bare = n.startsWith('[') && n.endsWith(']') ? n.slice(1, -1) : n;
    if (!isIP(bare) && !isDnsName(n.toLowerCase())) {
      throw new ConfigError(`${advRaw!.source}: ${JSON.stringify(n)} is not a DNS name or IP address (give ${OPTIONS[4].form})`);
    }
    const v = isIP(bare) ? bare : n.toLowerCase();
    if (!advertise.includes(v)) advertise.push(v);
  }

  const llRaw = pick('logLevel');
  const logLevel = (llRaw?.value as string | undefined) ?? DEFAULTS.logLevel;
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError(`${llRaw!.source}: ${JSON.stringify(logLevel)} is not a log level (${LOG_LEVELS.join('|')})`);
  }

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

  return {
    listen,
    metricsListen,
    dataDir,
    storeUrl,
    advertise,
    logLevel: logLevel as LogLevel,
    tls: !insecure,
    ...(configPath ? { configFile: configPath.value } : {}),
    warnings,
  };
}

/**
 * The names for the controller's serving certificate: what the operator
 * advertises, plus the machine's own name, the listen address if it is a
 * specific one, and loopback (for `weft` commands run on the controller).
 */
export function certNames(config: ControllerConfig, hostname: string): string[] {
  const names = [...config.advertise];
  const add = (n: string) => {
    if (!names.includes(n)) names.push(n);
  };
  const h = hostname.toLowerCase();
  if (isDnsName(h)) add(h);
  if (!['0.0.0.0', '::'].includes(config.listen.host)) add(config.listen.host.toLowerCase());
  for (const n of ['localhost', '127.0.0.1', '::1']) add(n);
  return names;
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

function parseFlags(argv: readonly string[]): { values: Map<Key, Raw>; configPath?: { value: string; source: string } } {
  const values = new Map<Key, Raw>();
  let configPath: { value: string; source: string } | undefined;
  const known = [...OPTIONS.map((o) => o.flag), CONFIG_FLAG].join(', ');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument ${JSON.stringify(arg)} (flags: ${known})`);
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg : arg.slice(0, eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    const opt = OPTIONS.find((o) => o.flag === name);
    if (!opt && name !== CONFIG_FLAG) throw new ConfigError(`unknown flag ${name} (flags: ${known})`);

    if (opt?.kind === 'bool') {
      // A bare boolean flag never swallows the next argument.
      const v = inline === undefined ? true : parseBool(inline);
      if (v === undefined) throw new ConfigError(`${name}: ${JSON.stringify(inline)} is not ${opt.form}`);
      if (values.has(opt.key)) throw new ConfigError(`${name} given more than once`);
      values.set(opt.key, { value: v, source: name });
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) {
        throw new ConfigError(`${name} needs a value (${opt ? opt.form : 'a JSON file path'})`);
      }
      value = next;
      i++;
    }
    if (!opt) {
      if (configPath) throw new ConfigError(`${CONFIG_FLAG} given more than once`);
      if (value.trim() === '') throw new ConfigError(`${CONFIG_FLAG}: an empty string is not a JSON file path`);
      configPath = { value, source: CONFIG_FLAG };
      continue;
    }
    if (opt.kind === 'list') {
      const prev = (values.get(opt.key)?.value as string[] | undefined) ?? [];
      values.set(opt.key, { value: [...prev, ...splitList(value, name, opt.form)], source: name });
      continue;
    }
    if (values.has(opt.key)) throw new ConfigError(`${name} given more than once`);
    values.set(opt.key, { value, source: name });
  }
  return { values, configPath };
}

function parseEnv(env: Readonly<Record<string, string | undefined>>): Map<Key, Raw> {
  const values = new Map<Key, Raw>();
  for (const opt of OPTIONS) {
    const v = env[opt.env];
    // An empty variable counts as unset, as shells and unit files often leave them.
    if (!nonEmpty(v)) continue;
    if (opt.kind === 'bool') {
      const b = parseBool(v);
      if (b === undefined) throw new ConfigError(`${opt.env}: ${JSON.stringify(v)} is not ${opt.form} (or 1/0)`);
      values.set(opt.key, { value: b, source: opt.env });
    } else if (opt.kind === 'list') {
      values.set(opt.key, { value: splitList(v, opt.env, opt.form), source: opt.env });
    } else {
      values.set(opt.key, { value: v, source: opt.env });
    }
  }
  return values;
}

function parseFile(path: string, via: string, readFile: (p: string) => string): Map<Key, Raw> {
  let text: string;
  try {
    text = readFile(path);
  } catch (e) {
    throw new ConfigError(`${via}: cannot read ${path}: ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config file ${path}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new ConfigError(`config file ${path}: must be a JSON object with keys ${OPTIONS.map((o) => o.key).join(', ')}`);
  }
  const values = new Map<Key, Raw>();
  for (const [k, v] of Object.entries(data)) {
    const opt = OPTIONS.find((o) => o.key === k);
    const source = `config file ${path}: "${k}"`;
    if (!opt) throw new ConfigError(`config file ${path}: unknown key "${k}" (keys: ${OPTIONS.map((o) => o.key).join(', ')})`);
    if (opt.kind === 'bool') {
      if (typeof v !== 'boolean') throw new ConfigError(`${source}: ${JSON.stringify(v)} is not true or false`);
      values.set(opt.key, { value: v, source });
    } else if (opt.kind === 'list') {
      if (typeof v === 'string') values.set(opt.key, { value: splitList(v, source, opt.form), source });
      else if (Array.isArray(v) && v.every((x) => typeof x === 'string' && x.trim() !== '')) values.set(opt.key, { value: v.map((x: string) => x.trim()), source });
      else throw new ConfigError(`${source}: ${JSON.stringify(v)} is not a list of ${opt.form.replace(', comma-separated', '')}`);
    } else {
      if (typeof v !== 'string' || v === '') throw new ConfigError(`${source}: ${JSON.stringify(v)} is not ${opt.form}`);
      values.set(opt.key, { value: v, source });
    }
  }
  return values;
}

function hostPort(raw: Raw, form: string): HostPort {
  const s = raw.value as string;
  const bad = () => new ConfigError(`${raw.source}: ${JSON.stringify(s)} is not ${form}`);
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  if (!m) throw bad();
  const host = m[1] ?? m[2];
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw bad();
  if (m[1] !== undefined ? isIP(host) !== 6 : !(isIP(host) === 4 || isDnsName(host.toLowerCase()))) throw bad();
  return { host, port };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function splitList(v: string, source: string, form: string): string[] {
  const items = v.split(',').map((x) => x.trim());
  if (items.some((x) => x === '')) throw new ConfigError(`${source}: ${JSON.stringify(v)} has an empty entry (give ${form})`);
  return items;
}

function parseBool(v: string): boolean | undefined {
  const s = v.trim().toLowerCase();
  if (['true', '1', 'yes'].includes(s)) return true;
  if (['false', '0', 'no'].includes(s)) return false;
  return undefined;
}

function nonEmpty(v: string | undefined): v is string {
  return typeof v === 'string' && v !== '';
}

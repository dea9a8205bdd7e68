// Reading a daemon's settings from its three sources, shared by `weft
// controller` and `weft agent` so both take flags, WEFT_* variables and a
// JSON file the same way and word their errors the same way.
//
// Sources, strongest first: flags (--name value or --name=value), WEFT_*
// environment variables, a JSON file (--config FILE or WEFT_CONFIG, keys as
// the option table names them). Each value carries where it came from, so a
// check later can say "--listen: ..." or "config file x.json: "listen": ...".
// Only the raw values are read here; what they mean is each daemon's own.
import { isIP } from 'node:net';
import { WeftError } from './errors';
import { isDnsName } from './names';

export class ConfigError extends WeftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WEFT_CONFIG_INVALID', message, options);
    this.name = 'ConfigError';
  }
}

export type OptionKind = 'string' | 'bool' | 'list';
export type OptionSpec<K extends string> = { key: K; flag: string; env: string; kind: OptionKind; form: string };
export type Raw = { value: string | string[] | boolean; source: string };
export type HostPort = { host: string; port: number };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const CONFIG_FLAG = '--config';
export const CONFIG_ENV = 'WEFT_CONFIG';

export type Sources<K extends string> = {
  /** The strongest source's value for `key`, or undefined when no source sets it. */
  pick(key: K): Raw | undefined;
  configFile?: string;
};

/** Reads flags, environment and (if named) the JSON file; every unknown flag, variable form or file key is an error. */
export function readSources<K extends string>(
  options: ReadonlyArray<OptionSpec<K>>,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string,
): Sources<K> {
  const { values: fromFlags, configPath: flagConfig } = parseFlags(options, argv);
  const fromEnv = parseEnv(options, env);
  const configPath = flagConfig ?? (nonEmpty(env[CONFIG_ENV]) ? { value: env[CONFIG_ENV]!, source: CONFIG_ENV } : undefined);
  const fromFile = configPath ? parseFile(options, configPath.value, configPath.source, readFile) : new Map<K, Raw>();
  return {
    pick: (k) => fromFlags.get(k) ?? fromEnv.get(k) ?? fromFile.get(k),
    ...(configPath ? { configFile: configPath.value } : {}),
  };
}

export type ParsedFlags<K extends string> = { values: Map<K, Raw>; configPath?: { value: string; source: string }; positional: string[] };

/**
 * The flags in argv (--name value or --name=value; a bool never takes the
 * next argument), plus --config FILE. Up to `maxPositional` other arguments
 * are returned in order; any further one, an unknown flag, a missing value or
 * a repeated flag is a ConfigError naming it. Every weft command reads its
 * flags here.
 */
export function parseFlags<K extends string>(options: ReadonlyArray<OptionSpec<K>>, argv: readonly string[], maxPositional = 0): ParsedFlags<K> {
  const values = new Map<K, Raw>();
  const positional: string[] = [];
  let configPath: { value: string; source: string } | undefined;
  const known = [...options.map((o) => o.flag), CONFIG_FLAG].join(', ');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      if (positional.length < maxPositional) {
        positional.push(arg);
        continue;
      }
      throw new ConfigError(`unexpected argument ${JSON.stringify(arg)} (flags: ${known})`);
    }
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg : arg.slice(0, eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    const opt = options.find((o) => o.flag === name);
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
  return { values, configPath, positional };
}

function parseEnv<K extends string>(options: ReadonlyArray<OptionSpec<K>>, env: Readonly<Record<string, string | undefined>>): Map<K, Raw> {
  const values = new Map<K, Raw>();
  for (const opt of options) {
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

function parseFile<K extends string>(options: ReadonlyArray<OptionSpec<K>>, path: string, via: string, readFile: (p: string) => string): Map<K, Raw> {
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
    throw new ConfigError(`config file ${path}: must be a JSON object with keys ${options.map((o) => o.key).join(', ')}`);
  }
  const values = new Map<K, Raw>();
  for (const [k, v] of Object.entries(data)) {
    const opt = options.find((o) => o.key === k);
    const source = `config file ${path}: "${k}"`;
    if (!opt) throw new ConfigError(`config file ${path}: unknown key "${k}" (keys: ${options.map((o) => o.key).join(', ')})`);
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

/** host:port with a DNS name, an IPv4 address or a bracketed IPv6 address, port 1-65535. */
export function parseHostPort(raw: Raw, form: string): HostPort {
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

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** The log level a source gives, or the default. */
export function parseLogLevel(raw: Raw | undefined, fallback: LogLevel): LogLevel {
  const level = (raw?.value as string | undefined) ?? fallback;
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError(`${raw!.source}: ${JSON.stringify(level)} is not a log level (${LOG_LEVELS.join('|')})`);
  }
  return level as LogLevel;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function splitList(v: string, source: string, form: string): string[] {
  const items = v.split(',').map((x) => x.trim());
  if (items.some((x) => x === '')) throw new ConfigError(`${source}: ${JSON.stringify(v)} has an empty entry (give ${form})`);
  return items;
}

export function parseBool(v: string): boolean | undefined {
  const s = v.trim().toLowerCase();
  if (['true', '1', 'yes'].includes(s)) return true;
  if (['false', '0', 'no'].includes(s)) return false;
  return undefined;
}

export function nonEmpty(v: string | undefined): v is string {
  return typeof v === 'string' && v !== '';
}

/** "250ms", "30s", "5m", "1h" or bare seconds, in ms; undefined when it is none of these. */
export function parseDurationMs(s: string): number | undefined {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) return undefined;
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}

// The checks below word their error as every daemon's option table does:
// "<source>: <value> is not <form>", so a bad value reads the same whichever
// role rejects it.
const notForm = (raw: Raw, form: string) => new ConfigError(`${raw.source}: ${JSON.stringify(raw.value)} is not ${form}`);

/** An absolute path with no NUL and at most `maxBytes` (a unix socket path in it wants fewer), or `fallback` when no source set it. */
export function parseAbsolutePath(raw: Raw | undefined, form: string, fallback: string, maxBytes = 4096): string {
  if (!raw) return fallback;
  const v = raw.value as string;
  if (!v.startsWith('/') || v.includes('\0') || Buffer.byteLength(v) > maxBytes) throw notForm(raw, form);
  return v;
}

/** A whole number written in digits only, from `min` to `max`. */
export function parseWholeNumber(raw: Raw, form: string, min: number, max: number): number {
  const v = Number(raw.value);
  if (!/^\d+$/.test(raw.value as string) || v < min || v > max) throw notForm(raw, form);
  return v;
}

/** A duration (parseDurationMs) from `minMs` to `maxMs`, in ms. */
export function parseDurationWithin(raw: Raw, form: string, minMs: number, maxMs: number): number {
  const ms = parseDurationMs(raw.value as string);
  if (ms === undefined || ms < minMs || ms > maxMs) throw notForm(raw, form);
  return ms;
}

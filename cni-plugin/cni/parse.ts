// The runtime's request (CNI_* environment + the network config on stdin) to
// a CniRequest, validated the way the CNI spec asks before any handler runs:
// every refusal is a CniError whose code is the spec's and whose message
// names the field or variable.
import { isDnsLabel } from '../../controller/common/dns-label';
import { isIP } from 'node:net';
import {
  CNI_ERR,
  CniError,
  SUPPORTED_VERSIONS,
  type CniCommand,
  type CniDns,
  type CniInterface,
  type CniIpConfig,
  type CniRequest,
  type CniResult,
  type CniRoute,
  type WeftNetConf,
} from './types';

export type CniEnv = Record<string, string | undefined>;

export const DEFAULT_AGENT_SOCKET = '/run/weft/agent.sock';
export const DEFAULT_NETWORK = 'default';
/** Version used for error objects when the config does not say (or cannot be read). */
export const FALLBACK_VERSION = '1.1.0';

const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'];
// Network names and container ids, from the spec.
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
// weft networks are DNS labels (controller/api/validate.ts): they become
// store keys and device-name suffixes.
const VERSION_RE = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/;
// sun_path is 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH = 107;

/** Keys parseRequest understands; all others go to `raw` untouched. */
const KNOWN_KEYS = new Set([
  'cniVersion',
  'name',
  'type',
  'network',
  'agentSocket',
  'mtu',
  'prevResult',
  'runtimeConfig',
  'cni.dev/valid-attachments',
  'cni.dev/attachments',
]);

function fail(code: number, msg: string, details?: string): never {
  throw new CniError(code, msg, details);
}

const show = (v: unknown): string => (v === undefined ? 'missing' : JSON.stringify(v));

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** -1, 0, 1 like a comparator; both must match VERSION_RE. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] < pb[i] ? -1 : 1;
  return 0;
}

export function parseCommand(env: CniEnv): CniCommand {
  const c = env.CNI_COMMAND;
  if (!c) fail(CNI_ERR.INVALID_ENV, 'CNI_COMMAND is not set');
  if (!(COMMANDS as readonly string[]).includes(c as string)) {
    fail(CNI_ERR.INVALID_ENV, `unknown CNI_COMMAND ${show(c)} (must be one of ${COMMANDS.join(', ')})`);
  }
  return c as CniCommand;
}

/**
 * CNI_ARGS: `K=V;K2=V2`. Empty items (a trailing `;`) are skipped; a value may
 * itself contain `=` (only the first one splits).
 */
export function parseCniArgs(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!s) return out;
  for (const item of s.split(';')) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) fail(CNI_ERR.INVALID_ENV, `CNI_ARGS: invalid pair ${show(item)} (must be KEY=VALUE)`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

function requireEnv(env: CniEnv, name: string): string {
  const v = env[name];
  if (!v) fail(CNI_ERR.INVALID_ENV, `${name} is required for ${env.CNI_COMMAND}`);
  return v as string;
}

function checkContainerId(id: string): void {
  if (!NAME_RE.test(id)) {
    fail(
      CNI_ERR.INVALID_ENV,
      `CNI_CONTAINERID ${show(id)} is invalid (must start with a letter or digit, then letters, digits, '_', '.' or '-')`,
    );
  }
}

function checkIfname(ifname: string): void {
  const why =
    Buffer.byteLength(ifname) > 15
      ? 'longer than 15 bytes'
      : ifname === '.' || ifname === '..'
        ? 'not a usable name'
        : /[/:\s]/.test(ifname)
          ? "contains '/', ':' or whitespace"
          : undefined;
  if (why) fail(CNI_ERR.INVALID_ENV, `CNI_IFNAME ${show(ifname)} is invalid: ${why}`);
}

function checkNetns(netns: string): void {
  if (!netns.startsWith('/')) fail(CNI_ERR.INVALID_ENV, `CNI_NETNS ${show(netns)} must be an absolute path`);
}

type EnvPart = Pick<CniRequest, 'containerId' | 'netns' | 'ifname' | 'args' | 'path'>;

/** The spec's required variables per verb: DEL may come without a netns (containerd's `ctr run --cni`, or the namespace is gone). */
function parseEnv(command: CniCommand, env: CniEnv): EnvPart {
  let containerId = env.CNI_CONTAINERID ?? '';
  let netns = env.CNI_NETNS ?? '';
  let ifname = env.CNI_IFNAME ?? '';
  if (command === 'ADD' || command === 'CHECK' || command === 'DEL') {
    containerId = requireEnv(env, 'CNI_CONTAINERID');
    if (command !== 'DEL') netns = requireEnv(env, 'CNI_NETNS');
    ifname = requireEnv(env, 'CNI_IFNAME');
    checkContainerId(containerId);
    checkIfname(ifname);
    if (netns) checkNetns(netns);
  }
  const path = (env.CNI_PATH ?? '').split(':').filter((p) => p !== '');
  return { containerId, netns, ifname, args: parseCniArgs(env.CNI_ARGS), path };
}

function decode(stdin: Buffer | string): unknown {
  const text = typeof stdin === 'string' ? stdin : stdin.toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    return fail(CNI_ERR.DECODE_FAILURE, 'network configuration on stdin is not valid JSON', (e as Error).message);
  }
}

/** The config's cniVersion if stdin has a readable one, for labelling errors about that very config. */
export function configVersion(stdin: Buffer | string): string {
  try {
    const v = (JSON.parse(typeof stdin === 'string' ? stdin : stdin.toString('utf8')) as { cniVersion?: unknown })
      ?.cniVersion;
    return typeof v === 'string' && VERSION_RE.test(v) ? v : FALLBACK_VERSION;
  } catch {
    return FALLBACK_VERSION;
  }
}

function parseVersion(v: unknown, field: string): string {
  if (typeof v !== 'string' || !VERSION_RE.test(v)) {
    fail(CNI_ERR.INVALID_CONFIG, `${field} ${show(v)} is invalid (must be a version such as "1.1.0")`);
  }
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(v as string)) {
    fail(
      CNI_ERR.INCOMPATIBLE_VERSION,
      `incompatible CNI version ${show(v)} (weft supports ${SUPPORTED_VERSIONS.join(', ')})`,
    );
  }
  return v as string;
}

// ---- prevResult: any supported version's shape in, the 1.x shape out -------

function cidr(v: unknown, field: string): string {
  const s = typeof v === 'string' ? v : '';
  const slash = s.indexOf('/');
  const family = slash > 0 ? isIP(s.slice(0, slash)) : 0;
  const bits = slash > 0 ? s.slice(slash + 1) : '';
  const max = family === 6 ? 128 : 32;
  if (!family || !/^\d{1,3}$/.test(bits) || Number(bits) > max) {
    fail(CNI_ERR.INVALID_CONFIG, `${field} ${show(v)} is not an address with prefix length, e.g. "10.1.2.3/24"`);
  }
  return s;
}

function ip(v: unknown, field: string): string {
  if (typeof v !== 'string' || !isIP(v)) fail(CNI_ERR.INVALID_CONFIG, `${field} ${show(v)} is not an IP address`);
  return v as string;
}

function optString(v: unknown, field: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(CNI_ERR.INVALID_CONFIG, `${field} ${show(v)} must be a string`);
  return v as string;
}

function optInt(v: unknown, field: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(CNI_ERR.INVALID_CONFIG, `${field} ${show(v)} is invalid (must be an integer between ${min} and ${max})`);
  }
  return v as number;
}

function list(v: unknown, field: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(CNI_ERR.INVALID_CONFIG, `${field} must be a list`);
  return v as unknown[];
}

function entry(v: unknown, field: string): Record<string, unknown> {
  if (!isObject(v)) fail(CNI_ERR.INVALID_CONFIG, `${field} must be an object`);
  return v as Record<string, unknown>;
}

function stringList(v: unknown, field: string): string[] | undefined {
  if (v === undefined) return undefined;
  return list(v, field).map((s, i) => optString(s, `${field}[${i}]`) as string);
}

/**
 * A result as chained plugins pass it: 0.3.x/0.4.0 (`ips[].version`) or 1.x.
 * Only what weft's types carry is kept; a malformed one is a config error.
 */
export function parseResult(v: unknown, field: string, defaultVersion: string): CniResult {
  const o = entry(v, field);
  const cniVersion = o.cniVersion === undefined ? defaultVersion : parseVersion(o.cniVersion, `${field}.cniVersion`);
  const interfaces = list(o.interfaces, `${field}.interfaces`).map((x, i): CniInterface => {
    const f = `${field}.interfaces[${i}]`;
    const e = entry(x, f);
    const name = optString(e.name, `${f}.name`);
    if (!name) fail(CNI_ERR.INVALID_CONFIG, `${f}.name is required`);
    const out: CniInterface = { name: name as string };
    const mac = optString(e.mac, `${f}.mac`);
    const mtu = optInt(e.mtu, `${f}.mtu`, 0, 65535);
    const sandbox = optString(e.sandbox, `${f}.sandbox`);
    if (mac) out.mac = mac;
    if (mtu !== undefined) out.mtu = mtu;
    if (sandbox) out.sandbox = sandbox;
    return out;
  });
  const ips = list(o.ips, `${field}.ips`).map((x, i): CniIpConfig => {
    const f = `${field}.ips[${i}]`;
    const e = entry(x, f);
    const out: CniIpConfig = { address: cidr(e.address, `${f}.address`) };
    if (e.gateway !== undefined && e.gateway !== '') out.gateway = ip(e.gateway, `${f}.gateway`);
    const idx = optInt(e.interface, `${f}.interface`, 0, Math.max(0, interfaces.length - 1));
    if (idx !== undefined) {
      if (interfaces.length === 0) fail(CNI_ERR.INVALID_CONFIG, `${f}.interface ${idx} refers to no interface`);
      out.interface = idx;
    }
    return out;
  });
  const routes = list(o.routes, `${field}.routes`).map((x, i): CniRoute => {
    const f = `${field}.routes[${i}]`;
    const e = entry(x, f);
    const out: CniRoute = { dst: cidr(e.dst, `${f}.dst`) };
    if (e.gw !== undefined && e.gw !== '') out.gw = ip(e.gw, `${f}.gw`);
    const mtu = optInt(e.mtu, `${f}.mtu`, 0, 65535);
    const priority = optInt(e.priority, `${f}.priority`, 0, 2 ** 32 - 1);
    if (mtu !== undefined) out.mtu = mtu;
    if (priority !== undefined) out.priority = priority;
    return out;
  });
  const result: CniResult = { cniVersion };
  if (interfaces.length) result.interfaces = interfaces;
  if (ips.length) result.ips = ips;
  if (routes.length) result.routes = routes;
  if (o.dns !== undefined) {
    const d = entry(o.dns, `${field}.dns`);
    const dns: CniDns = {};
    const nameservers = stringList(d.nameservers, `${field}.dns.nameservers`);
    const domain = optString(d.domain, `${field}.dns.domain`);
    const search = stringList(d.search, `${field}.dns.search`);
    const options = stringList(d.options, `${field}.dns.options`);
    if (nameservers?.length) dns.nameservers = nameservers;
    if (domain) dns.domain = domain;
    if (search?.length) dns.search = search;
    if (options?.length) dns.options = options;
    if (Object.keys(dns).length) result.dns = dns;
  }
  return result;
}

// GC's list of attachments the runtime still uses. libcni sends it under both
// names (the spec's first draft said `cni.dev/attachments`).
function parseAttachments(o: Record<string, unknown>): Array<{ containerID: string; ifname: string }> {
  const key = o['cni.dev/valid-attachments'] !== undefined ? 'cni.dev/valid-attachments' : 'cni.dev/attachments';
  if (o[key] === undefined) {
    // Without the list every attachment would look stale: refuse rather than reclaim everything.
    fail(CNI_ERR.INVALID_CONFIG, 'cni.dev/valid-attachments is required for GC');
  }
  return list(o[key], key).map((x, i) => {
    const e = entry(x, `${key}[${i}]`);
    const containerID = optString(e.containerID, `${key}[${i}].containerID`);
    const ifname = optString(e.ifname, `${key}[${i}].ifname`);
    if (!containerID) fail(CNI_ERR.INVALID_CONFIG, `${key}[${i}].containerID is required`);
    if (!ifname) fail(CNI_ERR.INVALID_CONFIG, `${key}[${i}].ifname is required`);
    return { containerID: containerID as string, ifname: ifname as string };
  });
}

// Verbs newer than the config's version: the spec's plugins refuse them with code 1.
const SINCE: Partial<Record<CniCommand, string>> = { CHECK: '0.4.0', STATUS: '1.1.0', GC: '1.1.0' };

export function parseConfig(command: CniCommand, stdin: Buffer | string): WeftNetConf {
  const o = decode(stdin);
  // The shim's answer for the same input, so both ends agree.
  if (!isObject(o)) return fail(CNI_ERR.DECODE_FAILURE, 'network configuration on stdin is not a JSON object');
  const cniVersion = parseVersion(o.cniVersion, 'cniVersion');
  const since = SINCE[command];
  if (since && compareVersions(cniVersion, since) < 0) {
    fail(CNI_ERR.INCOMPATIBLE_VERSION, `${command} needs cniVersion ${since} or later (config has ${cniVersion})`);
  }
  if (typeof o.name !== 'string' || !NAME_RE.test(o.name)) {
    fail(
      CNI_ERR.INVALID_CONFIG,
      `name ${show(o.name)} is invalid (must start with a letter or digit, then letters, digits, '_', '.' or '-')`,
    );
  }
  if (o.type !== 'weft') fail(CNI_ERR.INVALID_CONFIG, `type ${show(o.type)} is invalid (must be "weft")`);

  const network = o.network === undefined ? DEFAULT_NETWORK : o.network;
  if (!isDnsLabel(network)) {
    fail(CNI_ERR.INVALID_CONFIG, `network ${show(network)} is invalid (must be a DNS label: a-z, 0-9, '-')`);
  }
  const agentSocket = o.agentSocket === undefined ? DEFAULT_AGENT_SOCKET : o.agentSocket;
  if (
    typeof agentSocket !== 'string' ||
    !agentSocket.startsWith('/') ||
    Buffer.byteLength(agentSocket) > MAX_SOCKET_PATH
  ) {
    fail(
      CNI_ERR.INVALID_CONFIG,
      `agentSocket ${show(agentSocket)} is invalid (must be an absolute path of at most ${MAX_SOCKET_PATH} bytes)`,
    );
  }
  const conf: WeftNetConf = {
    cniVersion,
    name: o.name as string,
    type: 'weft',
    network: network as string,
    agentSocket: agentSocket as string,
    raw: {},
  };
  const mtu = optInt(o.mtu, 'mtu', 68, 65535);
  if (mtu !== undefined) conf.mtu = mtu;
  if (o.runtimeConfig !== undefined) conf.runtimeConfig = entry(o.runtimeConfig, 'runtimeConfig');
  if (o.prevResult !== undefined && o.prevResult !== null) {
    conf.prevResult = parseResult(o.prevResult, 'prevResult', cniVersion);
  } else if (command === 'CHECK') {
    fail(CNI_ERR.INVALID_CONFIG, 'prevResult is required for CHECK');
  }
  if (command === 'GC') conf.validAttachments = parseAttachments(o);
  for (const [k, v] of Object.entries(o)) if (!KNOWN_KEYS.has(k)) conf.raw[k] = v;
  return conf;
}

/** Environment first, then the config, as the reference plugins' skeleton does. VERSION is not a request. */
export function parseRequest(env: CniEnv, stdin: Buffer | string): CniRequest {
  const command = parseCommand(env);
  if (command === 'VERSION') fail(CNI_ERR.INVALID_ENV, 'VERSION is answered without a request');
  const e = parseEnv(command, env);
  return { command, ...e, config: parseConfig(command, stdin) };
}

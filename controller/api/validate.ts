// Pure checks for every field a client can send. Each check returns the
// problem as a message that starts with the field's proto name, or undefined
// when the value is fine; the request checks below run them all before a
// handler touches the store, so a bad request writes nothing.
import { isDnsLabel } from '../common/dns-label';
import { type Cidr, CidrError, cidrContains, cidrLast, formatAddress, formatCidr, parseCidr } from '../common/cidr';
import { InvalidArgumentError } from '../common/errors';

// A request field is invalid: maps to INVALID_ARGUMENT; `field` is the proto path, e.g. "endpoint.ip".
export { InvalidArgumentError };

/** Throws the first problem found, if any. */
export function must(problem: string | undefined): void {
  if (problem !== undefined) {
    const i = problem.indexOf(': ');
    throw new InvalidArgumentError(problem, i > 0 ? { field: problem.slice(0, i) } : undefined);
  }
}

/** For problems found outside a check function: same message form, and the compiler knows it throws. */
export function fail(problem: string): never {
  must(problem);
  throw new Error(problem);
}

/** Long values are cut in messages so a hostile request cannot flood the logs. */
export function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}..."` : s;
}

// ---- names --------------------------------------------------------------

const LABEL_FORM = 'must be 1-63 characters of a-z, 0-9 and "-", starting and ending with a letter or digit';

/** Host, rack, datacenter, network and service names: DNS labels, safe as key segments, interface suffixes and cert names. */
export function checkName(v: unknown, field: string): string | undefined {
  if (typeof v !== 'string' || v === '') return `${field}: is required (${LABEL_FORM})`;
  if (!isDnsLabel(v)) return `${field}: ${show(v)} is not a valid name (${LABEL_FORM})`;
  return undefined;
}

/** Like checkName, but empty is allowed (rack and datacenter of a site that does not use them). */
export function checkOptionalName(v: unknown, field: string): string | undefined {
  return v === '' ? undefined : checkName(v, field);
}

/**
 * The host name an admin certificate carries. A host can never be called
 * this (Join and RegisterHost refuse it), so a bootstrap token cannot mint an
 * admin certificate; the CLI issues admin certificates from the CA directly.
 */
export const ADMIN_NAME = 'admin';

/**
 * The identity kinds a client certificate may carry, each its own URI SAN
 * scheme, so a name means nothing outside its kind: an ingress called like a
 * host is not that host. Hosts are weft://host/<name> (common/names.ts).
 */
export const ROLES = ['host', 'ingress'] as const;
export type Role = (typeof ROLES)[number];
export const INGRESS_URI_PREFIX = 'weft://ingress/';

/** Join's role field: "" is "host", so agents that predate roles keep joining as hosts. */
export function checkRole(v: unknown, field: string): string | undefined {
  if (v === '' || (ROLES as readonly unknown[]).includes(v)) return undefined;
  return `${field}: ${show(v)} is not a role (one of ${ROLES.map((r) => `"${r}"`).join(', ')})`;
}

export function checkHostName(v: unknown, field: string): string | undefined {
  const p = checkName(v, field);
  if (p) return p;
  if (v === ADMIN_NAME) return `${field}: "${ADMIN_NAME}" is reserved for administrator certificates`;
  return undefined;
}

// ---- addresses ----------------------------------------------------------

/** The canonical text of an IP address (IPv6 compressed, lower case), or undefined if it is not one. */
export function canonicalIp(v: unknown): string | undefined {
  const c = parseIp(v);
  return c && formatAddress(c.family, c.base);
}

function parseIp(v: unknown): Cidr | undefined {
  if (typeof v !== 'string' || v === '' || v.includes('/')) return undefined;
  try {
    return parseCidr(`${v}/${v.includes(':') ? 128 : 32}`);
  } catch {
    return undefined;
  }
}

/** An address a host or container can own: not unspecified, loopback, multicast or broadcast. */
export function checkUnicastIp(v: unknown, field: string): string | undefined {
  const a = parseIp(v);
  if (!a) return `${field}: ${show(v)} is not an IP address`;
  if (a.base === 0n) return `${field}: ${show(v)} is the unspecified address`;
  if (a.family === 4) {
    const first = Number(a.base >> 24n);
    if (first === 127) return `${field}: ${show(v)} is a loopback address`;
    if (first >= 224 && first <= 239) return `${field}: ${show(v)} is a multicast address`;
    if (a.base === 0xffffffffn) return `${field}: ${show(v)} is the broadcast address`;
  } else {
    if (a.base === 1n) return `${field}: ${show(v)} is the loopback address`;
    if (a.base >> 120n === 0xffn) return `${field}: ${show(v)} is a multicast address`;
  }
  return undefined;
}

/**
 * A host's underlay address: what every other host sends VXLAN to, so it
 * must reach that host and no other. Besides checkUnicastIp's refusals: no
 * IPv4 "this network" (0/8) or link-local (169.254/16, fe80::/10) address,
 * which never leave a link and are reused on every host; no IPv4-mapped
 * IPv6 (::ffff:a.b.c.d), which would smuggle a loopback or other refused IPv4
 * address past these checks (a host with an IPv4 underlay gives it as IPv4);
 * and nothing inside a weft network, where the address would be routed into
 * the overlay it is meant to carry. Public addresses are allowed: some
 * clouds give hosts nothing else.
 */
export function checkUnderlayIp(v: unknown, field: string, networks: Array<{ name: string; cidr: string }>): string | undefined {
  const p = checkUnicastIp(v, field);
  if (p) return p;
  return checkReachable(parseIp(v)!, show(v), field, networks, { machine: 'host', kind: 'underlay', noun: 'an underlay address' });
}

/**
 * What a unicast address other machines must reach (a host's underlay, a
 * gateway's WAN endpoint) may still not be: "this network" (0/8),
 * link-local, IPv4-mapped, or inside a weft network. `shown` is the value
 * as the caller names it in the error.
 */
function checkReachable(
  a: Cidr, shown: string, field: string, networks: Array<{ name: string; cidr: string }>,
  words: { machine: string; kind: string; noun: string },
): string | undefined {
  if (a.family === 4) {
    if (a.base >> 24n === 0n) return `${field}: ${shown} is in 0.0.0.0/8 ("this network"), which no ${words.machine} can be reached at`;
    if (a.base >> 16n === 0xa9fen) return `${field}: ${shown} is a link-local address (169.254.0.0/16): it does not leave its link`;
  } else {
    if (a.base >> 118n === 0x3fan) return `${field}: ${shown} is a link-local address (fe80::/10): it does not leave its link`;
    if (a.base >> 32n === 0xffffn) return `${field}: ${shown} is an IPv4-mapped IPv6 address: give an IPv4 ${words.kind} as IPv4`;
  }
  for (const n of networks) {
    const c = parseCidr(n.cidr);
    if (cidrContains(c, a)) return `${field}: ${shown} is inside weft network "${n.name}" (${formatCidr(c)}): ${words.noun} cannot be an overlay address`;
  }
  return undefined;
}

export function checkCidr(v: unknown, field: string): string | undefined {
  try {
    parseCidr(v as string);
    return undefined;
  } catch (e) {
    if (e instanceof CidrError) return `${field}: ${e.message}`;
    throw e;
  }
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** A VTEP MAC: six colon-separated octets, unicast (the I/G bit clear), not all zero. */
export function checkMac(v: unknown, field: string): string | undefined {
  if (typeof v !== 'string' || !MAC_RE.test(v)) return `${field}: ${show(v)} is not a MAC address (expected six hex octets like "02:42:ac:11:00:02")`;
  const octets = v.split(':').map((o) => parseInt(o, 16));
  if (octets.every((o) => o === 0)) return `${field}: ${show(v)} is the all-zero MAC address`;
  if ((octets[0] & 1) === 1) return `${field}: ${show(v)} is a multicast MAC address (the first octet must be even)`;
  return undefined;
}

/** Empty (no WireGuard on this host) or the base64 of a 32-byte Curve25519 public key. */
export function checkWgPublicKey(v: unknown, field: string): string | undefined {
  if (v === '') return undefined;
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(v)) {
    return `${field}: ${show(v)} is not a WireGuard public key (base64 of 32 bytes, 44 characters ending in "=")`;
  }
  return undefined;
}

// ---- labels -------------------------------------------------------------

const LABEL_NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
const LABEL_PREFIX_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
export const MAX_LABELS = 32;
/** Keys plus values, in characters: labels are selectors, not a place for data. */
export const MAX_LABEL_BYTES = 4096;

/** A Kubernetes-style label key: [prefix/]name, prefix a DNS subdomain of at most 253, name at most 63. */
export function checkLabelKey(k: string, field: string): string | undefined {
  const slash = k.indexOf('/');
  const prefix = slash >= 0 ? k.slice(0, slash) : undefined;
  const name = slash >= 0 ? k.slice(slash + 1) : k;
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !LABEL_PREFIX_RE.test(prefix))) {
    return `${field}: key ${show(k)} has an invalid prefix (a lower-case DNS subdomain of at most 253 characters)`;
  }
  if (!LABEL_NAME_RE.test(name)) {
    return `${field}: key ${show(k)} is not a valid label name (1-63 characters of A-Z, a-z, 0-9, "-", "_", ".", starting and ending with a letter or digit)`;
  }
  return undefined;
}

export function checkLabelValue(k: string, v: unknown, field: string): string | undefined {
  if (typeof v !== 'string') return `${field}: value of ${show(k)} must be a string`;
  if (v !== '' && !LABEL_NAME_RE.test(v)) {
    return `${field}: value ${show(v)} of ${show(k)} is not a valid label value (empty, or 1-63 characters of A-Z, a-z, 0-9, "-", "_", ".", starting and ending with a letter or digit)`;
  }
  return undefined;
}

export function checkLabels(v: unknown, field: string, opts: { nonEmpty?: boolean } = {}): string | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return `${field}: must be a map of strings`;
  const entries = Object.entries(v as Record<string, unknown>);
  if (opts.nonEmpty && entries.length === 0) return `${field}: must name at least one label (an empty selector would match every endpoint)`;
  if (entries.length > MAX_LABELS) return `${field}: has ${entries.length} entries (at most ${MAX_LABELS})`;
  let size = 0;
  for (const [k, val] of entries) {
    const p = checkLabelKey(k, field) ?? checkLabelValue(k, val, field);
    if (p) return p;
    size += k.length + (val as string).length;
  }
  if (size > MAX_LABEL_BYTES) return `${field}: keys and values total ${size} characters (at most ${MAX_LABEL_BYTES})`;
  return undefined;
}

// ---- small fields ---------------------------------------------------------

export function checkPort(v: unknown, field: string): string | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) return `${field}: ${show(v)} is not a port (1-65535)`;
  return undefined;
}

export const PROTOCOLS = ['tcp', 'udp', 'http'] as const;
export type Protocol = (typeof PROTOCOLS)[number];
/** What a port number is taken on: http is served over TCP, so it shares tcp's numbers. */
export function transportOf(p: Protocol): 'tcp' | 'udp' {
  return p === 'udp' ? 'udp' : 'tcp';
}
export function checkProtocol(v: unknown, field: string): string | undefined {
  if (!(PROTOCOLS as readonly unknown[]).includes(v)) return `${field}: ${show(v)} is not a protocol (one of ${PROTOCOLS.map((p) => `"${p}"`).join(', ')})`;
  return undefined;
}

export const RACK_POLICIES = ['prefer-local', 'any'] as const;
export function checkRackPolicy(v: unknown, field: string): string | undefined {
  if (!(RACK_POLICIES as readonly unknown[]).includes(v)) return `${field}: ${show(v)} is not a rack policy (one of ${RACK_POLICIES.map((p) => `"${p}"`).join(', ')})`;
  return undefined;
}

export const AFFINITIES = ['none', 'client-ip'] as const;
export function checkAffinity(v: unknown, field: string): string | undefined {
  if (!(AFFINITIES as readonly unknown[]).includes(v)) return `${field}: ${show(v)} is not an affinity (one of ${AFFINITIES.map((p) => `"${p}"`).join(', ')})`;
  return undefined;
}

export const MAX_HOSTNAMES = 16;
const HOSTNAME_LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * A name the ingress matches the Host header against: a lower-case DNS name
 * of at least two labels, at most 253 characters, or "*." and such a name
 * (one label of wildcard, leftmost, as in TLS certificates).
 */
export function checkHostname(v: unknown, field: string): string | undefined {
  const form = 'a lower-case DNS name such as "shop.example.com", or "*.example.com" (wildcard only as the whole leftmost label)';
  if (typeof v !== 'string' || v === '') return `${field}: is empty (give ${form})`;
  const name = v.startsWith('*.') ? v.slice(2) : v;
  const labels = name.split('.');
  if (v.length > 253 || !labels.every((l) => HOSTNAME_LABEL_RE.test(l))) return `${field}: ${show(v)} is not ${form}`;
  if (v.startsWith('*.') && labels.length < 2) return `${field}: ${show(v)} is too wide a wildcard (it must leave at least two labels, e.g. "*.example.com")`;
  return undefined;
}

export function checkHostnames(v: unknown, field: string): string | undefined {
  if (!Array.isArray(v)) return `${field}: must be a list of host names`;
  if (v.length > MAX_HOSTNAMES) return `${field}: has ${v.length} entries (at most ${MAX_HOSTNAMES})`;
  const seen = new Set<string>();
  for (const [i, h] of v.entries()) {
    const p = checkHostname(h, `${field}[${i}]`);
    if (p) return p;
    if (seen.has(h)) return `${field}[${i}]: ${show(h)} is listed twice`;
    seen.add(h);
  }
  return undefined;
}

export const MAX_PATH = 256;

/**
 * A URL path the ingress compares requests with (path prefix, health check):
 * empty, or "/" then printable ASCII without spaces, "?" or "#", at most 256,
 * and no "." or ".." segment, which would never match a normalised path.
 */
export function checkUrlPath(v: unknown, field: string): string | undefined {
  if (v === '') return undefined;
  if (typeof v !== 'string' || !v.startsWith('/')) return `${field}: ${show(v)} must be empty or start with "/"`;
  if (v.length > MAX_PATH) return `${field}: is ${v.length} characters long (at most ${MAX_PATH})`;
  if (!/^[\x21-\x7e]+$/.test(v) || /[?#]/.test(v)) return `${field}: ${show(v)} must be printable ASCII without spaces, "?" or "#"`;
  if (v.split('/').some((seg) => seg === '..' || seg === '.')) return `${field}: ${show(v)} has a "." or ".." segment`;
  return undefined;
}

const CONTAINER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$/;
/** CNI's rule for container ids: alphanumerics plus "_", "." and "-", here capped at 256. */
export function checkContainerId(v: unknown, field: string): string | undefined {
  if (typeof v !== 'string' || v === '') return `${field}: is required`;
  if (!CONTAINER_ID_RE.test(v)) return `${field}: ${show(v)} is not a container id (1-256 characters of A-Z, a-z, 0-9, "_", ".", "-", starting with a letter or digit)`;
  return undefined;
}

/** Linux interface names: at most 15 bytes, no "/", ":" or whitespace, not "." or "..". Empty: not given. */
export function checkIfname(v: unknown, field: string): string | undefined {
  if (v === '') return undefined;
  if (typeof v !== 'string' || v.length > 15 || !/^[A-Za-z0-9_.@-]+$/.test(v) || v === '.' || v === '..') {
    return `${field}: ${show(v)} is not an interface name (1-15 characters of A-Z, a-z, 0-9, "_", ".", "@", "-")`;
  }
  return undefined;
}

export function checkAgentVersion(v: unknown, field: string): string | undefined {
  if (typeof v !== 'string' || !/^[\x21-\x7e]{0,64}$/.test(v)) return `${field}: ${show(v)} is not a version (at most 64 printable ASCII characters, no spaces)`;
  return undefined;
}

export function checkRevision(v: unknown, field: string): string | undefined {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return `${field}: ${show(v)} is not a revision (0 or a positive integer)`;
  return undefined;
}

// ---- against the cluster ------------------------------------------------

export type NetworkRef = { name: string };

export function checkNetworkExists(v: unknown, field: string, networks: NetworkRef[]): string | undefined {
  const p = checkName(v, field);
  if (p) return p;
  if (!networks.some((n) => n.name === v)) {
    return `${field}: network ${show(v)} does not exist (configured: ${networks.map((n) => `"${n.name}"`).join(', ') || 'none'})`;
  }
  return undefined;
}

/**
 * A container address must lie in the subnet its host leases in that
 * network, and be neither the subnet's own address, nor the gateway (the
 * first address, held by the host's bridge), nor the IPv4 broadcast.
 */
export function checkIpInSubnet(v: unknown, field: string, subnet: string, host: string): string | undefined {
  const a = parseIp(v);
  if (!a) return `${field}: ${show(v)} is not an IP address`;
  const s = parseCidr(subnet);
  if (!cidrContains(s, a)) return `${field}: ${show(v)} is outside host "${host}"'s subnet ${formatCidr(s)}`;
  if (a.base === s.base) return `${field}: ${show(v)} is the subnet address of ${formatCidr(s)}`;
  if (a.base === s.base + 1n) return `${field}: ${show(v)} is the gateway address of ${formatCidr(s)} (held by the host's bridge)`;
  if (s.family === 4 && a.base === cidrLast(s)) return `${field}: ${show(v)} is the broadcast address of ${formatCidr(s)}`;
  return undefined;
}

/** One spelling per certificate serial: lower-case hex, no separators, no leading zeros (Node prints upper case). */
export function normalizeSerial(serial: string): string {
  return serial.toLowerCase().replace(/:/g, '').replace(/^0+(?=.)/, '');
}

/** A serial as the CA writes them: at most 20 bytes of hex. */
export function checkSerial(v: unknown, field: string): string | undefined {
  if (typeof v !== 'string' || !/^[0-9a-f]{1,40}$/.test(normalizeSerial(v))) return `${field}: ${show(v)} is not a certificate serial (hex, at most 40 digits)`;
  return undefined;
}

/** The fields of a PossessionProof before its signature is checked; absent (null) is fine where the proof is optional. */
export function checkPossessionProof(v: unknown, field: string): string | undefined {
  if (v === null || v === undefined) return undefined;
  const p = v as { certificate_pem?: unknown; signed_at_unix_ms?: unknown; signature?: unknown };
  if (typeof p.certificate_pem !== 'string' || p.certificate_pem.length > 16_384 || !p.certificate_pem.includes('-----BEGIN CERTIFICATE-----')) {
    return `${field}.certificate_pem: must be a PEM certificate of at most 16384 characters`;
  }
  if (typeof p.signed_at_unix_ms !== 'number' || !Number.isSafeInteger(p.signed_at_unix_ms) || p.signed_at_unix_ms <= 0) {
    return `${field}.signed_at_unix_ms: must be a positive whole number of ms since the epoch`;
  }
  if (!Buffer.isBuffer(p.signature) && !(p.signature instanceof Uint8Array)) return `${field}.signature: must be bytes`;
  if (p.signature.length === 0 || p.signature.length > 256) return `${field}.signature: must be 1 to 256 bytes`;
  return undefined;
}

// ---- datacenters ----------------------------------------------------------

/**
 * A gateway's WAN endpoint, "ip:port" ("[ip]:port" for IPv6): where the
 * other datacenters send WireGuard. The address must reach that gateway from
 * outside: unicast, not loopback, multicast, link-local, unspecified, "this
 * network" (0/8) or IPv4-mapped, and not inside a weft network (it would be
 * routed into the overlay it is meant to carry). Port 1-65535.
 */
export function checkWanEndpoint(v: unknown, field: string, networks: Array<{ name: string; cidr: string }>): string | undefined {
  const form = 'must be "ip:port", with an IPv6 address in brackets ("[2001:db8::7]:51820")';
  if (typeof v !== 'string' || v === '') return `${field}: is empty (${form})`;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(v);
  if (!m) return `${field}: ${show(v)} ${form}`;
  const ip = m[1] ?? m[2];
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return `${field}: ${show(v)}: port ${port} is not 1-65535`;
  const a = parseIp(ip);
  if (!a || (m[1] !== undefined && a.family !== 6)) return `${field}: ${show(v)}: ${show(ip)} is not an ${m[1] !== undefined ? 'IPv6' : 'IPv4'} address`;
  const p = checkUnicastIp(ip, field);
  if (p) return p;
  return checkReachable(a, show(v), field, networks, { machine: 'gateway', kind: 'endpoint', noun: 'a WAN endpoint' });
}

/** The one spelling of a WAN endpoint checkWanEndpoint accepted: canonical address text, brackets for IPv6. */
export function canonicalWanEndpoint(v: string): string {
  const i = v.lastIndexOf(':');
  const ip = canonicalIp(v.slice(0, i).replace(/^\[|\]$/g, ''))!;
  const port = Number(v.slice(i + 1));
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** A WireGuard listen port: 0 is the default (51820), else 1-65535. */
export function checkListenPort(v: unknown, field: string): string | undefined {
  return v === 0 ? undefined : checkPort(v, field);
}

/** An MTU override: 0 is none (derived from the underlay); else between IPv6's minimum link MTU and the largest common jumbo frame. */
export function checkMtu(v: unknown, field: string): string | undefined {
  if (v === 0) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1280 || v > 9216) return `${field}: ${show(v)} is not an MTU (0 for none, or 1280-9216)`;
  return undefined;
}

/** A heartbeat's overlay report (null: none yet): counts the proto already bounds, so only how they relate and the times. */
export function checkOverlayReport(v: unknown, field: string): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'object') return `${field}: ${show(v)} is not an overlay report`;
  const r = v as Record<string, unknown>;
  for (const k of ['desired', 'programmed', 'failed', 'skipped']) {
    if (typeof r[k] !== 'number' || !Number.isInteger(r[k]) || (r[k] as number) < 0) return `${field}.${k}: ${show(r[k])} is not a count`;
  }
  if ((r.programmed as number) > (r.desired as number)) return `${field}.programmed: ${show(r.programmed)} is more than desired (${show(r.desired)})`;
  for (const k of ['reconciled_at_unix_ms', 'topology_revision']) {
    if (typeof r[k] !== 'number' || !Number.isSafeInteger(r[k]) || (r[k] as number) < 0) return `${field}.${k}: ${show(r[k])} is not a time or revision (0 or a positive integer)`;
  }
  return undefined;
}

// ---- tunnels between datacenters ------------------------------------------

/** A tunnel report's bounds: one path per remote datacenter, a gateway's peers are the other datacenters' gateways. */
export const MAX_TUNNEL_PATHS = 64;
export const MAX_TUNNEL_PEERS = 1024;
export const TUNNEL_ROLES = ['host', 'gateway'] as const;
export const MTU_SOURCES = ['configured', 'derived', 'probed', 'none'] as const;
export const GATEWAY_STATES = ['active', 'draining'] as const;

function checkCount(v: unknown, field: string, min = 0): string | undefined {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) return `${field}: ${show(v)} is not a count${min < 0 ? ' (-1 or more)' : ''}`;
  return undefined;
}

/** "ip:port", "[ip]:port" or "" (a peer whose endpoint is not known yet). */
function checkPeerEndpoint(v: unknown, field: string): string | undefined {
  if (v === '') return undefined;
  if (typeof v !== 'string' || v.length > 64) return `${field}: ${show(v)} is not an endpoint ("ip:port")`;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(v);
  if (!m || canonicalIp(m[1] ?? m[2]) === undefined || Number(m[3]) < 1 || Number(m[3]) > 65535) return `${field}: ${show(v)} is not an endpoint ("ip:port")`;
  return undefined;
}

/** A heartbeat's tunnel report (null: none): bounded lists, names, counts and times. */
export function checkTunnelReport(v: unknown, field: string): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) return `${field}: ${show(v)} is not a tunnel report`;
  const r = v as Record<string, unknown>;
  if (!(TUNNEL_ROLES as readonly unknown[]).includes(r.role)) return `${field}.role: ${show(r.role)} is not one of ${TUNNEL_ROLES.join(', ')}`;
  const dc = checkOptionalName(r.datacenter, `${field}.datacenter`);
  if (dc) return dc;
  if (!(MTU_SOURCES as readonly unknown[]).includes(r.mtu_source)) return `${field}.mtu_source: ${show(r.mtu_source)} is not one of ${MTU_SOURCES.join(', ')}`;
  for (const k of ['wg_mtu', 'xdc_mtu']) {
    if (typeof r[k] !== 'number' || !Number.isInteger(r[k]) || (r[k] as number) < 0 || (r[k] as number) > 65535) return `${field}.${k}: ${show(r[k])} is not an MTU (0-65535)`;
  }
  const since = checkCount(r.key_since_unix_ms, `${field}.key_since_unix_ms`);
  if (since) return since;
  const paths = r.paths ?? [];
  if (!Array.isArray(paths)) return `${field}.paths: must be a list`;
  if (paths.length > MAX_TUNNEL_PATHS) return `${field}.paths: has ${paths.length} entries (at most ${MAX_TUNNEL_PATHS})`;
  for (const [i, p] of paths.entries()) {
    const at = `${field}.paths[${i}]`;
    if (!p || typeof p !== 'object') return `${at}: is not a path`;
    const q = p as Record<string, unknown>;
    const problem = checkName(q.datacenter, `${at}.datacenter`) ?? (q.chosen === '' ? undefined : checkHostName(q.chosen, `${at}.chosen`)) ??
      checkCount(q.last_ok_unix_ms, `${at}.last_ok_unix_ms`) ?? checkCount(q.consecutive_misses, `${at}.consecutive_misses`) ??
      checkCount(q.failovers, `${at}.failovers`);
    if (problem) return problem;
    if (typeof q.rtt_ms !== 'number' || !Number.isFinite(q.rtt_ms) || q.rtt_ms < 0 || q.rtt_ms > 3_600_000) return `${at}.rtt_ms: ${show(q.rtt_ms)} is not a round trip in ms`;
  }
  const peers = r.peers ?? [];
  if (!Array.isArray(peers)) return `${field}.peers: must be a list`;
  if (peers.length > MAX_TUNNEL_PEERS) return `${field}.peers: has ${peers.length} entries (at most ${MAX_TUNNEL_PEERS})`;
  for (const [i, p] of peers.entries()) {
    const at = `${field}.peers[${i}]`;
    if (!p || typeof p !== 'object') return `${at}: is not a peer`;
    const q = p as Record<string, unknown>;
    const problem = checkHostName(q.host, `${at}.host`) ?? checkOptionalName(q.datacenter, `${at}.datacenter`) ?? checkPeerEndpoint(q.endpoint, `${at}.endpoint`) ??
      checkCount(q.handshake_age_seconds, `${at}.handshake_age_seconds`, -1) ?? checkCount(q.rx_bytes, `${at}.rx_bytes`) ?? checkCount(q.tx_bytes, `${at}.tx_bytes`);
    if (problem) return problem;
  }
  return undefined;
}

/** A gateway's state as a host sets its own: "active" or "draining". */
export function checkGatewayState(v: unknown, field: string): string | undefined {
  if ((GATEWAY_STATES as readonly unknown[]).includes(v)) return undefined;
  return `${field}: ${show(v)} is not a gateway state (one of ${GATEWAY_STATES.join(', ')})`;
}

// WireGuard devices as plain data: the configuration weft wants on a device,
// the state a device reports, and the minimal update that takes one to the
// other. Both backends (kernel generic netlink, wireguard-go's UAPI socket)
// speak these types and nothing else.
//
// Keys are base64 strings as `wg` prints them, checked to be 32 bytes. A
// private or preshared key is a secret: no message, log line or error made
// here ever contains one (errors name the field, never the value), and
// `redactConfig` / `redactState` give the form that may be logged.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { AF_INET } from '../netlink/libc';
import { checkIntRange, InvalidArgumentError } from '../netlink/errors';
import { canonicalIp, formatCidr, networkOf, parseCidr } from '../netlink/ip';

export const WG_KEY_LEN = 32;

/** A base64 X25519 key (32 bytes), as `wg genkey` / `wg pubkey` print it. */
export type WireGuardKey = string;

export type PeerConfig = {
  publicKey: WireGuardKey;
  /** Secret. Absent: no preshared key. */
  presharedKey?: WireGuardKey;
  /** "192.0.2.1:51820" or "[2001:db8::1]:51820" (addresses only: resolve names before). Absent: learned from the peer. */
  endpoint?: string;
  /** CIDRs routed to this peer; stored as the device reports them (host bits cleared, sorted). */
  allowedIps: string[];
  /** Seconds between keepalives, 0 or absent: off. */
  persistentKeepalive?: number;
};

export type DeviceConfig = {
  /** Secret. */
  privateKey: WireGuardKey;
  /** UDP port; absent: leave the device's (a new device picks one at random). */
  listenPort?: number;
  /** Mark on the device's UDP packets, 0 or absent: none. */
  fwmark?: number;
  peers: PeerConfig[];
};

/**
 * A peer as the device reports it. Secrets are not kept: a preshared key is
 * known only by its fingerprint (presharedKeyFingerprint), enough to compare.
 */
export type PeerState = Omit<PeerConfig, 'presharedKey'> & {
  /** Fingerprint of the preshared key (see keyFingerprint); absent: none. */
  presharedKeyFingerprint?: string;
  /** Milliseconds since the epoch of the last completed handshake, 0: never. */
  lastHandshakeMs: number;
  rxBytes: bigint;
  txBytes: bigint;
};

/**
 * A device as it reports itself. It holds no secret, so it may be logged:
 * the private key is read only to derive its public key, which is compared
 * instead.
 */
export type DeviceState = {
  /** The public key of the device's private key; absent: no private key set yet. */
  publicKey?: WireGuardKey;
  /** 0: not listening yet. */
  listenPort: number;
  fwmark: number;
  peers: PeerState[];
};

/** One peer's change. Fields left out stay as they are on the device. */
export type PeerUpdate = {
  publicKey: WireGuardKey;
  /** Remove the peer; nothing else applies. */
  remove?: true;
  /** Change an existing peer only, never create it (a peer removed meanwhile stays removed). */
  updateOnly?: true;
  /** A key to set, or null to clear it. */
  presharedKey?: WireGuardKey | null;
  endpoint?: string;
  persistentKeepalive?: number;
  /** For a new peer: its allowed IPs. For an existing one (updateOnly): the full new list, replacing the old. */
  allowedIps?: string[];
};

/** The minimal change to a device; what `WireGuardDevice.apply` sends. */
export type DeviceUpdate = {
  privateKey?: WireGuardKey;
  listenPort?: number;
  fwmark?: number;
  /** Remove every peer not listed here first. Never set by the reconciler. */
  replacePeers?: true;
  peers: PeerUpdate[];
};

// ---- keys ----

const B64_KEY_RE = /^[A-Za-z0-9+/]{43}=$/;
const HEX_KEY_RE = /^[0-9a-f]{64}$/;

/** The 32 bytes of a base64 key; an InvalidArgumentError naming `field` (never the value) otherwise. */
export function keyBytes(key: unknown, field: string): Buffer {
  if (typeof key !== 'string' || !B64_KEY_RE.test(key)) throw new InvalidArgumentError(`invalid ${field}: not a base64 WireGuard key (44 characters)`, { field });
  const raw = Buffer.from(key, 'base64');
  // the last character carries 2 unused bits; only the form `wg` prints is accepted
  if (raw.length !== WG_KEY_LEN || raw.toString('base64') !== key) throw new InvalidArgumentError(`invalid ${field}: not a canonical 32-byte base64 key`, { field });
  return raw;
}

export function checkKey(key: unknown, field: string): asserts key is WireGuardKey {
  keyBytes(key, field);
}

export function keyToHex(key: WireGuardKey, field: string): string {
  return keyBytes(key, field).toString('hex');
}

/** A key from UAPI hex (64 lower-case hex digits); null when not that form. The value is never put in an error. */
export function hexToKey(hex: string): WireGuardKey | null {
  return HEX_KEY_RE.test(hex) ? Buffer.from(hex, 'hex').toString('base64') : null;
}

export function isZeroKey(raw: Buffer): boolean {
  return raw.every((b) => b === 0);
}

/**
 * What stands for a secret key where it must be compared but not kept: the
 * first 16 bytes of SHA-256 over a domain tag and the key, in hex. The key
 * is 32 random bytes, so this reveals nothing usable about it.
 */
export function keyFingerprint(key: WireGuardKey | Buffer): string {
  const raw = typeof key === 'string' ? Buffer.from(key, 'base64') : key;
  return createHash('sha256').update('weft wireguard psk\0').update(raw).digest('hex').slice(0, 32);
}

// ---- addresses ----

/** "1.2.3.4:51820" / "[fd00::1]:51820" in the form both backends report; InvalidArgumentError otherwise. */
export function canonicalEndpoint(endpoint: unknown, field = 'endpoint'): string {
  const bad = () => new InvalidArgumentError(`invalid ${field} ${JSON.stringify(endpoint)} (want ADDRESS:PORT, an IPv6 address in brackets)`, { field });
  if (typeof endpoint !== 'string' || endpoint.length > 64) throw bad();
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(endpoint);
  if (!m) throw bad();
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw bad();
  if (m[1] !== undefined) {
    if (!isIPv6(m[1])) throw bad();
    return `[${canonicalIp(m[1])}]:${port}`;
  }
  if (!isIPv4(m[2])) throw bad();
  return `${m[2]}:${port}`;
}

/** An allowed IP as the devices report it: host bits cleared, IPv6 compressed. */
export function canonicalAllowedIp(cidr: unknown, field = 'allowed IP'): string {
  if (typeof cidr !== 'string' || !cidr.includes('/')) throw new InvalidArgumentError(`invalid ${field} ${JSON.stringify(cidr)} (want a CIDR)`, { field });
  return formatCidr(networkOf(parseCidr(cidr)));
}

/** Sorted, de-duplicated, IPv4 first: the order used to compare lists. */
export function sortAllowedIps(list: string[]): string[] {
  const uniq = [...new Set(list)];
  return uniq.sort((a, b) => {
    const fa = parseCidr(a).family === AF_INET ? 0 : 1;
    const fb = parseCidr(b).family === AF_INET ? 0 : 1;
    return fa - fb || (a < b ? -1 : a > b ? 1 : 0);
  });
}

// ---- checking a configuration ----

/**
 * A configuration checked and put in canonical form (allowed IPs masked and
 * sorted, endpoints normalised), so comparing it with a device's state is
 * comparing like with like. Errors name the field (peers[2].endpoint), never
 * a secret value.
 */
export function normalizeConfig(c: DeviceConfig): DeviceConfig {
  if (typeof c !== 'object' || c === null) throw new InvalidArgumentError('WireGuard device config must be an object');
  checkKey(c.privateKey, 'privateKey');
  if (c.listenPort !== undefined) checkIntRange('listenPort', c.listenPort, 0, 65535);
  if (c.fwmark !== undefined) checkIntRange('fwmark', c.fwmark, 0, 0xffffffff);
  if (!Array.isArray(c.peers)) throw new InvalidArgumentError('peers must be an array', { field: 'peers' });
  const seen = new Set<string>();
  const ownPublic = publicKeyOf(c.privateKey);
  const peers = c.peers.map((p, i): PeerConfig => {
    const at = `peers[${i}]`;
    if (typeof p !== 'object' || p === null) throw new InvalidArgumentError(`${at} must be an object`, { field: at });
    checkKey(p.publicKey, `${at}.publicKey`);
    if (seen.has(p.publicKey)) throw new InvalidArgumentError(`${at}.publicKey ${p.publicKey} is listed twice`, { field: `${at}.publicKey` });
    if (p.publicKey === ownPublic) throw new InvalidArgumentError(`${at}.publicKey is the device's own public key`, { field: `${at}.publicKey` });
    seen.add(p.publicKey);
    const out: PeerConfig = { publicKey: p.publicKey, allowedIps: [] };
    if (p.presharedKey !== undefined) {
      const raw = keyBytes(p.presharedKey, `${at}.presharedKey`);
      // an all-zero preshared key is how both backends say "none"
      if (!isZeroKey(raw)) out.presharedKey = p.presharedKey;
    }
    if (p.endpoint !== undefined) out.endpoint = canonicalEndpoint(p.endpoint, `${at}.endpoint`);
    if (!Array.isArray(p.allowedIps)) throw new InvalidArgumentError(`${at}.allowedIps must be an array`, { field: `${at}.allowedIps` });
    out.allowedIps = sortAllowedIps(p.allowedIps.map((a, j) => canonicalAllowedIp(a, `${at}.allowedIps[${j}]`)));
    if (p.persistentKeepalive !== undefined) {
      checkIntRange(`${at}.persistentKeepalive`, p.persistentKeepalive, 0, 65535);
      if (p.persistentKeepalive !== 0) out.persistentKeepalive = p.persistentKeepalive;
    }
    return out;
  });
  const out: DeviceConfig = { privateKey: c.privateKey, peers };
  if (c.listenPort !== undefined) out.listenPort = c.listenPort;
  if (c.fwmark !== undefined) out.fwmark = c.fwmark;
  return out;
}

// ---- key pairs ----

/** The public key of a private key, as `wg pubkey` computes it. */
export function publicKeyOf(privateKey: WireGuardKey): WireGuardKey {
  const raw = keyBytes(privateKey, 'privateKey');
  const key = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: raw.toString('base64url'), x: '' }, format: 'jwk' });
  return Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x as string, 'base64url').toString('base64');
}

/** A fresh key pair, as `wg genkey | tee priv | wg pubkey` makes one. */
export function generateKeyPair(): { privateKey: WireGuardKey; publicKey: WireGuardKey } {
  const { privateKey } = generateKeyPairSync('x25519');
  const priv = Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url').toString('base64');
  return { privateKey: priv, publicKey: publicKeyOf(priv) };
}

// ---- what may be logged ----

const REDACTED = '(redacted)';

/** The configuration with every secret replaced: the form for logs. */
export function redactConfig(c: DeviceConfig): Record<string, unknown> {
  return {
    privateKey: REDACTED,
    listenPort: c.listenPort,
    fwmark: c.fwmark,
    peers: c.peers.map((p) => ({ ...p, presharedKey: p.presharedKey === undefined ? undefined : REDACTED })),
  };
}

/** An update with every secret replaced: what it changes, for logs. */
export function redactUpdate(u: DeviceUpdate): Record<string, unknown> {
  return {
    privateKey: u.privateKey === undefined ? undefined : REDACTED,
    listenPort: u.listenPort,
    fwmark: u.fwmark,
    replacePeers: u.replacePeers,
    peers: u.peers.map((p) => ({ ...p, presharedKey: p.presharedKey === undefined || p.presharedKey === null ? p.presharedKey : REDACTED })),
  };
}

/** Interface names as the kernel takes them (IFNAMSIZ - 1), also naming the UAPI socket file. */
export function checkInterfaceName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.=+-]{1,15}$/.test(name) || name === '.' || name === '..') {
    throw new InvalidArgumentError(`invalid WireGuard interface name ${JSON.stringify(name)} (1-15 letters, digits, "_", ".", "-", "=" or "+")`, { field: 'name' });
  }
}

// A client for WireGuard's cross-platform userspace API: the unix socket
// /var/run/wireguard/<ifname>.sock that wireguard-go (and every other
// userspace implementation) serves. One exchange per connection:
//
//   get=1\n\n                  -> key=value lines, then errno=N\n\n
//   set=1\n<key=value lines>\n -> errno=N\n\n
//
// Keys travel as 64 hex digits. Replies are parsed strictly: every line must
// be key=value in printable ASCII, values are checked by type and range, a
// peer field before any public_key, a repeated field, a reply cut short or
// longer than MAX_REPLY_BYTES is a WireGuardProtocolError that says where,
// never what a key was. A key name the parser does not know, but that is
// well-formed, is skipped: newer implementations add fields (the protocol
// says readers should), and skipping them loses nothing weft compares.
//
// Every exchange has a deadline covering connect, write and the whole reply;
// a device that does not answer in time is ETIMEDOUT, not a hang.
import { createConnection, isIPv4, isIPv6 } from 'node:net';
import { WireGuardProtocolError, WireGuardUapiError } from './errors';
import {
  canonicalAllowedIp, canonicalEndpoint, checkInterfaceName, checkKey, hexToKey, keyFingerprint, keyToHex, publicKeyOf, type DeviceState, type DeviceUpdate, type PeerState,
  type PeerUpdate,
} from './types';
import { checkIntRange } from '../netlink/errors';

export const UAPI_SOCKET_DIR = '/var/run/wireguard';
export const DEFAULT_UAPI_TIMEOUT_MS = 5000;
/** A get reply is ~250 bytes per peer plus ~25 per allowed IP; 64 MiB is far past any real device and bounds a hostile one. */
export const MAX_REPLY_BYTES = 64 << 20;

export function uapiSocketPath(ifname: string): string {
  checkInterfaceName(ifname);
  return `${UAPI_SOCKET_DIR}/${ifname}.sock`;
}

export type UapiOptions = {
  /** The interface name; names the socket and appears in errors. */
  name: string;
  /** Default /var/run/wireguard/<name>.sock. */
  socketPath?: string;
  /** Deadline for one whole exchange; default DEFAULT_UAPI_TIMEOUT_MS. */
  timeoutMs?: number;
};

export type UapiClient = {
  readonly name: string;
  readonly socketPath: string;
  get(): Promise<DeviceState>;
  /** Sends the update as one set operation; an update that changes nothing sends nothing. */
  set(update: DeviceUpdate): Promise<void>;
};

export function createUapiClient(o: UapiOptions): UapiClient {
  checkInterfaceName(o.name);
  const socketPath = o.socketPath ?? uapiSocketPath(o.name);
  const timeoutMs = o.timeoutMs ?? DEFAULT_UAPI_TIMEOUT_MS;
  return {
    name: o.name,
    socketPath,
    async get() {
      const reply = await uapiExchange(socketPath, 'get=1\n\n', { name: o.name, op: 'get', timeoutMs });
      return parseGetReply(reply, o.name);
    },
    async set(update) {
      const body = encodeSetBody(update);
      if (body === '') return;
      const reply = await uapiExchange(socketPath, `set=1\n${body}\n`, { name: o.name, op: 'set', timeoutMs });
      parseSetReply(reply, o.name);
    },
  };
}

// ---- the exchange ----

type ExchangeOptions = { name: string; op: string; timeoutMs: number; maxBytes?: number };

/**
 * Send one request and collect the reply up to its terminating blank line.
 * Resolves with the reply text without that blank line's final "\n".
 */
export function uapiExchange(socketPath: string, request: string, o: ExchangeOptions): Promise<string> {
  const maxBytes = o.maxBytes ?? MAX_REPLY_BYTES;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let done = false;
    const sock = createConnection({ path: socketPath });
    const finish = (err: Error | null, text?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(text!);
    };
    const timer = setTimeout(
      () => finish(new WireGuardUapiError(o.name, o.op, 'ETIMEDOUT', `no complete reply on ${socketPath} within ${o.timeoutMs} ms`)),
      o.timeoutMs,
    );
    sock.on('connect', () => sock.write(request));
    let lastByte = -1;
    sock.on('data', (chunk: Buffer) => {
      if (done) return;
      if (bytes === 0 && chunk[0] === 0x0a) return finish(new WireGuardProtocolError(o.name, o.op, 'reply starts with a blank line (no errno line)'));
      // The terminator is the first blank line; it can only be at the end, as no value holds a newline.
      const at = lastByte === 0x0a && chunk[0] === 0x0a ? 0 : chunk.indexOf('\n\n');
      const ends = at === -1 ? -1 : at === 0 && lastByte === 0x0a && chunk[0] === 0x0a ? 1 : at + 2;
      bytes += chunk.length;
      if (bytes > maxBytes) return finish(new WireGuardProtocolError(o.name, o.op, `reply longer than ${maxBytes} bytes`));
      chunks.push(chunk);
      lastByte = chunk[chunk.length - 1];
      if (ends === -1) return;
      if (ends !== chunk.length) return finish(new WireGuardProtocolError(o.name, o.op, `${chunk.length - ends} bytes after the end of the reply`));
      const all = Buffer.concat(chunks);
      finish(null, all.toString('latin1', 0, all.length - 1));
    });
    sock.on('end', () => finish(new WireGuardProtocolError(o.name, o.op, bytes === 0 ? 'connection closed without a reply' : `connection closed after ${bytes} bytes, before the reply ended`)));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      const code = (e.code ?? 'EIO') as `E${string}`;
      const why =
        code === 'ENOENT' ? `no socket at ${socketPath} (is wireguard-go running for this interface?)`
        : code === 'ECONNREFUSED' ? `${socketPath} refuses connections (stale: the process that made it is gone)`
        : `${socketPath}: ${e.message}`;
      finish(new WireGuardUapiError(o.name, o.op, code, why, { cause: e }));
    });
  });
}

// ---- set: encoding ----

function peerLines(p: PeerUpdate, at: string): string[] {
  checkKey(p.publicKey, `${at}.publicKey`);
  const lines = [`public_key=${keyToHex(p.publicKey, `${at}.publicKey`)}`];
  if (p.remove) {
    lines.push('remove=true');
    return lines;
  }
  // first, so that a peer gone meanwhile is not created with the lines that follow
  if (p.updateOnly) lines.push('update_only=true');
  if (p.presharedKey !== undefined) {
    lines.push(`preshared_key=${p.presharedKey === null ? '0'.repeat(64) : keyToHex(p.presharedKey, `${at}.presharedKey`)}`);
  }
  if (p.endpoint !== undefined) lines.push(`endpoint=${canonicalEndpoint(p.endpoint, `${at}.endpoint`)}`);
  if (p.persistentKeepalive !== undefined) {
    checkIntRange(`${at}.persistentKeepalive`, p.persistentKeepalive, 0, 65535);
    lines.push(`persistent_keepalive_interval=${p.persistentKeepalive}`);
  }
  if (p.allowedIps !== undefined) {
    lines.push('replace_allowed_ips=true');
    p.allowedIps.forEach((a, j) => lines.push(`allowed_ip=${canonicalAllowedIp(a, `${at}.allowedIps[${j}]`)}`));
  }
  return lines;
}

/**
 * The lines of a set operation, each ending in "\n", without the "set=1"
 * line and the closing blank line; '' when the update changes nothing.
 * Every value is checked first: bad input sends nothing.
 */
export function encodeSetBody(u: DeviceUpdate): string {
  const lines: string[] = [];
  if (u.privateKey !== undefined) lines.push(`private_key=${keyToHex(u.privateKey, 'privateKey')}`);
  if (u.listenPort !== undefined) {
    checkIntRange('listenPort', u.listenPort, 0, 65535);
    lines.push(`listen_port=${u.listenPort}`);
  }
  if (u.fwmark !== undefined) {
    checkIntRange('fwmark', u.fwmark, 0, 0xffffffff);
    lines.push(`fwmark=${u.fwmark}`);
  }
  if (u.replacePeers) lines.push('replace_peers=true');
  u.peers.forEach((p, i) => lines.push(...peerLines(p, `peers[${i}]`)));
  return lines.length === 0 ? '' : lines.map((l) => `${l}\n`).join('');
}

// ---- replies: parsing ----

const LINE_RE = /^([a-z_]{1,64})=([\x20-\x7e]{0,256})$/;
const UINT_RE = /^\d{1,20}$/;

type Line = { key: string; value: string; n: number };

function splitLines(reply: string, name: string, op: string): { lines: Line[]; errno: number } {
  const bad = (why: string) => new WireGuardProtocolError(name, op, why);
  if (!reply.endsWith('\n')) throw bad('reply does not end in a newline');
  const raw = reply.slice(0, -1).split('\n');
  const lines: Line[] = raw.map((text, i) => {
    const m = LINE_RE.exec(text);
    // the line itself is never shown: it may hold a key
    if (!m) throw bad(`line ${i + 1} is not key=value in printable ASCII (${text.length} characters)`);
    return { key: m[1], value: m[2], n: i + 1 };
  });
  const last = lines.pop();
  if (!last || last.key !== 'errno') throw bad('reply does not end with an errno line');
  if (!/^-?\d{1,10}$/.test(last.value)) throw bad(`errno value ${JSON.stringify(last.value)} is not a number`);
  const errno = Number(last.value);
  for (const l of lines) if (l.key === 'errno') throw bad(`line ${l.n}: errno before the end of the reply`);
  return { lines, errno };
}

function throwErrno(errno: number, name: string, op: string): never {
  // wireguard-go answers with a negative errno (-EINVAL); the spec's examples use positive ones
  throw new WireGuardUapiError(name, op, Math.abs(errno), `the device refused the ${op} operation (errno=${errno})`);
}

/** A set reply: nothing but errno=0. */
export function parseSetReply(reply: string, name: string): void {
  const { lines, errno } = splitLines(reply, name, 'set');
  if (lines.length > 0) throw new WireGuardProtocolError(name, 'set', `${lines.length} unexpected lines before the errno line`);
  if (errno !== 0) throwErrno(errno, name, 'set');
}

function uint(l: Line, max: number, name: string): number {
  if (!UINT_RE.test(l.value) || Number(l.value) > max) {
    throw new WireGuardProtocolError(name, 'get', `line ${l.n}: ${l.key} ${JSON.stringify(l.value)} is not a whole number up to ${max}`);
  }
  return Number(l.value);
}

function u64(l: Line, name: string): bigint {
  const v = UINT_RE.test(l.value) ? BigInt(l.value) : -1n;
  if (v < 0n || v > 0xffffffffffffffffn) throw new WireGuardProtocolError(name, 'get', `line ${l.n}: ${l.key} ${JSON.stringify(l.value)} is not a 64-bit count`);
  return v;
}

function key(l: Line, name: string): string {
  const k = hexToKey(l.value);
  if (k === null) throw new WireGuardProtocolError(name, 'get', `line ${l.n}: ${l.key} is not 64 lower-case hex digits`);
  return k;
}

function endpoint(l: Line, name: string): string {
  try {
    return canonicalEndpoint(l.value);
  } catch {
    throw new WireGuardProtocolError(name, 'get', `line ${l.n}: endpoint ${JSON.stringify(l.value)} is not ADDRESS:PORT`);
  }
}

function allowedIp(l: Line, name: string): string {
  const [addr] = l.value.split('/');
  try {
    if (!isIPv4(addr) && !isIPv6(addr)) throw new Error('not an address');
    return canonicalAllowedIp(l.value);
  } catch {
    throw new WireGuardProtocolError(name, 'get', `line ${l.n}: allowed_ip ${JSON.stringify(l.value)} is not a CIDR`);
  }
}

const ZERO_KEY = Buffer.alloc(32).toString('base64');
const DEVICE_KEYS = new Set(['private_key', 'listen_port', 'fwmark']);
const PEER_KEYS = new Set([
  'preshared_key', 'protocol_version', 'endpoint', 'last_handshake_time_sec', 'last_handshake_time_nsec', 'tx_bytes', 'rx_bytes',
  'persistent_keepalive_interval', 'allowed_ip',
]);

/** The device as a get reply describes it; errno != 0 is a WireGuardUapiError, anything malformed a WireGuardProtocolError. */
export function parseGetReply(reply: string, name: string): DeviceState {
  const { lines, errno } = splitLines(reply, name, 'get');
  if (errno !== 0) throwErrno(errno, name, 'get');
  const bad = (l: Line, why: string) => new WireGuardProtocolError(name, 'get', `line ${l.n}: ${why}`);
  const state: DeviceState = { listenPort: 0, fwmark: 0, peers: [] };
  const seenDevice = new Set<string>();
  const seenPeers = new Set<string>();
  let peer: PeerState | undefined;
  let seenPeer = new Set<string>();
  let sec = 0;
  let nsec = 0;
  const closePeer = () => {
    if (peer) peer.lastHandshakeMs = sec * 1000 + Math.floor(nsec / 1e6);
  };
  for (const l of lines) {
    if (l.key === 'public_key') {
      closePeer();
      const k = key(l, name);
      if (seenPeers.has(k)) throw bad(l, `peer ${k} appears twice`);
      seenPeers.add(k);
      peer = { publicKey: k, allowedIps: [], lastHandshakeMs: 0, rxBytes: 0n, txBytes: 0n };
      state.peers.push(peer);
      seenPeer = new Set();
      sec = 0;
      nsec = 0;
      continue;
    }
    if (DEVICE_KEYS.has(l.key)) {
      if (peer) throw bad(l, `device field ${l.key} after the first peer`);
      if (seenDevice.has(l.key)) throw bad(l, `${l.key} appears twice`);
      seenDevice.add(l.key);
      // only the public key is kept: a DeviceState holds no secret
      if (l.key === 'private_key') state.publicKey = publicKeyOf(key(l, name));
      else if (l.key === 'listen_port') state.listenPort = uint(l, 65535, name);
      else state.fwmark = uint(l, 0xffffffff, name);
      continue;
    }
    if (PEER_KEYS.has(l.key)) {
      if (!peer) throw bad(l, `peer field ${l.key} before any public_key`);
      if (l.key !== 'allowed_ip') {
        if (seenPeer.has(l.key)) throw bad(l, `${l.key} appears twice for one peer`);
        seenPeer.add(l.key);
      }
      switch (l.key) {
        case 'preshared_key': {
          const k = key(l, name);
          if (k !== ZERO_KEY) peer.presharedKeyFingerprint = keyFingerprint(k);
          break;
        }
        case 'protocol_version':
          if (l.value !== '1') throw bad(l, `protocol_version ${JSON.stringify(l.value)} is not 1`);
          break;
        case 'endpoint':
          peer.endpoint = endpoint(l, name);
          break;
        case 'last_handshake_time_sec':
          sec = uint(l, 2 ** 40, name);
          break;
        case 'last_handshake_time_nsec':
          nsec = uint(l, 999_999_999, name);
          break;
        case 'tx_bytes':
          peer.txBytes = u64(l, name);
          break;
        case 'rx_bytes':
          peer.rxBytes = u64(l, name);
          break;
        case 'persistent_keepalive_interval': {
          const v = uint(l, 65535, name);
          if (v !== 0) peer.persistentKeepalive = v;
          break;
        }
        case 'allowed_ip':
          peer.allowedIps.push(allowedIp(l, name));
          break;
      }
      continue;
    }
    // a well-formed field this parser does not know: from a newer implementation, skipped
  }
  closePeer();
  return state;
}

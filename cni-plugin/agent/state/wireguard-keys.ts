// This host's WireGuard key pair, kept in the agent's state dir beside its
// cluster credentials:
//
//   wireguard.key  0600  X25519 private key, base64 as `wg` prints it
//
// Only the public key leaves the host, in RegisterHost (and SetWireGuardKey
// after a rotation, below).
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { open, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { checkPrivateFile, ensurePrivateDir, IdentityError, readIfExists } from '../../../controller/api/client/credentials';
import { createExclusive, replaceAtomic, syncDir } from '../../../controller/common/files';
import { DEFAULT_STATE_DIR } from './paths';

export const WG_KEY_FILE = 'wireguard.key';

export type WireGuardKeys = { privateKey: string; publicKey: string };

const b64urlToB64 = (s: string) => Buffer.from(s, 'base64url').toString('base64');

/** The public key for a base64 X25519 private key, as `wg pubkey` computes it. */
export function wireGuardPublicKey(privateKey: string): string {
  const raw = Buffer.from(privateKey, 'base64');
  if (raw.length !== 32 || raw.toString('base64') !== privateKey.trim()) throw new IdentityError('WireGuard private key must be 32 bytes in base64');
  const key = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: raw.toString('base64url'), x: '' }, format: 'jwk' });
  return b64urlToB64(createPublicKey(key).export({ format: 'jwk' }).x as string);
}

function newWireGuardPrivateKey(): string {
  const { privateKey } = generateKeyPairSync('x25519');
  return b64urlToB64(privateKey.export({ format: 'jwk' }).d as string);
}


/** This host's WireGuard key pair: made once, kept in wireguard.key (0600). */
export async function ensureWireGuardKeys(stateDir: string = DEFAULT_STATE_DIR): Promise<WireGuardKeys> {
  const path = join(stateDir, WG_KEY_FILE);
  let stored = await readIfExists(path);
  if (stored === null) {
    await ensurePrivateDir(stateDir);
    try {
      await createExclusive(path, newWireGuardPrivateKey() + '\n', 0o600);
    } catch (e) {
      // Another agent process made it first: use theirs, so the host has one key.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    stored = await readFile(path, 'utf8');
  }
  await checkPrivateFile(path);
  const privateKey = stored.trim();
  try {
    return { privateKey, publicKey: wireGuardPublicKey(privateKey) };
  } catch (e) {
    throw new IdentityError(`${path} is not a WireGuard private key (${(e as Error).message})`);
  }
}

// ---- rotation -----------------------------------------------------------------
//
// A rotation never leaves the host without a usable key, whenever it stops:
//
//   wireguard.key.next   0600  the new private key, written whole (temp file,
//                              fsync, link) before anything uses it
//   rename(.next, wireguard.key)  the one step that makes it the key; atomic,
//                              so a reader sees the old key or the new one
//
// Until that rename the old key stays in wireguard.key and in the device: a
// crash before it leaves the old key in use and a pending .next that the next
// rotation takes up (it was never used or registered); a crash after it
// leaves the new key, which the agent registers at start like any key.

export const WG_NEXT_KEY_FILE = 'wireguard.key.next';
/** The last operator-requested rotation generation this host has acted on: {"generation": N}. */
export const WG_ROTATION_FILE = 'wireguard.rotation';

function keysOf(privateKey: string, path: string): WireGuardKeys {
  try {
    return { privateKey, publicKey: wireGuardPublicKey(privateKey) };
  } catch (e) {
    throw new IdentityError(`${path} is not a WireGuard private key (${(e as Error).message})`);
  }
}


/**
 * The key pair the next rotation moves to: the pending wireguard.key.next if
 * a rotation stopped before using it, else a new one written there. A pending
 * file that is not a key (or readable by others) is replaced.
 */
export async function prepareNextWireGuardKeys(stateDir: string = DEFAULT_STATE_DIR): Promise<WireGuardKeys> {
  const path = join(stateDir, WG_NEXT_KEY_FILE);
  const pending = await readIfExists(path);
  if (pending !== null) {
    try {
      await checkPrivateFile(path);
      return keysOf(pending.trim(), path);
    } catch {
      await unlink(path).catch(() => {});
    }
  }
  await ensurePrivateDir(stateDir);
  try {
    await createExclusive(path, newWireGuardPrivateKey() + '\n', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  return keysOf((await readFile(path, 'utf8')).trim(), path);
}

/**
 * Makes the pending key this host's key: renames wireguard.key.next over
 * wireguard.key (the old key is gone from then on) and stamps it with the
 * time it took over, which the device reports as its key's age.
 */
export async function commitNextWireGuardKeys(stateDir: string = DEFAULT_STATE_DIR, now: Date = new Date()): Promise<WireGuardKeys> {
  const next = join(stateDir, WG_NEXT_KEY_FILE);
  const path = join(stateDir, WG_KEY_FILE);
  const text = await readIfExists(next);
  if (text === null) throw new IdentityError(`${next} is missing: no rotation is pending`);
  const keys = keysOf(text.trim(), next);
  await rename(next, path);
  await utimes(path, now, now);
  await syncDir(stateDir);
  return keys;
}

/** ms since the epoch since when wireguard.key holds its key (its mtime); 0 when there is none. */
export async function wireGuardKeySince(stateDir: string = DEFAULT_STATE_DIR): Promise<number> {
  try {
    return Math.round((await stat(join(stateDir, WG_KEY_FILE))).mtimeMs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
}

/** The last requested rotation generation this host acted on; 0 when none (or the file is unreadable). */
export async function readRotationGeneration(stateDir: string = DEFAULT_STATE_DIR): Promise<number> {
  const text = await readIfExists(join(stateDir, WG_ROTATION_FILE));
  if (text === null) return 0;
  try {
    const g = (JSON.parse(text) as { generation?: unknown }).generation;
    return typeof g === 'number' && Number.isSafeInteger(g) && g > 0 ? g : 0;
  } catch {
    return 0;
  }
}

export async function writeRotationGeneration(stateDir: string, generation: number): Promise<void> {
  await replaceAtomic(join(stateDir, WG_ROTATION_FILE), JSON.stringify({ generation }) + '\n', 0o600);
}

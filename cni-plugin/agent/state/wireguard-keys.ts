// This host's WireGuard key pair, kept in the agent's state dir beside its
// cluster credentials:
//
//   wireguard.key  0600  X25519 private key, base64 as `wg` prints it
//
// Only the public key leaves the host, in RegisterHost.
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkPrivateFile, ensurePrivateDir, IdentityError, readIfExists } from '../../../controller/api/client/credentials';
import { createExclusive } from '../../../controller/common/files';
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

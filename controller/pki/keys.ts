// Key handling shared by the CA and the certificates it issues: P-256 key
// pairs as PKCS#8 PEM on disk, WebCrypto keys for signing.
import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { EC_ALG, subtle, type CryptoKey, type CryptoKeyPair } from './x509';

export async function generateKeyPair(): Promise<{ keys: CryptoKeyPair; keyPem: string }> {
  const keys = (await subtle.generateKey(EC_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const pkcs8 = Buffer.from(await subtle.exportKey('pkcs8', keys.privateKey));
  return { keys, keyPem: toPem('PRIVATE KEY', pkcs8) };
}

export function toPem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/**
 * Parses a PEM private key and insists on P-256: a key of another kind would
 * sign certificates peers might not accept, so it is refused up front.
 */
export function parseP256PrivateKey(pem: string | Buffer, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (e) {
    throw new Error(`${what} is not a PEM private key (${(e as Error).message})`);
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
    throw new Error(`${what} is a ${key.asymmetricKeyType}${curve ? ` ${curve}` : ''} key; weft uses ECDSA P-256 keys`);
  }
  return key;
}

/** WebCrypto signing key from a node KeyObject (Node 20 has no KeyObject.toCryptoKey). */
export async function signingKey(key: KeyObject): Promise<CryptoKey> {
  const der = key.export({ type: 'pkcs8', format: 'der' });
  return subtle.importKey('pkcs8', der, EC_ALG, false, ['sign']);
}

export async function publicCryptoKey(pem: string): Promise<CryptoKey> {
  let der: Buffer;
  try {
    der = createPublicKey(pem).export({ type: 'spki', format: 'der' });
  } catch (e) {
    throw new Error(`public key is not a PEM public key (${(e as Error).message})`);
  }
  return subtle.importKey('spki', der, EC_ALG, true, ['verify']);
}

export function spkiDer(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' });
}

/** A positive 128-bit serial: random so two HA controllers sharing a CA never collide. */
export function randomSerial(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f;
  if (b[0] === 0) b[0] = 1;
  return b.toString('hex');
}

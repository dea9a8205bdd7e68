// The cluster CA: one ECDSA P-256 key pair in the controller's data
// directory, created on first start and loaded on every later one.
//
// HA: every controller of a cluster must sign with the same CA, or hosts
// joined through one controller would be strangers to the others. Start the
// first controller, then copy its ca.crt (0644) and ca.key (0600, owned by
// root) into each further controller's data directory *before* that
// controller's first start; ensureCa then loads them instead of creating a
// new CA. Each controller still makes its own serving certificate
// (server.crt/server.key) for its own advertised names.
import { X509Certificate, type KeyObject } from 'node:crypto';
import { mkdir, readFile, stat, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { PkiError } from './errors';
import { createExclusive } from '../common/files';
import { generateKeyPair, parseP256PrivateKey, randomSerial, signingKey, spkiDer } from './keys';
import { EC_ALG, x509, type CryptoKey } from './x509';

export const CA_KEY_FILE = 'ca.key';
export const CA_CERT_FILE = 'ca.crt';

export type Ca = {
  dir: string;
  certPem: string;
  /** Parsed with node:crypto, for verifying peers. */
  cert: X509Certificate;
  key: KeyObject;
  /** The same key as WebCrypto, for signing certificates. */
  signer: CryptoKey;
};

export type EnsureCaOptions = {
  /** Lifetime of a newly created CA; default 10 years. */
  ttlDays?: number;
  /** Subject common name of a newly created CA. */
  commonName?: string;
  now?: Date;
};

const DAY_MS = 86_400_000;

/** Loads the CA from `dir`, creating it (dir 0700, ca.key 0600, ca.crt 0644) if neither file exists. */
export async function ensureCa(dir: string, opts: EnsureCaOptions = {}): Promise<Ca> {
  const keyPath = join(dir, CA_KEY_FILE);
  const certPath = join(dir, CA_CERT_FILE);
  const [keyExists, certExists] = await Promise.all([exists(keyPath), exists(certPath)]);
  if (!keyExists && !certExists) {
    await createCa(dir, opts);
  } else if (!keyExists) {
    throw new PkiError(`${certPath} exists but ${keyPath} does not: restore the CA key (copy it from another controller of this cluster) or remove ${certPath} to start a new cluster CA`);
  } else if (!certExists) {
    throw new PkiError(`${keyPath} exists but ${certPath} does not: restore the CA certificate (copy it from another controller of this cluster); refusing to make a new CA over an existing key`);
  }
  return loadCa(dir, opts.now);
}

/** Loads and checks an existing CA; never creates one. */
export async function loadCa(dir: string, now: Date = new Date()): Promise<Ca> {
  const keyPath = join(dir, CA_KEY_FILE);
  const certPath = join(dir, CA_CERT_FILE);
  await checkKeyFileMode(keyPath);
  const [keyPem, certPem] = await Promise.all([readOrExplain(keyPath), readOrExplain(certPath)]);

  let key: KeyObject;
  try {
    key = parseP256PrivateKey(keyPem, keyPath);
  } catch (e) {
    throw new PkiError(`${(e as Error).message}; the file is corrupt or not a weft CA key`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (e) {
    throw new PkiError(`${certPath} is not a PEM certificate (${(e as Error).message}); the file is corrupt or not a weft CA certificate`);
  }
  if (!cert.ca) throw new PkiError(`${certPath} is not a CA certificate (basicConstraints CA:FALSE)`);
  if (!spkiDer(key).equals(cert.publicKey.export({ type: 'spki', format: 'der' }))) {
    throw new PkiError(`${keyPath} does not match ${certPath}: the key is not the one the certificate was made for (mixed files from two clusters?)`);
  }
  const notAfter = new Date(cert.validTo);
  if (notAfter.getTime() <= now.getTime()) {
    throw new PkiError(`the cluster CA in ${certPath} expired on ${notAfter.toISOString()}; every certificate it issued is invalid too`);
  }
  return { dir, certPem: cert.toString(), cert, key, signer: await signingKey(key) };
}

/** The pin agents check the CA against: defined by the client, which checks it; printed by the controller. */
export { caCertHash } from '../api/client/trust';

async function createCa(dir: string, opts: EnsureCaOptions): Promise<void> {
  const ttlDays = opts.ttlDays ?? 3650;
  if (!(ttlDays > 0 && ttlDays <= 36500)) throw new PkiError(`CA ttlDays ${ttlDays} is out of range (more than 0, at most 36500)`);
  const now = opts.now ?? new Date();
  const created = await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode passes through the umask and only applies to what it made.
  if (created !== undefined) await chmod(dir, 0o700);

  const { keys, keyPem } = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [opts.commonName ?? 'weft cluster CA'] }, { O: ['weft'] }],
    notBefore: new Date(now.getTime() - 5 * 60_000),
    notAfter: new Date(now.getTime() + ttlDays * DAY_MS),
    keys,
    signingAlgorithm: EC_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  try {
    // Key first: a crash between the two leaves "key without cert", which
    // ensureCa refuses loudly rather than silently making a second CA.
    await createExclusive(join(dir, CA_KEY_FILE), keyPem, 0o600);
    await createExclusive(join(dir, CA_CERT_FILE), cert.toString('pem') + '\n', 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new PkiError(`another process created the CA in ${dir} at the same time; start again to load it`);
    }
    throw new PkiError(`cannot write the CA into ${dir}: ${(e as Error).message}`, { cause: e });
  }
}

async function checkKeyFileMode(path: string): Promise<void> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new PkiError(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (!st.isFile()) throw new PkiError(`${path} is not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new PkiError(`${path} has mode ${mode}, readable by others than its owner; the CA key must be 0600 or stricter (chmod 600 ${path})`);
  }
  // Another owner could read the key whatever the mode says.
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new PkiError(`${path} is owned by uid ${st.uid}, but the controller runs as uid ${uid}; the CA key must belong to the controller's user (chown ${uid} ${path})`);
  }
}

async function readOrExplain(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new PkiError(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new PkiError(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

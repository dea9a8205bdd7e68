// Leaf certificates signed by the cluster CA: the controller's serving
// certificate and the client certificates of hosts and ingresses.
import { X509Certificate } from 'node:crypto';
import type { Ca } from './ca';
import { PkiError } from './errors';
import { generateKeyPair, publicCryptoKey, randomSerial } from './keys';
import { HOST_FORM, hostUri, isDnsName, sanNames } from '../common/names';
import { INGRESS_URI_PREFIX, normalizeSerial, type Role } from '../api/validate';
import { EC_ALG, x509, type CryptoKey } from './x509';


export type IssuedCert = {
  certPem: string;
  /** The new private key; absent when the caller supplied its own public key. */
  keyPem?: string;
  notAfter: Date;
  /** Lower-case hex, no leading zeros: the key revocation records use. */
  serial: string;
};

export type ServerCertOptions = { names: string[]; ttlDays: number; now?: Date };

export type ClientCertOptions = {
  /** The name: of the host, or of the ingress when role is "ingress". */
  host: string;
  /** Which identity kind the certificate carries (default "host"): weft://host/<name> or weft://ingress/<name>. */
  role?: Role;
  ttlDays: number;
  /** A host that made its own key pair sends only the public key; its private key then never leaves it. */
  publicKeyPem?: string;
  now?: Date;
};

const DAY_MS = 86_400_000;
/** Certificates start a little in the past so a peer whose clock lags a few minutes still accepts them. */
const BACKDATE_MS = 5 * 60_000;
export const MAX_LEAF_TTL_DAYS = 825;

export async function issueServerCert(ca: Ca, opts: ServerCertOptions): Promise<IssuedCert & { keyPem: string }> {
  let sans;
  try {
    sans = sanNames(opts.names);
  } catch (e) {
    throw new PkiError((e as Error).message);
  }
  const first = sans.find((s) => s.type === 'dns') ?? sans[0];
  const issued = await issueLeaf(ca, {
    commonName: first.value,
    sans,
    usage: x509.ExtendedKeyUsage.serverAuth,
    ttlDays: opts.ttlDays,
    now: opts.now,
  });
  return issued as IssuedCert & { keyPem: string };
}

export async function issueClientCert(ca: Ca, opts: ClientCertOptions): Promise<IssuedCert> {
  if (opts.role !== undefined && opts.role !== 'host' && opts.role !== 'ingress') throw new PkiError(`role ${JSON.stringify(opts.role)} is not "host" or "ingress"`);
  if (typeof opts.host !== 'string' || !isDnsName(opts.host)) {
    throw new PkiError(`host name ${JSON.stringify(opts.host)} is not ${HOST_FORM}`);
  }
  return issueLeaf(ca, {
    commonName: opts.host,
    sans: [{ type: 'url', value: opts.role === 'ingress' ? INGRESS_URI_PREFIX + opts.host : hostUri(opts.host) }],
    usage: x509.ExtendedKeyUsage.clientAuth,
    ttlDays: opts.ttlDays,
    publicKeyPem: opts.publicKeyPem,
    now: opts.now,
  });
}

async function issueLeaf(
  ca: Ca,
  o: {
    commonName: string;
    sans: Array<{ type: 'dns' | 'ip' | 'url'; value: string }>;
    usage: string;
    ttlDays: number;
    publicKeyPem?: string;
    now?: Date;
  },
): Promise<IssuedCert> {
  if (typeof o.ttlDays !== 'number' || !(o.ttlDays > 0 && o.ttlDays <= MAX_LEAF_TTL_DAYS)) {
    throw new PkiError(`ttlDays ${o.ttlDays} is out of range (more than 0, at most ${MAX_LEAF_TTL_DAYS})`);
  }
  const now = o.now ?? new Date();
  const caNotAfter = new Date(ca.cert.validTo);
  // A leaf outliving its CA would look valid on paper and fail at the CA's expiry.
  const notAfter = new Date(Math.min(now.getTime() + o.ttlDays * DAY_MS, caNotAfter.getTime()));

  let publicKey: CryptoKey;
  let keyPem: string | undefined;
  if (o.publicKeyPem !== undefined) {
    try {
      publicKey = await publicCryptoKey(o.publicKeyPem);
    } catch (e) {
      throw new PkiError(`cannot use the supplied public key: ${(e as Error).message} (an ECDSA P-256 SPKI PEM is required)`);
    }
  } else {
    const kp = await generateKeyPair();
    publicKey = kp.keys.publicKey;
    keyPem = kp.keyPem;
  }
  const caCert = new x509.X509Certificate(ca.certPem);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{ CN: [o.commonName] }],
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter,
    publicKey,
    signingKey: ca.signer,
    signingAlgorithm: EC_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([o.usage]),
      new x509.SubjectAlternativeNameExtension(o.sans),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  });
  const certPem = cert.toString('pem') + '\n';
  const parsed = new X509Certificate(certPem);
  // Catch a signing mistake here, not in a peer's handshake.
  if (!parsed.verify(ca.cert.publicKey)) throw new PkiError('issued certificate does not verify against the CA (internal error)');
  return { certPem, keyPem, notAfter, serial: normalizeSerial(parsed.serialNumber) };
}

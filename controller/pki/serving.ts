// The controller's own serving certificate, kept in its data directory
// beside the CA and renewed on start when it would soon expire, when the
// names it must answer to changed, or when the CA it was signed by changed.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureCa, type Ca } from './ca';
import { PkiError } from './errors';
import { replaceAtomic } from '../common/files';
import { issueServerCert } from './issue';
import { spkiDer } from './keys';
import { sanNames, type SanName } from '../common/names';
import { x509 } from './x509';

export const SERVER_CERT_FILE = 'server.crt';
export const SERVER_KEY_FILE = 'server.key';

export type ServerCertFilesOptions = {
  /** The CA to sign with; loaded (or created) from `dir` when absent. */
  ca?: Ca;
  /** Lifetime of a new certificate; default 365 days. */
  ttlDays?: number;
  /** Renew when fewer than this many days remain; default 30. */
  renewBeforeDays?: number;
  now?: Date;
};

export type ServerCertFiles = {
  caPem: string;
  certPem: string;
  keyPem: string;
  notAfter: Date;
  /** Why a new certificate was written, or null when the existing one was kept. */
  renewed: string | null;
};

const DAY_MS = 86_400_000;

export async function serverCertFor(dir: string, names: string[], opts: ServerCertFilesOptions = {}): Promise<ServerCertFiles> {
  let wanted: SanName[];
  try {
    wanted = sanNames(names);
  } catch (e) {
    throw new PkiError((e as Error).message);
  }
  const ca = opts.ca ?? (await ensureCa(dir));
  const now = opts.now ?? new Date();
  const ttlDays = opts.ttlDays ?? 365;
  const renewBeforeDays = opts.renewBeforeDays ?? 30;
  const certPath = join(dir, SERVER_CERT_FILE);
  const keyPath = join(dir, SERVER_KEY_FILE);

  const existing = await readExisting(certPath, keyPath);
  const reason = existing.ok ? whyRenew(ca, existing.cert, existing.keyPem, wanted, now, renewBeforeDays) : existing.reason;
  if (reason === null && existing.ok) {
    return { caPem: ca.certPem, certPem: existing.certPem, keyPem: existing.keyPem, notAfter: new Date(existing.cert.validTo), renewed: null };
  }
  const issued = await issueServerCert(ca, { names: wanted.map((s) => s.value), ttlDays, now });
  // Key before certificate: a crash between the two leaves a mismatched pair,
  // which the next start detects and renews.
  await replaceAtomic(keyPath, issued.keyPem, 0o600);
  await replaceAtomic(certPath, issued.certPem, 0o644);
  return { caPem: ca.certPem, certPem: issued.certPem, keyPem: issued.keyPem, notAfter: issued.notAfter, renewed: reason };
}

type Existing = { ok: true; cert: X509Certificate; certPem: string; keyPem: string } | { ok: false; reason: string };

async function readExisting(certPath: string, keyPath: string): Promise<Existing> {
  let certPem: string;
  let keyPem: string;
  try {
    [certPem, keyPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { ok: false, reason: 'no serving certificate yet' };
    throw new PkiError(`cannot read the serving certificate: ${(e as Error).message}`, { cause: e });
  }
  const st = await stat(keyPath);
  if ((st.mode & 0o077) !== 0) return { ok: false, reason: `${keyPath} was readable by others (mode ${(st.mode & 0o777).toString(8)}); replaced with a new key` };
  try {
    return { ok: true, cert: new X509Certificate(certPem), certPem, keyPem };
  } catch {
    return { ok: false, reason: `${certPath} was not a readable certificate` };
  }
}

function whyRenew(ca: Ca, cert: X509Certificate, keyPem: string, wanted: SanName[], now: Date, renewBeforeDays: number): string | null {
  if (!cert.checkIssued(ca.cert) || !cert.verify(ca.cert.publicKey)) return 'serving certificate was signed by another CA';
  try {
    if (!spkiDer(createPrivateKey(keyPem)).equals(cert.publicKey.export({ type: 'spki', format: 'der' }))) {
      return 'serving key does not match the serving certificate';
    }
  } catch {
    return 'serving key was not a readable private key';
  }
  const notAfter = new Date(cert.validTo);
  if (notAfter.getTime() - now.getTime() < renewBeforeDays * DAY_MS) return `serving certificate expires on ${notAfter.toISOString()}`;
  const have = sanSet(cert);
  const want = new Set(wanted.map(sanKey));
  if (have.size !== want.size || [...want].some((k) => !have.has(k))) {
    return `serving certificate names changed (had ${[...have].sort().join(' ')}, want ${[...want].sort().join(' ')})`;
  }
  return null;
}

function sanSet(cert: X509Certificate): Set<string> {
  const san = new x509.X509Certificate(cert.raw).getExtension(x509.SubjectAlternativeNameExtension);
  const out = new Set<string>();
  for (const n of san?.names.items ?? []) {
    if (n.type === 'dns' || n.type === 'ip') out.add(sanKey({ type: n.type, value: n.value }));
  }
  return out;
}

/** IPv6 addresses have many spellings; compare their canonical form. */
function sanKey(s: SanName): string {
  if (s.type === 'ip' && s.value.includes(':')) return `ip:${new URL(`http://[${s.value}]/`).hostname}`;
  return `${s.type}:${s.value.toLowerCase()}`;
}

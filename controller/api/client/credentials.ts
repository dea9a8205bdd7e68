// A client's identity in the cluster, kept in a directory the caller names
// (the agent's state dir, or another role's), mode 0700. The certificate is
// a host's (weft://host/<name>) or, joined with role "ingress" and an
// ingress token, an ingress's (weft://ingress/<name>); the file names are the same:
//
//   host.key       0600  ECDSA P-256 private key, made here; never leaves the machine
//   host.crt       0644  client certificate from Join (its presence means "joined")
//   ca.crt         0644  the cluster CA, trusted for every later connection
//
// First contact, kubeadm style: before Join the client has no CA, yet it must
// not hand its bootstrap token to whoever answers. The operator gives either
// the CA file or `--ca-cert-hash sha256:<hex>` (SHA-256 of the CA's
// SubjectPublicKeyInfo, as the controller prints it). With a hash, the client
// reads the controller's certificate chain with a plain TLS handshake,
// finds the CA the hash names, checks that it really signed the serving
// certificate, and only then opens the gRPC channel trusting that CA alone;
// the token travels only over a channel verified against it.
//
// The same handshake shows the names the serving certificate holds. A
// --server the certificate does not name would fail every TLS handshake
// after it, so the join stops there with a ServerCertError naming the flag
// that fixes it, instead of retrying as if the controller were down.
import {
  X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject,
} from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { JoinResponse, RequestOf } from '../proto';
import { connectController, isTransient } from './client';
import { IdentityError } from './identity-error';
import { caCertHash, clientCredentials } from './trust';
import { provePossession } from './possession';
import { linkCredentials, liveOf } from './live-credentials';
import { createExclusive, replaceAtomic } from '../../common/files';
import { HOST_URI_PREFIX } from '../../common/names';
import { INGRESS_URI_PREFIX, type Role } from '../validate';
import {
  certNames, certProblemMessage, certProblemOf, fetchServerChain, serverNameProblem, ServerCertError,
} from './server-cert';

// Reading the controller's chain lives with the other certificate checks; callers of the join find it here too.
export { fetchServerChain, splitServer } from './server-cert';

export const HOST_KEY_FILE = 'host.key';
export const HOST_CERT_FILE = 'host.crt';
export const CA_CERT_FILE = 'ca.crt';

/** What Join gave this machine: its key, its certificate (naming `hostName` in `role`) and the cluster CA. */
export type Credentials = {
  hostName: string;
  role: Role;
  keyPem: string;
  certPem: string;
  caPem: string;
  certExpiresAt: Date;
};

export { IdentityError };

// ---- CA pin ------------------------------------------------------------------

const PIN_RE = /^sha256:([0-9a-f]{64})$/;

// The pin the controller prints and the agent checks: one definition, in trust.ts.
export { caCertHash };

export function parseCaCertHash(pin: string): string {
  const p = typeof pin === 'string' ? pin.trim().toLowerCase() : '';
  if (!PIN_RE.test(p)) throw new IdentityError(`--ca-cert-hash ${JSON.stringify(pin)} is not of the form sha256:<64 hex digits>`);
  return p;
}

/**
 * The CA in `chain` whose public key the pin names, provided it is a CA and
 * the serving certificate (chain[0]) chains up to it by signature. A chain
 * without it (a controller that sends only its leaf) cannot be verified
 * against a pin: the operator must then give the CA file.
 */
export function pinnedCaFromChain(chain: X509Certificate[], pin: string, server: string): X509Certificate {
  const want = parseCaCertHash(pin);
  if (chain.length === 0) throw new IdentityError(`the controller at ${server} presented no certificate`);
  const ca = chain.find((c) => caCertHash(c) === want);
  if (!ca) {
    const got = chain.filter((c) => c.ca).map((c) => caCertHash(c));
    throw new IdentityError(
      `the controller at ${server} does not present the CA --ca-cert-hash names (expected ${want}; ` +
        (got.length > 0
          ? `its chain leads to CA ${got.join(', ')}); refusing to send the join token`
          : 'its chain ends without a CA certificate: a controller that sends only its own certificate needs the CA file instead); refusing to send the join token'),
    );
  }
  if (!ca.ca) throw new IdentityError(`the certificate matching --ca-cert-hash at ${server} is not a CA certificate`);
  // Walk from the leaf to the pinned CA, each link checked by signature: TLS hands the chain over linked
  // by issuer *name*, which an impostor CA can copy.
  let cur = chain[0];
  for (let hops = 0; cur !== ca; hops++) {
    const issuer = chain.find((c) => c !== cur && cur.checkIssued(c) && cur.verify(c.publicKey));
    if (!issuer || hops > chain.length) {
      throw new IdentityError(`the serving certificate of the controller at ${server} is not signed by the CA --ca-cert-hash names; refusing to send the join token`);
    }
    cur = issuer;
  }
  return ca;
}

// ---- files -------------------------------------------------------------------

/** Creates `dir` if needed and makes it 0700: it holds private keys. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir leaves an existing directory's mode alone (and the umask filters a new one).
  await chmod(dir, 0o700);
}

/** A file's text, or null when it does not exist. */
export async function readIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new IdentityError(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** A private key anyone else can read is no longer private: refuse rather than use it. */
export async function checkPrivateFile(path: string): Promise<void> {
  const s = await stat(path);
  if ((s.mode & 0o077) !== 0) {
    throw new IdentityError(`${path} is readable by others (mode ${(s.mode & 0o777).toString(8)}); it must be 0600 — fix with chmod 600 ${path} if it was not exposed, or remove it and join again`);
  }
}

function identityOf(cert: X509Certificate, path: string): { role: Role; name: string } {
  const sans = (cert.subjectAltName ?? '').split(', ');
  for (const [role, prefix] of [['host', HOST_URI_PREFIX], ['ingress', INGRESS_URI_PREFIX]] as const) {
    const uri = sans.find((n) => n.startsWith(`URI:${prefix}`));
    if (uri) return { role, name: uri.slice(`URI:${prefix}`.length) };
  }
  throw new IdentityError(`${path} names no host or ingress (${HOST_URI_PREFIX}<name> URI SAN missing); remove it and join again`);
}

const roleName = (role: Role, name: string) => `${role} "${name}"`;

function samePublicKey(a: KeyObject, b: KeyObject): boolean {
  return a.export({ type: 'spki', format: 'der' }).equals(b.export({ type: 'spki', format: 'der' }));
}

// ---- renewal on disk ------------------------------------------------------------
//
// A renewal writes host.key.next (0600) and host.crt.next, then renames the
// key over host.key and the certificate over host.crt. A crash anywhere in
// between leaves a state finishPendingRenewal completes (the new certificate
// and the key it was issued for) or drops (no new certificate yet), so the
// directory never holds a certificate and a key that do not belong together.

const NEXT = '.next';

function publicKeyOfPem(certOrKeyPem: string): KeyObject | null {
  try {
    return certOrKeyPem.includes('CERTIFICATE') ? new X509Certificate(certOrKeyPem).publicKey : createPublicKey(createPrivateKey(certOrKeyPem));
  } catch {
    return null;
  }
}

export async function finishPendingRenewal(stateDir: string): Promise<void> {
  const [keyPath, certPath] = [join(stateDir, HOST_KEY_FILE), join(stateDir, HOST_CERT_FILE)];
  const [keyNext, certNext] = await Promise.all([readIfExists(keyPath + NEXT), readIfExists(certPath + NEXT)]);
  if (certNext !== null) {
    const key = keyNext ?? (await readIfExists(keyPath));
    const a = publicKeyOfPem(certNext);
    const b = key === null ? null : publicKeyOfPem(key);
    if (a && b && samePublicKey(a, b)) {
      if (keyNext !== null) await rename(keyPath + NEXT, keyPath);
      await rename(certPath + NEXT, certPath);
      return;
    }
  }
  await rm(keyPath + NEXT, { force: true });
  await rm(certPath + NEXT, { force: true });
}

async function storeRenewed(stateDir: string, keyPem: string, certPem: string): Promise<void> {
  const [keyPath, certPath] = [join(stateDir, HOST_KEY_FILE), join(stateDir, HOST_CERT_FILE)];
  await replaceAtomic(keyPath + NEXT, keyPem, 0o600);
  await replaceAtomic(certPath + NEXT, certPem, 0o644);
  await rename(keyPath + NEXT, keyPath);
  await rename(certPath + NEXT, certPath);
}

/** The credentials stored in `stateDir`, or null when this machine has not joined yet. */
export async function loadCredentials(stateDir: string): Promise<Credentials | null> {
  await finishPendingRenewal(stateDir).catch((e) => {
    throw new IdentityError(`cannot finish the certificate renewal left in ${stateDir}: ${(e as Error).message}`, { cause: e });
  });
  const certPath = join(stateDir, HOST_CERT_FILE);
  const certPem = await readIfExists(certPath);
  if (certPem === null) return null;
  const keyPath = join(stateDir, HOST_KEY_FILE);
  const caPath = join(stateDir, CA_CERT_FILE);
  const [keyPem, caPem] = await Promise.all([readIfExists(keyPath), readIfExists(caPath)]);
  if (keyPem === null) throw new IdentityError(`${certPath} exists but ${keyPath} does not; remove ${certPath} and join again`);
  if (caPem === null) throw new IdentityError(`${certPath} exists but ${caPath} does not; remove ${certPath} and join again`);
  await checkPrivateFile(keyPath);
  let cert: X509Certificate, ca: X509Certificate, key: KeyObject;
  try {
    cert = new X509Certificate(certPem);
    ca = new X509Certificate(caPem);
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw new IdentityError(`credentials in ${stateDir} are corrupt (${(e as Error).message}); remove host.crt and join again`, { cause: e });
  }
  if (!samePublicKey(createPublicKey(key), cert.publicKey)) throw new IdentityError(`${certPath} was not issued for ${keyPath}; remove ${certPath} and join again`);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw new IdentityError(`${certPath} was not issued by ${caPath}; remove ${certPath} and join again`);
  const id = identityOf(cert, certPath);
  return { hostName: id.name, role: id.role, keyPem, certPem, caPem, certExpiresAt: new Date(cert.validTo) };
}

// ---- join --------------------------------------------------------------------

export type JoinOptions = {
  /** Controller address, host:port. */
  server: string;
  /** Bootstrap token "<id>.<secret>". */
  token: string;
  hostName: string;
  /** What to join as (default "host"); the token must have been made for it. */
  role?: Role;
  /** "sha256:<hex>" of the cluster CA's public key; or give caPem. */
  caCertHash?: string;
  /** The cluster CA certificate (PEM), when the operator distributes the file instead of a hash. */
  caPem?: string;
  /** Where the credentials are kept (created 0700). */
  stateDir: string;
  timeoutMs?: number;
};

/** The CA to trust for the Join call (the given file, or the one the pin selects from the server's chain) and the serving certificate. */
async function trustForJoin(o: JoinOptions): Promise<{ ca: X509Certificate; leaf: X509Certificate; trusted: string }> {
  let given: X509Certificate | undefined;
  if (o.caPem !== undefined) {
    try {
      given = new X509Certificate(o.caPem);
    } catch (e) {
      throw new IdentityError(`the given CA file is not a PEM certificate (${(e as Error).message})`);
    }
    if (!given.ca) throw new IdentityError('the given CA file is not a CA certificate (basicConstraints CA:FALSE)');
    if (o.caCertHash !== undefined && caCertHash(given) !== parseCaCertHash(o.caCertHash)) {
      throw new IdentityError(`the given CA file has hash ${caCertHash(given)}, not ${parseCaCertHash(o.caCertHash)}`);
    }
  } else if (o.caCertHash === undefined) {
    throw new IdentityError('joining needs --ca-cert-hash sha256:<hex> (printed by the controller) or the CA file: refusing to send the token to an unverified controller');
  }
  const chain = await fetchServerChain(o.server, o.timeoutMs);
  if (chain.length === 0) throw new IdentityError(`the controller at ${o.server} presented no certificate`);
  // With a file, the gRPC handshake checks the chain against it; with a pin, nothing is trusted before this check.
  const ca = given ?? pinnedCaFromChain(chain, parseCaCertHash(o.caCertHash!), o.server);
  const nameProblem = serverNameProblem(o.server, chain[0]);
  if (nameProblem) throw new ServerCertError(`cannot join through ${o.server}: ${nameProblem}`, 'name');
  return { ca, leaf: chain[0], trusted: given ? 'the CA in --ca-cert' : 'the CA --ca-cert-hash names' };
}

async function callJoin(server: string, caPem: string, req: RequestOf<'Join'>, timeoutMs: number, seen: { leaf: X509Certificate; trusted: string }): Promise<JoinResponse> {
  const client = connectController({ server, credentials: clientCredentials({ caPem }), callTimeoutMs: timeoutMs });
  try {
    return await client.call('Join', req);
  } catch (err) {
    // A certificate the TLS handshake refused will be refused on every retry: say what to change.
    const problem = certProblemOf(err);
    if (problem) {
      const why = certProblemMessage(problem, server, { names: certNames(seen.leaf), trusted: seen.trusted });
      throw new ServerCertError(`cannot join through ${server}: ${why}`, problem, { cause: err });
    }
    const e = err as { code?: number; details?: string; message: string };
    throw new IdentityError(`join through ${server} refused: ${grpc.status[e.code ?? -1] ?? e.code}: ${e.details || e.message}`, { cause: err });
  } finally {
    client.close();
  }
}

/** Trust nothing in a Join or RenewCertificate reply that the trusted CA does not vouch for. */
function checkIssuedReply(what: string, res: JoinResponse, ca: X509Certificate, publicKey: KeyObject, role: Role, name: string): X509Certificate {
  let cert: X509Certificate, replyCa: X509Certificate;
  try {
    cert = new X509Certificate(res.certificate_pem);
    replyCa = new X509Certificate(res.ca_pem);
  } catch (e) {
    throw new IdentityError(`the controller's ${what} reply holds no readable certificate (${(e as Error).message})`);
  }
  if (caCertHash(replyCa) !== caCertHash(ca)) throw new IdentityError(`the controller answered with CA ${caCertHash(replyCa)}, not the trusted ${caCertHash(ca)}`);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw new IdentityError(`the certificate from ${what} is not signed by the trusted CA`);
  if (!samePublicKey(cert.publicKey, publicKey)) throw new IdentityError(`the certificate from ${what} is not for this host's key`);
  const got = identityOf(cert, `the certificate from ${what}`);
  if (got.role !== role || got.name !== name) {
    throw new IdentityError(`the certificate from ${what} names ${roleName(got.role, got.name)}, not ${roleName(role, name)}`);
  }
  return cert;
}

/**
 * Joins the cluster: sends the token and this host's public key, stores the
 * certificate and CA. Nothing is written unless the join succeeds (an existing
 * host.key is reused, so a retried join keeps the host's key).
 */
export async function joinCluster(o: JoinOptions): Promise<Credentials> {
  const stateDir = o.stateDir;
  const role = o.role ?? 'host';
  const timeoutMs = o.timeoutMs ?? 10_000;
  const seen = await trustForJoin(o);
  const ca = seen.ca;
  const caPem = ca.toString();

  const keyPath = join(stateDir, HOST_KEY_FILE);
  let keyPem = await readIfExists(keyPath);
  const newKey = keyPem === null;
  if (keyPem === null) {
    keyPem = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  } else {
    await checkPrivateFile(keyPath);
  }
  const publicKey = createPublicKey(keyPem);
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  // A host joining again under its own name proves it with the key of the certificate it had.
  const oldCertPem = newKey ? null : await readIfExists(join(stateDir, HOST_CERT_FILE));
  const previous = oldCertPem === null ? undefined : provePossession({ purpose: 'join', name: o.hostName, certPem: oldCertPem, keyPem, publicKeyPem });
  const res = await callJoin(o.server, caPem, {
    token: o.token, host_name: o.hostName, public_key_pem: publicKeyPem, role, ...(previous ? { previous } : {}),
  }, timeoutMs, seen);

  const cert = checkIssuedReply('Join', res, ca, publicKey, role, o.hostName);

  await ensurePrivateDir(stateDir);
  if (newKey) await createExclusive(keyPath, keyPem, 0o600);
  await replaceAtomic(join(stateDir, CA_CERT_FILE), res.ca_pem, 0o644);
  // Last: host.crt marks a complete join, so a crash before it means "join again", never a half identity.
  await replaceAtomic(join(stateDir, HOST_CERT_FILE), res.certificate_pem, 0o644);
  return { hostName: o.hostName, role, keyPem, certPem: res.certificate_pem, caPem: res.ca_pem, certExpiresAt: new Date(cert.validTo) };
}

/** Stored credentials if this host has joined (as `hostName`), else a join; the token is needed only the first time. */
export async function ensureCredentials(o: Omit<JoinOptions, 'token'> & { token?: string }): Promise<Credentials> {
  const stateDir = o.stateDir;
  const have = await loadCredentials(stateDir);
  if (have) {
    const role = o.role ?? 'host';
    if (have.hostName !== o.hostName || have.role !== role) {
      throw new IdentityError(`${stateDir} holds the identity of ${roleName(have.role, have.hostName)}, not ${roleName(role, o.hostName)}; use that name or another state directory`);
    }
    if (have.certExpiresAt.getTime() > Date.now()) return have;
    // Expired while this machine was down: its key renews it within the controller's grace window;
    // past that, a token joins it again (the key still proves it is this host, unless it was deleted).
    try {
      return await renewCredentials({ server: o.server, stateDir, current: have, timeoutMs: o.timeoutMs });
    } catch (err) {
      if (joinIsTransient(err) || !o.token) throw err;
    }
    return joinCluster({ ...o, token: o.token });
  }
  if (!o.token) throw new IdentityError(`this host has not joined yet (no ${join(stateDir, HOST_CERT_FILE)}); give a bootstrap token`);
  return joinCluster({ ...o, token: o.token });
}

/**
 * A join that failed for a reason worth waiting out (controller starting,
 * unreachable, busy), as opposed to a refusal (bad token, wrong pin, a
 * certificate naming another server). Every role that joins retries on this
 * and stops on anything else.
 */
export function joinIsTransient(err: unknown): boolean {
  if (!(err instanceof IdentityError)) return false;
  const cause = err.cause as { code?: unknown; message?: string } | undefined;
  if (!cause) return false;
  if (typeof cause.code === 'number') return isTransient(cause);
  if (typeof cause.code === 'string') return ['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EAI_AGAIN', 'EPIPE'].includes(cause.code);
  return /no TLS handshake/.test(cause.message ?? '');
}

/**
 * grpc channel credentials for every call after Join. When `c` is kept
 * renewed (renewal.ts), they carry the newest certificate and follow each
 * later one: a client built from them moves to it by itself.
 */
export function channelCredentials(c: Credentials): grpc.ChannelCredentials {
  const live = liveOf(c);
  if (!live) return plainCredentials(c);
  return linkCredentials(plainCredentials(live.current()), { subscribe: (fn) => live.subscribe((next) => fn(plainCredentials(next))) });
}

function plainCredentials(c: Credentials): grpc.ChannelCredentials {
  return clientCredentials({ caPem: c.caPem, certPem: c.certPem, keyPem: c.keyPem });
}

// ---- renewal --------------------------------------------------------------------

export type RenewOptions = { server: string; stateDir: string; current: Credentials; timeoutMs?: number; now?: number };

/**
 * A new certificate for the same identity and a new key pair made here (only
 * its public key is sent): over the current certificate while it is valid,
 * else with a proof signed by its key, which the controller accepts within
 * its grace window. Stored in `stateDir` before it is returned.
 */
export async function renewCredentials(o: RenewOptions): Promise<Credentials> {
  const cur = o.current;
  const now = o.now ?? Date.now();
  const expired = cur.certExpiresAt.getTime() <= now;
  const keyPem = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const publicKey = createPublicKey(keyPem);
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const req = expired
    ? { public_key_pem: publicKeyPem, expired: provePossession({ purpose: 'renew', name: cur.hostName, certPem: cur.certPem, keyPem: cur.keyPem, publicKeyPem, now }) }
    : { public_key_pem: publicKeyPem };
  const credentials = expired ? clientCredentials({ caPem: cur.caPem }) : plainCredentials(cur);
  const client = connectController({ server: o.server, credentials, callTimeoutMs: o.timeoutMs ?? 10_000 });
  let res: JoinResponse;
  try {
    res = await client.call('RenewCertificate', req);
  } catch (err) {
    const e = err as { code?: number; details?: string; message: string };
    throw new IdentityError(`certificate renewal through ${o.server} refused: ${grpc.status[e.code ?? -1] ?? e.code}: ${e.details || e.message}`, { cause: err });
  } finally {
    client.close();
  }
  const ca = new X509Certificate(cur.caPem);
  const cert = checkIssuedReply('RenewCertificate', res, ca, publicKey, cur.role, cur.hostName);
  await storeRenewed(o.stateDir, keyPem, res.certificate_pem);
  return { hostName: cur.hostName, role: cur.role, keyPem, certPem: res.certificate_pem, caPem: cur.caPem, certExpiresAt: new Date(cert.validTo) };
}

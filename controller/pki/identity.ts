// Who is calling: a host is identified only by a client certificate that our
// CA signed, that is valid now, and that names exactly one host in a
// weft://host/<name> URI SAN matching its CN. An ingress likewise, by a
// weft://ingress/<name> URI SAN; a certificate naming both kinds, or two
// names, identifies nobody.
import { X509Certificate, createHash } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import type { Ca } from './ca';
import { HOST_URI_PREFIX, isDnsName } from '../common/names';
import { INGRESS_URI_PREFIX, normalizeSerial } from '../api/validate';
import { x509 } from './x509';

export type HostIdentity = { host: string };
export type IngressIdentity = { ingress: string };
export type PeerIdentity = HostIdentity | IngressIdentity;
export type IdentityResult = ({ ok: true } & PeerIdentity) | { ok: false; reason: string };
/** The identity with what revocation and renewal need: the serial (normalizeSerial form) and the expiry. */
export type CertIdentityResult = { ok: true; id: PeerIdentity; serial: string; notAfter: Date } | { ok: false; reason: string };

/** The certificate as TLS hands it over (PeerCertificate), as DER, or as PEM. */
export type PeerCertInput = Pick<PeerCertificate, 'raw'> | Buffer | string;

export function identityFromPeerCert(ca: Ca, input: PeerCertInput, now: Date = new Date()): IdentityResult {
  const r = certIdentity(ca, input, now);
  return r.ok ? { ok: true, ...r.id } : r;
}

/**
 * identityFromPeerCert with the serial and expiry. `expiredGraceMs`: also
 * accept a certificate that expired at most this long ago (for a proof of
 * possession of its key, never for a TLS identity).
 */
export function certIdentity(ca: Ca, input: PeerCertInput, now: Date = new Date(), opts: { expiredGraceMs?: number } = {}): CertIdentityResult {
  const der = typeof input === 'string' || Buffer.isBuffer(input) ? input : input?.raw;
  if (!der || der.length === 0) return { ok: false, reason: 'no client certificate' };
  const c = checked(ca, der);
  if ('refused' in c) return { ok: false, reason: c.refused };
  if (now < c.notBefore) return { ok: false, reason: `client certificate is not valid before ${c.notBefore.toISOString()}` };
  if (now.getTime() > c.notAfter.getTime() + (opts.expiredGraceMs ?? 0)) return { ok: false, reason: `client certificate expired on ${c.notAfter.toISOString()}` };
  return c.then;
}

/**
 * What a certificate says for certIdentity, apart from the time: the same
 * for the same bytes and CA, so it is worked out once per certificate and
 * kept (CHECKED_CACHE entries per CA, the oldest dropped first). Every gRPC
 * call and heartbeat of a host presents the same certificate, and parsing
 * and verifying it took about a tenth of the controller's CPU in a join storm.
 */
type Checked = { refused: string } | { notBefore: Date; notAfter: Date; then: CertIdentityResult };
const CHECKED_CACHE = 16_384;
const checkedByCa = new WeakMap<Ca, Map<string, Checked>>();

function checked(ca: Ca, der: Buffer | string): Checked {
  let cache = checkedByCa.get(ca);
  if (!cache) checkedByCa.set(ca, (cache = new Map()));
  const key = createHash('sha256').update(der).digest('base64');
  let c = cache.get(key);
  if (c) return c;
  c = check(ca, der);
  if (cache.size >= CHECKED_CACHE) cache.delete(cache.keys().next().value!);
  cache.set(key, c);
  return c;
}

function check(ca: Ca, der: Buffer | string): Checked {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch (e) {
    return { refused: `client certificate cannot be parsed (${(e as Error).message})` };
  }
  // TLS already checked the chain when it offers a certificate at all; checking
  // again here keeps this function safe to use on certificates from elsewhere.
  if (!cert.checkIssued(ca.cert) || !cert.verify(ca.cert.publicKey)) {
    return { refused: `client certificate (issuer "${cert.issuer.replace(/\n/g, ', ')}") was not issued by this cluster's CA` };
  }
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  const refuse = (reason: string): Checked => ({ notBefore, notAfter, then: { ok: false, reason } });
  if (cert.ca) return refuse('a CA certificate cannot identify a host');

  const parsed = new x509.X509Certificate(cert.raw);
  const eku = parsed.getExtension(x509.ExtendedKeyUsageExtension);
  if (!eku || !eku.usages.includes(x509.ExtendedKeyUsage.clientAuth)) {
    return refuse('certificate is not for client authentication (extendedKeyUsage lacks clientAuth)');
  }
  const san = parsed.getExtension(x509.SubjectAlternativeNameExtension);
  const kinds = [HOST_URI_PREFIX, INGRESS_URI_PREFIX];
  const uris = (san?.names.items ?? []).filter((n) => n.type === 'url' && kinds.some((k) => n.value.startsWith(k)));
  if (uris.length === 0) return refuse(`client certificate has no ${HOST_URI_PREFIX}<name> or ${INGRESS_URI_PREFIX}<name> URI SAN`);
  if (uris.length > 1) return refuse(`client certificate has ${uris.length} identity URIs; exactly one ${HOST_URI_PREFIX}<name> or ${INGRESS_URI_PREFIX}<name> URI SAN is allowed`);
  const ingress = uris[0].value.startsWith(INGRESS_URI_PREFIX);
  const name = uris[0].value.slice((ingress ? INGRESS_URI_PREFIX : HOST_URI_PREFIX).length);
  const kind = ingress ? 'ingress' : 'host';
  if (!isDnsName(name)) return refuse(`client certificate ${kind} ${JSON.stringify(name)} is not a valid ${kind} name`);
  const cn = parsed.subjectName.getField('CN');
  if (cn.length !== 1 || cn[0] !== name) {
    return refuse(`client certificate CN ${JSON.stringify(cn.join(','))} does not match its ${kind} URI ${JSON.stringify(name)}`);
  }
  // shared by every call that presents this certificate: frozen, so no caller can change what the next one is told
  const id: PeerIdentity = Object.freeze(ingress ? { ingress: name } : { host: name });
  return { notBefore, notAfter, then: Object.freeze({ ok: true as const, id, serial: normalizeSerial(cert.serialNumber), notAfter }) };
}

/** The part of a grpc-js server call this module reads. */
export type CallWithAuth = {
  getAuthContext?: () => { transportSecurityType?: string; sslPeerCertificate?: Pick<PeerCertificate, 'raw'> } | null;
};

/**
 * The identity behind a gRPC call, with the reason when there is none.
 *
 * grpc-js 1.14 exposes the peer certificate through call.getAuthContext(),
 * and only when the TLS socket is `authorized`, i.e. OpenSSL verified the
 * chain against our CA and the validity period. A call without a client
 * certificate, or with one from another CA or an expired one, therefore
 * arrives with no certificate at all.
 */
export function peerIdentity(call: CallWithAuth, ca: Ca, now?: Date): IdentityResult {
  const auth = typeof call.getAuthContext === 'function' ? call.getAuthContext() : null;
  if (!auth || auth.transportSecurityType !== 'ssl') {
    return { ok: false, reason: 'no verified client certificate (none sent, not issued by this cluster\'s CA, or expired)' };
  }
  const cert = auth.sslPeerCertificate;
  if (!cert?.raw) return { ok: false, reason: 'no client certificate' };
  return identityFromPeerCert(ca, cert, now);
}

/** The verified host or ingress behind a gRPC call, or null for anonymous callers (Join) and anything not verifiable. */
export function callIdentity(call: CallWithAuth, ca: Ca, now?: Date): PeerIdentity | null {
  const r = peerIdentity(call, ca, now);
  if (!r.ok) return null;
  return 'ingress' in r ? { ingress: r.ingress } : { host: r.host };
}

/** callIdentity with the certificate's serial, for the revocation check. */
export function callCertIdentity(call: CallWithAuth, ca: Ca, now?: Date): { id: PeerIdentity; serial: string; notAfter: Date } | null {
  const auth = typeof call.getAuthContext === 'function' ? call.getAuthContext() : null;
  if (!auth || auth.transportSecurityType !== 'ssl' || !auth.sslPeerCertificate?.raw) return null;
  const r = certIdentity(ca, auth.sslPeerCertificate, now);
  return r.ok ? { id: r.id, serial: r.serial, notAfter: r.notAfter } : null;
}

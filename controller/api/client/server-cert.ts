// When the controller's certificate does not fit how the agent reaches it,
// retrying cannot help: the operator must change a flag. These helpers tell
// such a mistake from an outage and say which flag fixes it.
//
// Three mistakes, as Node's TLS reports them (grpc-js passes the text on in
// an UNAVAILABLE status's details):
//   name     --server names something the serving certificate does not
//            (ERR_TLS_CERT_ALTNAME_INVALID): use a name it has, or restart the
//            controller with --advertise;
//   ca       the certificate is not signed by the CA this host trusts: another
//            cluster's controller, or a controller whose CA was replaced;
//   expired  the serving certificate is out of its validity period.
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { InvalidArgumentError, WeftError } from '../../common/errors';
import { IdentityError } from './identity-error';

export type CertProblem = 'name' | 'ca' | 'expired';

/** A configuration mistake about the controller's certificate: fatal at join, logged as an error on every retry after. */
export class ServerCertError extends WeftError {
  constructor(
    message: string,
    readonly problem: CertProblem,
    options?: { cause?: unknown },
  ) {
    super('WEFT_SERVER_CERT', message, options);
    this.name = 'ServerCertError';
  }
}

/** The host part of host:port, without IPv6 brackets, lower case. */
export function serverHost(server: string): string {
  return splitServer(server).host.toLowerCase();
}

/** host:port of the controller; IPv6 in brackets. */
export function splitServer(server: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(server);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port > 0 && port < 65536)) throw new InvalidArgumentError(`controller address ${JSON.stringify(server)} must be host:port`, { field: 'server' });
  return { host: m[1] ?? m[2], port };
}

/**
 * The certificates the controller presents, leaf first, as sent: nothing is
 * verified here (that is the caller's job, against the pin).
 */
export function fetchServerChain(server: string, timeoutMs = 10_000): Promise<X509Certificate[]> {
  const { host, port } = splitServer(server);
  return new Promise((resolve, reject) => {
    const sock = tls.connect({
      host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'],
      // SNI carries names only; an address as SNI is a protocol error.
      ...(isIP(host) ? {} : { servername: host }),
    });
    const timer = setTimeout(() => sock.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`)), timeoutMs);
    sock.once('secureConnect', () => {
      clearTimeout(timer);
      const chain: X509Certificate[] = [];
      const seen = new Set<string>();
      let c: tls.DetailedPeerCertificate | undefined = sock.getPeerCertificate(true);
      while (c?.raw && !seen.has(c.fingerprint256)) {
        seen.add(c.fingerprint256);
        chain.push(new X509Certificate(c.raw));
        c = c.issuerCertificate;
      }
      sock.end();
      resolve(chain);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(new IdentityError(`cannot read the certificate of the controller at ${server}: ${err.message}`, { cause: err }));
    });
  });
}


const canonicalIp = (ip: string) => (ip.includes(':') ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip);

/** The DNS names and IP addresses a certificate is valid for, in its order. */
export function certNames(cert: X509Certificate): string[] {
  const out: string[] = [];
  for (const entry of (cert.subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('DNS:')) out.push(entry.slice(4));
    else if (entry.startsWith('IP Address:')) out.push(canonicalIp(entry.slice('IP Address:'.length)));
  }
  return out;
}

/** What to do when `host` is not among `names`; names empty when unknown. */
export function nameMismatchMessage(host: string, names: string[]): string {
  const shown = isIP(host) ? host : host.replace(/\.$/, '');
  const has = names.length > 0 ? `the controller's certificate names ${names.join(', ')} but not '${shown}'` : `the controller's certificate does not name '${shown}'`;
  return `${has}; use one of ${names.length > 0 ? 'those' : 'its names'} in --server or restart the controller with --advertise ${shown}`;
}

/** Null when the serving certificate (leaf) is valid for the host in `server`, as TLS will check it; else the message naming the fix. */
export function serverNameProblem(server: string, leaf: X509Certificate): string | null {
  const host = serverHost(server);
  const err = checkServerIdentity(host, { subjectaltname: leaf.subjectAltName ?? '', subject: {} } as PeerCertificate);
  return err ? nameMismatchMessage(host, certNames(leaf)) : null;
}

const PATTERNS: Array<[CertProblem, RegExp]> = [
  ['name', /ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate's altnames/],
  ['ca', /UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify the first certificate|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|self[- ]signed certificate|UNABLE_TO_GET_ISSUER_CERT|unable to get (local )?issuer certificate|CERT_SIGNATURE_FAILURE|certificate signature failure/],
  ['expired', /CERT_HAS_EXPIRED|certificate has expired|CERT_NOT_YET_VALID|certificate is not yet valid/],
];

/** The certificate mistake behind a failed connection or call, or null for anything else (an outage, a refusal). */
export function certProblemOf(err: unknown): CertProblem | null {
  if (err instanceof ServerCertError) return err.problem;
  const e = err as { details?: unknown; message?: unknown; code?: unknown } | null;
  const text = [e?.details, e?.message, e?.code].filter((x) => typeof x === 'string').join(' ');
  for (const [problem, re] of PATTERNS) if (re.test(text)) return problem;
  return null;
}

/**
 * The message for a certificate mistake: `names` are the names the
 * controller's certificate holds (when they could be read), `trusted`
 * describes the CA the agent trusted (a file, or the pinned hash).
 */
export function certProblemMessage(problem: CertProblem, server: string, o: { names?: string[]; trusted: string; stateDir?: string }): string {
  if (problem === 'name') return nameMismatchMessage(serverHost(server), o.names ?? []);
  if (problem === 'expired') {
    return `the controller at ${server} presents a serving certificate outside its validity period; restart the controller (it renews the certificate at start) or fix the clock of this host or the controller`;
  }
  return (
    `the controller at ${server} presents a certificate not signed by ${o.trusted}: --server points at another cluster's controller, or the controller's CA was replaced` +
    (o.stateDir ? `; point --server at this cluster's controller, or remove ${o.stateDir}/host.crt and join again with a new token and --ca-cert-hash` : '; point --server at this cluster\'s controller or give its CA')
  );
}

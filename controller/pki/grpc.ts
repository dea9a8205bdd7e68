// TLS for the controller's gRPC server and the agents' channels.
//
// The server asks every client for a certificate but does not reject a
// handshake without one: the Join call arrives before a host has a
// certificate. Authorization happens per call (identity.ts): grpc-js only
// reports a peer certificate that verified against our CA, so handlers that
// need a host check callIdentity() and anonymous handlers (Join) do not.
import { isIP, type Socket } from 'node:net';
import { connect, createSecureContext, type SecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { PkiError } from './errors';

export type ServerTlsMaterial = { caPem: string; certPem: string; keyPem: string };

type CaListener = (u: { caCertificate: Buffer } | null) => void;
type IdentityListener = (u: { certificate: Buffer; privateKey: Buffer } | null) => void;

export type ReloadableServerCredentials = {
  credentials: grpc.ServerCredentials;
  /** Swap in a renewed serving certificate (or CA) for new handshakes; open connections keep theirs. */
  update(material: ServerTlsMaterial): void;
};

/**
 * Built on grpc-js's certificate-provider credentials because they are the
 * exported way to set requestCert without rejectUnauthorized (createSsl ties
 * the two together) and they allow replacing the certificate on renewal.
 */
export function reloadableServerCredentials(material: ServerTlsMaterial): ReloadableServerCredentials {
  let current = checkMaterial(material);
  const caListeners = new Set<CaListener>();
  const idListeners = new Set<IdentityListener>();
  const caUpdate = () => ({ caCertificate: Buffer.from(current.caPem) });
  const idUpdate = () => ({ certificate: Buffer.from(current.certPem), privateKey: Buffer.from(current.keyPem) });
  // grpc-js subscribes before it registers the server's watcher; answering
  // synchronously would go unheard and the server would drop every
  // connection, so the first answer is deferred one microtask.
  const provider = {
    addCaCertificateListener(l: CaListener) {
      caListeners.add(l);
      queueMicrotask(() => caListeners.has(l) && l(caUpdate()));
    },
    removeCaCertificateListener(l: CaListener) {
      caListeners.delete(l);
    },
    addIdentityCertificateListener(l: IdentityListener) {
      idListeners.add(l);
      queueMicrotask(() => idListeners.has(l) && l(idUpdate()));
    },
    removeIdentityCertificateListener(l: IdentityListener) {
      idListeners.delete(l);
    },
  };
  // One provider serves both roles, so the argument order (which differs
  // between grpc-js's typings and its implementation) cannot matter.
  const credentials = grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
  return {
    credentials,
    update(next) {
      current = checkMaterial(next);
      for (const l of caListeners) l(caUpdate());
      for (const l of idListeners) l(idUpdate());
    },
  };
}

export function serverCredentials(material: ServerTlsMaterial): grpc.ServerCredentials {
  return reloadableServerCredentials(material).credentials;
}

export type ClientTlsMaterial = { caPem: string; certPem?: string; keyPem?: string };

/**
 * An agent's channel credentials: the cluster CA to trust, plus its client
 * certificate once it has joined. The server must present a certificate from
 * that CA naming the host of the channel's target: a DNS name in a DNS SAN,
 * an IP address in an IP SAN.
 */
export function clientCredentials(m: ClientTlsMaterial): grpc.ChannelCredentials {
  if (typeof m?.caPem !== 'string' || !m.caPem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new PkiError('clientCredentials: caPem must be the cluster CA certificate in PEM form');
  }
  if ((m.certPem === undefined) !== (m.keyPem === undefined)) {
    throw new PkiError('clientCredentials: certPem and keyPem go together; give both (after joining) or neither (to join)');
  }
  return new ClusterChannelCredentials(createSecureContext({
    ca: m.caPem,
    key: m.keyPem,
    cert: m.certPem,
    ciphers: process.env.GRPC_SSL_CIPHER_SUITES, // as grpc-js's createSsl honours it
  }));
}

/**
 * grpc-js's own TLS credentials always send the target host as the TLS server
 * name (SNI), an IP address too, which RFC 6066 forbids and Node reports with
 * a DEP0123 deprecation warning on the first connection of every agent and
 * CLI call that reaches the controller by address. These credentials make the
 * same handshake (ALPN h2, Node's default certificate and host checks) but
 * send a server name only when the host is a DNS name. For an IP address,
 * Node checks the certificate against the address itself (tls.connect's
 * `host`), so the server must still hold that address as an IP SAN.
 */
class ClusterChannelCredentials extends grpc.ChannelCredentials {
  constructor(private readonly context: SecureContext) {
    super();
  }

  _isSecure(): boolean {
    return true;
  }

  _equals(other: grpc.ChannelCredentials): boolean {
    return other === this;
  }

  _createSecureConnector(
    target: grpc.experimental.GrpcUri,
    options: grpc.ChannelOptions,
    callCredentials?: grpc.CallCredentials,
  ): grpc.experimental.SecureConnector {
    const host = tlsHost(target, options);
    const tlsOptions = { secureContext: this.context, host, ALPNProtocols: ['h2'], ...(isIP(host) ? {} : { servername: host }) };
    const calls = callCredentials ?? grpc.CallCredentials.createEmpty();
    return {
      connect: (socket: Socket) =>
        new Promise((resolve, reject) => {
          const tls = connect({ ...tlsOptions, socket }, () => {
            // rejectUnauthorized is on (the default): an unverified peer ends in 'error' first; this is a second lock
            if (!tls.authorized) reject(tls.authorizationError);
            else resolve({ socket: tls, secure: true });
          });
          tls.on('error', reject);
        }),
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => calls,
      destroy: () => {},
    };
  }
}

/**
 * The name the server's certificate must hold, chosen as grpc-js chooses it:
 * grpc.ssl_target_name_override if set, else the host of the target (the
 * real target behind an HTTP CONNECT proxy), without port or IPv6 brackets.
 */
function tlsHost(target: grpc.experimental.GrpcUri, options: grpc.ChannelOptions): string {
  const override = options['grpc.ssl_target_name_override'];
  if (typeof override === 'string' && override !== '') return override;
  let real = target;
  const proxied = options['grpc.http_connect_target'];
  if (typeof proxied === 'string') real = parseTarget(proxied) ?? target;
  // grpc-js's resolvers: dns, ipv4 and ipv6 targets name the host first in the path, unix sockets are "localhost"
  const authority = real.scheme === 'unix' ? 'localhost' : real.path.split(',')[0];
  return grpc.experimental.splitHostPort(authority)?.host ?? authority;
}

/** grpc-js's URI form, scheme:[//authority/]path; like grpc-js, a string without a known scheme is a dns target. */
function parseTarget(uri: string): grpc.experimental.GrpcUri | null {
  const m = /^(?:([A-Za-z0-9+.-]+):)?(?:\/\/([^/]*)\/)?(.+)$/.exec(uri);
  if (!m) return null;
  return m[1] !== undefined && ['dns', 'ipv4', 'ipv6', 'unix'].includes(m[1]) ? { scheme: m[1], authority: m[2], path: m[3] } : { scheme: 'dns', path: uri };
}

function checkMaterial(m: ServerTlsMaterial): ServerTlsMaterial {
  for (const [k, label] of [['caPem', 'CERTIFICATE'], ['certPem', 'CERTIFICATE'], ['keyPem', 'PRIVATE KEY']] as const) {
    if (typeof m?.[k] !== 'string' || !m[k].includes(`-----BEGIN ${label}-----`)) {
      throw new PkiError(`serverCredentials: ${k} must be a PEM ${label.toLowerCase()}`);
    }
  }
  return { caPem: m.caPem, certPem: m.certPem, keyPem: m.keyPem };
}

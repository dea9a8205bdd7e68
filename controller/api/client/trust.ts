// What a client of the controller trusts: the cluster CA (channel
// credentials for every role that calls the API: agent, ingress, CLI) and
// the CA pin an operator gives before the CA itself is known. The
// controller's PKI prints the same pin and imports it from here.
import { X509Certificate, createHash } from 'node:crypto';
import { isIP, type Socket } from 'node:net';
import { connect, createSecureContext, type SecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError } from '../../common/errors';

/**
 * The pin a client checks the controller's CA against before trusting it
 * (kubeadm's --discovery-token-ca-cert-hash): "sha256:" + hex SHA-256 of the
 * CA's SubjectPublicKeyInfo (DER).
 */
export function caCertHash(caPem: string | X509Certificate): string {
  const cert = typeof caPem === 'string' ? new X509Certificate(caPem) : caPem;
  return 'sha256:' + createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

export type ClientTlsMaterial = { caPem: string; certPem?: string; keyPem?: string };

/**
 * Channel credentials for a client of the controller: the cluster CA to
 * trust, plus the client's certificate once it has one (after Join, or an
 * admin certificate). The server must present a certificate from
 * that CA naming the host of the channel's target: a DNS name in a DNS SAN,
 * an IP address in an IP SAN.
 */
export function clientCredentials(m: ClientTlsMaterial): grpc.ChannelCredentials {
  if (typeof m?.caPem !== 'string' || !m.caPem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new InvalidArgumentError('clientCredentials: caPem must be the cluster CA certificate in PEM form', { field: 'caPem' });
  }
  if ((m.certPem === undefined) !== (m.keyPem === undefined)) {
    throw new InvalidArgumentError('clientCredentials: certPem and keyPem go together; give both (after joining) or neither (to join)', { field: 'certPem' });
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

// TLS for the controller's gRPC server (the clients' side is in controller/api/client/trust.ts).
//
// The server asks every client for a certificate but does not reject a
// handshake without one: the Join call arrives before a host has a
// certificate. Authorization happens per call (identity.ts): grpc-js only
// reports a peer certificate that verified against our CA, so handlers that
// need a host check callIdentity() and anonymous handlers (Join) do not.
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

// Client-side credentials and the CA pin belong to the client; the PKI re-exports them.
export { clientCredentials, type ClientTlsMaterial } from '../api/client/trust';

function checkMaterial(m: ServerTlsMaterial): ServerTlsMaterial {
  for (const [k, label] of [['caPem', 'CERTIFICATE'], ['certPem', 'CERTIFICATE'], ['keyPem', 'PRIVATE KEY']] as const) {
    if (typeof m?.[k] !== 'string' || !m[k].includes(`-----BEGIN ${label}-----`)) {
      throw new PkiError(`serverCredentials: ${k} must be a PEM ${label.toLowerCase()}`);
    }
  }
  return { caPem: m.caPem, certPem: m.certPem, keyPem: m.keyPem };
}

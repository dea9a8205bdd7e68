// Proof that a client still holds the private key of a certificate it was
// issued: a signature by that key over the purpose, the identity's name, the
// new public key it asks a certificate for, and the time. Used where the
// certificate cannot speak for itself over mTLS: it expired while the host
// was down (RenewCertificate), or the host joins again under its own name
// (Join). The controller checks the signature against the certificate, that
// the CA issued it, that it is not revoked and not long expired, and that
// the time is within PROOF_WINDOW_MS of its own.
import { createHash, createPrivateKey, sign } from 'node:crypto';
import type { PossessionProof } from '../gen/weft/v1/PossessionProof';

export type ProofPurpose = 'join' | 'renew';

/** How far the signing time may be from the controller's clock, either way. */
export const PROOF_WINDOW_MS = 5 * 60_000;

/** The exact bytes signed; both sides build them here. */
export function possessionMessage(purpose: ProofPurpose, name: string, publicKeyPem: string, signedAtUnixMs: number): Buffer {
  const keyHash = createHash('sha256').update(publicKeyPem).digest('hex');
  return Buffer.from(`weft-possession-v1\n${purpose}\n${name}\n${keyHash}\n${signedAtUnixMs}`, 'utf8');
}

/** Signs for `name` with the key of `certPem`, asking for a certificate for `publicKeyPem`. */
export function provePossession(
  o: { purpose: ProofPurpose; name: string; certPem: string; keyPem: string; publicKeyPem: string; now?: number },
): PossessionProof {
  const signedAt = o.now ?? Date.now();
  const signature = sign('sha256', possessionMessage(o.purpose, o.name, o.publicKeyPem, signedAt), createPrivateKey(o.keyPem));
  return { certificate_pem: o.certPem, signed_at_unix_ms: signedAt, signature };
}

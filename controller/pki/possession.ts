// Checking a proof of possession (controller/api/client/possession.ts): the
// certificate it carries must be one the CA issued for a host or ingress,
// expired at most `graceMs` ago, and its key must have signed this request.
// Whether the serial is revoked is the caller's check (the service holds the set).
import { X509Certificate, verify } from 'node:crypto';
import type { Ca } from './ca';
import { type CertIdentityResult, certIdentity } from './identity';
import { PROOF_WINDOW_MS, type ProofPurpose, possessionMessage } from '../api/client/possession';
import type { PossessionProof__Output } from '../api/gen/weft/v1/PossessionProof';

export function verifyPossession(
  ca: Ca, proof: PossessionProof__Output, o: { purpose: ProofPurpose; publicKeyPem: string; now: number; graceMs: number },
): CertIdentityResult {
  const skew = Math.abs(o.now - proof.signed_at_unix_ms);
  if (skew > PROOF_WINDOW_MS) return { ok: false, reason: `proof was signed ${Math.round(skew / 1000)}s away from the controller's clock (at most ${PROOF_WINDOW_MS / 1000}s)` };
  const r = certIdentity(ca, proof.certificate_pem, new Date(o.now), { expiredGraceMs: o.graceMs });
  if (!r.ok) return r;
  const name = 'host' in r.id ? r.id.host : r.id.ingress;
  let good = false;
  try {
    const key = new X509Certificate(proof.certificate_pem).publicKey;
    good = verify('sha256', possessionMessage(o.purpose, name, o.publicKeyPem, proof.signed_at_unix_ms), key, Buffer.from(proof.signature));
  } catch {
    good = false;
  }
  return good ? r : { ok: false, reason: 'proof signature does not verify with the certificate\'s key' };
}

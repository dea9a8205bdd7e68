// Original file: controller/api/weft.proto

import type { PossessionProof as _weft_v1_PossessionProof, PossessionProof__Output as _weft_v1_PossessionProof__Output } from '../../weft/v1/PossessionProof';

export interface RenewCertificateRequest {
  /**
   * SPKI PEM of the caller's new key pair
   */
  'public_key_pem'?: (string);
  /**
   * only without a valid client certificate
   */
  'expired'?: (_weft_v1_PossessionProof | null);
}

export interface RenewCertificateRequest__Output {
  /**
   * SPKI PEM of the caller's new key pair
   */
  'public_key_pem': (string);
  /**
   * only without a valid client certificate
   */
  'expired': (_weft_v1_PossessionProof__Output | null);
}

// Original file: controller/api/weft.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Proof that the sender holds the private key of an earlier certificate:
 * an ECDSA P-256/SHA-256 signature (DER) by that certificate's key over the
 * UTF-8 text "weft-possession-v1\n<purpose>\n<name>\n<sha256 hex of the new
 * public_key_pem>\n<signed_at_unix_ms>", purpose "join" or "renew". The
 * controller accepts it for 5 minutes either side of signed_at_unix_ms.
 */
export interface PossessionProof {
  'certificate_pem'?: (string);
  'signed_at_unix_ms'?: (number | string | Long);
  'signature'?: (Buffer | Uint8Array | string);
}

/**
 * Proof that the sender holds the private key of an earlier certificate:
 * an ECDSA P-256/SHA-256 signature (DER) by that certificate's key over the
 * UTF-8 text "weft-possession-v1\n<purpose>\n<name>\n<sha256 hex of the new
 * public_key_pem>\n<signed_at_unix_ms>", purpose "join" or "renew". The
 * controller accepts it for 5 minutes either side of signed_at_unix_ms.
 */
export interface PossessionProof__Output {
  'certificate_pem': (string);
  'signed_at_unix_ms': (number);
  'signature': (Buffer);
}

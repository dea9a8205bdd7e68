// Original file: controller/api/weft.proto

import type { PossessionProof as _weft_v1_PossessionProof, PossessionProof__Output as _weft_v1_PossessionProof__Output } from '../../weft/v1/PossessionProof';

export interface JoinRequest {
  /**
   * "<id>.<secret>" from `weft token create`
   */
  'token'?: (string);
  /**
   * DNS-label-like, 1-63 chars
   */
  'host_name'?: (string);
  /**
   * SPKI PEM of the host's own key
   */
  'public_key_pem'?: (string);
  /**
   * What the certificate is for: "" or "host" (an agent), "ingress". Must
   * match the role the token was made for, so a host token cannot mint an
   * ingress certificate nor the other way round.
   */
  'role'?: (string);
  /**
   * Joining under the name of a registered host is refused unless the
   * joiner proves it is that host: a signature by the key of a certificate
   * issued for that name (expired ones within the grace window included).
   */
  'previous'?: (_weft_v1_PossessionProof | null);
}

export interface JoinRequest__Output {
  /**
   * "<id>.<secret>" from `weft token create`
   */
  'token': (string);
  /**
   * DNS-label-like, 1-63 chars
   */
  'host_name': (string);
  /**
   * SPKI PEM of the host's own key
   */
  'public_key_pem': (string);
  /**
   * What the certificate is for: "" or "host" (an agent), "ingress". Must
   * match the role the token was made for, so a host token cannot mint an
   * ingress certificate nor the other way round.
   */
  'role': (string);
  /**
   * Joining under the name of a registered host is refused unless the
   * joiner proves it is that host: a signature by the key of a certificate
   * issued for that name (expired ones within the grace window included).
   */
  'previous': (_weft_v1_PossessionProof__Output | null);
}

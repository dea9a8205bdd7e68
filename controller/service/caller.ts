// Who may do what. A caller is a host (its client certificate names it), an
// ingress (a read-only identity of its own kind, weft://ingress/<name>), an
// administrator, or nobody. Administrators hold a client certificate for the
// reserved host name "admin" (weft://host/admin), which Join and
// RegisterHost refuse, so only someone with the CA key (the `weft` CLI on the
// controller) can issue one; no second certificate scheme is needed.
//
// A revoked certificate identifies nobody: the check is a lookup in the
// in-memory revocation set (revocations.ts), made here, once per call, for
// every method that needs a caller.
import { type Ca, callCertIdentity, type CallWithAuth } from '../pki';
import { ADMIN_NAME } from '../api/validate';
import type { RevocationSet } from './revocations';
import { UnauthenticatedError } from './status';

/** `serial`: the certificate's, when the identity came from one (renewal re-checks it after issuing). */
export type Identity = { host: string; serial?: string } | { ingress: string; serial?: string } | 'admin' | null;
export type IdentityFn = (call: CallWithAuth) => Identity;

/** The production identity: the call's verified TLS client certificate, unless its serial is revoked. */
export function certificateIdentity(ca: Ca, revoked?: Pick<RevocationSet, 'has'>): IdentityFn {
  return (call) => {
    const c = callCertIdentity(call, ca);
    if (!c) return null;
    if (revoked?.has(c.serial)) {
      throw new UnauthenticatedError(`client certificate ${c.serial} has been revoked (the host was deleted or left); join again with a new token`);
    }
    const id = c.id;
    if ('ingress' in id) return { ingress: id.ingress, serial: c.serial };
    return id.host === ADMIN_NAME ? 'admin' : { host: id.host, serial: c.serial };
  };
}

export function describeIdentity(who: Identity): string {
  if (who === null) return 'anonymous';
  if (who === 'admin') return 'admin';
  return 'ingress' in who ? `ingress "${who.ingress}"` : `host "${who.host}"`;
}

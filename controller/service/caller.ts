// Who may do what. A caller is a host (its client certificate names it), an
// ingress (a read-only identity of its own kind, weft://ingress/<name>), an
// administrator, or nobody. Administrators hold a client certificate for the
// reserved host name "admin" (weft://host/admin), which Join and
// RegisterHost refuse, so only someone with the CA key (the `weft` CLI on the
// controller) can issue one; no second certificate scheme is needed.
import { type Ca, callIdentity, type CallWithAuth } from '../pki';
import { ADMIN_NAME } from '../api/validate';

export type Identity = { host: string } | { ingress: string } | 'admin' | null;
export type IdentityFn = (call: CallWithAuth) => Identity;

/** The production identity: the call's verified TLS client certificate. */
export function certificateIdentity(ca: Ca): IdentityFn {
  return (call) => {
    const id = callIdentity(call, ca);
    if (!id) return null;
    if ('ingress' in id) return { ingress: id.ingress };
    return id.host === ADMIN_NAME ? 'admin' : { host: id.host };
  };
}

export function describeIdentity(who: Identity): string {
  if (who === null) return 'anonymous';
  if (who === 'admin') return 'admin';
  return 'ingress' in who ? `ingress "${who.ingress}"` : `host "${who.host}"`;
}

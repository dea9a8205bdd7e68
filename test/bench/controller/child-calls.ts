// What the benches' client processes (watchers, simulated hosts) share: a
// unary call with a deadline on a generated client, and a wait that is woken
// by every stream event instead of polling fast.
import * as grpc from '@grpc/grpc-js';
import { clientCredentials, issueClientCert, type Ca } from '../../../controller/pki';
import { TimedOut, waitFor } from '../../helpers/wait';

/** A unary call on `client` with the caller's metadata and a deadline `ms` from now. */
export function unaryCall<T>(client: grpc.Client, md: grpc.Metadata, method: string, req: unknown, ms: number): Promise<T> {
  return new Promise((resolve, reject) =>
    (client as any)[method](req, md, { deadline: Date.now() + ms }, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))),
  );
}

/** Waits woken through `wakeAll()`: call it on every stream event. */
export function eventWaits(everyMs?: number): { until(what: string, pred: () => boolean, ms: number): Promise<boolean>; wakeAll(): void } {
  const waiters = new Set<() => void>();
  return {
    wakeAll() {
      for (const w of [...waiters]) w();
    },
    /** Whether `pred` holds within `ms`; checked again on every stream event. */
    until(what, pred, ms) {
      const wake = (check: () => void) => {
        waiters.add(check);
        return () => waiters.delete(check);
      };
      return waitFor(what, pred, { ms, wake, ...(everyMs !== undefined ? { everyMs } : {}) }).then(() => true, (e: unknown) => {
        if (e instanceof TimedOut) return false;
        throw e;
      });
    },
  };
}

/** How a simulated host calls: its own client certificate (made here, as a joining agent makes its key), or without TLS the header naming it. */
export async function hostIdentity(ca: Ca | undefined, name: string): Promise<{ creds: grpc.ChannelCredentials; md: grpc.Metadata }> {
  const md = new grpc.Metadata();
  if (!ca) {
    md.set('x-weft-host', name);
    return { creds: grpc.credentials.createInsecure(), md };
  }
  const cert = await issueClientCert(ca, { host: name, ttlDays: 1 });
  return { creds: clientCredentials({ caPem: ca.certPem, certPem: cert.certPem, keyPem: cert.keyPem! }), md };
}

// Raw gRPC clients of the controller's service over mTLS, dialled with a
// given certificate (or none), for the tests that check what each identity
// may do; and a unary call that rejects with the gRPC error.
import type * as grpc from '@grpc/grpc-js';
import { controllerClientConstructor } from '../../controller/api/proto';
import { clientCredentials } from '../../controller/pki';

export type CertPair = { certPem: string; keyPem: string };

/** Clients of 127.0.0.1:`port` trusting `caPem`; closeAll() ends every one made. */
export function mtlsClients(): { as(port: number, caPem: string, cert?: CertPair): grpc.Client; closeAll(): void } {
  const open: grpc.Client[] = [];
  return {
    as(port, caPem, cert) {
      const Client = controllerClientConstructor();
      const c = new Client(`127.0.0.1:${port}`, clientCredentials({ caPem, ...cert }));
      open.push(c);
      return c;
    },
    closeAll() {
      for (const c of open.splice(0)) c.close();
    },
  };
}

/** One unary call with a 10 s deadline. */
export function unaryCall<T = any>(c: grpc.Client, method: string, req: unknown): Promise<T> {
  return new Promise((resolve, reject) =>
    (c as any)[method](req, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))),
  );
}

// One gRPC call over clientCredentials in a fresh process, for
// tls-by-ip.unit.test.ts: Node reports each deprecation once per process, so a
// warning from an earlier connection in the test's own process would hide
// this one. Input (env WEFT_TEST_TLS_CLIENT, JSON): target, caPem and an
// optional client certPem/keyPem. Output: one JSON line with the call's
// status code and details, and every process warning seen.
//
// The server has no services: UNIMPLEMENTED means the TLS handshake and the
// HTTP/2 session succeeded; UNAVAILABLE means the connection was refused.
import * as grpc from '@grpc/grpc-js';
import { clientCredentials } from '../../controller/pki';

const input = JSON.parse(process.env.WEFT_TEST_TLS_CLIENT ?? '{}') as { target: string; caPem: string; certPem?: string; keyPem?: string };
const warnings: string[] = [];
process.on('warning', (w) => warnings.push(`${w.name} ${(w as { code?: string }).code ?? ''} ${w.message}`));

const client = new grpc.Client(input.target, clientCredentials({ caPem: input.caPem, certPem: input.certPem, keyPem: input.keyPem }));
client.makeUnaryRequest(
  '/weft.test.Probe/Ping',
  (b: Buffer) => b,
  (b: Buffer) => b,
  Buffer.alloc(0),
  { deadline: Date.now() + 10_000 },
  (err) => {
    client.close();
    // warnings are emitted on the next tick after the code that raised them
    setImmediate(() => process.stdout.write(`${JSON.stringify({ code: err?.code ?? 0, details: err?.details ?? '', warnings })}\n`));
  },
);

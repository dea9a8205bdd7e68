// One unary call to the controller with a client certificate, run as its own
// process inside a lab namespace (the test process sits in the root namespace,
// which has no route into the lab):
//
//   ip netns exec NS node --import tsx test/e2e/grpc-call.ts SERVER CA CERT KEY METHOD JSON
//
// Prints {"ok":true,"res":...} or {"ok":false,"code":"NOT_FOUND","details":...}
// as one line and exits 0; anything else (bad arguments) exits 2.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { controllerClientConstructor } from '../../controller/api/proto';
import { clientCredentials } from '../../controller/pki';

const [server, caFile, certFile, keyFile, method, json] = process.argv.slice(2);
if (!server || !caFile || !certFile || !keyFile || !method) {
  process.stderr.write('usage: grpc-call.ts SERVER CA CERT KEY METHOD [JSON]\n');
  process.exit(2);
}
const creds = clientCredentials({
  caPem: readFileSync(caFile, 'utf8'),
  certPem: readFileSync(certFile, 'utf8'),
  keyPem: readFileSync(keyFile, 'utf8'),
});
const Client = controllerClientConstructor();
const client = new Client(server, creds) as unknown as grpc.Client & Record<string, Function>;
client[method](JSON.parse(json ?? '{}'), { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: unknown) => {
  process.stdout.write(
    JSON.stringify(err ? { ok: false, code: grpc.status[err.code] ?? String(err.code), details: err.details } : { ok: true, res }) + '\n',
  );
  client.close();
  process.exit(0);
});

// A controller process for the fan-out bench while `weft controller` is not
// built yet: the same flags (parsed by the daemon's own config loader), the
// same CA and serving certificate in the data dir, the same service with
// certificate identities, in a process of its own so its RSS is measured
// apart from the bench. It lacks the daemon's election, reclaimer and
// metrics server; the bench labels its results as coming from this process.
import { hostname } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { controllerServiceDefinition } from '../../../controller/api/proto';
import { createControllerService } from '../../../controller/api/service';
import { certificateIdentity } from '../../../controller/api/identity';
import { certNames, formatHostPort, loadControllerConfig } from '../../../controller/config';
import { defaultClusterConfig, saveClusterConfig } from '../../../controller/ipam';
import { readClusterConfig } from '../../../controller/ipam/cluster-config';
import { ensureCa, reloadableServerCredentials, serverCertFor } from '../../../controller/pki';
import { openStore } from '../../../controller/store';

const config = loadControllerConfig(process.argv.slice(2), process.env);
if (!config.tls) throw new Error('the stand-in serves mTLS only');
const log = pino({ level: config.logLevel });
const ca = await ensureCa(config.dataDir);
const serving = await serverCertFor(config.dataDir, certNames(config, hostname()), { ca });
const store = await openStore(config.storeUrl);
if ((await readClusterConfig(store)).modRevision === 0) await saveClusterConfig(store, defaultClusterConfig());

const server = new grpc.Server();
server.addService(controllerServiceDefinition(), createControllerService({
  store,
  identity: certificateIdentity(ca),
  logger: log,
  controllerId: `bench-standin#${process.pid}`,
  join: { ca, clientCertTtlDays: 30 },
  version: 'bench-standin',
}));
const listen = formatHostPort(config.listen);
const creds = reloadableServerCredentials({ caPem: ca.certPem, certPem: serving.certPem, keyPem: serving.keyPem }).credentials;
await new Promise<number>((resolve, reject) => server.bindAsync(listen, creds, (err, port) => (err ? reject(err) : resolve(port))));
log.info({ listen }, 'stand-in controller listening');

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    if (stopping) return;
    stopping = true;
    server.forceShutdown();
    store.close().finally(() => process.exit(0));
  });
}

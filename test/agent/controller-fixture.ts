// A real controller for the agent's tests, built the way the API tests build
// theirs (createControllerService, grpc-js, the SQLite store, the cluster CA
// and mTLS), with what the agent's tests need on top: the controller can be
// stopped and started again on the same port over the same store file, and
// two controllers can serve one store at once (an HA pair) so hosts can
// register while "the" controller is down.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { certificateIdentity } from '../../controller/service/caller';
import { controllerServiceDefinition } from '../../controller/api/proto';
import { createControllerService } from '../../controller/service/service';
import { saveClusterConfig } from '../../controller/ipam';
import { type Ca, ensureCa, issueServerCert, serverCredentials } from '../../controller/pki';
import { openSqliteStore } from '../../controller/store/sqlite';
import type { Store } from '../../controller/store/types';
import { createToken } from '../../controller/pki/tokens';
import { caCertHash } from '../../controller/api/client/credentials';
import { silentLogger } from '../../controller/common/log';

export const AGENT_TEST_CONFIG = {
  networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/16', hostPrefixLength: 24 }],
  // The shortest TTL the controller allows: heartbeats every 1 s.
  leaseTtlSeconds: 5,
};

export type RunningController = {
  port: number;
  address: string;
  /** Closes the server (dropping every connection at once, as a crash would) and its store handle. */
  stop(): Promise<void>;
};

export type Cluster = {
  dir: string;
  ca: Ca;
  /** "sha256:<hex>" of the CA's public key, what an operator passes to the agent. */
  pin: string;
  dbPath: string;
  /** Starts a controller on the store file (or another one); port 0 picks one. */
  startController(port?: number, dbPath?: string): Promise<RunningController>;
  /** A new, empty store file with the cluster config: a controller whose store was wiped. */
  emptyStore(): Promise<string>;
  /** A store handle for inspecting or arranging state directly. */
  store: Store;
  token(): Promise<string>;
  close(): Promise<void>;
};

export async function startCluster(config: unknown = AGENT_TEST_CONFIG): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-agent-ctl-'));
  const ca = await ensureCa(join(dir, 'ca'));
  const serving = await issueServerCert(ca, { names: ['127.0.0.1'], ttlDays: 1 });
  const dbPath = join(dir, 'store.db');
  const store = openSqliteStore(dbPath, { pollIntervalMs: 20 });
  await saveClusterConfig(store, config);
  const running = new Set<RunningController>();
  let empties = 0;

  async function startController(port = 0, path = dbPath): Promise<RunningController> {
    const own = openSqliteStore(path, { pollIntervalMs: 20 });
    const server = new grpc.Server();
    server.addService(controllerServiceDefinition(), createControllerService({
      store: own,
      identity: certificateIdentity(ca),
      logger: silentLogger,
      controllerId: `test-${port}`,
      join: { ca, clientCertTtlDays: 1 },
      version: 'test',
    }));
    // The CA goes in the served chain so a joining agent can check it against its pin.
    const creds = serverCredentials({ caPem: ca.certPem, certPem: serving.certPem + ca.certPem, keyPem: serving.keyPem });
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, creds, (err, p) => (err ? reject(err) : resolve(p))),
    );
    const rc: RunningController = {
      port: bound,
      address: `127.0.0.1:${bound}`,
      async stop() {
        if (!running.delete(rc)) return;
        server.forceShutdown();
        await own.close();
      },
    };
    running.add(rc);
    return rc;
  }

  return {
    dir, ca, pin: caCertHash(ca.certPem), dbPath, store, startController,
    async emptyStore() {
      const path = join(dir, `empty-${++empties}.db`);
      const s = openSqliteStore(path);
      await saveClusterConfig(s, config);
      await s.close();
      return path;
    },
    async token() {
      return (await createToken(store, { ttlSeconds: 600 })).token;
    },
    async close() {
      for (const rc of [...running]) await rc.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

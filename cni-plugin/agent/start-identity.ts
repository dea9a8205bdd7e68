// startAgent, second phase: this host's identity in the cluster. Joins with
// the bootstrap token on first start (or reuses the certificate it got
// then), waiting out a controller that is not reachable yet, and makes the
// WireGuard key pair; only public keys leave the host. The certificate is
// short-lived and renews itself at half its lifetime (a new key made here);
// the client built from these credentials follows each renewal, watches
// included, without a restart.
import { ensureCredentials, joinIsTransient, type Credentials } from '../../controller/api/client/credentials';
import type { Logger } from '../../controller/common/log';
import type { AgentConfig } from './config';
import { retrying } from './start-retrying';
import { ensureWireGuardKeys } from './state/wireguard-keys';
import { keepRenewed, type Renewal } from '../../controller/api/client/renewal';

export type AgentIdentity = { credentials: Credentials; wgPublicKey: string; renewal: Renewal };

/** Throws StartAborted when `signal` ends the wait for the controller. */
export async function establishIdentity(config: AgentConfig, log: Logger, signal: AbortSignal | undefined): Promise<AgentIdentity> {
  const credentials = await retrying(
    'joining the cluster',
    () => ensureCredentials({
      server: config.server, hostName: config.hostName, stateDir: config.stateDir,
      ...(config.token ? { token: config.token } : {}), ...(config.caCertHash ? { caCertHash: config.caCertHash } : {}),
      ...(config.caPem ? { caPem: config.caPem } : {}),
    }),
    joinIsTransient, log, signal,
  );
  log.info({ certExpiresAt: credentials.certExpiresAt.toISOString() }, 'cluster credentials ready');
  const renewal = keepRenewed({ server: config.server, stateDir: config.stateDir, credentials, log });
  log.info({ renewAt: new Date(renewal.dueAt()).toISOString() }, 'certificate renews itself at half its lifetime');
  try {
    const wg = await ensureWireGuardKeys(config.stateDir);
    return { credentials, wgPublicKey: wg.publicKey, renewal };
  } catch (err) {
    renewal.stop();
    throw err;
  }
}

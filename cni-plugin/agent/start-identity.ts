// startAgent, second phase: this host's identity in the cluster. Joins with
// the bootstrap token on first start (or reuses the certificate it got
// then), waiting out a controller that is not reachable yet, and makes the
// WireGuard key pair; only public keys leave the host.
import { ensureCredentials, joinIsTransient, type Credentials } from '../../controller/api/client/credentials';
import type { Logger } from '../../controller/common/log';
import type { AgentConfig } from './config';
import { retrying } from './start-retrying';
import { ensureWireGuardKeys } from './state/wireguard-keys';

export type AgentIdentity = { credentials: Credentials; wgPublicKey: string };

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
  log.info({ host: credentials.hostName, certExpiresAt: credentials.certExpiresAt.toISOString() }, 'cluster credentials ready');
  const wg = await ensureWireGuardKeys(config.stateDir);
  return { credentials, wgPublicKey: wg.publicKey };
}

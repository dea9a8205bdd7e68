// Short-lived certificates and revocation with real processes: a `weft
// controller` (on SQLite, then on a real etcd) issuing 10-minute
// certificates, a client that renews its own every few seconds while its
// topology watch stays open, and the operator's `weft cert revoke` and
// `weft host delete` commands, run as processes on the controller's store,
// cutting that host off through the controller's revocation watch.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelCredentials, joinCluster } from '../../controller/api/client/credentials';
import { connectController, grpcCode } from '../../controller/api/client/client';
import { keepRenewed } from '../../controller/api/client/renewal';
import { normalizeSerial } from '../../controller/api/validate';
import { startEtcd, type EtcdInstance } from '../helpers/etcd';
import { waitFor } from '../helpers/wait';
import { type Daemon, killAllDaemons, requireBuild, startDaemon, weft } from './daemon-process';
import { hostRequest } from './api-harness';

const serialOf = (pem: string) => normalizeSerial(new X509Certificate(pem).serialNumber);

let tmp: string;
let etcd: EtcdInstance | undefined;

beforeAll(async () => {
  requireBuild();
  tmp = mkdtempSync(join(tmpdir(), 'weft-identity-daemon-'));
  etcd = await startEtcd();
});

afterAll(async () => {
  await killAllDaemons();
  await etcd?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe.each(['sqlite', 'etcd'] as const)('a controller on %s', (kind) => {
  let d: Daemon;
  let storeFlags: string[];

  beforeAll(async () => {
    const dataDir = join(tmp, kind);
    storeFlags = ['--data-dir', dataDir, ...(kind === 'etcd' ? ['--store', `etcd:${etcd!.endpoint}`] : [])];
    d = await startDaemon({ dataDir, args: [...storeFlags.slice(2), '--client-cert-ttl', '10m'] });
  });

  afterAll(() => d?.kill('SIGTERM'));

  it('a renewing client keeps its watch across renewals; revoking and deleting the host cut it off', async () => {
    const created = await weft(['token', 'create', ...storeFlags, '--json']);
    expect(created.code).toBe(0);
    const { token, caCertHash } = JSON.parse(created.stdout);
    const server = `127.0.0.1:${d.grpcPort}`;
    const host = `renew-${kind}`;
    const stateDir = join(tmp, `${kind}-agent`);
    const first = await joinCluster({ server, token, caCertHash, hostName: host, stateDir });
    // 10 minutes, not 365 days.
    expect(first.certExpiresAt.getTime() - Date.now()).toBeLessThanOrEqual(10 * 60_000);

    // Renew when two thirds of the 15-minute span (5 minutes backdated) are left: every ~2 s here.
    const renewals: string[] = [];
    const renewal = keepRenewed({ server, stateDir, credentials: first, renewAtRemaining: (600 - 2) / 900, jitter: 0, onRenewed: (c) => renewals.push(c.certPem) });
    const client = connectController({ server, credentials: channelCredentials(first) });
    try {
      await client.call('RegisterHost', hostRequest(host, 41));
      const events: Array<{ kind: string; hosts: Array<{ name: string }> }> = [];
      const w = client.watch('WatchTopology', { onEvent: (ev) => events.push(ev as never) });
      await waitFor('the first snapshot', () => events.some((e) => e.kind === 'SNAPSHOT'), 10_000, 50);

      await waitFor('two renewals by the timer', () => renewals.length >= 2, 20_000, 100);
      await d.waitLog((l) => l.msg === 'certificate renewed' && l.host === host);

      // The first certificate revoked by the operator, as a process on the store: the client is on a newer one.
      const rev = await weft(['cert', 'revoke', serialOf(first.certPem), ...storeFlags, '--json']);
      expect(rev.code).toBe(0);
      expect(JSON.parse(rev.stdout)).toMatchObject({ serial: serialOf(first.certPem), kind: 'host', name: host });
      await client.call('Heartbeat', { name: host });

      // A change after the renewals still reaches the watch, which never started over.
      const peer = await joinCluster({ server, token, caCertHash, hostName: `${host}-peer`, stateDir: join(tmp, `${kind}-peer`) });
      const peerClient = connectController({ server, credentials: channelCredentials(peer) });
      try {
        await peerClient.call('RegisterHost', hostRequest(`${host}-peer`, 42));
      } finally {
        peerClient.close();
      }
      await waitFor('the peer on the watch', () => events.some((e) => e.kind === 'HOST_PUT' && e.hosts[0]?.name === `${host}-peer`), 10_000, 50);
      expect(events.filter((e) => e.kind === 'SNAPSHOT')).toHaveLength(1);

      const listed = await weft(['cert', 'list', '--host', host, ...storeFlags]);
      expect(listed.stdout.split('\n')[0]).toMatch(/^SERIAL +KIND +NAME +ISSUED +EXPIRES$/);

      // The operator deletes the host: every certificate it holds is refused, its watch ends.
      renewal.stop();
      const del = await weft(['host', 'delete', host, ...storeFlags, '--json']);
      expect(del.code).toBe(0);
      const out = JSON.parse(del.stdout);
      expect(out).toMatchObject({ host, deleted: true });
      expect(out.revoked).toContain(serialOf(renewals[renewals.length - 1]));
      await waitFor('the deleted host refused by the controller', async () =>
        client.call('GetStatus', {}).then(() => false, (e) => grpcCode(e) === 'UNAUTHENTICATED'), 10_000, 100);
      await d.waitLog((l) => l.msg === 'ended watch stream: its certificate was revoked');
      w.stop();

      // Its name is free again for a token, as the operator meant.
      const again = await joinCluster({ server, token, caCertHash, hostName: host, stateDir: join(tmp, `${kind}-replacement`) });
      expect(again.hostName).toBe(host);
    } finally {
      renewal.stop();
      client.close();
    }
  });
});

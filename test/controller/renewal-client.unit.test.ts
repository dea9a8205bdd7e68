// The client side of short-lived certificates: a client renews its own
// certificate with a key it makes (only the public key travels), stores it
// so a crash at any point leaves a usable pair, and every client built from
// the credentials moves to the new certificate by itself, its open watch
// resuming from its revision on the new channel without a new snapshot.
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateIdentity } from '../../controller/service/caller';
import { type Ca, clientCredentials, ensureCa, issueServerCert, serverCredentials } from '../../controller/pki';
import { createToken } from '../../controller/pki/tokens';
import { channelCredentials, ensureCredentials, joinCluster, loadCredentials, renewCredentials } from '../../controller/api/client/credentials';
import { issueClientCert } from '../../controller/pki';
import { mkdirSync } from 'node:fs';
import { connectController } from '../../controller/api/client/client';
import { keepRenewed, renewalDue } from '../../controller/api/client/renewal';
import { type RevocationSet, watchRevocations } from '../../controller/service/revocations';
import { normalizeSerial } from '../../controller/api/validate';
import { silentLogger } from '../../controller/common/log';
import { type Harness, hostRequest, startHarness } from './api-harness';
import { waitFor } from '../helpers/wait';

let dir: string;
let ca: Ca;
let h: Harness;
let revoked: RevocationSet;
let token: string;
const serialOf = (pem: string) => normalizeSerial(new X509Certificate(pem).serialNumber);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'weft-renewal-'));
  ca = await ensureCa(join(dir, 'ca'));
  const server = await issueServerCert(ca, { names: ['127.0.0.1'], ttlDays: 1 });
  const holder = {
    has: (s: string) => revoked?.has(s) ?? false,
    add: (s: string[]) => revoked?.add(s),
    onRevoked: (fn: (s: string) => void) => (listeners.add(fn), () => listeners.delete(fn)),
  };
  const listeners = new Set<(s: string) => void>();
  h = await startHarness({
    identity: certificateIdentity(ca, holder),
    deps: { join: { ca, clientCertTtlDays: 1 }, revocations: holder },
    serverCredentials: serverCredentials({ caPem: ca.certPem, certPem: server.certPem + ca.certPem, keyPem: server.keyPem }),
    clientCredentials: clientCredentials({ caPem: ca.certPem }),
  });
  revoked = await watchRevocations(h.store, { logger: silentLogger, retryMs: 50 });
  revoked.onRevoked((s) => listeners.forEach((fn) => fn(s)));
  token = (await createToken(h.store)).token;
});

afterAll(async () => {
  revoked?.stop();
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('renewing client', () => {
  it('moves its calls and its open watch to the renewed certificate without a restart or a second snapshot', async () => {
    const server = `127.0.0.1:${h.port}`;
    const stateDir = join(dir, 'mover');
    const first = await joinCluster({ server, token, hostName: 'mover', caPem: ca.certPem, stateDir });
    const renewal = keepRenewed({ server, stateDir, credentials: first });
    // Due at half the lifetime (less a jitter of at most 2% of it), not before.
    expect(renewal.dueAt()).toBeGreaterThan(Date.now() + 11 * 3_600_000);
    expect(renewal.dueAt()).toBeLessThanOrEqual(renewalDue(first.certPem));
    const client = connectController({ server, credentials: channelCredentials(first) });
    try {
      await client.call('RegisterHost', hostRequest('mover', 31));
      const events: Array<{ kind: string; revision: number; hosts: Array<{ name: string }> }> = [];
      const w = client.watch('WatchTopology', { onEvent: (ev) => events.push(ev as never) });
      await waitFor('the first snapshot', () => events.some((e) => e.kind === 'SNAPSHOT'), 5000, 20);

      const oldKey = readFileSync(join(stateDir, 'host.key'), 'utf8');
      const next = await renewal.renewNow();
      expect(serialOf(next.certPem)).not.toBe(serialOf(first.certPem));
      expect(readFileSync(join(stateDir, 'host.key'), 'utf8')).not.toBe(oldKey);
      expect((await loadCredentials(stateDir))!.certPem).toBe(next.certPem);
      expect(existsSync(join(stateDir, 'host.crt.next')) || existsSync(join(stateDir, 'host.key.next'))).toBe(false);

      // The old certificate revoked: a client still on it would now be refused, and its watch ended.
      revoked.add([serialOf(first.certPem)]);
      await client.call('Heartbeat', { name: 'mover' });
      const peer = await joinCluster({ server, token, hostName: 'mover-peer', caPem: ca.certPem, stateDir: join(dir, 'peer') });
      const peerClient = connectController({ server, credentials: channelCredentials(peer) });
      try {
        await peerClient.call('RegisterHost', hostRequest('mover-peer', 32));
      } finally {
        peerClient.close();
      }
      await waitFor('the peer on the moved watch', () => events.some((e) => e.kind === 'HOST_PUT' && e.hosts[0]?.name === 'mover-peer'), 5000, 20);
      expect(events.filter((e) => e.kind === 'SNAPSHOT')).toHaveLength(1);
      // The stream on the old channel is gone from the server; one stream remains.
      await waitFor('one open stream on the server', () => h.openStreams() === 1, 5000, 20);
      w.stop();
    } finally {
      renewal.stop();
      client.close();
    }
  });

  it('a renewal cut short by a crash leaves the old pair or completes the new one, never a mismatched pair', async () => {
    const server = `127.0.0.1:${h.port}`;
    const stateDir = join(dir, 'crash');
    const old = await joinCluster({ server, token, hostName: 'crasher', caPem: ca.certPem, stateDir });
    const fresh = await renewCredentials({ server, stateDir, current: old });
    const key = (p: string) => join(stateDir, p);

    // Crash after both .next files, before any rename: the new pair wins.
    writeFileSync(key('host.key.next'), fresh.keyPem, { mode: 0o600 });
    writeFileSync(key('host.crt.next'), fresh.certPem);
    writeFileSync(key('host.key'), old.keyPem, { mode: 0o600 });
    writeFileSync(key('host.crt'), old.certPem);
    expect((await loadCredentials(stateDir))!.certPem).toBe(fresh.certPem);

    // Crash between the two renames: key new, certificate old, the new certificate still pending.
    writeFileSync(key('host.key'), fresh.keyPem, { mode: 0o600 });
    writeFileSync(key('host.crt'), old.certPem);
    writeFileSync(key('host.crt.next'), fresh.certPem);
    expect((await loadCredentials(stateDir))!.certPem).toBe(fresh.certPem);

    // Crash before the certificate came back: the stray key is dropped, the old pair stays.
    writeFileSync(key('host.key'), old.keyPem, { mode: 0o600 });
    writeFileSync(key('host.crt'), old.certPem);
    const stray = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    writeFileSync(key('host.key.next'), stray, { mode: 0o600 });
    expect((await loadCredentials(stateDir))!.certPem).toBe(old.certPem);
    expect(existsSync(key('host.key.next'))).toBe(false);
  });

  it('a machine whose certificate expired while it was down renews it on start with its key, and past the grace window needs a token', async () => {
    const server = `127.0.0.1:${h.port}`;
    const stateDir = join(dir, 'napper');
    mkdirSync(stateDir, { mode: 0o700 });
    const old = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const keyPem = old.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const stale = (days: number) => issueClientCert(ca, {
      host: 'napper', ttlDays: 1, publicKeyPem: old.publicKey.export({ type: 'spki', format: 'pem' }) as string, now: new Date(Date.now() - (days + 1) * 86_400_000),
    });
    writeFileSync(join(stateDir, 'host.key'), keyPem, { mode: 0o600 });
    writeFileSync(join(stateDir, 'ca.crt'), ca.certPem);
    writeFileSync(join(stateDir, 'host.crt'), (await stale(3)).certPem);
    const woke = await ensureCredentials({ server, hostName: 'napper', stateDir, caPem: ca.certPem });
    expect(woke.certExpiresAt.getTime()).toBeGreaterThan(Date.now());
    expect(woke.keyPem).not.toBe(keyPem); // a new key, made here
    expect((await loadCredentials(stateDir))!.certPem).toBe(woke.certPem);

    // Asleep for longer than the grace window: the key alone renews nothing; a token joins it again.
    writeFileSync(join(stateDir, 'host.key'), keyPem, { mode: 0o600 });
    writeFileSync(join(stateDir, 'host.crt'), (await stale(10)).certPem);
    await expect(ensureCredentials({ server, hostName: 'napper', stateDir, caPem: ca.certPem })).rejects.toThrow(/renewal .* refused: UNAUTHENTICATED: expired: refused/);
    // The name holds the certificate renewed above, so the token alone is refused; an operator's delete frees it.
    await expect(ensureCredentials({ server, hostName: 'napper', stateDir, caPem: ca.certPem, token })).rejects.toThrow(/ALREADY_EXISTS.*weft host delete napper/);
    const { removeHost } = await import('../../controller/service/host-removal');
    await removeHost(h.store, 'napper', { now: Date.now(), keepMs: 0, reason: 'test' });
    const rejoined = await ensureCredentials({ server, hostName: 'napper', stateDir, caPem: ca.certPem, token });
    expect(rejoined.certExpiresAt.getTime()).toBeGreaterThan(Date.now());
  });
});

// The agent's side of the controller API against a real controller (gRPC,
// mTLS from the cluster CA, SQLite): joining with a token and a CA pin, host
// registration and heartbeats, and the topology watch across a controller
// outage.
import { X509Certificate, createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TopologyEvent } from '../../controller/api/proto';
import { decodeLeaseRecord, LEASES_PREFIX } from '../../controller/ipam/records';
import { ensureCa, issueServerCert } from '../../controller/pki';
import { HOSTS_PREFIX } from '../../controller/registry/keys';
import type { ConnectionState } from '../../controller/api/client/client';
import { type AgentClient, type HostRegistration, connectAgentClient } from '../../cni-plugin/agent/sync/controller';
import { type LeaseEvent, runHeartbeats } from '../../cni-plugin/agent/sync/heartbeat';
import {
  type Credentials, caCertHash, channelCredentials, ensureCredentials, joinCluster, loadCredentials,
  fetchServerChain, pinnedCaFromChain,
} from '../../controller/api/client/credentials';
import { ensureWireGuardKeys } from '../../cni-plugin/agent/state/wireguard-keys';
import type { Topology } from '../../cni-plugin/agent/state/types';
import { waitFor } from '../helpers/wait';
import { type Cluster, type RunningController, startCluster } from './controller-fixture';

let cluster: Cluster;
let ctl: RunningController;
const cleanups: Array<() => unknown> = [];
const dirs: string[] = [];

function stateDir(): string {
  const d = join(mkdtempSync(join(tmpdir(), 'weft-agent-')), 'state');
  dirs.push(join(d, '..'));
  return d;
}

function registration(n: number, wgPublicKey = ''): HostRegistration {
  return {
    underlayIp: `192.168.1.${n}`, vtepMac: `02:00:00:00:00:${n.toString(16).padStart(2, '0')}`, rack: 'r1', datacenter: 'dc1',
    wgPublicKey, agentVersion: '0.1.0', networks: [],
  };
}

async function agent(name: string, server = ctl.address): Promise<{ creds: Credentials; client: AgentClient }> {
  const creds = await joinCluster({ server, token: await cluster.token(), hostName: name, caCertHash: cluster.pin, stateDir: stateDir() });
  const client = connectAgentClient({ server, credentials: channelCredentials(creds), hostName: name, backoff: { initialMs: 50, maxMs: 400 } });
  cleanups.push(() => client.close());
  return { creds, client };
}

beforeAll(async () => {
  cluster = await startCluster();
  ctl = await cluster.startController();
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  await cluster?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('identity', () => {
  it('joins with a token and the CA pin, storing only what this host needs, with private files private', async () => {
    const dir = stateDir();
    const creds = await joinCluster({ server: ctl.address, token: await cluster.token(), hostName: 'join-1', caCertHash: cluster.pin, stateDir: dir });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'host.key')).mode & 0o777).toBe(0o600);
    const cert = new X509Certificate(readFileSync(join(dir, 'host.crt')));
    expect(cert.subjectAltName).toBe('URI:weft://host/join-1');
    expect(cert.verify(cluster.ca.cert.publicKey)).toBe(true);
    // The certificate is for the key made here (the controller never saw it).
    const key = createPrivateKey(readFileSync(join(dir, 'host.key')));
    expect(createPublicKey(key).export({ type: 'spki', format: 'der' }).equals(cert.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
    expect(caCertHash(readFileSync(join(dir, 'ca.crt'), 'utf8'))).toBe(cluster.pin);

    // A later start loads it: no token needed, same identity.
    const again = await ensureCredentials({ server: ctl.address, hostName: 'join-1', stateDir: dir });
    expect(again).toEqual(creds);
    await expect(ensureCredentials({ server: ctl.address, hostName: 'someone-else', stateDir: dir })).rejects.toThrow(/identity of host "join-1"/);
  });

  it('refuses a controller whose CA does not match the pin, before sending the token; nothing is stored', async () => {
    const dir = stateDir();
    const wrong = 'sha256:' + 'ab'.repeat(32);
    await expect(joinCluster({ server: ctl.address, token: await cluster.token(), hostName: 'join-2', caCertHash: wrong, stateDir: dir }))
      .rejects.toThrow(`the controller at ${ctl.address} does not present the CA --ca-cert-hash names (expected ${wrong}; its chain leads to CA ${cluster.pin}); refusing to send the join token`);
    expect(existsSync(dir)).toBe(false);
    expect(await loadCredentials(dir)).toBeNull();
  });

  it('refuses an impostor that shows the real CA in its chain but whose certificate that CA did not sign; the token is never sent', async () => {
    // Same subject as the real CA, so TLS links the real CA certificate above the impostor's leaf by name.
    const rogueCa = await ensureCa(join(stateDir(), '..', 'rogue-ca'));
    expect(rogueCa.cert.subject).toBe(cluster.ca.cert.subject);
    const leaf = await issueServerCert(rogueCa, { names: ['127.0.0.1'], ttlDays: 1 });
    let appBytes = 0;
    const server = tls.createServer({ cert: leaf.certPem + cluster.ca.certPem, key: leaf.keyPem, ALPNProtocols: ['h2'] }, (sock) => {
      sock.on('data', (b) => (appBytes += b.length));
      sock.on('error', () => {});
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    cleanups.push(() => new Promise((res) => server.close(res)));
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const dir = stateDir();
    await expect(joinCluster({ server: address, token: await cluster.token(), hostName: 'join-4', caCertHash: cluster.pin, stateDir: dir }))
      .rejects.toThrow(`the controller at ${address} does not present the CA --ca-cert-hash names (expected ${cluster.pin}; its chain ends without a CA certificate`);
    expect(appBytes).toBe(0);
    expect(existsSync(dir)).toBe(false);

    // TLS already dropped the real CA from the chain it reports (it links by issuer name and key id); should a
    // chain arrive with it anyway, the signature walk refuses it.
    const forged = [new X509Certificate(leaf.certPem), cluster.ca.cert];
    expect(() => pinnedCaFromChain(forged, cluster.pin, address))
      .toThrow(`the serving certificate of the controller at ${address} is not signed by the CA --ca-cert-hash names; refusing to send the join token`);
    const real = await fetchServerChain(ctl.address);
    expect(real).toHaveLength(2);
    expect(caCertHash(pinnedCaFromChain(real, cluster.pin, ctl.address))).toBe(cluster.pin);
    // One that sends only its leaf cannot be checked against a pin at all.
    const chain = [new X509Certificate(leaf.certPem)];
    expect(() => pinnedCaFromChain(chain, cluster.pin, address)).toThrow(/its chain ends without a CA certificate: a controller that sends only its own certificate needs the CA file instead/);
  });

  it('refuses a join without any way to verify the controller, with a malformed pin, with a CA file of another cluster, and with a bad token', async () => {
    const dir = stateDir();
    const token = await cluster.token();
    await expect(joinCluster({ server: ctl.address, token, hostName: 'join-3', stateDir: dir })).rejects.toThrow(/refusing to send the token to an unverified controller/);
    await expect(joinCluster({ server: ctl.address, token, hostName: 'join-3', caCertHash: 'md5:1234', stateDir: dir })).rejects.toThrow(/not of the form sha256:<64 hex digits>/);
    const other = await ensureCa(join(dir, '..', 'other-ca'));
    await expect(joinCluster({ server: ctl.address, token, hostName: 'join-3', caPem: other.certPem, stateDir: dir })).rejects.toThrow(/presents a certificate not signed by the CA in --ca-cert/);
    await expect(joinCluster({ server: ctl.address, token: 'abcdef.0123456789abcdef', hostName: 'join-3', caPem: cluster.ca.certPem, stateDir: dir }))
      .rejects.toThrow(/refused: UNAUTHENTICATED: token: refused/);
    expect(existsSync(dir)).toBe(false);
    // The CA file of this cluster works as well as the pin.
    const ok = await joinCluster({ server: ctl.address, token, hostName: 'join-3', caPem: cluster.ca.certPem, stateDir: dir });
    expect(ok.hostName).toBe('join-3');
  });

  it('makes the WireGuard key pair once, keeps the private key 0600, and its public key is the X25519 one', async () => {
    const dir = stateDir();
    const a = await ensureWireGuardKeys(dir);
    expect(statSync(join(dir, 'wireguard.key')).mode & 0o777).toBe(0o600);
    expect(Buffer.from(a.privateKey, 'base64')).toHaveLength(32);
    expect(await ensureWireGuardKeys(dir)).toEqual(a);
    const b = await ensureWireGuardKeys(stateDir());
    expect(b.privateKey).not.toBe(a.privateKey);
    // Both sides reach the same shared secret only if each public key belongs to its private key.
    const priv = (k: string) => createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: Buffer.from(k, 'base64').toString('base64url'), x: '' }, format: 'jwk' });
    const pub = (k: string) => createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(k, 'base64').toString('base64url') }, format: 'jwk' });
    expect(diffieHellman({ privateKey: priv(a.privateKey), publicKey: pub(b.publicKey) }))
      .toEqual(diffieHellman({ privateKey: priv(b.privateKey), publicKey: pub(a.publicKey) }));
  });
});

describe('controller client', () => {
  it('registers the host with its WireGuard public key, heartbeats, and watches a snapshot then a second host arriving', async () => {
    const wg = await ensureWireGuardKeys(stateDir());
    const a = await agent('host-a');
    const reg = await a.client.registerHost(registration(1, wg.publicKey));
    expect(reg.subnets).toHaveLength(1);
    expect(reg.subnets[0].network).toBe('default');
    expect(reg.subnets[0].subnet).toMatch(/^10\.244\.\d+\.0\/24$/);
    const hb = await a.client.heartbeat();
    expect(hb.subnets.map((s) => s.subnet)).toEqual([reg.subnets[0].subnet]);
    expect(hb.nextHeartbeatSeconds).toBe(1);

    const events: TopologyEvent[] = [];
    const watch = a.client.watchTopology({ onEvent: (ev) => events.push(ev) });
    cleanups.push(() => watch.stop());
    await waitFor('the snapshot', () => events.length > 0);
    expect(events[0].kind).toBe('SNAPSHOT');
    expect(events[0].hosts.find((h) => h.name === 'host-a')?.wg_public_key).toBe(wg.publicKey);
    expect(watch.topology().hosts.find((h) => h.name === 'host-a')).toEqual({
      name: 'host-a', underlayIp: '192.168.1.1', vtepMac: '02:00:00:00:00:01', rack: 'r1', datacenter: 'dc1', subnets: { default: reg.subnets[0].subnet },
      wgPublicKey: wg.publicKey,
    });
    expect(watch.topology().vxlanPort).toBe(4789);
    expect(a.client.connectionState()).toBe('connected');

    const b = await agent('host-b');
    const regB = await b.client.registerHost(registration(2));
    const put = await waitFor('HOST_PUT for host-b', () => events.find((e) => e.kind === 'HOST_PUT' && e.hosts.some((h) => h.name === 'host-b')));
    expect(put.revision).toBeGreaterThan(events[0].revision);
    expect(watch.topology().hosts.find((h) => h.name === 'host-b')?.subnets).toEqual({ default: regB.subnets[0].subnet });

    await b.client.leave();
    await waitFor('HOST_DELETE for host-b', () => events.find((e) => e.kind === 'HOST_DELETE' && e.host_name === 'host-b'));
    expect(watch.topology().hosts.map((h) => h.name)).not.toContain('host-b');
  });

  it('goes disconnected when the controller stops and resumes from its revision without a gap when it returns on the same port', async () => {
    const a = await agent('host-c');
    await a.client.registerHost(registration(3));
    const states: ConnectionState[] = [];
    a.client.onConnectionState((s) => states.push(s));
    const events: TopologyEvent[] = [];
    const watch = a.client.watchTopology({ onEvent: (ev) => events.push(ev) });
    cleanups.push(() => watch.stop());
    await waitFor('the snapshot', () => events.length > 0);
    const port = ctl.port;

    await ctl.stop();
    await waitFor('disconnected', () => a.client.connectionState() === 'disconnected');

    // While it is down, another host registers through a second controller on the same store.
    const other = await cluster.startController();
    const d = await agent('host-d', other.address);
    const regD = await d.client.registerHost(registration(4));
    await other.stop();
    const before = watch.topology().revision;
    expect(watch.topology().hosts.map((h) => h.name)).not.toContain('host-d');

    ctl = await cluster.startController(port);
    const put = await waitFor('host-d after the restart', () => events.find((e) => e.kind === 'HOST_PUT' && e.hosts.some((h) => h.name === 'host-d')), 15_000);
    expect(a.client.connectionState()).toBe('connected');
    expect(states).toContain('disconnected');
    expect(states[states.length - 1]).toBe('connected');
    // Resumed, not started over: no second snapshot, and revisions only went up.
    expect(events.filter((e) => e.kind === 'SNAPSHOT')).toHaveLength(1);
    expect(put.revision).toBeGreaterThan(before);
    for (let i = 1; i < events.length; i++) expect(events[i].revision).toBeGreaterThan(events[i - 1].revision);
    expect(watch.topology().hosts.find((h) => h.name === 'host-d')?.subnets).toEqual({ default: regD.subnets[0].subnet });

    // What the resumed watch built equals what a fresh watch is told.
    const fresh: Topology[] = [];
    const w2 = a.client.watchTopology({ onEvent: (_ev, t) => fresh.push(t) });
    cleanups.push(() => w2.stop());
    await waitFor('a fresh snapshot', () => fresh.length > 0);
    await waitFor('both watches at one revision', () => watch.topology().revision === w2.topology().revision);
    expect(watch.topology()).toEqual(w2.topology());
  });

  it('takes the snapshot of a controller whose store was wiped, though its revisions went backwards', async () => {
    const a = await agent('host-g');
    await a.client.registerHost(registration(7));
    const events: TopologyEvent[] = [];
    const watch = a.client.watchTopology({ onEvent: (ev) => events.push(ev) });
    cleanups.push(() => watch.stop());
    await waitFor('the snapshot', () => events.length > 0);
    const had = watch.topology();
    expect(had.hosts.length).toBeGreaterThan(1);

    const port = ctl.port;
    await ctl.stop();
    const wiped = await cluster.emptyStore();
    const fresh = await cluster.startController(port, wiped);
    try {
      const snap = await waitFor('a snapshot from the wiped store', () => events.find((e, i) => i > 0 && e.kind === 'SNAPSHOT'));
      expect(snap.revision).toBeLessThan(had.revision);
      expect(watch.topology().hosts).toEqual([]);
      await a.client.registerHost(registration(7));
      await waitFor('this host again', () => watch.topology().hosts.length === 1 && watch.topology().hosts[0].name === 'host-g');
    } finally {
      await fresh.stop();
      ctl = await cluster.startController(port);
    }
  });

  it('refuses to resume from a revision without the topology at that revision', async () => {
    const a = await agent('host-e');
    expect(() => a.client.watchTopology({ fromRevision: 12, onEvent: () => {} })).toThrow(/needs the topology at that revision/);
  });
});

describe('heartbeat loop', () => {
  it('keeps heartbeating through an outage and registers again when the controller lost the host or its lease', async () => {
    const a = await agent('host-f');
    const r = registration(6);
    const reg = await a.client.registerHost(r);
    const leases: LeaseEvent[] = [];
    // The loop's client, counting the heartbeats the controller did not answer.
    let failed = 0;
    const client = Object.assign(Object.create(a.client) as typeof a.client, {
      heartbeat: (...args: Parameters<typeof a.client.heartbeat>) => a.client.heartbeat(...args).catch((e: unknown) => {
        failed++;
        throw e;
      }),
    });
    const loop = runHeartbeats({ client, registration: r, registered: reg, onLease: (ev) => leases.push(ev), backoff: { initialMs: 50, maxMs: 200 } });
    cleanups.push(() => loop.stop());
    const first: number = await waitFor('a heartbeat', () => loop.lastSuccess() ?? undefined);

    const port = ctl.port;
    await ctl.stop();
    const downAt = Date.now();
    const failedBefore = failed;
    await waitFor('three heartbeats refused while the controller is down', () => failed >= failedBefore + 3, 15_000);
    expect(loop.lastSuccess()! < downAt).toBe(true);
    ctl = await cluster.startController(port);
    await waitFor('a heartbeat after the outage', () => (loop.lastSuccess() ?? 0) > downAt, 15_000);
    expect(loop.lastSuccess()!).toBeGreaterThan(first);
    expect(leases).toEqual([]);

    // The controller forgets the host (as after an operator's cleanup): the next heartbeat is refused, the loop registers again.
    await cluster.store.delete(HOSTS_PREFIX + 'host-f');
    const again = await waitFor('re-registration', () => leases.find((e) => e.kind === 'reregistered'));
    expect(again.reason).toBe('the controller no longer knows this host');
    expect(again.subnets).toHaveLength(1);
    expect((await cluster.store.get(HOSTS_PREFIX + 'host-f'))).toBeTruthy();

    // Its lease is taken away (reclaimed): the heartbeat reply lacks the network, the loop registers again.
    const { kvs } = await cluster.store.range(LEASES_PREFIX);
    const mine = kvs.filter((kv) => decodeLeaseRecord(kv.key, kv.value).host === 'host-f');
    expect(mine).toHaveLength(1);
    await cluster.store.delete(mine[0].key);
    const lost = await waitFor('re-registration after the lease was lost', () => leases.find((e) => e.reason.startsWith('no lease in default')));
    expect(lost.kind).toBe('reregistered');
    expect(lost.subnets).toHaveLength(1);
    expect(lost.changed).toBe(lost.subnets[0].subnet !== lost.previous[0].subnet);
    const now = (await cluster.store.range(LEASES_PREFIX)).kvs.filter((kv) => decodeLeaseRecord(kv.key, kv.value).host === 'host-f');
    expect(now).toHaveLength(1);
  });
});

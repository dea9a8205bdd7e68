// The API with real identities: TLS with client certificates from the
// cluster CA, Join with a bootstrap token and the host's own key, and the
// rule that a host's certificate lets it write only its own records.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateIdentity } from '../../controller/service/caller';
import { type Ca, clientCredentials, ensureCa, issueClientCert, issueServerCert, serverCredentials } from '../../controller/pki';
import { createToken } from '../../controller/pki/tokens';
import { type CertPair, mtlsClients, unaryCall } from './mtls-clients';
import { type Harness, hostRequest, startHarness } from './api-harness';
import { ensureCredentials, joinCluster, loadCredentials } from '../../controller/api/client/credentials';

let dir: string;
let ca: Ca;
let h: Harness;
const clients = mtlsClients();

const clientAs = (cert?: CertPair): grpc.Client => clients.as(h.port, ca.certPem, cert);

const call = unaryCall;

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(() => 'OK', (e: grpc.ServiceError) => grpc.status[e.code]);
}

async function certFor(host: string): Promise<{ certPem: string; keyPem: string }> {
  const issued = await issueClientCert(ca, { host, ttlDays: 1 });
  return { certPem: issued.certPem, keyPem: issued.keyPem! };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'weft-api-mtls-'));
  ca = await ensureCa(join(dir, 'ca'));
  const server = await issueServerCert(ca, { names: ['127.0.0.1'], ttlDays: 1 });
  h = await startHarness({
    identity: certificateIdentity(ca),
    deps: { join: { ca, clientCertTtlDays: 30 } },
    serverCredentials: serverCredentials({ caPem: ca.certPem, certPem: server.certPem, keyPem: server.keyPem }),
    clientCredentials: clientCredentials({ caPem: ca.certPem }),
  });
});

afterAll(async () => {
  clients.closeAll();
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('mTLS identities', () => {
  it('lets a host register itself but not another host', async () => {
    const h1 = clientAs(await certFor('h1'));
    const before = await h.store.revision();
    const err = await call(h1, 'RegisterHost', hostRequest('h2', 2)).catch((e) => e);
    expect(grpc.status[err.code]).toBe('PERMISSION_DENIED');
    expect(err.details).toBe('name: host "h1" may not act for host "h2"');
    expect(await h.store.revision()).toBe(before);
    const ok = await call(h1, 'RegisterHost', hostRequest('h1', 1));
    expect(ok.host.name).toBe('h1');
    expect(await codeOf(call(h1, 'Heartbeat', { name: 'h1' }))).toBe('OK');
  });

  it('refuses calls without a client certificate, and from another CA', async () => {
    const anon = clientAs();
    expect(await codeOf(call(anon, 'GetStatus', {}))).toBe('UNAUTHENTICATED');
    const other = await ensureCa(join(dir, 'other-ca'));
    const foreign = await issueClientCert(other, { host: 'h1', ttlDays: 1 });
    const c = clientAs({ certPem: foreign.certPem, keyPem: foreign.keyPem! });
    expect(await codeOf(call(c, 'RegisterHost', hostRequest('h1', 1)))).toBe('UNAUTHENTICATED');
  });

  it('treats the reserved "admin" certificate as the administrator', async () => {
    const admin = clientAs(await certFor('admin'));
    const svc = { name: 'web', ports: [{ name: 'http', port: 80, target_port: 0, protocol: 'http' }], selector: { app: 'web' }, network: 'default', rack_policy: 'any' };
    expect((await call(admin, 'CreateService', { service: svc })).name).toBe('web');
    const h1 = clientAs(await certFor('h1'));
    expect(await codeOf(call(h1, 'DeleteService', { name: 'web' }))).toBe('PERMISSION_DENIED');
  });

  it('joins with a token and the host\'s own public key, then acts as that host', async () => {
    const { token } = await createToken(h.store, { ttlSeconds: 600 });
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const anon = clientAs();

    expect(await codeOf(call(anon, 'Join', { token: 'zzzzzz.0000000000000000', host_name: 'h7', public_key_pem: publicKeyPem }))).toBe('UNAUTHENTICATED');
    expect(await codeOf(call(anon, 'Join', { token, host_name: 'admin', public_key_pem: publicKeyPem }))).toBe('INVALID_ARGUMENT');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const bad = await call(anon, 'Join', { token, host_name: 'h7', public_key_pem: rsa }).catch((e) => e);
    expect(grpc.status[bad.code]).toBe('INVALID_ARGUMENT');
    expect(bad.details).toMatch(/^public_key_pem: /);

    const joined = await call(anon, 'Join', { token, host_name: 'h7', public_key_pem: publicKeyPem });
    expect(joined.ca_pem).toBe(ca.certPem);
    expect(joined.expires_at_unix_ms).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    const h7 = clientAs({ certPem: joined.certificate_pem, keyPem });
    expect((await call(h7, 'RegisterHost', hostRequest('h7', 7))).host.name).toBe('h7');
    expect(await codeOf(call(h7, 'LeaveHost', { name: 'h1' }))).toBe('PERMISSION_DENIED');
  });

  it('joins an ingress only with an ingress token, as an ingress that can only read', async () => {
    const host = await createToken(h.store, { ttlSeconds: 600 });
    const ingress = await createToken(h.store, { ttlSeconds: 600, role: 'ingress' });
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const anon = clientAs();
    const refusal = (p: Promise<unknown>) => p.then(() => 'OK', (e: grpc.ServiceError) => `${grpc.status[e.code]}: ${e.details}`);

    // An agent (no role) with an ingress token, and an ingress with a host token: refused, saying which token to make.
    expect(await refusal(call(anon, 'Join', { token: ingress.token, host_name: 'edge1', public_key_pem: publicKeyPem }))).toBe(
      `PERMISSION_DENIED: token: ${ingress.id} is an ingress token (for \`weft ingress\`); a host joins with a token from \`weft token create\``,
    );
    expect(await refusal(call(anon, 'Join', { token: host.token, host_name: 'edge1', public_key_pem: publicKeyPem, role: 'ingress' }))).toBe(
      `PERMISSION_DENIED: token: ${host.id} is a host token (for \`weft agent\`); an ingress joins with a token from \`weft token create --role ingress\``,
    );
    expect(await refusal(call(anon, 'Join', { token: ingress.token, host_name: 'edge1', public_key_pem: publicKeyPem, role: 'admin' }))).toMatch(/^INVALID_ARGUMENT: role: /);

    // A live host of the same name does not stop an ingress from joining, nor is it impersonated.
    const h1 = clientAs(await certFor('h1'));
    await call(h1, 'RegisterHost', hostRequest('h1', 1));
    const joined = await call(anon, 'Join', { token: ingress.token, host_name: 'h1', public_key_pem: publicKeyPem, role: 'ingress' });
    const edge = clientAs({ certPem: joined.certificate_pem, keyPem });
    expect((await call(edge, 'ListServices', {})).services).toBeDefined();
    expect((await call(edge, 'GetStatus', {})).hosts).toBeGreaterThan(0);
    expect(await refusal(call(edge, 'Heartbeat', { name: 'h1' }))).toMatch(/^PERMISSION_DENIED: Heartbeat is not open to ingress "h1"/);
    expect(await refusal(call(edge, 'CreateService', { service: { name: 'x', ports: [{ name: '', port: 81, target_port: 0, protocol: '' }], selector: { a: 'b' }, network: 'default' } }))).toMatch(/^PERMISSION_DENIED/);
  });

  it('joinCluster stores an ingress identity, and keeps roles apart on the next start', async () => {
    const ingress = await createToken(h.store, { ttlSeconds: 600, role: 'ingress' });
    const stateDir = join(dir, 'edge2');
    const server = `127.0.0.1:${h.port}`;
    await expect(joinCluster({ server, token: ingress.token, hostName: 'edge2', caPem: ca.certPem, stateDir: join(dir, 'agent2') })).rejects.toThrow(
      /refused: PERMISSION_DENIED: token: \w+ is an ingress token/,
    );
    const creds = await joinCluster({ server, token: ingress.token, hostName: 'edge2', role: 'ingress', caPem: ca.certPem, stateDir });
    expect(creds).toMatchObject({ hostName: 'edge2', role: 'ingress' });
    expect(await loadCredentials(stateDir)).toMatchObject({ hostName: 'edge2', role: 'ingress' });
    expect((await ensureCredentials({ server, hostName: 'edge2', role: 'ingress', stateDir })).role).toBe('ingress');
    await expect(ensureCredentials({ server, hostName: 'edge2', stateDir })).rejects.toThrow(/holds the identity of ingress "edge2", not host "edge2"/);
  });
});

// The cluster CA, host and server certificates, and identity over TLS. The
// check of a key file owned by another user needs root to make one: it is in
// pki.test.ts.
import * as grpc from '@grpc/grpc-js';
import { X509Certificate, createHash } from 'node:crypto';
import { chmod, copyFile, mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  caCertHash,
  callIdentity,
  clientCredentials,
  ensureCa,
  identityFromPeerCert,
  certIdentity,
  issueClientCert,
  issueServerCert,
  PkiError,
  reloadableServerCredentials,
  serverCertFor,
  type Ca,
} from '../../controller/pki';

const DAY = 86_400_000;
let root: string;
const dirs = { n: 0 };
async function freshDir(): Promise<string> {
  return join(root, `d${dirs.n++}`);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'weft-pki-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const mode = async (p: string) => (await stat(p)).mode & 0o777;

describe('ensureCa', () => {
  it('creates dir 0700, ca.key 0600, ca.crt 0644 and a P-256 CA certificate', async () => {
    const dir = await freshDir();
    const ca = await ensureCa(dir);
    expect(await mode(dir)).toBe(0o700);
    expect(await mode(join(dir, 'ca.key'))).toBe(0o600);
    expect(await mode(join(dir, 'ca.crt'))).toBe(0o644);
    const cert = new X509Certificate(await readFile(join(dir, 'ca.crt')));
    expect(cert.ca).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(ca.certPem).toBe(cert.toString());
    expect(new Date(cert.validTo).getTime() - Date.now()).toBeGreaterThan(3000 * DAY);
  });

  it('loads the same CA on a second start, and on another controller given copies of the files', async () => {
    const dir = await freshDir();
    const first = await ensureCa(dir);
    const again = await ensureCa(dir);
    expect(again.cert.fingerprint256).toBe(first.cert.fingerprint256);

    const other = await freshDir();
    await ensureCa(other); // makes the directory; replace its CA with the first controller's
    for (const f of ['ca.key', 'ca.crt']) await copyFile(join(dir, f), join(other, f));
    const shared = await ensureCa(other);
    expect(shared.cert.fingerprint256).toBe(first.cert.fingerprint256);
    // A client cert issued by one controller verifies on the other.
    const c = await issueClientCert(first, { host: 'h1', ttlDays: 1 });
    expect(identityFromPeerCert(shared, c.certPem)).toEqual({ ok: true, host: 'h1' });
  });

  it('pins the CA by the SHA-256 of its public key, the same from the PEM and from the parsed certificate', async () => {
    const ca = await ensureCa(await freshDir());
    const spki = ca.cert.publicKey.export({ type: 'spki', format: 'der' });
    const want = 'sha256:' + createHash('sha256').update(spki).digest('hex');
    expect(caCertHash(ca.cert)).toBe(want);
    expect(caCertHash(ca.certPem)).toBe(want);
    const other = await ensureCa(await freshDir());
    expect(caCertHash(other.cert)).not.toBe(want);
  });

  it('refuses a key file readable by others', async () => {
    const dir = await freshDir();
    await ensureCa(dir);
    await chmod(join(dir, 'ca.key'), 0o644);
    await expect(ensureCa(dir)).rejects.toThrow(/ca\.key has mode 0644.*0600 or stricter/);
    await chmod(join(dir, 'ca.key'), 0o640);
    await expect(ensureCa(dir)).rejects.toThrow(PkiError);
    await chmod(join(dir, 'ca.key'), 0o400);
    await expect(ensureCa(dir)).resolves.toBeTruthy();
  });

  it('refuses corrupt files with the file named', async () => {
    const dir = await freshDir();
    await ensureCa(dir);
    const keyPath = join(dir, 'ca.key');
    const good = await readFile(keyPath, 'utf8');
    await writeFile(keyPath, 'garbage\n');
    await expect(ensureCa(dir)).rejects.toThrow(new RegExp(`${keyPath} is not a PEM private key`));
    await writeFile(keyPath, good);
    await writeFile(join(dir, 'ca.crt'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    await expect(ensureCa(dir)).rejects.toThrow(/ca\.crt is not a PEM certificate/);
  });

  it('refuses a key that does not match the certificate', async () => {
    const a = await freshDir();
    const b = await freshDir();
    await ensureCa(a);
    await ensureCa(b);
    await copyFile(join(b, 'ca.key'), join(a, 'ca.key'));
    await expect(ensureCa(a)).rejects.toThrow(/ca\.key does not match .*ca\.crt/);
  });

  it('refuses a key without a certificate (never makes a second CA over an existing key) and vice versa', async () => {
    const dir = await freshDir();
    await ensureCa(dir);
    await unlink(join(dir, 'ca.crt'));
    await expect(ensureCa(dir)).rejects.toThrow(/ca\.key exists but .*ca\.crt does not/);
    const dir2 = await freshDir();
    await ensureCa(dir2);
    await unlink(join(dir2, 'ca.key'));
    await expect(ensureCa(dir2)).rejects.toThrow(/ca\.crt exists but .*ca\.key does not/);
  });

  it('refuses a CA that has expired', async () => {
    const dir = await freshDir();
    await ensureCa(dir, { ttlDays: 1 });
    await expect(ensureCa(dir, { now: new Date(Date.now() + 2 * DAY) })).rejects.toThrow(/expired on/);
  });
});

describe('issuing and identity', () => {
  let ca: Ca;
  let otherCa: Ca;
  beforeAll(async () => {
    ca = await ensureCa(await freshDir());
    otherCa = await ensureCa(await freshDir());
  });

  it('client cert: CN and weft://host/<name> URI SAN identify the host', async () => {
    const c = await issueClientCert(ca, { host: 'rack1-host07.dc1', ttlDays: 30 });
    expect(c.keyPem).toMatch(/BEGIN PRIVATE KEY/);
    const cert = new X509Certificate(c.certPem);
    expect(cert.subject).toBe('CN=rack1-host07.dc1');
    expect(cert.subjectAltName).toBe('URI:weft://host/rack1-host07.dc1');
    expect(identityFromPeerCert(ca, c.certPem)).toEqual({ ok: true, host: 'rack1-host07.dc1' });
    expect(identityFromPeerCert(ca, cert.raw)).toEqual({ ok: true, host: 'rack1-host07.dc1' });
  });

  it('ingress cert: weft://ingress/<name> identifies an ingress, never the host of that name', async () => {
    const c = await issueClientCert(ca, { host: 'edge1', role: 'ingress', ttlDays: 1 });
    const cert = new X509Certificate(c.certPem);
    expect(cert.subjectAltName).toBe('URI:weft://ingress/edge1');
    expect(identityFromPeerCert(ca, c.certPem)).toEqual({ ok: true, ingress: 'edge1' });
    expect(identityFromPeerCert(ca, (await issueClientCert(ca, { host: 'edge1', role: 'host', ttlDays: 1 })).certPem)).toEqual({ ok: true, host: 'edge1' });
    await expect(issueClientCert(ca, { host: 'edge1', role: 'root' as never, ttlDays: 1 })).rejects.toThrow(/role "root"/);
  });

  it('refuses a certificate naming a host and an ingress, or no identity at all', async () => {
    const { x509, EC_ALG } = await import('../../controller/pki/x509');
    const { generateKeyPair, randomSerial } = await import('../../controller/pki/keys');
    const make = async (uris: string[]) => {
      const kp = await generateKeyPair();
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: randomSerial(), subject: [{ CN: ['edge1'] }], issuer: new x509.X509Certificate(ca.certPem).subject,
        notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + DAY), publicKey: kp.keys.publicKey,
        signingKey: ca.signer, signingAlgorithm: EC_ALG,
        extensions: [
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
          new x509.SubjectAlternativeNameExtension(uris.map((value) => ({ type: 'url' as const, value }))),
        ],
      });
      return cert.toString('pem');
    };
    expect(identityFromPeerCert(ca, await make(['weft://ingress/edge1']))).toEqual({ ok: true, ingress: 'edge1' });
    expect(identityFromPeerCert(ca, await make(['weft://host/edge1', 'weft://ingress/edge1']))).toMatchObject({ ok: false, reason: expect.stringMatching(/exactly one/) });
    expect(identityFromPeerCert(ca, await make(['weft://other/edge1']))).toMatchObject({ ok: false, reason: expect.stringMatching(/no weft:\/\/host\/<name> or weft:\/\/ingress\/<name>/) });
    expect(identityFromPeerCert(ca, await make(['weft://ingress/Edge_1']))).toMatchObject({ ok: false, reason: expect.stringMatching(/not a valid ingress name/) });
  });

  it('client cert for a host-supplied public key carries no private key', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const c = await issueClientCert(ca, { host: 'h2', ttlDays: 1, publicKeyPem: kp.publicKey.export({ type: 'spki', format: 'pem' }).toString() });
    expect(c.keyPem).toBeUndefined();
    expect(new X509Certificate(c.certPem).publicKey.export({ type: 'spki', format: 'pem' })).toBe(kp.publicKey.export({ type: 'spki', format: 'pem' }));
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    await expect(issueClientCert(ca, { host: 'h2', ttlDays: 1, publicKeyPem: rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString() })).rejects.toThrow(/P-256/);
  });

  it('refuses bad host names and lifetimes', async () => {
    for (const host of ['', 'Upper', 'a b', 'x/y', '-lead', 'a..b', 'a'.repeat(64)]) {
      await expect(issueClientCert(ca, { host, ttlDays: 1 })).rejects.toThrow(/is not a lower-case DNS name/);
    }
    await expect(issueClientCert(ca, { host: 'h', ttlDays: 0 })).rejects.toThrow(/ttlDays 0 is out of range/);
    await expect(issueClientCert(ca, { host: 'h', ttlDays: 10_000 })).rejects.toThrow(/at most 825/);
    await expect(issueServerCert(ca, { names: [], ttlDays: 1 })).rejects.toThrow(/at least one name/);
    await expect(issueServerCert(ca, { names: ['ok.example', 'bad name'], ttlDays: 1 })).rejects.toThrow(/"bad name" is neither an IP address nor/);
  });

  it('refuses foreign, expired, not-yet-valid and server certificates, saying why', async () => {
    const foreign = await issueClientCert(otherCa, { host: 'h1', ttlDays: 1 });
    expect(identityFromPeerCert(ca, foreign.certPem)).toMatchObject({ ok: false, reason: expect.stringMatching(/not issued by this cluster's CA/) });
    const c = await issueClientCert(ca, { host: 'h1', ttlDays: 1 });
    expect(identityFromPeerCert(ca, c.certPem, new Date(Date.now() + 2 * DAY))).toMatchObject({ ok: false, reason: expect.stringMatching(/expired on/) });
    expect(identityFromPeerCert(ca, c.certPem, new Date(Date.now() - DAY))).toMatchObject({ ok: false, reason: expect.stringMatching(/not valid before/) });
    const s = await issueServerCert(ca, { names: ['controller.example'], ttlDays: 1 });
    expect(identityFromPeerCert(ca, s.certPem)).toMatchObject({ ok: false, reason: expect.stringMatching(/clientAuth/) });
    expect(identityFromPeerCert(ca, ca.certPem)).toMatchObject({ ok: false });
    expect(identityFromPeerCert(ca, Buffer.alloc(0))).toEqual({ ok: false, reason: 'no client certificate' });
    expect(identityFromPeerCert(ca, 'not a cert')).toMatchObject({ ok: false, reason: expect.stringMatching(/cannot be parsed/) });
  });
});

describe('certIdentity, checked once per certificate', () => {
  it('keeps what a certificate says but judges its validity period at every call, per CA', async () => {
    const ca = await ensureCa(await freshDir());
    const otherCa = await ensureCa(await freshDir());
    const c = await issueClientCert(ca, { host: 'h9', ttlDays: 1 });
    const first = certIdentity(ca, c.certPem);
    expect(first).toMatchObject({ ok: true, id: { host: 'h9' } });
    // the second call is answered from what the first worked out (the same frozen result), not parsed again
    expect(certIdentity(ca, c.certPem)).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(certIdentity(ca, c.certPem, new Date(Date.now() + 2 * DAY))).toMatchObject({ ok: false, reason: expect.stringMatching(/expired on/) });
    expect(certIdentity(ca, c.certPem, new Date(Date.now() - DAY))).toMatchObject({ ok: false, reason: expect.stringMatching(/not valid before/) });
    expect(certIdentity(ca, c.certPem)).toBe(first);
    // another CA has its own answers: the same bytes are not its certificate
    expect(certIdentity(otherCa, c.certPem)).toMatchObject({ ok: false, reason: expect.stringMatching(/not issued by this cluster's CA/) });
    // a refusal for what the certificate says is kept too, and still comes after the time checks
    const s = await issueServerCert(ca, { names: ['controller.example'], ttlDays: 1 });
    expect(certIdentity(ca, s.certPem)).toMatchObject({ ok: false, reason: expect.stringMatching(/clientAuth/) });
    expect(certIdentity(ca, s.certPem, new Date(Date.now() + 2 * DAY))).toMatchObject({ ok: false, reason: expect.stringMatching(/expired on/) });
  });
});

describe('serverCertFor', () => {
  it('creates, keeps, and renews on name change, near expiry and CA change', async () => {
    const dir = await freshDir();
    const names = ['controller.example', '127.0.0.1', '::1'];
    const first = await serverCertFor(dir, names);
    expect(first.renewed).toBe('no serving certificate yet');
    expect(await mode(join(dir, 'server.key'))).toBe(0o600);
    expect(await mode(join(dir, 'server.crt'))).toBe(0o644);
    const san = new X509Certificate(first.certPem).subjectAltName ?? '';
    expect(san).toContain('DNS:controller.example');
    expect(san).toContain('IP Address:127.0.0.1');

    const kept = await serverCertFor(dir, ['[0:0:0:0:0:0:0:1]', '127.0.0.1', 'CONTROLLER.example']);
    expect(kept.renewed).toBeNull();
    expect(kept.certPem).toBe(first.certPem);

    const moreNames = await serverCertFor(dir, [...names, 'weft.internal']);
    expect(moreNames.renewed).toMatch(/names changed/);
    expect(new X509Certificate(moreNames.certPem).subjectAltName).toContain('DNS:weft.internal');

    const late = await serverCertFor(dir, [...names, 'weft.internal'], { now: new Date(Date.now() + 340 * DAY) });
    expect(late.renewed).toMatch(/expires on/);

    const otherCa = await ensureCa(await freshDir());
    const resigned = await serverCertFor(dir, names, { ca: otherCa });
    expect(resigned.renewed).toMatch(/another CA/);
    expect(new X509Certificate(resigned.certPem).checkIssued(otherCa.cert)).toBe(true);

    await chmod(join(dir, 'server.key'), 0o644);
    const rekeyed = await serverCertFor(dir, names, { ca: otherCa });
    expect(rekeyed.renewed).toMatch(/readable by others/);
    expect(await mode(join(dir, 'server.key'))).toBe(0o600);
  });
});

// A one-method service, defined in code, that reports what callIdentity sees.
type WhoAmI = { identity: { host: string } | { ingress: string } | null };
const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()),
};
const probeService: grpc.ServiceDefinition = {
  whoAmI: {
    path: '/weft.test.Probe/WhoAmI',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
    originalName: 'whoAmI',
  },
};
const ProbeClient = grpc.makeGenericClientConstructor(probeService, 'Probe');

describe('gRPC over TLS with per-call identity', () => {
  let ca: Ca;
  let otherCa: Ca;
  let server: grpc.Server;
  let port: number;
  let reload: ReturnType<typeof reloadableServerCredentials>;
  let dir: string;

  beforeAll(async () => {
    dir = await freshDir();
    ca = await ensureCa(dir);
    otherCa = await ensureCa(await freshDir());
    const serving = await serverCertFor(dir, ['localhost', '127.0.0.1'], { ca });
    reload = reloadableServerCredentials(serving);
    server = new grpc.Server();
    server.addService(probeService, {
      whoAmI: (call: grpc.ServerUnaryCall<unknown, WhoAmI>, cb: grpc.sendUnaryData<WhoAmI>) => cb(null, { identity: callIdentity(call, ca) }),
    });
    port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', reload.credentials, (e, p) => (e ? rej(e) : res(p))));
  });
  afterAll(async () => {
    await new Promise<void>((res) => server.tryShutdown(() => res()));
  });

  function call(creds: grpc.ChannelCredentials): Promise<WhoAmI> {
    const client = new ProbeClient(`127.0.0.1:${port}`, creds) as unknown as grpc.Client & {
      whoAmI(req: unknown, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: WhoAmI) => void): void;
    };
    return new Promise<WhoAmI>((res, rej) => {
      client.whoAmI({}, { deadline: Date.now() + 5000 }, (e, r) => {
        client.close();
        if (e) rej(e);
        else res(r!);
      });
    });
  }

  it('(a) a plaintext client is refused', async () => {
    await expect(call(grpc.credentials.createInsecure())).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it('(b) TLS without a client certificate is accepted; the handler sees identity null (the Join path)', async () => {
    expect(await call(clientCredentials({ caPem: ca.certPem }))).toEqual({ identity: null });
  });

  it('(c) a client certificate from our CA: the handler sees the host', async () => {
    const c = await issueClientCert(ca, { host: 'host-a', ttlDays: 1 });
    expect(await call(clientCredentials({ caPem: ca.certPem, certPem: c.certPem, keyPem: c.keyPem }))).toEqual({ identity: { host: 'host-a' } });
  });

  it('(d) a client certificate from another CA: the handshake completes but the handler sees identity null', async () => {
    const c = await issueClientCert(otherCa, { host: 'host-a', ttlDays: 1 });
    expect(await call(clientCredentials({ caPem: ca.certPem, certPem: c.certPem, keyPem: c.keyPem }))).toEqual({ identity: null });
  });

  it('(e) an expired client certificate from our CA: identity null', async () => {
    const c = await issueClientCert(ca, { host: 'host-a', ttlDays: 1, now: new Date(Date.now() - 3 * DAY) });
    expect(await call(clientCredentials({ caPem: ca.certPem, certPem: c.certPem, keyPem: c.keyPem }))).toEqual({ identity: null });
  });

  it('our serving certificate used as a client certificate does not identify a host', async () => {
    const s = await issueServerCert(ca, { names: ['host-a'], ttlDays: 1 });
    expect(await call(clientCredentials({ caPem: ca.certPem, certPem: s.certPem, keyPem: s.keyPem }))).toEqual({ identity: null });
  });

  it('an agent trusting another CA refuses the controller', async () => {
    await expect(call(clientCredentials({ caPem: otherCa.certPem }))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it('a renewed serving certificate is used for new connections without a restart', async () => {
    const renewed = await serverCertFor(dir, ['localhost', '127.0.0.1', 'renewed.example'], { ca });
    expect(renewed.renewed).toMatch(/names changed/);
    reload.update(renewed);
    const served = await new Promise<string>((res, rej) => {
      const s = connect({ host: '127.0.0.1', port, ca: ca.certPem, servername: 'localhost', ALPNProtocols: ['h2'] }, () => {
        const fp = s.getPeerX509Certificate()?.fingerprint256 ?? '';
        s.destroy();
        res(fp);
      });
      s.on('error', rej);
    });
    expect(served).toBe(new X509Certificate(renewed.certPem).fingerprint256);
    expect(await call(clientCredentials({ caPem: ca.certPem }))).toEqual({ identity: null });
  });

  it('clientCredentials refuses half a key pair and a missing CA', () => {
    expect(() => clientCredentials({ caPem: ca.certPem, certPem: 'x' })).toThrow(/certPem and keyPem go together/);
    expect(() => clientCredentials({ caPem: '' })).toThrow(/caPem must be the cluster CA certificate/);
  });
});

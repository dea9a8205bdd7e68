// Agents and the CLI usually reach the controller by IP address. TLS server
// names (SNI) may not be IP addresses (RFC 6066), and Node warns with DEP0123
// when one is set; clientCredentials must connect by address without that
// warning and without giving up any check: the controller's certificate must
// still come from the cluster CA and hold the address as an IP SAN.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server as TlsServer } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Ca, clientCredentials, ensureCa, issueClientCert, issueServerCert, serverCredentials } from '../../controller/pki';

const CLIENT = join(import.meta.dirname, 'tls-by-ip-client.ts');

type Outcome = { code: number; details: string; warnings: string[]; stderr: string; status: number | null };

let dir: string;
let ca: Ca;
let otherCa: Ca;
const servers: grpc.Server[] = [];

/** A gRPC server with no services on host (bracket-free), serving a certificate for `names`. */
async function serve(host: string, names: string[], signer: Ca = ca): Promise<number> {
  const cert = await issueServerCert(signer, { names, ttlDays: 1 });
  const server = new grpc.Server();
  servers.push(server);
  const addr = host.includes(':') ? `[${host}]:0` : `${host}:0`;
  return new Promise((resolve, reject) =>
    server.bindAsync(addr, serverCredentials({ caPem: signer.certPem, certPem: cert.certPem, keyPem: cert.keyPem }), (e, p) => (e ? reject(e) : resolve(p))),
  );
}

/** One call from a fresh process (see tls-by-ip-client.ts), with everything it wrote to stderr. */
function callFromChild(target: string, cert?: { certPem: string; keyPem: string }): Promise<Outcome> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLIENT], {
    env: { ...process.env, NODE_OPTIONS: '', WEFT_TEST_TLS_CLIENT: JSON.stringify({ target, caPem: ca.certPem, ...cert }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => {
      try {
        resolve({ ...(JSON.parse(out.trim().split('\n').pop()!) as Pick<Outcome, 'code' | 'details' | 'warnings'>), stderr, status });
      } catch {
        reject(new Error(`client exited ${status} without a result; stdout ${JSON.stringify(out)}, stderr ${JSON.stringify(stderr)}`));
      }
    });
  });
}

function expectNoWarnings(o: Outcome): void {
  expect(o.warnings).toEqual([]);
  expect(o.stderr).not.toMatch(/DeprecationWarning|DEP0123|Warning/);
  expect(o.status).toBe(0);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'weft-tls-by-ip-'));
  ca = await ensureCa(join(dir, 'ca'));
  otherCa = await ensureCa(join(dir, 'other-ca'));
});

afterAll(() => {
  for (const s of servers) s.forceShutdown();
  rmSync(dir, { recursive: true, force: true });
});

describe('clientCredentials connecting by IP address', () => {
  it('reaches a server by IPv4 address, anonymously and with a client certificate, without a deprecation warning', async () => {
    const port = await serve('127.0.0.1', ['127.0.0.1']);
    const anon = await callFromChild(`127.0.0.1:${port}`);
    // UNIMPLEMENTED: TLS and HTTP/2 succeeded, the server has no such method
    expect(anon.code, anon.details).toBe(grpc.status.UNIMPLEMENTED);
    expectNoWarnings(anon);

    const issued = await issueClientCert(ca, { host: 'host-a', ttlDays: 1 });
    const mtls = await callFromChild(`127.0.0.1:${port}`, { certPem: issued.certPem, keyPem: issued.keyPem! });
    expect(mtls.code, mtls.details).toBe(grpc.status.UNIMPLEMENTED);
    expectNoWarnings(mtls);
  });

  it('reaches a server by IPv6 address without a deprecation warning', async () => {
    const port = await serve('::1', ['::1']);
    const o = await callFromChild(`[::1]:${port}`);
    expect(o.code, o.details).toBe(grpc.status.UNIMPLEMENTED);
    expectNoWarnings(o);
  });

  it('refuses a server whose certificate lacks the IP SAN, even with the address as a DNS-style name or another address', async () => {
    const port = await serve('127.0.0.1', ['localhost', '127.0.0.2']);
    const o = await callFromChild(`127.0.0.1:${port}`);
    expect(o.code).toBe(grpc.status.UNAVAILABLE);
    expect(o.details).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID|IP: 127\.0\.0\.1 is not in the cert's list/);
    expectNoWarnings(o);
  });

  it('refuses a server whose certificate holds the IP SAN but comes from another CA', async () => {
    const port = await serve('127.0.0.1', ['127.0.0.1'], otherCa);
    const o = await callFromChild(`127.0.0.1:${port}`);
    expect(o.code).toBe(grpc.status.UNAVAILABLE);
    expect(o.details).toMatch(/unable to verify|self[- ]signed certificate|unable to get (local )?issuer certificate/);
    expectNoWarnings(o);
  });

  it('by DNS name: sends the name and checks it against the DNS SANs', async () => {
    const good = await serve('127.0.0.1', ['localhost']);
    const ok = await callFromChild(`localhost:${good}`);
    expect(ok.code, ok.details).toBe(grpc.status.UNIMPLEMENTED);
    expectNoWarnings(ok);

    const bad = await serve('127.0.0.1', ['controller.example', '127.0.0.1']);
    const refused = await callFromChild(`localhost:${bad}`);
    expect(refused.code).toBe(grpc.status.UNAVAILABLE);
    expect(refused.details).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID|Host: localhost\. is not in the cert's altnames/);
  });
});

describe('the TLS server name the controller sees', () => {
  /** The server name (SNI) of the first TLS connection a client for `target` makes to a fresh server on 127.0.0.1. */
  async function serverNameFor(target: (port: number) => string): Promise<string | false> {
    const cert = await issueServerCert(ca, { names: ['localhost', '127.0.0.1'], ttlDays: 1 });
    let first: (name: string | false) => void = () => {};
    const seen = new Promise<string | false>((resolve) => (first = resolve));
    const tls: TlsServer = createServer({ cert: cert.certPem, key: cert.keyPem, ALPNProtocols: ['h2'] }, (s) => {
      first((s as unknown as { servername: string | false }).servername);
      s.destroy();
    });
    const port = await new Promise<number>((resolve) => tls.listen(0, '127.0.0.1', () => resolve((tls.address() as { port: number }).port)));
    const client = new grpc.Client(target(port), clientCredentials({ caPem: ca.certPem }));
    let timer: NodeJS.Timeout | undefined;
    try {
      client.waitForReady(Date.now() + 5_000, () => {});
      return await Promise.race([seen, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no TLS connection to ${target(port)}`)), 5_000)))]);
    } finally {
      clearTimeout(timer);
      client.close();
      tls.close();
    }
  }

  it('is absent for an IP address and the DNS name otherwise', async () => {
    expect(await serverNameFor((port) => `127.0.0.1:${port}`)).toBe(false);
    expect(await serverNameFor((port) => `localhost:${port}`)).toBe('localhost');
  });
});

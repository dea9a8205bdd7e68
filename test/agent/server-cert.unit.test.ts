// A --server the controller's certificate does not fit is a configuration
// mistake, not an outage: at join the agent stops with a message naming the
// flag that fixes it; after joining it keeps retrying (the controller may be
// fixed) but logs that message as an error on every retry. Against a real
// controller (test/agent/controller-fixture.ts) whose certificate names only
// 127.0.0.1, reached as localhost.
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCa, issueServerCert } from '../../controller/pki';
import { connectAgentClient } from '../../cni-plugin/agent/sync/controller';
import { channelCredentials, joinCluster } from '../../controller/api/client/credentials';
import {
  certNames, certProblemMessage, certProblemOf, nameMismatchMessage, serverHost, serverNameProblem, ServerCertError,
} from '../../controller/api/client/server-cert';
import { captureLogger } from '../helpers/log';
import { waitFor } from '../helpers/wait';
import { type Cluster, type RunningController, startCluster } from './controller-fixture';

let cluster: Cluster;
let ctl: RunningController;
let tmp: string;

beforeAll(async () => {
  cluster = await startCluster();
  ctl = await cluster.startController();
  tmp = mkdtempSync(join(tmpdir(), 'weft-server-cert-'));
});

afterAll(async () => {
  await cluster?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

let dirs = 0;
const stateDir = () => join(tmp, `state-${++dirs}`);

describe('reading the certificate and the error', () => {
  it('lists the DNS and IP names, IPv6 in its short form, and checks a server against them as TLS does', async () => {
    const ca = await ensureCa(join(tmp, 'ca-names'));
    const leaf = new X509Certificate((await issueServerCert(ca, { names: ['ctl', '10.0.0.5', '2001:db8::5', 'localhost', '127.0.0.1'], ttlDays: 1 })).certPem);
    expect(certNames(leaf)).toEqual(['ctl', '10.0.0.5', '2001:db8::5', 'localhost', '127.0.0.1']);
    expect(serverNameProblem('10.0.0.5:7443', leaf)).toBeNull();
    expect(serverNameProblem('CTL:7443', leaf)).toBeNull();
    expect(serverNameProblem('[2001:db8:0::5]:7443', leaf)).toBeNull();
    expect(serverNameProblem('ctl.example:7443', leaf)).toBe(
      "the controller's certificate names ctl, 10.0.0.5, 2001:db8::5, localhost, 127.0.0.1 but not 'ctl.example'; " +
        'use one of those in --server or restart the controller with --advertise ctl.example',
    );
    expect(serverNameProblem('10.0.0.6:7443', leaf)).toMatch(/but not '10\.0\.0\.6'.*--advertise 10\.0\.0\.6$/);
    expect(serverHost('[::1]:7443')).toBe('::1');
    expect(nameMismatchMessage('ctl', [])).toBe("the controller's certificate does not name 'ctl'; use one of its names in --server or restart the controller with --advertise ctl");
  });

  it('tells certificate mistakes from outages in what grpc-js reports', () => {
    const unavailable = (details: string) => ({ code: 14, details });
    expect(certProblemOf(unavailable("No connection established. Last error: Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames"))).toBe('name');
    expect(certProblemOf(unavailable('No connection established. Last error: Error: unable to verify the first certificate'))).toBe('ca');
    expect(certProblemOf(unavailable('No connection established. Last error: Error: self-signed certificate in certificate chain'))).toBe('ca');
    expect(certProblemOf(unavailable('No connection established. Last error: Error: certificate has expired'))).toBe('expired');
    expect(certProblemOf(unavailable('No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:7443'))).toBeNull();
    expect(certProblemOf({ code: 16, details: 'token: refused' })).toBeNull();
    expect(certProblemOf(new ServerCertError('x', 'ca'))).toBe('ca');
    expect(certProblemMessage('ca', '10.0.0.5:7443', { trusted: 'the cluster CA', stateDir: '/var/lib/weft/agent' }))
      .toMatch(/not signed by the cluster CA.*remove \/var\/lib\/weft\/agent\/host\.crt and join again/);
  });
});

describe('joining', () => {
  it('through a name the certificate lacks: a ServerCertError naming --server and --advertise, before the token is sent; nothing stored', async () => {
    const server = `localhost:${ctl.port}`;
    const dir = stateDir();
    const t0 = Date.now();
    const err = await joinCluster({ server, token: await cluster.token(), hostName: 'sc-1', caCertHash: cluster.pin, stateDir: dir }).catch((e) => e);
    expect(err).toBeInstanceOf(ServerCertError);
    expect(err.problem).toBe('name');
    expect(err.message).toBe(
      `cannot join through ${server}: the controller's certificate names 127.0.0.1 but not 'localhost'; use one of those in --server or restart the controller with --advertise localhost`,
    );
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(existsSync(dir)).toBe(false);
    // the CA file instead of the pin: the same check
    await expect(joinCluster({ server, token: await cluster.token(), hostName: 'sc-1', caPem: cluster.ca.certPem, stateDir: dir })).rejects.toThrow(/--advertise localhost$/);
  });

  it('with the CA file of another cluster: a ServerCertError saying so, not an endless retry', async () => {
    const other = await ensureCa(join(tmp, 'other-ca'));
    const err = await joinCluster({ server: ctl.address, token: await cluster.token(), hostName: 'sc-2', caPem: other.certPem, stateDir: stateDir() }).catch((e) => e);
    expect(err).toBeInstanceOf(ServerCertError);
    expect(err.problem).toBe('ca');
    expect(err.message).toContain(`the controller at ${ctl.address} presents a certificate not signed by the CA in --ca-cert`);
  });
});

describe('after joining', () => {
  it('a certificate that does not name --server is logged as an error naming the fix on every retry, and retried', async () => {
    const creds = await joinCluster({ server: ctl.address, token: await cluster.token(), hostName: 'sc-3', caCertHash: cluster.pin, stateDir: stateDir() });
    const { logger: log, lines } = captureLogger();
    const errors = () => lines.filter((l) => l.level === 'error');
    const server = `localhost:${ctl.port}`;
    const client = connectAgentClient({ server, credentials: channelCredentials(creds), hostName: 'sc-3', log, backoff: { initialMs: 50, maxMs: 200 } });
    const watch = client.watchTopology({ onEvent() {} });
    try {
      await waitFor('three errors', () => errors().length >= 3, 15_000);
      for (const e of errors()) {
        expect(e.msg).toBe(
          "cannot connect to the controller: the controller's certificate names 127.0.0.1 but not 'localhost'; use one of those in --server or restart the controller with --advertise localhost",
        );
        expect(e).toMatchObject({ server, problem: 'name' });
        // the gRPC error itself, as the controller's TLS refused it
        expect(e.err?.stack).toBeTypeOf('string');
      }
      await expect(client.heartbeat()).rejects.toThrow(/UNAVAILABLE/);
      expect(client.connectionState()).not.toBe('connected');
    } finally {
      watch.stop();
      client.close();
    }
  });
});

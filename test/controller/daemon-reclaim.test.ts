// What the leader does over time, with a short lease TTL so it happens in
// seconds: a host that stops heartbeating loses its subnet to the leader's
// reclaim (logged), and its name may then be joined again. Also the
// plaintext mode for local testing.
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveClusterConfig } from '../../controller/ipam';
import { clientCredentials } from '../../controller/pki';
import { openSqliteStore } from '../../controller/store/sqlite';
import {
  type Client, call, client, codeOf, httpGet, killAllDaemons, metric, readCa, startDaemon, weft,
} from './daemon-process';

let tmp: string;
const clients: Client[] = [];

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'weft-reclaim-'));
});

afterAll(async () => {
  for (const c of clients) c.close();
  await killAllDaemons();
  rmSync(tmp, { recursive: true, force: true });
});

const hostReq = (name: string) => ({
  name, underlay_ip: '192.168.8.1', vtep_mac: '02:00:00:00:08:01', rack: 'r1', datacenter: 'dc1', wg_public_key: '', agent_version: 'test', networks: [],
});

describe('leader duties', () => {
  it('reclaims the lease of a host that stopped heartbeating, logs it, and lets the name join again', async () => {
    const dataDir = join(tmp, 'data');
    mkdirSync(dataDir, { mode: 0o700 });
    const pre = openSqliteStore(join(dataDir, 'weft.db'));
    await saveClusterConfig(pre, { networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/16', hostPrefixLength: 24 }], leaseTtlSeconds: 5, reclaimGraceSeconds: 0 });
    await pre.close();

    const d = await startDaemon({ dataDir });
    expect(d.logs.some((l) => l.msg.startsWith('first start'))).toBe(false); // the stored config is kept
    const token = JSON.parse((await weft(['token', 'create', '--data-dir', dataDir, '--json'])).stdout).token;
    const join1 = async () => {
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const anon = client(d.grpcPort, clientCredentials({ caPem: readCa(dataDir) }));
      clients.push(anon);
      const r = await call(anon, 'Join', { token, host_name: 'quiet', public_key_pem: publicKey.export({ type: 'spki', format: 'pem' }) });
      return { certPem: r.certificate_pem as string, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
    };
    const host = client(d.grpcPort, clientCredentials({ caPem: readCa(dataDir), ...(await join1()) }));
    clients.push(host);
    const reg = await call(host, 'RegisterHost', hostReq('quiet'));
    const subnet = reg.host.subnets[0].subnet;
    expect(await codeOf(join1())).toBe('ALREADY_EXISTS'); // registered: its name is taken

    // No more heartbeats. The leader waits one TTL after election, then reclaims every TTL/3.
    const line = await d.waitLog((l) => l.msg === 'reclaimed expired lease', 20_000);
    expect(line).toMatchObject({ network: 'default', subnet, host: 'quiet' });
    const m = (await httpGet(d.metricsPort, '/metrics')).body;
    expect(metric(m, 'weft_leases_reclaimed_total')).toBe(1);
    expect(metric(m, 'weft_leases', 'network="default"')).toBeUndefined();
    // Quiet for a whole TTL is not gone: a token still cannot take the name, until an operator deletes the host
    // (a reinstalled machine, say).
    expect(await codeOf(join1())).toBe('ALREADY_EXISTS');
    expect((await weft(['host', 'delete', 'quiet', '--data-dir', dataDir])).code).toBe(0);
    expect(await codeOf(join1())).toBe('OK');
    d.kill('SIGTERM');
    expect((await d.exited).code).toBe(0);
  }, 40_000);
});

describe('--insecure', () => {
  it('serves plaintext on loopback, with a loud warning, and callers name themselves', async () => {
    const d = await startDaemon({ dataDir: join(tmp, 'insecure'), args: ['--insecure'] });
    expect(d.logs.find((l) => l.level === 40 && l.msg.startsWith('TLS IS OFF'))).toBeDefined();
    expect(d.logs.find((l) => l.msg === 'controller listening')).toMatchObject({ tls: false });
    const s = await weft(['status', '--insecure', '--server', `127.0.0.1:${d.grpcPort}`, '--json']);
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout)).toMatchObject({ leader: true, store: 'sqlite' });
    // Without a name the caller is anonymous and refused.
    const anon = client(d.grpcPort, grpc.credentials.createInsecure());
    clients.push(anon);
    expect(await codeOf(call(anon, 'GetStatus', {}))).toBe('UNAUTHENTICATED');
    d.kill('SIGINT');
    expect((await d.exited).code).toBe(0);
  });
});

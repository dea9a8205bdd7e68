// SQLite on a full disk: the controller's data dir is a small tmpfs, filled
// to the last byte under a running controller. Writes then fail with a clear
// error (gRPC UNAVAILABLE, "database or disk is full" naming the store file,
// and a WEFT_STORE_UNAVAILABLE warning in the controller's log), the
// controller stays up and keeps serving reads, the file passes
// `PRAGMA integrity_check` while full and after, and once space returns the
// same writes succeed with nothing acknowledged before lost.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { clientCredentials, issueClientCert, loadCa } from '../../controller/pki';
import { openStore } from '../../controller/store';
import { call, client, killAllDaemons, startDaemon } from '../controller/daemon-process';
import { auditStore, hostIdentities, NETWORK, type Ack } from './controller-burst';

const mounts: string[] = [];
afterAll(async () => {
  await killAllDaemons();
  for (const m of mounts) {
    execFileSync('umount', [m]);
    rmSync(m, { recursive: true, force: true });
  }
});

/** Writes zeros until the filesystem refuses with ENOSPC; returns the filler's path. */
function fillUp(dir: string): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(4096);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return path;
}

function integrity(dbPath: string): string {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check).join('; ');
  } finally {
    db.close();
  }
}

describe('the SQLite store on a full disk', () => {
  it('refuses writes with a clear error, stays intact and serving, and recovers once space returns', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-fault-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', dir]);
    mounts.push(dir);
    const dbPath = join(dir, 'weft.db');
    const d = await startDaemon({ dataDir: dir });
    const ca = await loadCa(dir);
    const hosts = await hostIdentities(ca, 'full', 300);
    const admin = await issueClientCert(ca, { host: 'admin', ttlDays: 1 });
    const adminClient = client(d.grpcPort, clientCredentials({ caPem: ca.certPem, certPem: admin.certPem, keyPem: admin.keyPem! }));
    const register = async (i: number) => {
      const h = hosts[i];
      const c = client(d.grpcPort, h.creds);
      try {
        const res = await call(c, 'RegisterHost', {
          name: h.name, underlay_ip: `192.168.1.${i + 1}`, vtep_mac: `02:00:00:01:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
          rack: 'r1', datacenter: 'dc1', wg_public_key: '', agent_version: 'fault-test', networks: [NETWORK],
        });
        return { host: h.name, subnet: res.host.subnets[0].subnet as string, container: '' } satisfies Ack;
      } finally {
        c.close();
      }
    };
    const acks: Ack[] = [];
    for (let i = 0; i < 10; i++) acks.push(await register(i));

    const filler = fillUp(dir);
    expect(statfsSync(dir).bavail).toBe(0);
    // (the WAL may still have room in pages it already holds: write until a write needs a new one)
    let refused: grpc.ServiceError | undefined;
    let next = 10;
    for (; next < hosts.length && !refused; next++) {
      try {
        acks.push(await register(next));
      } catch (err) {
        refused = err as grpc.ServiceError;
      }
    }
    expect(refused, 'a write refused on the full disk').toBeDefined();
    const failedAt = next - 1;
    console.log(`[fault] full disk: ${acks.length - 10} registrations still fit after the fill; then ${grpc.status[refused!.code]}: ${refused!.details}`);
    expect(refused!.code).toBe(grpc.status.UNAVAILABLE);
    expect(refused!.details).toMatch(/^SQLite store .*weft\.db: database or disk is full$/);
    const warned = await d.waitLog((l) => l.msg === 'request failed' && (l.err as { code?: string })?.code === 'WEFT_STORE_UNAVAILABLE', 5000);
    expect(warned.method).toBe('RegisterHost');
    // still up, still serving reads, still refusing writes the same way
    expect((await call(adminClient, 'GetStatus', {})).hosts).toBe(acks.length);
    await expect(register(failedAt)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(d.logs.filter((l) => l.level >= 50)).toEqual([]);
    expect(integrity(dbPath)).toBe('ok');

    unlinkSync(filler);
    acks.push(await register(failedAt));
    for (let i = failedAt + 1; i < failedAt + 6; i++) acks.push(await register(i));
    expect((await call(adminClient, 'GetStatus', {})).hosts).toBe(acks.length);
    adminClient.close();
    d.kill('SIGTERM');
    expect((await d.exited).code).toBe(0);
    expect(integrity(dbPath)).toBe('ok');
    const store = await openStore(`sqlite:${dbPath}`);
    try {
      const audit = await auditStore(store, acks);
      expect(audit.lost).toEqual([]);
      expect(audit.duplicates).toEqual([]);
      // the refused registrations left no lease behind: one per acknowledged host
      expect(audit.leases).toBe(acks.length);
    } finally {
      await store.close();
    }
  }, 60_000);
});

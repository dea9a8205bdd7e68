// A real etcd for tests: its own temp data dir, free loopback ports, and a
// teardown that runs even when the test failed. Start as many as a test
// needs (one per cluster member is fine: each is a single-node cluster).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type EtcdInstance = {
  /** Client URL, e.g. http://127.0.0.1:41234 */
  endpoint: string;
  pid: number;
  dataDir: string;
  /** Kills this etcd (by PID) and removes its data dir; safe to call twice. */
  stop(): Promise<void>;
};

export type StartEtcdOptions = {
  /** Extra etcd flags, e.g. ['--auto-compaction-retention=1']. */
  args?: string[];
  /** How long to wait for /health (ms). */
  timeoutMs?: number;
  binary?: string;
};

const running = new Set<EtcdInstance>();

// The same ports could be handed out twice between probing and etcd binding;
// startEtcd retries on that.
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    if (!res.ok) return false;
    const body = (await res.json()) as { health?: string };
    return body.health === 'true';
  } catch {
    return false;
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function startOnce(opts: StartEtcdOptions): Promise<EtcdInstance> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const dataDir = mkdtempSync(join(tmpdir(), 'weft-etcd-'));
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child = spawn(opts.binary ?? 'etcd', [
    '--name', 'weft-test',
    '--data-dir', dataDir,
    '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `weft-test=${peer}`,
    '--initial-cluster-state', 'new',
    '--log-level', 'error',
    ...(opts.args ?? []),
  ], { stdio: ['ignore', 'ignore', 'pipe'] });

  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-4000); });
  let spawnError: Error | undefined; // e.g. ENOENT when etcd is not installed
  child.once('error', (e) => { spawnError = e; });

  const inst: EtcdInstance = {
    endpoint: client,
    pid: child.pid ?? -1,
    dataDir,
    async stop() {
      if (!running.delete(inst)) return;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (!spawnError) await exited(child);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  running.add(inst);

  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  for (;;) {
    if (await healthy(client)) return inst;
    const failed = spawnError !== undefined || child.exitCode !== null || child.signalCode !== null;
    if (failed || Date.now() > deadline) {
      await inst.stop();
      const why = spawnError ? `could not start (${spawnError.message})`
        : failed ? `exited (${child.exitCode ?? child.signalCode})` : 'not healthy in time';
      throw new Error(`etcd on ${client} ${why}: ${stderr.trim() || 'no output'}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts a single-node etcd on 127.0.0.1 and waits until it reports healthy. */
export async function startEtcd(opts: StartEtcdOptions = {}): Promise<EtcdInstance> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      lastError = err;
      // a port race shows up as "address already in use": try new ports
      if (!/address already in use/i.test(String((err as Error).message))) break;
    }
  }
  throw lastError;
}

/** Stops every etcd this process started and has not stopped yet. */
export async function stopAllEtcd(): Promise<void> {
  await Promise.all([...running].map((i) => i.stop()));
}

// A test that throws before its own teardown still must not leave etcd
// running: stop everything when the test file ends, and as a last resort
// when the process exits.
process.once('exit', () => {
  for (const inst of running) {
    try { process.kill(inst.pid, 'SIGKILL'); } catch { /* already gone */ }
    try { rmSync(inst.dataDir, { recursive: true, force: true }); } catch { /* best effort */ }
  }
});
if (process.env.VITEST) {
  const { afterAll } = await import('vitest');
  afterAll(stopAllEtcd);
}

// A real etcd for tests: its own temp data dir, free loopback ports, and a
// teardown that runs even when the test failed. Start as many as a test
// needs (one per cluster member is fine: each is a single-node cluster).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports';
import { GiveUp, waitFor } from './wait';

export type EtcdInstance = {
  /** Client URL, e.g. http://127.0.0.1:41234 */
  endpoint: string;
  /** PID of the current etcd process (changes on restart). */
  pid: number;
  dataDir: string;
  /** Kills etcd (SIGKILL, by PID) but keeps its data: clients now see an outage. */
  kill(): Promise<void>;
  /** Starts etcd again on the same ports and data (after kill(), or kills first). */
  restart(): Promise<void>;
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

type Proc = { child: ChildProcess; stderr: () => string; spawnError: () => Error | undefined };

function spawnEtcd(opts: StartEtcdOptions, dataDir: string, client: string, peer: string): Proc {
  const child = spawn(opts.binary ?? 'etcd', [
    '--name', 'weft-test',
    '--data-dir', dataDir,
    '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `weft-test=${peer}`,
    '--initial-cluster-state', 'new', // ignored by etcd once the data dir holds a cluster
    '--log-level', 'error',
    ...(opts.args ?? []),
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-4000); });
  let spawnError: Error | undefined; // e.g. ENOENT when etcd is not installed
  child.once('error', (e) => { spawnError = e; });
  return { child, stderr: () => stderr, spawnError: () => spawnError };
}

async function killProc(p: Proc): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null && !p.spawnError()) {
    p.child.kill('SIGKILL');
    await exited(p.child);
  }
}

/** Resolves once `client` is healthy; rejects with etcd's own output if it dies or takes too long. */
async function waitHealthy(p: Proc, client: string, timeoutMs: number): Promise<void> {
  try {
    await waitFor(`etcd on ${client} to report healthy`, async () => {
      if (await healthy(client)) return true;
      const err = p.spawnError();
      if (err) throw new GiveUp(`could not start (${err.message})`);
      if (p.child.exitCode !== null || p.child.signalCode !== null) throw new GiveUp(`exited (${p.child.exitCode ?? p.child.signalCode})`);
      return false;
    }, timeoutMs, 50);
  } catch (e) {
    const why = e instanceof GiveUp ? e.message : 'not healthy in time';
    throw new Error(`etcd on ${client} ${why}: ${p.stderr().trim() || 'no output'}`);
  }
}

async function startOnce(opts: StartEtcdOptions): Promise<EtcdInstance> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const dataDir = mkdtempSync(join(tmpdir(), 'weft-etcd-'));
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const timeoutMs = opts.timeoutMs ?? 20_000;
  let proc = spawnEtcd(opts, dataDir, client, peer);

  const inst: EtcdInstance = {
    endpoint: client,
    pid: proc.child.pid ?? -1,
    dataDir,
    async kill() {
      await killProc(proc);
    },
    async restart() {
      await killProc(proc);
      proc = spawnEtcd(opts, dataDir, client, peer);
      inst.pid = proc.child.pid ?? -1;
      await waitHealthy(proc, client, timeoutMs);
    },
    async stop() {
      if (!running.delete(inst)) return;
      await killProc(proc);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  running.add(inst);
  try {
    await waitHealthy(proc, client, timeoutMs);
  } catch (err) {
    await inst.stop();
    throw err;
  }
  return inst;
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

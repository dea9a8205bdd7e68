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

// ---- a multi-member cluster ---------------------------------------------------

export type EtcdMember = { name: string; endpoint: string; pid: number; dataDir: string; alive: boolean };

export type EtcdCluster = {
  members: EtcdMember[];
  /** Every member's client URL, comma-separated: what `--store etcd:` takes. */
  endpoints: string;
  /** The member the others follow, asked of a live member (the raft view, not a guess). */
  leader(): Promise<EtcdMember>;
  /** SIGKILLs one member by PID; its data stays. */
  kill(m: EtcdMember): Promise<void>;
  /** Kills every member (by PID) and removes their data; safe to call twice. */
  stop(): Promise<void>;
};

/** Starts an `n`-member etcd cluster on loopback and waits until every member is healthy. */
export async function startEtcdCluster(n: number, opts: StartEtcdOptions = {}): Promise<EtcdCluster> {
  const ports = [];
  for (let i = 0; i < n; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const token = `weft-test-${process.pid}-${Date.now().toString(36)}`;
  const initial = ports.map((p, i) => `m${i}=http://127.0.0.1:${p.peer}`).join(',');
  const procs: Proc[] = [];
  const members: EtcdMember[] = [];
  for (const [i, p] of ports.entries()) {
    const dataDir = mkdtempSync(join(tmpdir(), 'weft-etcd-member-'));
    const client = `http://127.0.0.1:${p.client}`;
    const peer = `http://127.0.0.1:${p.peer}`;
    const child = spawn(opts.binary ?? 'etcd', [
      '--name', `m${i}`, '--data-dir', dataDir,
      '--listen-client-urls', client, '--advertise-client-urls', client,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', token,
      '--log-level', 'error', ...(opts.args ?? []),
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-4000); });
    let spawnError: Error | undefined;
    child.once('error', (e) => { spawnError = e; });
    procs.push({ child, stderr: () => stderr, spawnError: () => spawnError });
    members.push({ name: `m${i}`, endpoint: client, pid: child.pid ?? -1, dataDir, alive: true });
  }
  // the single-node bookkeeping (exit sweep, afterAll) covers each member too
  const handles: EtcdInstance[] = members.map((m, i) => ({
    endpoint: m.endpoint, pid: m.pid, dataDir: m.dataDir,
    kill: async () => { await killProc(procs[i]); m.alive = false; },
    restart: async () => { throw new Error('restarting a cluster member is not supported'); },
    stop: async () => { running.delete(handles[i]); await killProc(procs[i]); m.alive = false; rmSync(m.dataDir, { recursive: true, force: true }); },
  }));
  for (const h of handles) running.add(h);
  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.endpoint).join(','),
    async leader() {
      const { Etcd3 } = await import('etcd3');
      for (const m of members.filter((x) => x.alive)) {
        const c = new Etcd3({ hosts: m.endpoint, dialTimeout: 1000 });
        try {
          const st = await c.maintenance.status();
          const ids = await c.cluster.memberList({});
          const lead = ids.members.find((x) => x.ID === st.leader);
          const found = lead && members.find((x) => x.name === lead.name);
          if (found) return found;
        } catch { /* ask the next member */ } finally {
          c.close();
        }
      }
      throw new Error('no live etcd member names a leader');
    },
    kill: (m) => handles[members.indexOf(m)].kill(),
    async stop() {
      await Promise.all(handles.map((h) => h.stop()));
    },
  };
  try {
    await Promise.all(procs.map((p, i) => waitHealthy(p, members[i].endpoint, opts.timeoutMs ?? 20_000)));
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

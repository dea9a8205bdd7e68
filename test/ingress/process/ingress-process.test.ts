// The real `weft ingress` (built dist/weft.mjs) in a test namespace, against
// a real `weft controller` on that namespace's loopback, with HTTP backends
// on addresses of the namespace's lo registered as endpoints of a host
// (backend-host.ts). In order, each step building on the last:
//   1. it joins with an ingress token and serves HTTP for a created service;
//   2. it keeps serving when the controller is killed;
//   3. stopped and started again with the controller still down, it serves
//      from its state file;
//   4. `weft ingress --takeover` under a continuous load of new connections
//      refuses none of them and fails no request; the old process exits 0.
// Every process is started here and killed by PID in teardown; the
// namespace and the temp dir are removed even after a failure.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, grpcCall, httpGetIn, requireBuild, ROOT, WEFT, weftCli } from '../../e2e/cluster';
import { nsExecAsync } from '../../e2e/traffic';
import { createTestNetns, removeTestNetns } from '../../helpers/netns';
import { processAlive } from '../../helpers/process';
import { GiveUp, waitFor } from '../../helpers/wait';

const GRPC = '127.0.0.1:7443';
const SERVICE_PORT = 8000;
const BACKEND_PORT = 8080;
const INGRESS_METRICS = '127.0.0.1:7082';
const HERE = join(ROOT, 'test', 'ingress', 'process');

type Proc = { child: ChildProcess; logFile: string; out: () => string; exit: Promise<number | null> };
const procs: Proc[] = [];

let ns: string;
let dir: string;

/** A command inside the namespace, its stdout+stderr kept in memory and in `logFile`. */
function spawnIn(args: string[], logFile: string): Proc {
  const child = spawn('ip', ['netns', 'exec', ns, ...args], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (b: Buffer) => {
    out += b.toString();
    appendFileSync(logFile, b);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const p = { child, logFile, out: () => out, exit };
  procs.push(p);
  return p;
}

function running(p: Proc): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

function logLines(p: Proc): Array<Record<string, unknown>> {
  return p.out().split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

const tailOf = (p: Proc) => p.out().split('\n').slice(-15).join('\n');

async function startController(): Promise<Proc> {
  const p = spawnIn([process.execPath, WEFT, 'controller', '--data-dir', join(dir, 'ctl'), '--listen', GRPC, '--metrics-listen', '127.0.0.1:7080'], join(dir, 'controller.log'));
  await waitFor('the controller to listen', () => {
    if (!running(p)) throw new GiveUp(`controller exited: ${tailOf(p)}`);
    return logLines(p).some((l) => l.msg === 'controller listening');
  }, 30_000);
  return p;
}

let joinLine: string[];
function startIngress(extra: string[] = [], name = 'ingress'): Proc {
  return spawnIn(
    [process.execPath, WEFT, ...joinLine, '--name', 'edge', '--rack', 'r1', '--state-dir', join(dir, 'ingress'),
      '--metrics-listen', INGRESS_METRICS, '--drain-timeout', '3s', '--nft-table', 'wt_ingress_test', '--log-level', 'debug', ...extra],
    join(dir, `${name}.log`),
  );
}

async function get(path = '/'): Promise<{ backend: string }> {
  return JSON.parse(await httpGetIn(ns, `http://127.0.0.1:${SERVICE_PORT}${path}`)) as { backend: string };
}

async function metrics(): Promise<string> {
  return httpGetIn(ns, `http://${INGRESS_METRICS}/metrics`);
}

async function stop(p: Proc, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (running(p)) p.child.kill(signal);
  return p.exit;
}

let ctl: Proc;
let ingress: Proc;
let backendIps: string[];

describe('weft ingress, the process', () => {
  beforeAll(async () => {
    requireBuild();
    dir = mkdtempSync(join(tmpdir(), 'wt-ingress-proc-'));
    ns = createTestNetns('ing');
    ctl = await startController();

    const ingressToken = JSON.parse(weftCli(['token', 'create', '--role', 'ingress', '--ttl', '1h', '--data-dir', join(dir, 'ctl'), '--json'])) as { joinCommand: string };
    joinLine = ingressToken.joinCommand.split(/\s+/).slice(1);
    expect(joinLine[0]).toBe('ingress');
    const hostToken = JSON.parse(weftCli(['token', 'create', '--ttl', '1h', '--data-dir', join(dir, 'ctl'), '--json'])) as { token: string; caCertHash: string };
    weftCli(['admin-cert', '--out', join(dir, 'admin'), '--data-dir', join(dir, 'ctl'), '--ttl-days', '1']);

    const backends = spawnIn(
      [process.execPath, '--import', 'tsx', join(HERE, 'backend-host.ts'), JSON.stringify({
        server: GRPC, token: hostToken.token, caCertHash: hostToken.caCertHash, dir: join(dir, 'host'), name: 'b1', count: 2, port: BACKEND_PORT, labels: { app: 'web' },
      })],
      join(dir, 'backends.log'),
    );
    const line = await waitFor('the backends to serve and be registered', () => {
      if (!running(backends)) throw new GiveUp(`backend host exited: ${tailOf(backends)}`);
      return backends.out().split('\n').find((l) => l.startsWith('{"ips"'));
    }, 30_000);
    backendIps = (JSON.parse(line) as { ips: string[] }).ips;

    const admin = { ca: join(dir, 'admin', 'ca.crt'), cert: join(dir, 'admin', 'admin.crt'), key: join(dir, 'admin', 'admin.key') };
    const created = await grpcCall(ns, GRPC, admin, 'CreateService', {
      service: { name: 'web', ports: [{ name: 'http', port: SERVICE_PORT, target_port: BACKEND_PORT, protocol: 'http' }], selector: { app: 'web' }, network: 'default', health_path: '/healthz' },
    });
    expect(created.ok, JSON.stringify(created)).toBe(true);
  }, 120_000);

  afterAll(async () => {
    // Every process this file started, by PID, then the namespace and the files.
    for (const p of procs) if (running(p)) p.child.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exit));
    if (ns) removeTestNetns(ns);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('joins with an ingress token and serves HTTP for a created service, over every backend', async () => {
    ingress = startIngress();
    const seen = new Set<string>();
    await waitFor('both backends to answer through the ingress', async () => {
      if (!running(ingress)) throw new GiveUp(`ingress exited: ${tailOf(ingress)}`);
      seen.add((await get()).backend);
      return seen.size === 2;
    }, 30_000);
    expect([...seen].sort()).toEqual([...backendIps].sort());
    expect(existsSync(join(dir, 'ingress', 'host.crt'))).toBe(true);
    expect(readFileSync(join(dir, 'ingress', 'services.json'), 'utf8')).toContain('"web"');
    const m = await metrics();
    expect(m).toMatch(/weft_ingress_controller_connection\{state="connected"\} 1/);
    expect(m).toMatch(/weft_ingress_requests_total\{service="web",backend="[\d.]+:8080",class="2xx"\} \d+/);
    expect(m).toMatch(/weft_ingress_backend_healthy\{service="web",port="8000",backend="[\d.]+:8080",rack="r1"\} 1/);
  });

  it('keeps serving when the controller is killed', async () => {
    expect(await stop(ctl, 'SIGKILL')).toBe(null);
    await waitFor('the ingress to see the controller gone', async () => /weft_ingress_controller_connection\{state="(disconnected|connecting)"\} 1/.test(await metrics()));
    for (let i = 0; i < 10; i++) expect(backendIps).toContain((await get()).backend);
    const ready = JSON.parse(await httpGetIn(ns, `http://${INGRESS_METRICS}/readyz`)) as { ready: boolean };
    expect(ready.ready).toBe(true);
  });

  it('stopped and started again with the controller down, serves from its state file', async () => {
    expect(await stop(ingress)).toBe(0);
    await expect(get()).rejects.toThrow();
    ingress = startIngress([], 'ingress-cold');
    await waitFor('the cold-started ingress to serve', async () => {
      if (!running(ingress)) throw new GiveUp(`ingress exited: ${tailOf(ingress)}`);
      return backendIps.includes((await get()).backend);
    }, 30_000);
    expect(logLines(ingress).some((l) => l.msg === 'serving the saved service state until the controller answers')).toBe(true);
    expect(await metrics()).toMatch(/weft_ingress_state_source\{source="file"\} 1/);
  });

  it('--takeover under continuous new connections refuses none; the old process drains and exits 0', async () => {
    ctl = await startController();
    await waitFor('the ingress to reconnect', async () => /weft_ingress_controller_connection\{state="connected"\} 1/.test(await metrics()), 30_000);

    const statusFile = join(dir, 'load.json');
    const load = spawnIn([process.execPath, join(HERE, 'load.cjs'), `http://127.0.0.1:${SERVICE_PORT}/`, '8', statusFile], join(dir, 'load.log'));
    const status = () => (existsSync(statusFile) ? (JSON.parse(readFileSync(statusFile, 'utf8')) as { ok: number; failed: number; errors: Record<string, number>; final: boolean }) : undefined);
    await waitFor('the load to get 200 answers', () => (status()?.ok ?? 0) > 200);

    const old = ingress;
    const fresh = startIngress(['--takeover'], 'ingress-takeover');
    expect(await old.exit, tailOf(old)).toBe(0);
    expect(running(fresh), tailOf(fresh)).toBe(true);
    const atHandover = status()!.ok;
    await waitFor('the new process to serve the load', () => {
      if (!running(fresh)) throw new GiveUp(`new ingress exited: ${tailOf(fresh)}`);
      return status()!.ok > atHandover + 500;
    }, 30_000);
    load.child.kill('SIGTERM');
    await load.exit;
    const final = status()!;
    expect(final.final).toBe(true);
    expect(final.errors).toEqual({});
    expect(final.failed).toBe(0);
    expect(final.ok).toBeGreaterThan(700);
    expect(logLines(old).some((l) => l.msg === 'takeover: the new process serves on every listener; stopping accepting')).toBe(true);
    expect(processAlive(old.child.pid!)).toBe(false);

    // The new process owns the handoff socket now: it can be taken over in turn, and stops cleanly.
    await waitFor('the new process to offer takeovers', () => logLines(fresh).some((l) => l.msg === 'takeover complete: the previous ingress stopped accepting and drains'));
    expect(await stop(fresh)).toBe(0);
  }, 90_000);
});

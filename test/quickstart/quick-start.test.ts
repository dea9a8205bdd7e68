// The README's quick start as a newcomer runs it: `npm start` in a clone,
// then the `weft` commands from that clone without any flag, then Ctrl-C or
// SIGTERM to npm. Runs in a copy of the clone (sources linked, its own dist/
// and .weft-data) inside a namespace of its own, so the build and the ports
// cannot disturb the rest of the test run or a developer's own controller.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../controller/daemon-process';
import { createTestNetns, removeTestNetns } from '../helpers/netns';
import { processAlive } from '../helpers/process';
import { waitFor } from '../helpers/wait';

// What a clone holds that `npm start` reads; dist/ and .weft-data are the copy's own.
const LINKED = ['package.json', 'package-lock.json', 'tsconfig.json', 'node_modules', 'controller', 'cni-plugin', 'dataplane', 'ingress'];

let clone: string;
let netns: string;
const started = new Set<ChildProcess>();
const controllerPids = new Set<number>();

beforeAll(() => {
  clone = mkdtempSync(join(tmpdir(), 'wtqs-'));
  for (const f of LINKED) symlinkSync(join(ROOT, f), join(clone, f));
  netns = createTestNetns('qs');
});

/** A test that failed half-way leaves nothing running for the next one. */
function killLeftovers(): void {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const pid of controllerPids) if (processAlive(pid)) process.kill(pid, 'SIGKILL');
  started.clear();
  controllerPids.clear();
}

afterEach(killLeftovers);

afterAll(() => {
  killLeftovers();
  if (netns) removeTestNetns(netns);
  if (clone) rmSync(clone, { recursive: true, force: true });
});

/** The environment of a newcomer's shell: none of weft's own variables. */
function shellEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WEFT_') && !k.startsWith('npm_')));
  return { ...env, ...extra };
}

/** A README command, run in the clone inside the test's namespace. */
function run(cmd: string, args: string[], env = shellEnv()) {
  const r = spawnSync('ip', ['netns', 'exec', netns, cmd, ...args], { cwd: clone, env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

type NpmStart = { npm: ChildProcess; output: () => string; controllerPid: () => number | undefined; exited: Promise<number | null> };

/** `npm start`, as typed; resolves once the controller it runs is listening. */
async function npmStart(): Promise<NpmStart> {
  const npm = spawn('ip', ['netns', 'exec', netns, 'npm', 'start'], { cwd: clone, env: shellEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(npm);
  let out = '';
  npm.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  npm.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
  const logLines = () =>
    out.split('\n').flatMap((l) => {
      if (!l.startsWith('{')) return [];
      try {
        return [JSON.parse(l) as { msg: string; pid: number }];
      } catch {
        return [];
      }
    });
  const controllerPid = () => logLines().find((l) => l.msg === 'controller listening')?.pid;
  await waitFor('npm start to run a listening controller', () => {
    if (npm.exitCode !== null) throw new Error(`npm start exited ${npm.exitCode}:\n${out}`);
    return controllerPid();
  }, 90_000);
  controllerPids.add(controllerPid()!);
  return { npm, output: () => out, controllerPid, exited };
}

/** Signals npm the way a terminal or a service manager would, and checks that nothing is left behind. */
async function stopWith(s: NpmStart, signal: NodeJS.Signals): Promise<void> {
  const pid = s.controllerPid()!;
  s.npm.kill(signal);
  await waitFor(`npm to exit after ${signal}`, () => s.npm.exitCode !== null || s.npm.signalCode !== null, 15_000, 50);
  await waitFor(`the controller (pid ${pid}) to exit after ${signal} to npm`, () => !processAlive(pid), 15_000, 50);
  expect(s.output()).toContain('"msg":"stopped"');
  // Nothing listens on the controller's ports any more.
  const listening = run('ss', ['-Hltn']).stdout;
  expect(listening).not.toMatch(/:7443\b|:7080\b/);
}

describe('quick start: npm start, then weft from the clone', () => {
  it('runs the controller, lets the CLI find its data without flags, and stops on SIGTERM to npm', async () => {
    const s = await npmStart();
    expect(existsSync(join(clone, '.weft-data', 'ca.crt'))).toBe(true);

    const status = run('npx', ['weft', 'status', '--json']);
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    const st = JSON.parse(status.stdout) as { leader: string; store: string; hosts: number };
    expect(st.store).toBe('sqlite');
    expect(st.hosts).toBe(0);

    const hosts = run('npx', ['weft', 'hosts']);
    expect([hosts.code, hosts.stderr]).toEqual([0, '']);
    expect(hosts.stdout).toMatch(/^no hosts/);
    const endpoints = run('npx', ['weft', 'endpoints']);
    expect([endpoints.code, endpoints.stderr, endpoints.stdout]).toEqual([0, '', 'no endpoints\n']);

    const nets = run('npx', ['weft', 'network', 'list']);
    expect(nets.code).toBe(0);
    expect(nets.stdout).toMatch(/^default\s+1\s+10\.244\.0\.0\/16\s+\/24$/m);

    const token = run('npx', ['weft', 'token', 'create']);
    expect(token.code).toBe(0);
    expect(token.stdout).toMatch(/^weft agent --server \S+:7443 --token [a-z0-9]{6}\.[a-z0-9]{16} --ca-cert-hash sha256:[0-9a-f]{64}$/m);

    await stopWith(s, 'SIGTERM');
  }, 180_000);

  it('starts again on the same data and stops on Ctrl-C (SIGINT)', async () => {
    const s = await npmStart();
    expect(s.output()).not.toContain('first start');
    await stopWith(s, 'SIGINT');
  }, 180_000);

  it('`npm link` puts a working weft on PATH', () => {
    const prefix = join(clone, 'npm-prefix');
    mkdirSync(prefix);
    const link = run('npm', ['link', '--no-audit', '--no-fund'], shellEnv({ npm_config_prefix: prefix }));
    expect(link.code, link.stderr).toBe(0);
    const v = run('weft', ['version'], shellEnv({ PATH: `${join(prefix, 'bin')}:${process.env.PATH}` }));
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^weft \d+\.\d+\.\d+/);
  }, 60_000);
});

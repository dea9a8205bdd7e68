// The join token reaches the agent without being on its command line:
// --token-file and WEFT_TOKEN each join a real controller, and the running
// process's /proc/PID/cmdline (readable by every local user) does not hold
// the token. --token still works, with a warning that says so.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../cni-plugin/agent/config';
import { configErrorOf } from '../helpers/config-error';
import { GiveUp, waitFor } from '../helpers/wait';
import { type Cluster, type RunningController, startCluster } from './controller-fixture';

const WORKER = fileURLToPath(new URL('./token-join-worker.ts', import.meta.url));
const TOKEN = 'abcdef.0123456789abcdef';

describe('where the join token comes from', () => {
  let cluster: Cluster;
  let ctl: RunningController;
  let dir: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-token-src-'));
    cluster = await startCluster();
    ctl = await cluster.startController();
  });
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  afterAll(async () => {
    await cluster?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Starts the worker as host `name`; resolves once it has joined, with what it printed and its cmdline. */
  async function join_(name: string, args: string[], env: Record<string, string> = {}) {
    const stateDir = join(dir, name);
    const argv = ['--server', ctl.address, '--ca-cert-hash', cluster.pin, '--host-name', name, '--state-dir', stateDir, ...args];
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const line = await waitFor(`${name} to join`, () => {
      if (child.exitCode !== null) throw new GiveUp(`worker exited (${child.exitCode}): ${err}`);
      return out.split('\n').find((l) => l.startsWith('{'));
    }, 30_000);
    const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').join(' ');
    expect(existsSync(join(stateDir, 'host.crt')), `${name} has no certificate`).toBe(true);
    return { printed: JSON.parse(line) as { joined: string; tokenSource: string; warnings: string[] }, cmdline };
  }

  it('--token-file joins; the token is not on the command line; a file others can read earns a warning', async () => {
    const token = await cluster.token();
    const file = join(dir, 'token');
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    const r = await join_('tf-1', ['--token-file', file]);
    expect(r.printed).toEqual({ joined: 'tf-1', tokenSource: `--token-file ${file}`, warnings: [] });
    expect(r.cmdline).toContain(`--token-file ${file}`);
    expect(r.cmdline).not.toContain(token);

    chmodSync(file, 0o644);
    const c = loadAgentConfig(['--server', 'x:1', '--token-file', file], {});
    expect(c.token).toBe(token);
    expect(c.warnings).toEqual([`--token-file: ${file} is readable by other users than its owner (mode 0644); chmod 600 it`]);
  });

  it('WEFT_TOKEN joins; the token is not on the command line', async () => {
    const token = await cluster.token();
    const r = await join_('te-1', [], { WEFT_TOKEN: token });
    expect(r.printed).toEqual({ joined: 'te-1', tokenSource: 'WEFT_TOKEN', warnings: [] });
    expect(r.cmdline).not.toContain(token);
  });

  it('--token still joins, and warns that every local user can read it and what to use instead', async () => {
    const token = await cluster.token();
    const r = await join_('tt-1', ['--token', token]);
    expect(r.cmdline).toContain(token);
    expect(r.printed.tokenSource).toBe('--token');
    expect(r.printed.warnings).toEqual([expect.stringMatching(/--token puts the join token on the command line, where every local user can read it .* --token-file FILE .* WEFT_TOKEN/)]);
  });

  it('refuses a token given twice, a file without a token, and never echoes the secret', () => {
    const readFile = () => 'not-a-token-but-a-secret\n';
    expect(configErrorOf(() => loadAgentConfig(['--server', 'x:1', '--token-file', '/t'], { WEFT_TOKEN: TOKEN }, { readFile, fileMode: () => 0o600 })))
      .toBe('WEFT_TOKEN and --token-file both give the token: give one of them');
    const bad = configErrorOf(() => loadAgentConfig(['--server', 'x:1'], { WEFT_TOKEN_FILE: '/t' }, { readFile, fileMode: () => 0o600 }));
    expect(bad).toBe('WEFT_TOKEN_FILE: /t does not hold a bootstrap token <6 chars>.<16 chars> from weft token create');
    expect(configErrorOf(() => loadAgentConfig(['--server', 'x:1', '--token-file', '/nope'], {}, { fileMode: () => { throw new Error('ENOENT: no such file'); } })))
      .toBe('--token-file: cannot read /nope: ENOENT: no such file');
  });
});

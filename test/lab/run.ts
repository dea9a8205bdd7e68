// Running commands for the lab. The lab drives the kernel with iproute2, not
// with weft's own netlink code: test infrastructure must not share the bugs
// of the code it tests.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface ExecOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** false: return a failed result instead of throwing (default true) */
  check?: boolean;
}

export interface ExecResult {
  status: number;
  stdout: string;
  stderr: string;
}

export class LabExecError extends Error {
  override name = 'LabExecError';
  constructor(readonly argv: string[], readonly result: ExecResult) {
    super(`${argv.join(' ')} exited ${result.status}: ${(result.stderr || result.stdout).trim()}`);
  }
}

export function run(cmd: string, args: string[], opts: ExecOptions = {}): ExecResult {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    input: opts.input,
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
    timeout: opts.timeoutMs ?? 30_000,
    killSignal: 'SIGKILL',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  // a signal (e.g. the timeout) leaves status null: report it as 128+n like a shell does
  const status = r.status ?? 128 + (r.signal ? 9 : 0);
  const result: ExecResult = { status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  if (status !== 0 && opts.check !== false) throw new LabExecError([cmd, ...args], result);
  return result;
}

/** `ip ARGS`, throwing with ip's own message on failure. */
export function ip(args: string[], opts: ExecOptions = {}): ExecResult {
  return run('ip', args, opts);
}

/** Several `ip` commands in one process (`ip -batch`): one fork instead of one per command. */
export function ipBatch(netns: string | null, lines: string[]): void {
  if (lines.length === 0) return;
  ip([...(netns ? ['-n', netns] : []), '-batch', '-'], { input: lines.join('\n') + '\n' });
}

export function nsRun(netns: string, cmd: string, args: string[], opts: ExecOptions = {}): ExecResult {
  return run('ip', ['netns', 'exec', netns, cmd, ...args], opts);
}

export { ipJson } from '../helpers/ip';

export function netnsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

export function listNetns(): string[] {
  const out = ip(['netns', 'list']).stdout;
  return out.split('\n').map((l) => l.split(/\s+/)[0]).filter(Boolean);
}

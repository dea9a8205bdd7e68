// What the controller benches (fan-out, scale) share to drive one real
// controller process: starting it on its own data dir and store, waiting
// until it answers, reading its memory and CPU from /proc and its V8 heap
// from /metrics, one gRPC caller per identity, and the request/reply IPC to
// the child processes that simulate hosts.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { controllerClientConstructor } from '../../../controller/api/proto';
import type { Ca } from '../../../controller/pki';
import { GiveUp, waitFor } from '../../helpers/wait';
import { startChild } from './procs';
import { hostIdentity, unaryCall } from './child-calls';
import { channelOptions, type Mode } from './protocol';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(here, '..', '..', '..');
const WEFT = join(ROOT, 'dist', 'weft.mjs');
/** Options for node itself when it runs the controller, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to see where its CPU goes (node refuses those in NODE_OPTIONS). */
const CONTROLLER_NODE_ARGS = (process.env.WEFT_BENCH_CONTROLLER_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '');

export function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}
export const mb = (kb: number) => Math.round(kb / 102.4) / 10;

/**
 * The daemon's own view of its memory (prom-client's default metrics): live
 * V8 heap versus RSS tells retained state from garbage not yet collected.
 */
export async function heapMb(metricsPort: number): Promise<{ heapUsedMb: number; externalMb: number }> {
  const text = await metricsText(metricsPort);
  const value = (name: string) => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    if (!m) throw new Error(`controller /metrics has no ${name}`);
    return Math.round(Number(m[1]) / 104857.6) / 10;
  };
  return { heapUsedMb: value('nodejs_heap_size_used_bytes'), externalMb: value('nodejs_external_memory_bytes') };
}

export async function metricsText(metricsPort: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
}

/** utime + stime of a process, in ms. */
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
export function cpuMs(pid: number): number {
  // the command name (field 2) may hold spaces; count fields after its closing parenthesis
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

export type ControllerProc = { child: ChildProcess; output: () => string };

/** `store`: a --store value (etcd:...); without it the controller uses SQLite in its data dir. */
export function startController(mode: Mode, dataDir: string, port: number, metricsPort: number, store?: string): ControllerProc {
  if (!existsSync(WEFT)) throw new Error(`${WEFT} is missing: run npm run build (npm run bench does)`);
  const flags = ['--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--metrics-listen', `127.0.0.1:${metricsPort}`, '--log-level', 'warn'];
  if (store) flags.push('--store', store);
  if (mode === 'insecure') flags.push('--insecure');
  const child = startChild(process.execPath, [...CONTROLLER_NODE_ARGS, WEFT, 'controller', ...flags], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  let out = '';
  const keep = (b: Buffer) => { out = (out + b.toString()).slice(-8000); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, output: () => out };
}

export type Caller = { client: grpc.Client; md: grpc.Metadata };

export async function callerFor(name: string, target: string, mode: Mode, ca: Ca): Promise<Caller> {
  const { creds, md } = await hostIdentity(mode === 'mtls' ? ca : undefined, name);
  // The bench's own callers measure: after a controller restart they must see
  // it back within half a second, not after grpc-js's default backoff (1 s
  // growing 1.6x per attempt, to 2 minutes).
  const opts = { ...channelOptions(mode), 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 500 };
  return { client: new (controllerClientConstructor())(target, creds, opts), md };
}

export function unary<T = any>(c: Caller, method: string, req: unknown, ms = 30_000): Promise<T> {
  return unaryCall<T>(c.client, c.md, method, req, ms);
}

/** Until the controller answers GetStatus (as `admin`); fails at once, with its output, if it exits. */
export async function waitAnswering(ctl: ControllerProc, admin: Caller, target: string, ms = 30_000): Promise<void> {
  await waitFor(`the controller to answer on ${target}`, async () => {
    if (ctl.child.exitCode !== null || ctl.child.signalCode !== null) {
      throw new GiveUp(`controller exited (${ctl.child.exitCode ?? ctl.child.signalCode})`);
    }
    await unary(admin, 'GetStatus', {}, 1000);
    return true;
  }, ms, 100).catch((e: Error) => {
    throw new Error(`${e.message}; controller output: ${ctl.output()}`);
  });
}

export type Worker<To extends { cmd: string }, From> = {
  child: ChildProcess;
  ask: <K extends From>(m: To, timeoutMs: number) => Promise<K>;
};

/**
 * A child process running `script` (through tsx), with a request/reply
 * helper over IPC that fails loudly if the child answers `{ error }`, dies
 * or stays silent.
 */
export function startWorker<To extends { cmd: string }, From extends object>(script: string): Worker<To, From> {
  const child = startChild(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: ROOT });
  const ask = <K extends From>(m: To, timeoutMs: number) =>
    new Promise<K>((resolve, reject) => {
      const done = (err?: Error, reply?: K) => {
        clearTimeout(t);
        child.off('message', onMsg);
        child.off('exit', onExit);
        if (err) reject(err); else resolve(reply!);
      };
      const onMsg = (r: From) => ('error' in r ? done(new Error(`worker process ${child.pid}: ${(r as { error: string }).error}`)) : done(undefined, r as K));
      const onExit = (code: number | null, sig: string | null) => done(new Error(`worker process ${child.pid} exited (${sig ?? code}) during ${m.cmd}`));
      const t = setTimeout(() => done(new Error(`worker process ${child.pid}: no reply to ${m.cmd} within ${timeoutMs} ms`)), timeoutMs);
      child.on('message', onMsg);
      child.once('exit', onExit);
      child.send(m);
    });
  return { child, ask };
}

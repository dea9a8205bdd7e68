// Runs the built `weft` command as real processes for the daemon tests: the
// controller on free loopback ports in a temp data dir, its JSON log lines
// collected, and a teardown that kills (by PID) whatever a test left
// running, even when it failed.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { controllerClientConstructor } from '../../controller/api/proto';
import { freePort } from '../helpers/ports';
import { GiveUp, waitFor } from '../helpers/wait';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WEFT = join(ROOT, 'dist', 'weft.mjs');

export function requireBuild(): void {
  if (!existsSync(WEFT) || !existsSync(join(ROOT, 'dist', 'weft.proto'))) {
    throw new Error(`${WEFT} or its weft.proto is missing: run npm run build first (npm test does)`);
  }
}

export type LogLine = { level: number; msg: string; [k: string]: unknown };

export type Daemon = {
  pid: number;
  grpcPort: number;
  metricsPort: number;
  dataDir: string;
  logs: LogLine[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitLog(pred: (l: LogLine) => boolean, ms?: number): Promise<LogLine>;
  kill(signal?: NodeJS.Signals): void;
};

const running = new Set<ChildProcess>();

/** Starts `weft controller` and resolves once it logs that it is listening. */
export async function startDaemon(opts: { dataDir: string; args?: string[] }): Promise<Daemon> {
  requireBuild();
  const [grpcPort, metricsPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [
    WEFT, 'controller', '--data-dir', opts.dataDir,
    '--listen', `127.0.0.1:${grpcPort}`, '--metrics-listen', `127.0.0.1:${metricsPort}`, ...(opts.args ?? []),
  ], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() });
  running.add(child);
  const logs: LogLine[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  child.stdout!.on('data', (b: Buffer) => {
    const lines = (partial + b.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line) continue;
      try {
        logs.push(JSON.parse(line));
      } catch {
        logs.push({ level: 0, msg: `(not JSON) ${line}` });
      }
    }
    for (const w of [...waiters]) w();
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
      for (const w of [...waiters]) w();
    }),
  );
  const d: Daemon = {
    pid: child.pid!,
    grpcPort,
    metricsPort,
    dataDir: opts.dataDir,
    logs,
    stderr: () => stderr,
    exited,
    waitLog(pred, ms = 15_000) {
      const wake = (check: () => void) => {
        waiters.add(check);
        return () => waiters.delete(check);
      };
      return waitFor('a log line of the controller', () => {
        const hit = logs.find(pred);
        if (hit) return hit;
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new GiveUp(`controller exited (${child.exitCode ?? child.signalCode}) before the awaited log line`);
        }
        return undefined;
      }, { ms, wake }).catch((e: Error) => {
        throw new Error(`${e.message}; stderr: ${stderr}; log: ${JSON.stringify(logs).slice(-2000)}`);
      });
    },
    kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
  await d.waitLog((l) => l.msg === 'controller listening');
  return d;
}

/** Kills every controller this test file started and has not seen exit. */
export async function killAllDaemons(): Promise<void> {
  await Promise.all(
    [...running].map(
      (c) =>
        new Promise<void>((resolve) => {
          c.once('exit', () => resolve());
          c.kill('SIGKILL');
        }),
    ),
  );
}
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

/** The environment without WEFT_* settings of the machine running the tests. */
export function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WEFT_')));
}

/** Runs a `weft` subcommand to completion. */
export function weft(args: string[], opts: { timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  requireBuild();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WEFT, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`weft ${args.join(' ')} did not finish in time; stderr: ${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    child.once('exit', (code) => {
      clearTimeout(t);
      running.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

// ---- gRPC ---------------------------------------------------------------------

export type Client = grpc.Client & Record<string, Function>;

export function client(port: number, creds: grpc.ChannelCredentials): Client {
  const Ctor = controllerClientConstructor();
  return new Ctor(`127.0.0.1:${port}`, creds) as unknown as Client;
}

export function call<T = any>(c: Client, method: string, req: unknown): Promise<T> {
  return new Promise((resolve, reject) =>
    c[method](req, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))),
  );
}

export async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(() => 'OK', (e: grpc.ServiceError) => grpc.status[e.code] ?? String(e));
}

export type Stream = { msgs: any[]; waitFor(pred: (m: any) => boolean, ms?: number): Promise<any>; ended: Promise<{ code: number }>; cancel(): void };

export function watch(c: Client, method: string, req: unknown): Stream {
  const s: grpc.ClientReadableStream<any> = c[method](req);
  const msgs: any[] = [];
  const waiters = new Set<() => void>();
  s.on('data', (m) => {
    msgs.push(m);
    for (const w of [...waiters]) w();
  });
  const ended = new Promise<{ code: number }>((resolve) => {
    s.on('error', (e: grpc.ServiceError) => resolve({ code: e.code }));
    s.on('end', () => resolve({ code: 0 }));
  });
  return {
    msgs,
    ended,
    cancel: () => s.cancel(),
    waitFor(pred, ms = 10_000) {
      const wake = (check: () => void) => {
        waiters.add(check);
        return () => waiters.delete(check);
      };
      return waitFor(`a matching ${method} message`, () => msgs.find(pred), { ms, wake }).catch((e: Error) => {
        throw new Error(`${e.message}; got ${JSON.stringify(msgs).slice(0, 2000)}`);
      });
    },
  };
}

export function readCa(dataDir: string): string {
  return readFileSync(join(dataDir, 'ca.crt'), 'utf8');
}

export async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

/** A metric's value from Prometheus text, by name and exact label string ('' for none). */
export function metric(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

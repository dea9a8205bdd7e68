// Everything the controller bench starts (the controller, watcher processes)
// and every temp dir it makes is registered here, so one cleanup stops them
// by PID and removes the dirs: on success, on an error, on SIGINT/SIGTERM
// and, as a last resort, when the process exits.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const children = new Set<ChildProcess>();
const dirs = new Set<string>();

export function tempDir(tag: string): string {
  const d = mkdtempSync(join(tmpdir(), `weft-bench-${tag}-`));
  dirs.add(d);
  return d;
}

export function removeDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
  dirs.delete(d);
}

export function startChild(cmd: string, args: string[], opts: SpawnOptions): ChildProcess {
  const child = spawn(cmd, args, opts);
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.once('error', () => children.delete(child));
  return child;
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM, then SIGKILL after `graceMs`: a daemon gets the chance to close its store cleanly. */
export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try { process.kill(child.pid, 'SIGTERM'); } catch { /* already gone */ }
  const t = setTimeout(() => { try { process.kill(child.pid!, 'SIGKILL'); } catch { /* gone */ } }, graceMs);
  await exited(child);
  clearTimeout(t);
}

/** Synchronous on purpose: it also runs from the 'exit' handler, where nothing async happens. */
export function killAllNow(): void {
  for (const c of children) {
    if (c.pid !== undefined) try { process.kill(c.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  children.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)));
  killAllNow();
}

let installed = false;
/** `extra` runs first on a signal (e.g. stopping etcd, which test/helpers/etcd.ts owns); `name` is the bench's, for the message. */
export function installCleanup(extra: () => Promise<void> = async () => {}, name = 'controller bench'): void {
  if (installed) return;
  installed = true;
  process.once('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`${name}: ${sig}, stopping everything it started`);
      const hard = setTimeout(() => { killAllNow(); process.exit(130); }, 5000);
      extra().catch(() => {}).finally(() => {
        killAllNow();
        clearTimeout(hard);
        process.exit(130);
      });
    });
  }
}

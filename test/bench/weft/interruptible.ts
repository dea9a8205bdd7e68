// Running a lab benchmark so that it always removes what it built: what
// onCleanup was given (a lab with a close of its own, such as the tunnel
// tests'), then the labs and temp dirs made through benchLab and benchDir,
// are removed once main is done, whether it succeeded, failed or was
// interrupted. The measuring
// loops are synchronous (spawnSync), so a signal is handled at the next
// checkpoint: it tears the lab down and exits, and the loop, which yields at
// every checkpoint, never resumes.
import { mkdtempSync, rmSync } from 'node:fs';
import { createLab, type Lab, type LabSpec } from '../../lab/lab';

let interrupted = false;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
const labs: Lab[] = [];
const dirs: string[] = [];

/** Run `fn` at cleanup, before the labs and dirs (last registered, first run); its failure is reported, the rest still runs. */
export function onCleanup(fn: () => Promise<unknown> | unknown): void {
  cleanups.push(fn);
}

/** A temp dir on disk (/var/tmp, not tmpfs: the agent's fsyncs are part of what is measured), removed at cleanup. */
export function benchDir(tag: string): string {
  const d = mkdtempSync(`/var/tmp/weft-bench-${tag}-`);
  dirs.push(d);
  return d;
}

/** A lab destroyed at cleanup. */
export async function benchLab(spec: LabSpec): Promise<Lab> {
  const lab = await createLab(spec);
  labs.push(lab);
  return lab;
}

/** onCleanup's, then labs (their processes write into the dirs), then the dirs; safe to call twice. */
async function cleanup(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch (e) {
      console.error(`cleanup failed: ${(e as Error).stack ?? e}`);
    }
  }
  for (const l of labs.splice(0)) await l.destroy();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Yield to the event loop; after SIGINT/SIGTERM, never return (cleanup is running). */
export async function checkpoint(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  if (interrupted) await new Promise(() => {});
}

/** Run `main`, then remove what it built whether it succeeded, failed or was interrupted. */
export async function runInterruptible(name: string, main: () => Promise<void>): Promise<void> {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (interrupted) return;
      interrupted = true;
      console.error(`${sig}: removing the lab`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  try {
    await main();
  } catch (e) {
    console.error(`${name} bench failed: ${(e as Error).stack ?? e}`);
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
}

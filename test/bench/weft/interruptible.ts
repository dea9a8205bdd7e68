// Running a lab benchmark so that it always removes what it built. The
// measuring loops are synchronous (spawnSync), so a signal is handled at the
// next checkpoint: it tears the lab down and exits, and the loop, which
// yields at every checkpoint, never resumes.

let interrupted = false;

/** Yield to the event loop; after SIGINT/SIGTERM, never return (cleanup is running). */
export async function checkpoint(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  if (interrupted) await new Promise(() => {});
}

/** Run `main`, then `cleanup` whether it succeeded, failed or was interrupted. */
export async function runInterruptible(name: string, main: () => Promise<void>, cleanup: () => Promise<void>): Promise<void> {
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

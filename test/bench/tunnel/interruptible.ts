// Like ../weft/interruptible.ts, for a bench whose lab is the tunnel tests'
// (test/tunnel/lab.ts): that lab has its own close (agents, wireguard-go by
// PID, mount namespace holders, then the netns lab), which must run to its
// end on success, failure and SIGINT/SIGTERM alike. Cleanups run in reverse
// order of registration; the measuring loop yields at every checkpoint and
// never resumes after a signal.
let interrupted = false;
const cleanups: Array<() => Promise<unknown> | unknown> = [];

/** Run `fn` at cleanup (last registered, first run). */
export function onCleanup(fn: () => Promise<unknown> | unknown): void {
  cleanups.push(fn);
}

async function cleanup(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch (e) {
      console.error(`cleanup failed: ${(e as Error).stack ?? e}`);
    }
  }
}

/** Yield to the event loop; after SIGINT/SIGTERM, never return (cleanup is running). */
export async function checkpoint(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  if (interrupted) await new Promise(() => {});
}

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

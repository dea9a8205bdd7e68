// What every `weft` subcommand does the same way: --help, a config that is
// loaded before anything is created (a bad one exits 2 naming the flag), and
// for daemons the shutdown signal (a second signal exits at once).
import type { Logger } from './log';
import { ConfigError } from './config-sources';
import { WeftError } from './errors';

export type Loaded<T> = { config: T } | { exit: number };

/** --help prints `help` (exit 0); a ConfigError is printed as `weft <cmd>: ...` (exit 2); other errors propagate. */
export function loadCommandConfig<T>(cmd: string, argv: readonly string[], help: string, load: () => T): Loaded<T> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help);
    return { exit: 0 };
  }
  try {
    return { config: load() };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`weft ${cmd}: ${err.message}\n`);
    return { exit: 2 };
  }
}

/**
 * Resolves with the first SIGTERM or SIGINT (after calling `onFirst`); a
 * second signal exits at once. Installed before start-up so a signal that
 * arrives mid-start still ends cleanly.
 */
export function shutdownSignal(log: Pick<Logger, 'warn'>, onFirst: (s: NodeJS.Signals) => void = () => {}): Promise<NodeJS.Signals> {
  let received = false;
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals) => {
      if (received) {
        log.warn({ signal: s }, 'second signal: exiting now');
        process.exit(1);
      }
      received = true;
      onFirst(s);
      resolve(s);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}

/**
 * After the shutdown signal: stop, but whatever hangs, end the process within
 * 8 s; then exit 0 shortly even if a client library keeps idle sockets open
 * (nothing of ours is left to wait for).
 */
export async function stopOnSignal(log: Pick<Logger, 'info' | 'error'>, s: NodeJS.Signals, stop: () => Promise<void>): Promise<number> {
  log.info({ signal: s }, 'signal received');
  setTimeout(() => {
    log.error('shutdown did not finish in 8s; exiting');
    process.exit(1);
  }, 8000).unref();
  await stop();
  setTimeout(() => process.exit(0), 200).unref();
  return 0;
}

/** A signal arrived while a daemon was still starting (waiting for the controller, retrying a phase): stop quietly, exit 0. */
export class StartAborted extends WeftError {
  constructor(role = 'the process') {
    super('WEFT_START_ABORTED', `a signal stopped ${role} before it was running`);
    this.name = 'StartAborted';
  }
}

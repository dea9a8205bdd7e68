// Waiting out a controller that is not there yet, during start: retry with
// backoff while the failure is transient, and end the wait at once when the
// start is aborted by a signal (StartAborted, which `weft agent` treats as a
// clean stop).
import { backoff, sleep } from '../../controller/api/client/backoff';
import { WeftError } from '../../controller/common/errors';
import type { Logger } from '../../controller/common/log';

export class StartAborted extends WeftError {
  constructor() {
    super('WEFT_START_ABORTED', 'start aborted by a signal');
    this.name = 'StartAborted';
  }
}

export async function retrying<T>(what: string, fn: () => Promise<T>, transient: (e: unknown) => boolean, log: Logger, signal?: AbortSignal): Promise<T> {
  const delays = backoff({ initialMs: 500, maxMs: 10_000 });
  for (;;) {
    if (signal?.aborted) throw new StartAborted();
    try {
      return await fn();
    } catch (err) {
      if (!transient(err)) throw err;
      const ms = delays.next();
      log.warn({ err, retryInMs: ms }, `${what} failed; retrying`);
      await sleep(ms, signal);
    }
  }
}

// Waiting out a controller that is not there yet, during start: retry with
// backoff while the failure is transient, and end the wait at once when the
// start is aborted by a signal (StartAborted, which `weft agent` treats as a
// clean stop).
import { backoff, sleep } from '../../controller/api/client/backoff';
import type { Logger } from '../../controller/common/log';

import { StartAborted } from '../../controller/common/command';
export { StartAborted };

export async function retrying<T>(what: string, fn: () => Promise<T>, transient: (e: unknown) => boolean, log: Logger, signal?: AbortSignal): Promise<T> {
  const delays = backoff({ initialMs: 500, maxMs: 10_000 });
  for (;;) {
    if (signal?.aborted) throw new StartAborted('the agent');
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

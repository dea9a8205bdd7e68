// What a start has set up so far, as the steps that take it down again. Each
// phase of startAgent pushes a step right after making something, so a start
// that fails part-way undoes exactly what it made, and stop() undoes all of it.
import type { Logger } from '../../controller/common/log';

export type Undo = Array<() => unknown>;

/** Undo in reverse order of setup; each step runs even if an earlier one failed. */
export async function runUndo(undo: Undo, log: Logger): Promise<void> {
  for (const f of undo.splice(0).reverse()) {
    try {
      await f();
    } catch (err) {
      log.warn({ err }, 'shutdown step failed');
    }
  }
}

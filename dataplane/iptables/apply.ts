// Putting a rule set into the kernel: read the current state, render the
// difference as one document, restore it. iptables-restore commits table by
// table, so when a later table fails the earlier ones are put back from the
// state read before, and the caller sees either the new rule set or the old.
import { type RuleSet, emptyRuleSet, validateRuleSet } from './model';
import { planRestore, renderRestore, weftPart } from './render';
import { type ExecOptions, iptablesRestore, iptablesSave } from './restore';
import { type SavedState, parseSave } from './save';

/** changes: one line per change the document makes (see planRestore); empty when nothing was sent. */
export type ApplyResult = { changed: boolean; document: string; changes: string[] };

export function readState(opts: ExecOptions = {}): SavedState {
  return parseSave(iptablesSave(opts));
}

function sameTable(a: SavedState, b: SavedState, t: string): boolean {
  return JSON.stringify(a[t] ?? null) === JSON.stringify(b[t] ?? null);
}

function restoreOrRollBack(before: SavedState, document: string, opts: ExecOptions): void {
  try {
    iptablesRestore(document, opts);
  } catch (err) {
    const after = readState(opts);
    const touched = Object.keys({ ...before, ...after }).filter((t) => !sameTable(before, after, t));
    if (touched.length) {
      const back = renderRestore(after, weftPart(before), { tables: touched, jumpsFrom: before });
      if (back) {
        try {
          iptablesRestore(back, opts);
        } catch (rollbackErr) {
          throw new AggregateError([err, rollbackErr], `apply failed and putting back tables ${touched.join(', ')} failed too`);
        }
      }
    }
    throw err;
  }
}

/** Make weft's chains and hooks exactly `rs` (chains weft no longer wants are removed). */
export function applyRuleSet(rs: RuleSet, opts: ExecOptions = {}): ApplyResult {
  validateRuleSet(rs);
  const before = readState(opts);
  const { document, changes } = planRestore(before, rs);
  if (!document) return { changed: false, document, changes: [] };
  restoreOrRollBack(before, document, opts);
  return { changed: true, document, changes };
}

/** Remove every jump into a WEFT-* chain and every WEFT-* chain, in all tables; a no-op when there are none. */
export function removeWeftChains(opts: ExecOptions = {}): ApplyResult {
  return applyRuleSet(emptyRuleSet(), opts);
}

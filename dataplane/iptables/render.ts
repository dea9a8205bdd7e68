// From (what the table holds now, what weft wants) to one iptables-restore
// document for `--noflush`. Pure: the document is computed from the parsed
// current state because `-D` of a rule that is not there aborts the whole
// restore, and because a table that already matches should not be touched
// at all (re-applying is then a no-op, counters included).
import { BUILTIN_CHAINS, type RuleSet, type Table, TABLES, isWeftChain, validateRuleSet } from './model';
import { type SavedState, type SavedTable, ruleTarget, splitArgs } from './save';

export type RenderOptions = {
  /** Only consider these tables (the rest are left out of the document). */
  tables?: readonly string[];
  /**
   * Place jumps into weft's chains exactly where this state had them, instead
   * of one per hook at the top: how a failed apply puts back what was there.
   */
  jumpsFrom?: SavedState;
};

const EMPTY: SavedTable = { chains: [], rules: [] };

/** Rule text compared the way iptables-restore reads it, so spacing and quoting style do not count as a change. */
function sameRules(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((r, i) => splitArgs(r).join('\0') === splitArgs(b[i]).join('\0'));
}

function isPlainJump(spec: string, to: string): boolean {
  const a = splitArgs(spec);
  return a.length === 2 && (a[0] === '-j' || a[0] === '--jump') && a[1] === to;
}

/** Jumps into weft's chains in a built-in chain, with their 1-based positions. */
function weftJumpsAt(st: SavedTable, chain: string): Array<{ pos: number; spec: string }> {
  return st.rules
    .filter((r) => r.chain === chain)
    .map((r, i) => ({ pos: i + 1, spec: r.spec }))
    .filter((j) => isWeftChain(ruleTarget(j.spec) ?? ''));
}

function renderTable(table: string, cur: SavedTable, desired: RuleSet, jumpsFrom?: SavedTable): string[] {
  const chains = desired.chains.filter((c) => c.table === table);
  const hooks = desired.hooks.filter((h) => h.table === table);
  const wanted = new Set(chains.map((c) => c.name));
  const stale = cur.chains.filter((c) => isWeftChain(c) && !wanted.has(c));
  const staleSet = new Set(stale);
  const builtins = new Set(BUILTIN_CHAINS[table as Table] ?? []);

  const rulesOf = (chain: string) => cur.rules.filter((r) => r.chain === chain).map((r) => r.spec);
  const existing = new Set(cur.chains);
  const changed = chains.filter((c) => !existing.has(c.name) || !sameRules(rulesOf(c.name), c.rules));

  const deletes: string[] = [];
  const inserts: string[] = [];
  for (const b of builtins) {
    const rules = cur.rules.filter((r) => r.chain === b);
    const refs = rules.filter((r) => isWeftChain(ruleTarget(r.spec) ?? ''));
    if (jumpsFrom) {
      const want = weftJumpsAt(jumpsFrom, b);
      const have = weftJumpsAt(cur, b);
      if (JSON.stringify(want) === JSON.stringify(have)) continue;
      for (const r of refs) deletes.push(`-D ${b} ${r.spec}`);
      // ascending positions, each counted in the chain as it will be by then
      let len = rules.length - refs.length;
      for (const j of want) inserts.push(`-I ${b} ${Math.min(j.pos, ++len)} ${j.spec}`);
      continue;
    }
    const hook = hooks.find((h) => h.from === b);
    const ok = hook ? refs.length === 1 && rules[0] === refs[0] && isPlainJump(refs[0].spec, hook.to) : refs.length === 0;
    if (ok) continue;
    // Delete every jump and insert one fresh at the top: this covers a missing
    // jump, duplicates and a jump pushed down by someone's REJECT alike.
    for (const r of refs) deletes.push(`-D ${b} ${r.spec}`);
    if (hook) inserts.push(`-I ${b} 1 -j ${hook.to}`);
  }
  // Someone else's chain jumping into a chain we are about to delete would make -X fail.
  // Only then are others' rules read: a host with kube-proxy has tens of thousands.
  if (staleSet.size > 0) {
    for (const r of cur.rules) {
      if (builtins.has(r.chain) || isWeftChain(r.chain)) continue;
      if (staleSet.has(ruleTarget(r.spec) ?? '')) deletes.push(`-D ${r.chain} ${r.spec}`);
    }
  }

  if (changed.length === 0 && stale.length === 0 && deletes.length === 0 && inserts.length === 0) return [];
  return [
    `*${table}`,
    // Declaring a chain in a --noflush restore creates it or empties it; stale
    // chains are emptied too so that their own jumps no longer pin other chains.
    ...changed.map((c) => `:${c.name} - [0:0]`),
    ...stale.map((c) => `:${c} - [0:0]`),
    ...deletes,
    ...changed.flatMap((c) => c.rules.map((r) => `-A ${c.name} ${r}`)),
    ...inserts,
    ...stale.map((c) => `-X ${c}`),
    'COMMIT',
  ];
}

/** The restore document that turns `current` into `desired`; '' when nothing needs to change. */
export function renderRestore(current: SavedState, desired: RuleSet, opts: RenderOptions = {}): string {
  validateRuleSet(desired);
  const names = new Set<string>([...desired.chains.map((c) => c.table), ...desired.hooks.map((h) => h.table)]);
  // Tables weft does not want anything in may still hold its leftovers.
  for (const [t, st] of Object.entries(current)) {
    if (names.has(t)) continue;
    if (st.chains.some(isWeftChain) || st.rules.some((r) => isWeftChain(ruleTarget(r.spec) ?? ''))) names.add(t);
  }
  const only = opts.tables ? new Set(opts.tables) : undefined;
  const ordered = [...TABLES.filter((t) => names.has(t)), ...[...names].filter((t) => !(TABLES as string[]).includes(t)).sort()];
  const lines = ordered.filter((t) => !only || only.has(t)).flatMap((t) => renderTable(t, current[t] ?? EMPTY, desired, opts.jumpsFrom && (opts.jumpsFrom[t] ?? EMPTY)));
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/**
 * weft's part of a saved state as a rule set: its chains with their rules and
 * one hook per built-in chain (the first jump found). Used to put back what
 * was there when an apply fails half-way.
 */
export function weftPart(current: SavedState): RuleSet {
  const rs: RuleSet = { chains: [], hooks: [] };
  for (const [table, st] of Object.entries(current)) {
    if (!(table in BUILTIN_CHAINS)) continue;
    for (const c of st.chains.filter(isWeftChain)) {
      rs.chains.push({ table: table as Table, name: c, rules: st.rules.filter((r) => r.chain === c).map((r) => r.spec) });
    }
    for (const b of BUILTIN_CHAINS[table as Table]) {
      const jump = st.rules.find((r) => r.chain === b && isWeftChain(ruleTarget(r.spec) ?? ''));
      if (jump) rs.hooks.push({ table: table as Table, from: b, to: ruleTarget(jump.spec)! });
    }
  }
  return rs;
}

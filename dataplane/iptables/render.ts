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

/** How a chain weft wants differs from what the table holds: what a repair log line says. */
function chainDifference(had: readonly string[], want: readonly string[]): string {
  if (had.length === 0) return `was empty (flushed), ${want.length} rule(s) put back`;
  const key = (r: string) => splitArgs(r).join('\0');
  const sorted = (rs: readonly string[]) => rs.map(key).sort().join('\n');
  if (sorted(had) === sorted(want)) return `rules were out of order, ${want.length} rule(s) rewritten in order`;
  const wanted = new Set(want.map(key));
  const kept = new Set(had.map(key));
  const missing = want.filter((r) => !kept.has(key(r))).length;
  const extra = had.filter((r) => !wanted.has(key(r))).length;
  return `${missing} rule(s) missing, ${extra} not weft's, rewritten with ${want.length} rule(s)`;
}

function hookDifference(rules: SavedTable['rules'], refs: SavedTable['rules'], to: string | undefined, chain: string): string {
  if (!to) return `${refs.length} stale jump(s) into weft chains removed`;
  if (refs.length === 0) return `jump to ${to} missing, inserted as rule 1`;
  const pos = rules.indexOf(refs[0]) + 1;
  if (refs.length > 1) return `${refs.length} jumps into weft chains, replaced by one jump to ${to} as rule 1`;
  if (pos > 1) return `jump to ${to} was rule ${pos}, below "${rules[0].spec}"; moved back to rule 1 of ${chain}`;
  return `jump "${refs[0].spec}" is not the plain jump to ${to}; replaced as rule 1`;
}

type TablePlan = { lines: string[]; changes: string[] };

function renderTable(table: string, cur: SavedTable, desired: RuleSet, jumpsFrom?: SavedTable): TablePlan {
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
  const changes: string[] = changed.map((c) => `${table} ${c.name}: ${existing.has(c.name) ? chainDifference(rulesOf(c.name), c.rules) : 'missing, created'}`);
  changes.push(...stale.map((c) => `${table} ${c}: no longer wanted, removed`));
  for (const b of builtins) {
    const rules = cur.rules.filter((r) => r.chain === b);
    const refs = rules.filter((r) => isWeftChain(ruleTarget(r.spec) ?? ''));
    if (jumpsFrom) {
      const want = weftJumpsAt(jumpsFrom, b);
      const have = weftJumpsAt(cur, b);
      if (JSON.stringify(want) === JSON.stringify(have)) continue;
      changes.push(`${table} ${b}: jumps into weft chains put back where they were`);
      for (const r of refs) deletes.push(`-D ${b} ${r.spec}`);
      // ascending positions, each counted in the chain as it will be by then
      let len = rules.length - refs.length;
      for (const j of want) inserts.push(`-I ${b} ${Math.min(j.pos, ++len)} ${j.spec}`);
      continue;
    }
    const hook = hooks.find((h) => h.from === b);
    const ok = hook ? refs.length === 1 && rules[0] === refs[0] && isPlainJump(refs[0].spec, hook.to) : refs.length === 0;
    if (ok) continue;
    changes.push(`${table} ${b}: ${hookDifference(rules, refs, hook?.to, b)}`);
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
      if (!staleSet.has(ruleTarget(r.spec) ?? '')) continue;
      deletes.push(`-D ${r.chain} ${r.spec}`);
      changes.push(`${table} ${r.chain}: jump into removed chain ${ruleTarget(r.spec)} deleted`);
    }
  }

  if (changed.length === 0 && stale.length === 0 && deletes.length === 0 && inserts.length === 0) return { lines: [], changes: [] };
  const lines = [
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
  return { lines, changes };
}

/** The restore document that turns `current` into `desired`; '' when nothing needs to change. */
export function renderRestore(current: SavedState, desired: RuleSet, opts: RenderOptions = {}): string {
  return planRestore(current, desired, opts).document;
}

/**
 * The restore document and, one line each, what it changes and why ("filter
 * FORWARD: jump to WEFT-FORWARD was rule 2, below ..."): what an agent logs
 * when it repairs a table someone else changed. Both empty when nothing needs
 * to change.
 */
export function planRestore(current: SavedState, desired: RuleSet, opts: RenderOptions = {}): { document: string; changes: string[] } {
  validateRuleSet(desired);
  const names = new Set<string>([...desired.chains.map((c) => c.table), ...desired.hooks.map((h) => h.table)]);
  // Tables weft does not want anything in may still hold its leftovers.
  for (const [t, st] of Object.entries(current)) {
    if (names.has(t)) continue;
    if (st.chains.some(isWeftChain) || st.rules.some((r) => isWeftChain(ruleTarget(r.spec) ?? ''))) names.add(t);
  }
  const only = opts.tables ? new Set(opts.tables) : undefined;
  const ordered = [...TABLES.filter((t) => names.has(t)), ...[...names].filter((t) => !(TABLES as string[]).includes(t)).sort()];
  const plans = ordered.filter((t) => !only || only.has(t)).map((t) => renderTable(t, current[t] ?? EMPTY, desired, opts.jumpsFrom && (opts.jumpsFrom[t] ?? EMPTY)));
  const lines = plans.flatMap((p) => p.lines);
  return { document: lines.length ? `${lines.join('\n')}\n` : '', changes: plans.flatMap((p) => p.changes) };
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

// Parsing iptables-save output into plain data: which chains each table has
// and every rule in order, as the argument text iptables-save printed (which
// iptables-restore accepts back verbatim, quoting included).
export type SavedRule = { chain: string; spec: string };
export type SavedTable = { chains: string[]; rules: SavedRule[] };
export type SavedState = Record<string, SavedTable>;

export function parseSave(text: string): SavedState {
  const state: SavedState = {};
  let cur: SavedTable | undefined;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trimEnd();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      cur = { chains: [], rules: [] };
      state[line.slice(1)] = cur;
    } else if (line === 'COMMIT') {
      cur = undefined;
    } else if (!cur) {
      throw new Error(`iptables-save line ${i + 1}: "${line}" outside a table`);
    } else if (line.startsWith(':')) {
      cur.chains.push(line.slice(1).split(' ')[0]);
    } else if (line.startsWith('-A ')) {
      const rest = line.slice(3);
      const sp = rest.indexOf(' ');
      cur.rules.push(sp < 0 ? { chain: rest, spec: '' } : { chain: rest.slice(0, sp), spec: rest.slice(sp + 1) });
    } else {
      throw new Error(`iptables-save line ${i + 1}: unexpected "${line}"`);
    }
  }
  return state;
}

/** Split rule arguments the way iptables-restore does: whitespace-separated, double quotes group. */
export function splitArgs(spec: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inQuote = false;
  let has = false;
  for (let i = 0; i < spec.length; i++) {
    const ch = spec[i];
    if (ch === '\\' && inQuote && (spec[i + 1] === '"' || spec[i + 1] === '\\')) {
      cur += spec[++i];
      has = true;
    } else if (ch === '"') {
      inQuote = !inQuote;
      has = true;
    } else if (!inQuote && /\s/.test(ch)) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (has) out.push(cur);
  return out;
}

/** The chain a rule jumps or goes to, if any (`-j X`, `--jump X`, `-g X`, `--goto X`). */
export function ruleTarget(spec: string): string | undefined {
  const args = splitArgs(spec);
  for (let i = 0; i < args.length - 1; i++) {
    if (args[i] === '-j' || args[i] === '--jump' || args[i] === '-g' || args[i] === '--goto') return args[i + 1];
  }
  return undefined;
}

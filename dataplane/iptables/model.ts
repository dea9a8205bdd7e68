// weft's iptables state as plain data: its own chains (all named WEFT-*) and
// the jumps that hook them into the kernel's built-in chains. Everything else
// in the tables belongs to someone else and is left alone.
import { InvalidArgumentError } from '../netlink/errors';

export type Family = 4 | 6;
export type Table = 'filter' | 'nat' | 'mangle' | 'raw';

/** One of weft's chains. Rules are iptables rule arguments, e.g. `-s 10.1.0.0/16 -j ACCEPT`. */
export type WeftChain = { table: Table; name: string; rules: string[] };

/** A jump from a built-in chain into a weft chain; it must be the first rule of `from`. */
export type Hook = { table: Table; from: string; to: string };

export type RuleSet = { chains: WeftChain[]; hooks: Hook[] };

export const WEFT_PREFIX = 'WEFT-';

export const BUILTIN_CHAINS: Record<Table, readonly string[]> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
};

export const TABLES = Object.keys(BUILTIN_CHAINS) as Table[];

// The kernel limits chain names to 28 characters (XT_EXTENSION_MAXNAMELEN - 1 for the NUL).
const CHAIN_RE = /^WEFT-[A-Za-z0-9_.-]{1,23}$/;

export function isWeftChain(name: string): boolean {
  return name.startsWith(WEFT_PREFIX);
}

export function emptyRuleSet(): RuleSet {
  return { chains: [], hooks: [] };
}

/**
 * Reject anything that would make the restore document mean something other
 * than the model says: a newline in a rule would smuggle in a command of its own.
 */
export function validateRuleSet(rs: RuleSet): void {
  const seen = new Set<string>();
  for (const [i, c] of rs.chains.entries()) {
    const where = `chains[${i}]`;
    if (!(c.table in BUILTIN_CHAINS)) throw new InvalidArgumentError(`${where}.table: unknown table "${c.table}" (one of ${TABLES.join(', ')})`);
    if (!CHAIN_RE.test(c.name)) {
      throw new InvalidArgumentError(`${where}.name: invalid chain name "${c.name}" (must start with ${WEFT_PREFIX}, at most 28 of [A-Za-z0-9_.-])`);
    }
    const key = `${c.table}/${c.name}`;
    if (seen.has(key)) throw new InvalidArgumentError(`${where}.name: chain ${c.name} declared twice in table ${c.table}`);
    seen.add(key);
    for (const [j, r] of c.rules.entries()) {
      if (/[\r\n\0]/.test(r)) throw new InvalidArgumentError(`${where}.rules[${j}]: a rule must be a single line`);
      if (r.trim() === '') throw new InvalidArgumentError(`${where}.rules[${j}]: empty rule`);
      if (/^\s*-[AIDRNXFPZ]\b|^\s*--(append|insert|delete|replace|new-chain|delete-chain|flush|policy|zero)\b/.test(r)) {
        throw new InvalidArgumentError(`${where}.rules[${j}]: give only the rule's arguments, without a command ("${r}")`);
      }
    }
  }
  const hooked = new Set<string>();
  for (const [i, h] of rs.hooks.entries()) {
    const where = `hooks[${i}]`;
    const builtins = BUILTIN_CHAINS[h.table];
    if (!builtins) throw new InvalidArgumentError(`${where}.table: unknown table "${h.table}" (one of ${TABLES.join(', ')})`);
    if (!builtins.includes(h.from)) {
      throw new InvalidArgumentError(`${where}.from: "${h.from}" is not a built-in chain of table ${h.table} (one of ${builtins.join(', ')})`);
    }
    if (!seen.has(`${h.table}/${h.to}`)) throw new InvalidArgumentError(`${where}.to: chain ${h.to} is not declared in table ${h.table}`);
    // One jump per built-in chain keeps "weft's jump is rule 1" well defined.
    const key = `${h.table}/${h.from}`;
    if (hooked.has(key)) throw new InvalidArgumentError(`${where}: ${h.table} ${h.from} is hooked twice (one jump per built-in chain)`);
    hooked.add(key);
  }
}

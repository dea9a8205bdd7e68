// Input checks and key-range arithmetic shared by both stores, so bad input
// fails the same way whichever backend is configured.
import type { Compare, TxnOp } from './types';

export function checkKey(key: unknown, what = 'key'): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new TypeError(`${what} must be a non-empty string (got ${JSON.stringify(key)})`);
  }
  return key;
}

export function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== 'string') throw new TypeError(`prefix must be a string (got ${JSON.stringify(prefix)})`);
  return prefix;
}

export function checkValue(value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`value must be a string (got ${typeof value})`);
  return value;
}

/** 0 or undefined means no limit, as in etcd. */
export function checkLimit(limit: unknown): number {
  if (limit === undefined) return 0;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0) {
    throw new RangeError(`limit must be a non-negative integer (got ${String(limit)})`);
  }
  return limit;
}

export function checkRevision(rev: unknown, what: string): number {
  if (typeof rev !== 'number' || !Number.isSafeInteger(rev) || rev < 0) {
    throw new RangeError(`${what} must be a non-negative integer revision (got ${String(rev)})`);
  }
  return rev;
}

export function checkTtl(ttl: unknown): number {
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1 || ttl > 9_000_000_000) {
    throw new RangeError(`lease TTL must be a positive integer number of seconds (got ${String(ttl)})`);
  }
  return ttl;
}

export function checkLeaseId(id: unknown): string {
  if (typeof id !== 'string' || !/^[1-9][0-9]{0,19}$/.test(id)) {
    throw new TypeError(`lease id must be a positive decimal string (got ${JSON.stringify(id)})`);
  }
  return id;
}

const compareTargets = new Set(['value', 'version', 'createRevision', 'modRevision']);
const compareOps = new Set(['==', '!=', '<', '>']);

export function checkCompare(c: Compare): void {
  checkKey(c?.key, 'compare key');
  if (!compareTargets.has(c.target)) throw new TypeError(`compare target must be value|version|createRevision|modRevision (got ${String(c.target)})`);
  if (!compareOps.has(c.op)) throw new TypeError(`compare op must be ==, !=, < or > (got ${String(c.op)})`);
  if (c.target === 'value') checkValue(c.value);
  else checkRevision((c as Record<string, unknown>)[c.target], `compare ${c.target}`);
}

/**
 * etcd refuses a txn branch that writes one key twice, or puts a key that
 * one of its deletes also covers (the outcome would depend on op order);
 * the embedded store refuses the same so code behaves alike on both.
 */
export function checkTxnOps(ops: TxnOp[], branch: string): void {
  if (!Array.isArray(ops)) throw new TypeError(`txn ${branch} must be an array of ops`);
  const puts = new Set<string>();
  const deleted: Array<(k: string) => boolean> = [];
  for (const op of ops) {
    switch (op?.type) {
      case 'put':
        checkKey(op.key);
        checkValue(op.value);
        if (op.lease !== undefined) checkLeaseId(op.lease);
        if (puts.has(op.key)) throw new Error(`txn ${branch} puts key "${op.key}" more than once`);
        puts.add(op.key);
        break;
      case 'delete': {
        const key = checkKey(op.key);
        deleted.push((k) => k === key);
        break;
      }
      case 'deletePrefix': {
        const prefix = checkPrefix(op.prefix);
        deleted.push((k) => k.startsWith(prefix));
        break;
      }
      case 'get':
        checkKey(op.key);
        break;
      default:
        throw new TypeError(`txn op type must be put|delete|deletePrefix|get (got ${JSON.stringify((op as { type?: unknown })?.type)})`);
    }
  }
  for (const k of puts) {
    if (deleted.some((covers) => covers(k))) throw new Error(`txn ${branch} both puts and deletes key "${k}"`);
  }
}

/**
 * The smallest string greater than every string starting with `prefix`, or
 * undefined when there is none (empty prefix, or only U+10FFFF). Code point
 * order equals UTF-8 byte order, which is how both SQLite (BINARY) and etcd
 * sort keys, so bumping the last code point gives the exclusive range end.
 */
export function prefixEnd(prefix: string): string | undefined {
  const cps = Array.from(prefix, (c) => c.codePointAt(0)!);
  while (cps.length > 0) {
    const last = cps.pop()!;
    if (last < 0x10ffff) {
      const next = last === 0xd7ff ? 0xe000 : last + 1; // skip the surrogate block
      cps.push(next);
      return String.fromCodePoint(...cps);
    }
  }
  return undefined;
}

/** Values compare as UTF-8 bytes, like etcd, not as JS (UTF-16) strings. */
export function compareHolds(actual: number | string, op: Compare['op'], expected: number | string): boolean {
  const cmp = typeof actual === 'string' && typeof expected === 'string'
    ? Buffer.compare(Buffer.from(actual), Buffer.from(expected))
    : Math.sign((actual as number) - (expected as number));
  switch (op) {
    case '==': return cmp === 0;
    case '!=': return cmp !== 0;
    case '<': return cmp < 0;
    case '>': return cmp > 0;
  }
}

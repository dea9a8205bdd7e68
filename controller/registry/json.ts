// Records are JSON objects; reading one back checks it is an object so a
// hand-edited key fails with its key in the message instead of deep inside a handler.
import type { Store } from '../store/types';
import { CorruptRecordError } from './errors';
import { nameFromKey } from './keys';

export function parseRecord(key: string, value: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch (e) {
    throw new CorruptRecordError(key, `invalid JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new CorruptRecordError(key, 'not a JSON object');
  return v as Record<string, unknown>;
}

/** A record kept at `prefix` + its name (hosts, services, datacenters): its `name` field must match the key's. */
export function parseNamedRecord(prefix: string, key: string, value: string): { name: string; r: Record<string, unknown> } {
  const r = parseRecord(key, value);
  const name = nameFromKey(prefix, key);
  if (!name || r.name !== name) throw new CorruptRecordError(key, `name ${JSON.stringify(r.name)} does not match the key`);
  return { name, r };
}

/** Every record directly under `prefix` (a deeper key is not one of them), and the revision read at. */
export async function listNamed<T>(
  store: Store,
  prefix: string,
  decode: (key: string, value: string) => T,
): Promise<{ records: T[]; revision: number }> {
  const { kvs, revision } = await store.range(prefix);
  return { records: kvs.filter((kv) => nameFromKey(prefix, kv.key)).map((kv) => decode(kv.key, kv.value)), revision };
}

export async function deleteRecord(store: Store, key: string): Promise<{ deleted: boolean; revision: number }> {
  const { deleted, revision } = await store.delete(key);
  return { deleted: deleted > 0, revision };
}

export const str = (v: unknown): string => (typeof v === 'string' ? v : '');
export const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
export function strMap(v: unknown): Record<string, string> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return {};
  return Object.fromEntries(Object.entries(v).filter(([, x]) => typeof x === 'string')) as Record<string, string>;
}
export const strList = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** Retries of a compare-and-swap before giving up; each failure means another writer made progress. */
export const CAS_ATTEMPTS = 20;

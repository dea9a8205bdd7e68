// Records are JSON objects; reading one back checks it is an object so a
// hand-edited key fails with its key in the message instead of deep inside a handler.
import { CorruptRecordError } from './errors';

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

export const str = (v: unknown): string => (typeof v === 'string' ? v : '');
export const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
export function strMap(v: unknown): Record<string, string> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return {};
  return Object.fromEntries(Object.entries(v).filter(([, x]) => typeof x === 'string')) as Record<string, string>;
}
export const strList = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** Retries of a compare-and-swap before giving up; each failure means another writer made progress. */
export const CAS_ATTEMPTS = 20;

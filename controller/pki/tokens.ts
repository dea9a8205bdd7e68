// Bootstrap tokens, kubeadm style: "<id>.<secret>", shown once to the
// operator and presented once by a joining host. They live in the Store so
// any controller of an HA cluster can verify them; only a SHA-256 of the
// secret is stored (the secret has ~82 random bits, so a slow hash would buy
// nothing), and each record is attached to a store lease so the store drops
// it at expiry even if no controller ever looks at it again.
//
// A token is made for one role: "host" (an agent; the default, and what a
// record stored before roles existed is) or "ingress". Join issues the
// certificate of that role only, so the holder of an ingress token, which
// only reads services, cannot become a host, nor a host token an ingress.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { WeftError } from '../common/errors';
import type { KeyValue, Store } from '../store/types';
import { ROLES, type Role } from '../api/validate';

export const TOKEN_PREFIX = '/weft/tokens/';
export const TOKEN_USAGES = ['join'] as const;
export type TokenUsage = (typeof TOKEN_USAGES)[number];

export const TTL_MIN_SECONDS = 60;
export const TTL_MAX_SECONDS = 7 * 24 * 3600;
export const TTL_DEFAULT_SECONDS = 3600;
const DESCRIPTION_MAX = 256;

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const TOKEN_RE = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;
const ID_RE = /^[a-z0-9]{6}$/;

/** What the store holds for a token: never the secret. */
export type TokenRecord = {
  hash: string;
  expiresAt: string;
  usages: TokenUsage[];
  description: string;
  createdAt: string;
  role: Role;
};

export type TokenInfo = Omit<TokenRecord, 'hash'> & { id: string };

export type VerifyResult = { ok: true; id: string; role: Role } | { ok: false; reason: 'malformed' | 'unknown' | 'expired' | 'mismatch' };

export class TokenError extends WeftError {
  constructor(message: string) {
    super('WEFT_TOKEN_INVALID', message);
    this.name = 'TokenError';
  }
}

export type CreateTokenOptions = {
  /** Lifetime in seconds, 60 .. 604800 (7 days); default 3600. */
  ttlSeconds?: number;
  description?: string;
  usages?: TokenUsage[];
  /** What a Join with it may become; default "host". */
  role?: Role;
  now?: Date;
};

export async function createToken(store: Store, opts: CreateTokenOptions = {}): Promise<{ token: string; id: string; expiresAt: string }> {
  const ttl = opts.ttlSeconds ?? TTL_DEFAULT_SECONDS;
  if (!Number.isInteger(ttl) || ttl < TTL_MIN_SECONDS || ttl > TTL_MAX_SECONDS) {
    throw new TokenError(`token ttl ${ttl} is out of range: a whole number of seconds from ${TTL_MIN_SECONDS} (1 minute) to ${TTL_MAX_SECONDS} (7 days)`);
  }
  const description = opts.description ?? '';
  if (typeof description !== 'string' || description.length > DESCRIPTION_MAX || /[\x00-\x1f\x7f]/.test(description)) {
    throw new TokenError(`token description must be text of at most ${DESCRIPTION_MAX} characters without control characters`);
  }
  const usages = opts.usages ?? [...TOKEN_USAGES];
  if (!Array.isArray(usages) || usages.length === 0 || usages.some((u) => !(TOKEN_USAGES as readonly string[]).includes(u))) {
    throw new TokenError(`token usages ${JSON.stringify(usages)} must be a non-empty list of: ${TOKEN_USAGES.join(', ')}`);
  }
  const role = opts.role ?? 'host';
  if (!(ROLES as readonly string[]).includes(role)) throw new TokenError(`token role ${JSON.stringify(role)} must be one of: ${ROLES.join(', ')}`);
  const now = opts.now ?? new Date();
  const expiresAt = new Date(now.getTime() + ttl * 1000).toISOString();
  const lease = await store.leaseGrant(ttl);
  // An id collision is unlikely (36^6) but would silently replace another
  // operator's token, so the write only happens if the key is new.
  for (let attempt = 0; attempt < 5; attempt++) {
    const id = randomString(6);
    const secret = randomString(16);
    const record: TokenRecord = { hash: hashSecret(secret), expiresAt, usages: [...usages], description, createdAt: now.toISOString(), role };
    const key = TOKEN_PREFIX + id;
    const r = await store.txn([{ key, target: 'version', op: '==', version: 0 }], [{ type: 'put', key, value: JSON.stringify(record), lease }]);
    if (r.succeeded) return { token: `${id}.${secret}`, id, expiresAt };
  }
  await store.leaseRevoke(lease);
  throw new TokenError('could not find a free token id after 5 attempts; the token table is unexpectedly full');
}

/**
 * Every refusal costs the same: an unknown id is compared against a dummy
 * hash, and an expired record is deleted after the answer, not before, so
 * neither the reply nor its timing tells a caller which token ids exist.
 * The reason is for the controller's log only.
 */
export async function verifyToken(store: Store, token: string, opts: { now?: Date } = {}): Promise<VerifyResult> {
  const m = typeof token === 'string' ? TOKEN_RE.exec(token) : null;
  if (!m) return { ok: false, reason: 'malformed' };
  const [, id, secret] = m;
  const kv = await store.get(TOKEN_PREFIX + id);
  const rec = kv ? parseRecord(kv) : undefined;
  const want = Buffer.from(rec?.hash ?? DUMMY_HASH);
  const got = Buffer.from(hashSecret(secret));
  // Both are fixed-length hex digests, so the length check leaks nothing.
  const matches = want.length === got.length && timingSafeEqual(want, got);
  if (!kv || !rec) return { ok: false, reason: 'unknown' };
  if (isExpired(rec, opts.now)) {
    void deleteIfUnchanged(store, kv).catch(() => undefined);
    return { ok: false, reason: 'expired' };
  }
  if (!matches) return { ok: false, reason: 'mismatch' };
  return { ok: true, id, role: rec.role };
}

/** What an unknown id is compared against: the hash of a secret no token has (it is too short to be one). */
const DUMMY_HASH = hashSecret('-');

/** Live tokens, sorted by id; expired ones are deleted on the way. */
export async function listTokens(store: Store, opts: { now?: Date } = {}): Promise<TokenInfo[]> {
  const { kvs } = await store.range(TOKEN_PREFIX);
  const out: TokenInfo[] = [];
  for (const kv of kvs) {
    const rec = parseRecord(kv);
    if (isExpired(rec, opts.now)) {
      await deleteIfUnchanged(store, kv);
      continue;
    }
    const { hash: _hash, ...info } = rec;
    out.push({ id: kv.key.slice(TOKEN_PREFIX.length), ...info });
  }
  return out;
}

/** Deletes by id or by the whole token; true if there was one. */
export async function deleteToken(store: Store, idOrToken: string): Promise<boolean> {
  const id = typeof idOrToken === 'string' ? idOrToken.split('.')[0] : '';
  if (!ID_RE.test(id) || !(idOrToken === id || TOKEN_RE.test(idOrToken))) {
    throw new TokenError(`${JSON.stringify(idOrToken)} is neither a token id (6 characters a-z0-9) nor a token (<id>.<16 characters a-z0-9>)`);
  }
  const kv = await store.get(TOKEN_PREFIX + id);
  const { deleted } = await store.delete(TOKEN_PREFIX + id);
  if (kv?.lease) await store.leaseRevoke(kv.lease);
  return deleted > 0;
}

function isExpired(rec: TokenRecord, now: Date = new Date()): boolean {
  return Date.parse(rec.expiresAt) <= now.getTime();
}

/** Only delete the version we judged expired: never a record written since. */
async function deleteIfUnchanged(store: Store, kv: KeyValue): Promise<void> {
  await store.txn([{ key: kv.key, target: 'modRevision', op: '==', modRevision: kv.modRevision }], [{ type: 'delete', key: kv.key }]);
}

function parseRecord(kv: KeyValue): TokenRecord {
  let v: unknown;
  try {
    v = JSON.parse(kv.value);
  } catch {
    throw new TokenError(`store record ${kv.key} is not JSON; delete it (it cannot be a valid token)`);
  }
  const r = v as Partial<TokenRecord>;
  if (
    typeof r !== 'object' || r === null ||
    typeof r.hash !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(r.hash) ||
    typeof r.expiresAt !== 'string' || Number.isNaN(Date.parse(r.expiresAt)) ||
    !Array.isArray(r.usages) || typeof r.description !== 'string' || typeof r.createdAt !== 'string'
  ) {
    throw new TokenError(`store record ${kv.key} is not a token record (want hash, expiresAt, usages, description, createdAt); delete it`);
  }
  // A record without a role predates roles: it was made for hosts, and stays a host token.
  if (r.role !== undefined && !(ROLES as readonly unknown[]).includes(r.role)) {
    throw new TokenError(`store record ${kv.key} has an unknown role ${JSON.stringify(r.role)} (${ROLES.join(', ')}); delete it`);
  }
  return { hash: r.hash, expiresAt: r.expiresAt, usages: r.usages, description: r.description, createdAt: r.createdAt, role: r.role ?? 'host' };
}

function hashSecret(secret: string): string {
  return 'sha256:' + createHash('sha256').update(secret).digest('hex');
}

/** Uniform over [a-z0-9]: bytes >= 252 are dropped so the modulo has no bias. */
function randomString(n: number): string {
  let s = '';
  while (s.length < n) {
    for (const b of randomBytes(n * 2)) {
      if (b < 252 && s.length < n) s += ALPHABET[b % 36];
    }
  }
  return s;
}

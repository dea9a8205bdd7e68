import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../controller/store/sqlite';
import type { Store } from '../../controller/store/types';
import { waitFor } from '../helpers/wait';
import { createToken, deleteToken, listTokens, TokenError, TOKEN_PREFIX, verifyToken } from '../../controller/pki/tokens';

let dir: string;
let store: Store;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-tokens-'));
  store = openSqliteStore(join(dir, 'weft.db'));
});
afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const HOUR = 3600_000;

describe('createToken', () => {
  it('makes <6>.<16> tokens of [a-z0-9] and stores only a hash of the secret', async () => {
    const t = await createToken(store, { ttlSeconds: 600, description: 'rack 2 hosts' });
    expect(t.token).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    const [id, secret] = t.token.split('.');
    expect(t.id).toBe(id);
    const kv = await store.get(TOKEN_PREFIX + id);
    expect(kv).toBeDefined();
    expect(kv!.value).not.toContain(secret);
    expect(kv!.lease).toBeDefined();
    const rec = JSON.parse(kv!.value);
    expect(Object.keys(rec).sort()).toEqual(['createdAt', 'description', 'expiresAt', 'hash', 'role', 'usages']);
    expect(rec.hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(rec.usages).toEqual(['join']);
    expect(rec.description).toBe('rack 2 hosts');
    expect(Date.parse(rec.expiresAt) - Date.parse(rec.createdAt)).toBe(600_000);
    // Nothing anywhere under the prefix holds the secret.
    const { kvs } = await store.range(TOKEN_PREFIX);
    expect(kvs.some((k) => k.value.includes(secret))).toBe(false);
  });

  it('defaults to one hour', async () => {
    const now = new Date();
    const t = await createToken(store, { now });
    expect(Date.parse(t.expiresAt) - now.getTime()).toBe(HOUR);
  });

  it('draws ids and secrets at random', async () => {
    const tokens = await Promise.all(Array.from({ length: 50 }, () => createToken(store, { ttlSeconds: 60 })));
    expect(new Set(tokens.map((t) => t.id)).size).toBe(50);
    expect(new Set(tokens.map((t) => t.token.split('.')[1])).size).toBe(50);
    // All 36 symbols turn up across 50 secrets of 16 characters (800 draws).
    expect(new Set(tokens.map((t) => t.token.split('.')[1]).join('')).size).toBe(36);
    for (const t of tokens) await deleteToken(store, t.id);
  });

  it('refuses lifetimes outside 1 minute .. 7 days and bad descriptions or usages', async () => {
    await expect(createToken(store, { ttlSeconds: 59 })).rejects.toThrow(/token ttl 59 is out of range.*60 \(1 minute\) to 604800 \(7 days\)/);
    await expect(createToken(store, { ttlSeconds: 7 * 86400 + 1 })).rejects.toThrow(TokenError);
    await expect(createToken(store, { ttlSeconds: 90.5 })).rejects.toThrow(/whole number of seconds/);
    await expect(createToken(store, { ttlSeconds: 7 * 86400 })).resolves.toBeTruthy();
    await expect(createToken(store, { description: 'x'.repeat(257) })).rejects.toThrow(/at most 256 characters/);
    await expect(createToken(store, { description: 'line\nbreak' })).rejects.toThrow(/control characters/);
    await expect(createToken(store, { usages: ['admin' as 'join'] })).rejects.toThrow(/usages \["admin"\] must be a non-empty list of: join/);
  });
});

describe('verifyToken', () => {
  it('accepts the token it made, from this store handle and from another one on the same data (another controller)', async () => {
    const t = await createToken(store, { ttlSeconds: 300 });
    expect(await verifyToken(store, t.token)).toEqual({ ok: true, id: t.id, role: 'host' });
    const other = openSqliteStore(join(dir, 'weft.db'));
    try {
      expect(await verifyToken(other, t.token)).toEqual({ ok: true, id: t.id, role: 'host' });
    } finally {
      await other.close();
    }
  });

  it('says mismatch for a wrong secret of a known id', async () => {
    const t = await createToken(store, { ttlSeconds: 300 });
    const [id, secret] = t.token.split('.');
    const wrong = secret.slice(0, 15) + (secret[15] === 'a' ? 'b' : 'a');
    expect(await verifyToken(store, `${id}.${wrong}`)).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('says malformed for anything not <6 of a-z0-9>.<16 of a-z0-9>', async () => {
    const t = await createToken(store, { ttlSeconds: 300 });
    const [id, secret] = t.token.split('.');
    for (const bad of ['', id, `${id}.`, `${id}${secret}`, `${id}.${secret}x`, `${id.toUpperCase()}.${secret}`, `${id}.${secret.slice(1)}`, ` ${t.token}`, `${t.token}\n`, `${id}:${secret}`, 42 as unknown as string, undefined as unknown as string]) {
      expect(await verifyToken(store, bad)).toEqual({ ok: false, reason: 'malformed' });
    }
  });

  it('says unknown for an id that was never made or was deleted', async () => {
    expect(await verifyToken(store, 'zzzzzz.0123456789abcdef')).toEqual({ ok: false, reason: 'unknown' });
    const t = await createToken(store, { ttlSeconds: 300 });
    expect(await deleteToken(store, t.token)).toBe(true);
    expect(await verifyToken(store, t.token)).toEqual({ ok: false, reason: 'unknown' });
    expect(await deleteToken(store, t.id)).toBe(false);
  });

  it('says expired after the lifetime, deletes the record, and then says unknown', async () => {
    const t = await createToken(store, { ttlSeconds: 60, now: new Date(Date.now() - 2 * 60_000) });
    expect(await store.get(TOKEN_PREFIX + t.id)).toBeDefined();
    expect(await verifyToken(store, t.token)).toEqual({ ok: false, reason: 'expired' });
    // Deleted after the answer, so a refusal takes as long whether the id existed or not.
    await waitFor('the expired token record deleted', async () => (await store.get(TOKEN_PREFIX + t.id)) === undefined, 5000, 10);
    expect(await verifyToken(store, t.token)).toEqual({ ok: false, reason: 'unknown' });
    // Valid one second before expiry, expired at it.
    const u = await createToken(store, { ttlSeconds: 60 });
    const at = Date.parse(u.expiresAt);
    expect(await verifyToken(store, u.token, { now: new Date(at - 1000) })).toEqual({ ok: true, id: u.id, role: 'host' });
    expect(await verifyToken(store, u.token, { now: new Date(at) })).toEqual({ ok: false, reason: 'expired' });
  });

  it('refuses a corrupt record with a clear error rather than accepting it', async () => {
    await store.put(TOKEN_PREFIX + 'broken', '{"hash":"plain-secret"}');
    await expect(verifyToken(store, 'broken.0123456789abcdef')).rejects.toThrow(/\/weft\/tokens\/broken is not a token record/);
    await store.delete(TOKEN_PREFIX + 'broken');
  });
});

describe('roles', () => {
  it('makes host tokens by default and ingress tokens on request, and verify says which', async () => {
    const host = await createToken(store, { ttlSeconds: 600 });
    const ingress = await createToken(store, { ttlSeconds: 600, role: 'ingress' });
    expect(await verifyToken(store, host.token)).toEqual({ ok: true, id: host.id, role: 'host' });
    expect(await verifyToken(store, ingress.token)).toEqual({ ok: true, id: ingress.id, role: 'ingress' });
    expect((await listTokens(store)).find((t) => t.id === ingress.id)).toMatchObject({ role: 'ingress' });
    await expect(createToken(store, { role: 'admin' as 'host' })).rejects.toThrow(/role "admin" must be one of: host, ingress/);
  });

  it('reads a token stored before roles existed as a host token', async () => {
    const t = await createToken(store, { ttlSeconds: 600 });
    const kv = (await store.get(TOKEN_PREFIX + t.id))!;
    const { role: _, ...old } = JSON.parse(kv.value);
    await store.put(kv.key, JSON.stringify(old));
    expect(await verifyToken(store, t.token)).toEqual({ ok: true, id: t.id, role: 'host' });
    await store.put(kv.key, JSON.stringify({ ...old, role: 'root' }));
    await expect(verifyToken(store, t.token)).rejects.toThrow(/unknown role "root"/);
    await store.delete(kv.key);
  });
});

describe('listTokens and deleteToken', () => {
  it('lists live tokens without hashes and drops expired ones', async () => {
    await store.deletePrefix(TOKEN_PREFIX);
    const live = await createToken(store, { ttlSeconds: 600, description: 'live' });
    const dead = await createToken(store, { ttlSeconds: 60, description: 'dead', now: new Date(Date.now() - HOUR) });
    const list = await listTokens(store);
    expect(list.map((t) => t.id)).toEqual([live.id]);
    expect(list[0]).toMatchObject({ id: live.id, description: 'live', usages: ['join'], expiresAt: live.expiresAt });
    expect(list[0]).not.toHaveProperty('hash');
    expect(await store.get(TOKEN_PREFIX + dead.id)).toBeUndefined();
  });

  it('refuses what is neither an id nor a token', async () => {
    await expect(deleteToken(store, '../x')).rejects.toThrow(/neither a token id/);
    await expect(deleteToken(store, 'abcdef.short')).rejects.toThrow(TokenError);
  });
});

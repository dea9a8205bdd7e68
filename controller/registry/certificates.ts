// Which client certificates the CA issued to each identity, and which serials
// are revoked. A certificate is good until it expires, so ending an identity
// (an operator deleting a host, a host leaving) must name each of its serials
// in a revocation record that every controller refuses calls from.
//
// Both kinds of record are bound to a store lease that ends when the
// certificate can no longer be used anyway: its expiry plus the grace window
// in which an expired certificate's key may still renew it. The store then
// deletes them itself (SQLite's sweeper, etcd's lease expiry), so neither
// list grows with the history of the cluster.
import type { Store, TxnOp } from '../store/types';
import { normalizeSerial } from '../api/validate';
import { CAS_ATTEMPTS, num, parseRecord, str } from './json';
import { RegistryContentionError } from './errors';
import { CERTS_PREFIX, REVOKED_PREFIX, identityCertsPrefix, issuedCertKey, revokedKey } from './keys';

export type CertKind = 'host' | 'ingress';
export const CERT_KINDS: readonly CertKind[] = ['host', 'ingress'];

export type IssuedCertRecord = {
  kind: CertKind;
  name: string;
  /** Lower-case hex without leading zeros (normalizeSerial). */
  serial: string;
  /** ms since the epoch. */
  notAfter: number;
  issuedAt: number;
};

export type RevokedCertRecord = {
  serial: string;
  /** Whose it was, when known ("" for a serial revoked by hand that the CA did not record, e.g. an admin certificate). */
  kind: CertKind | '';
  name: string;
  notAfter: number;
  revokedAt: number;
  reason: string;
};

/** Seconds a record must live: until `until` (ms), at least one. */
const ttlUntil = (until: number, now: number): number => Math.max(1, Math.ceil((until - now) / 1000));

/** Records a certificate the CA just issued; `keepMs` past its expiry (the renewal grace window). */
export async function recordIssuedCert(store: Store, rec: IssuedCertRecord, opts: { now: number; keepMs: number }): Promise<void> {
  const lease = await store.leaseGrant(ttlUntil(rec.notAfter + opts.keepMs, opts.now));
  await store.put(issuedCertKey(rec.kind, rec.name, rec.serial), JSON.stringify({ notAfter: rec.notAfter, issuedAt: rec.issuedAt }), { lease });
}

function decodeIssued(key: string, value: string): IssuedCertRecord | undefined {
  const parts = key.slice(CERTS_PREFIX.length).split('/');
  if (parts.length !== 3 || !(CERT_KINDS as readonly string[]).includes(parts[0])) return undefined;
  const r = parseRecord(key, value);
  return { kind: parts[0] as CertKind, name: parts[1], serial: parts[2], notAfter: num(r.notAfter), issuedAt: num(r.issuedAt) };
}

/** Issued certificates not yet pruned: of one identity, of one kind, or all; sorted by key. */
export async function listIssuedCerts(store: Store, filter: { kind?: CertKind; name?: string } = {}): Promise<IssuedCertRecord[]> {
  const prefix = filter.kind && filter.name ? identityCertsPrefix(filter.kind, filter.name) : filter.kind ? `${CERTS_PREFIX}${filter.kind}/` : CERTS_PREFIX;
  const { kvs } = await store.range(prefix);
  return kvs.map((kv) => decodeIssued(kv.key, kv.value)).filter((r): r is IssuedCertRecord => r !== undefined);
}

export function encodeRevoked(r: RevokedCertRecord): string {
  return JSON.stringify({ kind: r.kind, name: r.name, notAfter: r.notAfter, revokedAt: r.revokedAt, reason: r.reason });
}

export function decodeRevoked(key: string, value: string): RevokedCertRecord {
  const r = parseRecord(key, value);
  const kind = str(r.kind);
  return {
    serial: key.slice(REVOKED_PREFIX.length), kind: (CERT_KINDS as readonly string[]).includes(kind) ? (kind as CertKind) : '',
    name: str(r.name), notAfter: num(r.notAfter), revokedAt: num(r.revokedAt), reason: str(r.reason),
  };
}

export async function listRevokedCerts(store: Store): Promise<{ records: RevokedCertRecord[]; revision: number }> {
  const { kvs, revision } = await store.range(REVOKED_PREFIX);
  return { records: kvs.map((kv) => decodeRevoked(kv.key, kv.value)), revision };
}

/**
 * Revokes certificates in one write: a revocation record for each, and the
 * issued records of those the CA recorded go with it. The records live as
 * long as the longest-lived of them could still be used (`keepMs` past its
 * expiry), on one store lease.
 */
export async function revokeCerts(
  store: Store, certs: Array<Omit<RevokedCertRecord, 'revokedAt' | 'reason'>>, opts: { now: number; keepMs: number; reason: string },
): Promise<RevokedCertRecord[]> {
  if (certs.length === 0) return [];
  const records = certs.map((c) => ({ ...c, serial: normalizeSerial(c.serial), revokedAt: opts.now, reason: opts.reason }));
  const lease = await store.leaseGrant(ttlUntil(Math.max(...records.map((r) => r.notAfter)) + opts.keepMs, opts.now));
  const ops: TxnOp[] = [];
  for (const r of records) {
    ops.push({ type: 'put', key: revokedKey(r.serial), value: encodeRevoked(r), lease });
    if (r.kind !== '') ops.push({ type: 'delete', key: issuedCertKey(r.kind, r.name, r.serial) });
  }
  await store.txn([], ops);
  return records;
}

/**
 * Revokes every certificate recorded for the identity. Issuance racing the
 * revocation is caught by comparing the identity's records as they were
 * read: a certificate issued meanwhile makes the write retry and be included.
 */
export async function revokeIdentity(
  store: Store, kind: CertKind, name: string, opts: { now: number; keepMs: number; reason: string },
): Promise<RevokedCertRecord[]> {
  const all: RevokedCertRecord[] = [];
  for (let i = 0; i < CAS_ATTEMPTS; i++) {
    const { kvs } = await store.range(identityCertsPrefix(kind, name));
    const issued = kvs.map((kv) => decodeIssued(kv.key, kv.value)).filter((r): r is IssuedCertRecord => r !== undefined);
    // Done when a read finds nothing left: a certificate issued during a round is revoked in the next one.
    if (issued.length === 0) return all;
    const records = issued.map((c) => ({ serial: c.serial, kind, name, notAfter: c.notAfter, revokedAt: opts.now, reason: opts.reason }));
    const lease = await store.leaseGrant(ttlUntil(Math.max(...records.map((r) => r.notAfter)) + opts.keepMs, opts.now));
    const ops: TxnOp[] = [];
    for (const r of records) {
      ops.push({ type: 'put', key: revokedKey(r.serial), value: encodeRevoked(r), lease });
      ops.push({ type: 'delete', key: issuedCertKey(kind, name, r.serial) });
    }
    const compares = kvs.map((kv) => ({ key: kv.key, target: 'modRevision' as const, op: '==' as const, modRevision: kv.modRevision }));
    const res = await store.txn(compares, ops);
    if (res.succeeded) all.push(...records);
    else await store.leaseRevoke(lease);
  }
  throw new RegistryContentionError(`certificates of ${kind} "${name}" kept being issued while revoking them`);
}

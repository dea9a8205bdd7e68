// The controller's one view of durable state, with etcd v3 semantics so the
// embedded SQLite store and etcd are interchangeable: keys and values are
// strings, every write bumps one global revision, watches resume from a
// revision, transactions compare-and-swap, leases expire keys.
import { WeftError } from '../common/errors';

export type KeyValue = {
  key: string;
  value: string;
  /** Revision of the write that created this key (since it last did not exist). */
  createRevision: number;
  /** Revision of the last write to this key. */
  modRevision: number;
  /** Writes since creation: 1 after the first put; a missing key has version 0. */
  version: number;
  /** Lease the key is attached to, if any (decimal string id). */
  lease?: string;
};

export type CompareOp = '==' | '!=' | '<' | '>';

/** A missing key compares as value "" (never equal), version 0, createRevision 0, modRevision 0. */
export type Compare =
  | { key: string; target: 'value'; op: CompareOp; value: string }
  | { key: string; target: 'version'; op: CompareOp; version: number }
  | { key: string; target: 'createRevision'; op: CompareOp; createRevision: number }
  | { key: string; target: 'modRevision'; op: CompareOp; modRevision: number };

export type TxnOp =
  | { type: 'put'; key: string; value: string; lease?: string }
  | { type: 'delete'; key: string }
  | { type: 'deletePrefix'; prefix: string }
  | { type: 'get'; key: string };

export type TxnResult = {
  succeeded: boolean;
  /** Store revision after the transaction (unchanged when it wrote nothing). */
  revision: number;
  /** One entry per op of the branch that ran: the KeyValue for a 'get' (undefined if absent), undefined otherwise. */
  results: Array<KeyValue | undefined>;
};

export type WatchEvent =
  | { type: 'put'; kv: KeyValue; prevKv?: KeyValue }
  /** For a delete, kv.key is the key, kv.modRevision the revision of the delete, kv.value "". */
  | { type: 'delete'; kv: KeyValue; prevKv?: KeyValue };

/** Events of one revision range, in revision order. */
export type WatchBatch = { events: WatchEvent[]; revision: number };

export type WatchOptions = {
  /** Deliver every event with modRevision >= fromRevision; default: only events after the watch starts. */
  fromRevision?: number;
  /** Include prevKv in events (the value before the change). */
  prevKv?: boolean;
  signal?: AbortSignal;
};

export type RangeResult = { kvs: KeyValue[]; revision: number };

export interface Store {
  readonly kind: 'sqlite' | 'etcd';
  get(key: string): Promise<KeyValue | undefined>;
  /** All keys starting with `prefix`, sorted by key; `limit` caps the count. */
  range(prefix: string, opts?: { limit?: number }): Promise<RangeResult>;
  put(key: string, value: string, opts?: { lease?: string }): Promise<{ revision: number; prev?: KeyValue }>;
  delete(key: string): Promise<{ revision: number; deleted: number }>;
  deletePrefix(prefix: string): Promise<{ revision: number; deleted: number }>;
  /** If every compare holds, run `success`, else `failure`; atomically. */
  txn(compares: Compare[], success: TxnOp[], failure?: TxnOp[]): Promise<TxnResult>;
  /** Current global revision. */
  revision(): Promise<number>;
  /**
   * Changes under `prefix`, as an async iterable of batches. Ends when the
   * signal aborts or the store closes; throws CompactedError when
   * fromRevision is older than the oldest revision still kept.
   */
  watch(prefix: string, opts?: WatchOptions): AsyncIterable<WatchBatch>;
  /** Drop history before `revision` (watches from older revisions then fail with CompactedError). */
  compact(revision: number): Promise<void>;
  leaseGrant(ttlSeconds: number): Promise<string>;
  /** Renew; returns the TTL granted. Throws LeaseNotFoundError if it expired or never was. */
  leaseKeepAlive(id: string): Promise<number>;
  /** Revoke and delete every key attached. Unknown ids are ignored. */
  leaseRevoke(id: string): Promise<void>;
  /**
   * A read, no write: how long the lease has left and the TTL it was granted
   * (seconds; etcd counts in whole seconds), or undefined once it expired or
   * was revoked. Since every keepalive restores the full TTL, granted minus
   * remaining is how long ago its holder last renewed it.
   */
  leaseTimeToLive(id: string): Promise<{ remainingSeconds: number; grantedSeconds: number } | undefined>;
  close(): Promise<void>;
}

export class CompactedError extends WeftError {
  readonly compactRevision: number;
  constructor(requested: number, compactRevision: number) {
    super('WEFT_STORE_COMPACTED', `revision ${requested} has been compacted (oldest kept: ${compactRevision}); list again and watch from the list's revision`);
    this.name = 'CompactedError';
    this.compactRevision = compactRevision;
  }
}

export class LeaseNotFoundError extends WeftError {
  constructor(id: string) {
    super('WEFT_STORE_LEASE_NOT_FOUND', `lease ${id} not found (expired or revoked)`);
    this.name = 'LeaseNotFoundError';
  }
}

export class StoreUnavailableError extends WeftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WEFT_STORE_UNAVAILABLE', message, options);
    this.name = 'StoreUnavailableError';
  }
}

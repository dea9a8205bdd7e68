// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
// Software Network Load Balancer", NSDI '16, section 3.4). A lookup table of
// M slots, each naming a backend; a flow goes to table[hash(flow) % M].
//
// Two properties make it the table both the L7 proxy (client-ip affinity) and
// the L4 kernel path (an nftables map) use:
//   - balance: backends take turns claiming slots, so with equal weights each
//     one holds floor(M/N) or ceil(M/N) slots;
//   - small disruption: each backend fills slots in its own fixed preference
//     order, so removing one backend mostly hands its slots to others and
//     leaves the rest where they were.
//
// The table depends only on the set of keys (and their weights), never on the
// order the caller lists them in: keys are sorted before the turns are
// taken. Two ingress processes, or the proxy and the kernel path, that see the
// same backends in a different order therefore build the same table, and a
// client keeps its backend whichever of them it reaches.
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../../controller/common/errors';

/**
 * The table size for `n` backends: the smallest prime ≥ 100·n, and at least 101.
 *
 * Prime, so every backend's skip (1..M-1) is coprime with M and its preference
 * list visits every slot. At least 100·n, because backends take turns a slot
 * at a time, so each holds within one slot of M/n: within 1% of its fair
 * share. A bigger table also moves fewer slots between the surviving backends
 * when one is removed: besides the removed backend's own 1/n, about 2% of the
 * table at M ≈ 100·n on average (0.6% at 1000·n; measured, see the tests).
 * The floor of 101 keeps the balance bound for n ≤ 1.
 *
 * Keep M when the backends change: a flow's slot is hash % M, so a new M
 * remaps nearly every flow. Size the table once for the expected number of
 * backends and grow it (with headroom) only when it gets too small for them.
 */
export function maglevSize(n: number): number {
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`maglevSize: backend count must be a non-negative integer, got ${n}`, { field: 'n' });
  let m = Math.max(101, 100 * n);
  while (!isPrime(m)) m++;
  return m;
}

function isPrime(m: number): boolean {
  if (m < 2) return false;
  if (m % 2 === 0) return m === 2;
  for (let d = 3; d * d <= m; d += 2) if (m % d === 0) return false;
  return true;
}

/**
 * The lookup table: entry i is the index into `keys` of the backend that
 * slot i serves, or -1 everywhere when `keys` is empty.
 *
 * `size` should be prime (use maglevSize); a size that is not prime still
 * gives a full table but may lose the balance bound. `weights`, when given,
 * are positive numbers parallel to `keys`: backend i then claims about
 * M·w_i/Σw slots (within N·w_i/Σw + 1 slots; a backend with the largest weight
 * takes a turn every round, lighter ones in proportion). Keys must be
 * distinct.
 *
 * Cost: O(M) for equal weights; with weights, O(M·N·max(w)/Σw) — it is built
 * when the backends change, never per flow.
 */
export function maglevTable(keys: readonly string[], size: number, weights?: readonly number[]): Int32Array {
  if (!Number.isInteger(size) || size < 1) throw new InvalidArgumentError(`maglevTable: size must be a positive integer, got ${size}`, { field: 'size' });
  if (weights !== undefined && weights.length !== keys.length) {
    throw new InvalidArgumentError(`maglevTable: ${weights.length} weights for ${keys.length} keys`, { field: 'weights' });
  }
  const table = new Int32Array(size).fill(-1);
  const n = keys.length;
  if (n === 0) return table;

  // Sorted order fixes who takes a turn first, which decides contested slots.
  const order = keys.map((_, i) => i).sort((a, b) => (keys[a] < keys[b] ? -1 : keys[a] > keys[b] ? 1 : 0));
  for (let i = 1; i < n; i++) {
    if (keys[order[i]] === keys[order[i - 1]]) throw new InvalidArgumentError(`maglevTable: key ${keys[order[i]]} appears twice`, { field: 'keys' });
  }
  const w = new Float64Array(n);
  let wmax = 0;
  for (let j = 0; j < n; j++) {
    const x = weights === undefined ? 1 : weights[order[j]];
    if (!(x > 0) || !Number.isFinite(x)) throw new InvalidArgumentError(`maglevTable: weight of ${keys[order[j]]} must be a positive number, got ${x}`, { field: 'weights' });
    w[j] = x;
    if (x > wmax) wmax = x;
  }

  // Each backend's preference list is offset, offset+skip, offset+2·skip, ... (mod M).
  const pos = new Float64Array(n);
  const skip = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const [h1, h2] = keyHashes(keys[order[j]]);
    pos[j] = h1 % size;
    skip[j] = size === 1 ? 1 : (h2 % (size - 1)) + 1;
  }

  // Weighted turns (as Envoy's Maglev does it): in round r backend j takes a
  // turn when r·w_j has reached its next target; targets grow by wmax per
  // turn, so the heaviest backends turn every round. With equal weights every
  // backend turns every round, as in the paper.
  const target = new Float64Array(n).fill(wmax);
  let filled = 0;
  for (let round = 1; filled < size; round++) {
    for (let j = 0; j < n && filled < size; j++) {
      if (round * w[j] < target[j]) continue;
      target[j] += wmax;
      let c = pos[j];
      while (table[c] >= 0) {
        c += skip[j];
        if (c >= size) c -= size;
      }
      table[c] = order[j];
      c += skip[j];
      if (c >= size) c -= size;
      pos[j] = c;
      filled++;
    }
  }
  return table;
}

/** Two independent 32-bit hashes of a key: its offset and skip seeds. A cryptographic hash so similar keys (10.0.0.1:80, 10.0.0.2:80) scatter. */
function keyHashes(key: string): [number, number] {
  const d = createHash('sha256').update(key).digest();
  return [d.readUInt32BE(0), d.readUInt32BE(4)];
}

/**
 * A 32-bit hash of a flow key (for L7 affinity: the client's IP address), to
 * index a table with `table[flowHash(ip) % table.length]`. FNV-1a over the
 * string's UTF-16 code units, then murmur3's finalizer so that addresses
 * differing in the last character spread over the whole range. Cheap (no
 * allocation: it runs on every request) and the same in every process; not
 * keyed, so it is not resistant to a client choosing addresses to collide,
 * which for affinity only concentrates that client's own flows.
 */
export function flowHash(key: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The backend index `table` gives a flow hash, or -1 for an empty table. */
export function maglevLookup(table: Int32Array, hash: number): number {
  return table[(hash >>> 0) % table.length];
}

/**
 * The table after the backends changed from what `prev` holds to `keys`,
 * moving only what must move: every slot whose backend is still there keeps
 * it, a removed backend's slots are shared among the rest, and a new backend
 * takes its share from backends holding more than theirs. Each backend ends
 * with floor(M/N) or ceil(M/N) slots, as in a fresh table.
 *
 * A fresh `maglevTable` for the new set moves, besides the removed backend's
 * own 1/N, about 2% of the other slots at M ≈ 100·N (each backend's
 * preference list meets a different set of taken slots). Rebalancing from
 * the table in use moves none of them, so removing 1 of N backends remaps
 * exactly its own share of new flows. The price is that the table depends on
 * the order of changes, not only on the final set: the L4 path reads the
 * table back from the kernel, so a restarted ingress continues from it; two
 * ingresses agree while they saw the same changes, and a fresh start without
 * a table builds the plain Maglev table.
 *
 * `prev` is a slot → key list (undefined for an empty slot) of length M.
 * Unweighted; `keys` must be distinct.
 */
export function maglevRebalance(prev: readonly (string | undefined)[], keys: readonly string[]): Int32Array {
  const size = prev.length;
  // A prime size makes every preference list visit every slot, which is what ends each walk below.
  if (!isPrime(size)) throw new InvalidArgumentError(`maglevRebalance: the table size ${size} is not prime`, { field: 'prev' });
  const n = keys.length;
  const table = new Int32Array(size).fill(-1);
  if (n === 0) return table;
  const sorted = [...keys].sort();
  for (let i = 1; i < n; i++) {
    if (sorted[i] === sorted[i - 1]) throw new InvalidArgumentError(`maglevRebalance: key ${sorted[i]} appears twice`, { field: 'keys' });
  }
  const index = new Map(keys.map((k, i) => [k, i]));
  const count = new Int32Array(n);
  for (let s = 0; s < size; s++) {
    const i = prev[s] === undefined ? undefined : index.get(prev[s]!);
    if (i !== undefined) {
      table[s] = i;
      count[i]++;
    }
  }

  // Quotas: floor(M/N) each, and the M mod N extra slots go to the backends
  // holding the most already (ties by key) so that as few slots move as possible.
  const base = Math.floor(size / n);
  const quota = new Int32Array(n).fill(base);
  const byHeld = keys.map((_, i) => i).sort((a, b) => count[b] - count[a] || (keys[a] < keys[b] ? -1 : keys[a] > keys[b] ? 1 : 0));
  for (let r = 0; r < size - base * n; r++) quota[byHeld[r]]++;

  // Backends under quota take turns (in key order, as in the fresh fill)
  // walking their own preference lists, claiming an empty slot or one of a
  // backend over its quota. M is prime, so each walk visits every slot and
  // always finds one: the empty and surplus slots add up to the total deficit.
  const order = keys.map((_, i) => i).sort((a, b) => (keys[a] < keys[b] ? -1 : 1));
  const pos = new Float64Array(n);
  const skip = new Float64Array(n);
  for (const i of order) {
    const [h1, h2] = keyHashes(keys[i]);
    pos[i] = h1 % size;
    skip[i] = size === 1 ? 1 : (h2 % (size - 1)) + 1;
  }
  let deficit = 0;
  for (let i = 0; i < n; i++) deficit += Math.max(0, quota[i] - count[i]);
  while (deficit > 0) {
    for (const i of order) {
      if (count[i] >= quota[i]) continue;
      let c = pos[i];
      for (;;) {
        const owner = table[c];
        if (owner < 0 || (owner !== i && count[owner] > quota[owner])) break;
        c += skip[i];
        if (c >= size) c -= size;
      }
      const owner = table[c];
      if (owner >= 0) count[owner]--;
      table[c] = i;
      count[i]++;
      deficit--;
      c += skip[i];
      if (c >= size) c -= size;
      pos[i] = c;
      if (deficit === 0) break;
    }
  }
  return table;
}

// What removing one of N backends costs a Maglev table beyond the minimum.
// The minimum is the removed backend's own slots (about 1/N of the table):
// those flows must move. Every other slot that changes backend moves a flow
// whose backend is still there (a broken connection under L4 DNAT, a lost
// affinity under L7): that is the excess, counted here as a fraction of the
// table. The table size stays the same across the removal, as the ingress
// keeps it (a new size remaps nearly everything).
//
// The ingress rebalances from the table in use (maglevRebalance), which is
// what `excess` measures; `freshExcess` is what rebuilding a plain Maglev
// table for the new set would have moved, for comparison.
import { maglevRebalance, maglevSize, maglevTable } from '../../../ingress/balance/maglev';
import { stats, type Stats } from '../weft/stats';

export type Remap = {
  n: number;
  size: number;
  /** how many removals were tried (each backend, or an even sample of them) */
  removals: number;
  /** the minimum: the removed backend's share of slots, mean over removals */
  necessary: number;
  /** slots that changed although their backend stayed, as a fraction of the table */
  excess: Stats;
  /** the same for a table rebuilt from scratch (plain Maglev) */
  freshExcess: Stats;
};

/** Backend keys as the ingress names them: `ip:port`. */
export function keysFor(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `10.244.${1 + (i >> 8)}.${i & 255}:8080`);
}

export function remap(n: number, maxRemovals = 20): Remap {
  const keys = keysFor(n);
  const size = maglevSize(n);
  const before = maglevTable(keys, size);
  const step = Math.max(1, Math.floor(n / maxRemovals));
  const excess: number[] = [];
  const freshExcess: number[] = [];
  const necessary: number[] = [];
  const named = Array.from(before, (i) => keys[i]);
  for (let r = 0; r < n; r += step) {
    const kept = keys.filter((_, i) => i !== r);
    const after = maglevRebalance(named, kept);
    const fresh = maglevTable(kept, size);
    let needed = 0;
    let extra = 0;
    let freshExtra = 0;
    for (let s = 0; s < size; s++) {
      const was = keys[before[s]];
      if (was === keys[r]) needed++;
      else {
        if (kept[after[s]] !== was) extra++;
        if (kept[fresh[s]] !== was) freshExtra++;
      }
    }
    necessary.push(needed / size);
    excess.push(extra / size);
    freshExcess.push(freshExtra / size);
  }
  return {
    n, size, removals: excess.length, necessary: necessary.reduce((a, b) => a + b, 0) / necessary.length,
    excess: stats(excess), freshExcess: stats(freshExcess),
  };
}

// Weighted power of two choices (Mitzenmacher): draw two distinct endpoints
// at random and take the one with fewer requests in flight per unit of
// weight. Nearly as good as "least loaded of all" at O(1) per pick, and,
// unlike always taking the global minimum, it does not send a burst from
// several proxies (or several picks before any completes) to the same idle
// endpoint. (inFlight + 1) / weight scores what the endpoint would carry
// with this request, so weight matters even when both are idle.

export type P2CItem = { readonly inFlight: number; readonly weight: number };

/** One of `items` (undefined when empty). `rng` returns uniform numbers in [0, 1). */
export function pickP2C<T extends P2CItem>(items: readonly T[], rng: () => number): T | undefined {
  const n = items.length;
  if (n === 0) return undefined;
  if (n === 1) return items[0];
  const i = Math.floor(rng() * n);
  // a second draw over the other n-1, shifted past i: distinct without a retry loop
  let j = Math.floor(rng() * (n - 1));
  if (j >= i) j++;
  const a = items[i];
  const b = items[j];
  // ties go to the first draw, itself random
  return (b.inFlight + 1) / b.weight < (a.inFlight + 1) / a.weight ? b : a;
}

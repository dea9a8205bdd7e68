// Summary statistics and the markdown table the benches print. One quantile
// rule (linear interpolation between the closest ranks) everywhere, so
// spreads read the same across benches.

export type Stats = { n: number; median: number; p25: number; p75: number; min: number; max: number };

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, median: quantile(s, 0.5), p25: quantile(s, 0.25), p75: quantile(s, 0.75), min: s[0], max: s[s.length - 1] };
}

export const median = (xs: number[]): number => quantile([...xs].sort((a, b) => a - b), 0.5);

export const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

/** Spread for the JSON line, rounded so the line stays readable. */
export function spread(s: Stats, d = 1): { min: number; p25: number; p75: number; max: number } {
  return { min: round(s.min, d), p25: round(s.p25, d), p75: round(s.p75, d), max: round(s.max, d) };
}

/** A markdown table: first column left-aligned, the rest right-aligned (numbers). */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [fmt(head), rule, ...rows.map(fmt)].join('\n');
}

// A benchmark's knobs come from WEFT_BENCH_* variables; a bad value stops the
// run before it starts, naming the variable.

/** The integer in `name`, else `dflt`; throws when it is not an integer of at least `min`. */
export function envInt(name: string, dflt: number, min: number): number {
  const v = Number(process.env[name] ?? dflt);
  if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer of at least ${min} (got ${process.env[name]})`);
  return v;
}

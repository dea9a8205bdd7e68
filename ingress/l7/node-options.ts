// The options for node itself that the proxy's tail latency relies on.
//
// V8 starts a process with a 1 MB young generation, grows it only after many
// collections and shrinks it back whenever allocation slows down (every pause
// in traffic). The proxy allocates some tens of KB per request in Node's
// HTTP server and undici, so with the default it collects every few dozen
// requests, and on a loaded machine each collection (and the helper threads
// it wakes) stalls every request in flight. With a 16 MB floor the ingress
// collected 4 to 15 times less often per request and spent 2 to 20 times
// less time paused (ingress/l7/README.md has the measurement).
//
// Only node's own command line can set it: NODE_OPTIONS refuses
// --min-semi-space-size, v8.setFlagsFromString cannot resize a heap that
// already exists (and setting --single-threaded-gc that way aborts V8 at the
// next collection), and re-executing the process would change its PID, which
// signals and the listener handover rely on. So the ingress only says so when
// it runs without them.

export const RECOMMENDED_NODE_OPTIONS: readonly string[] = ['--min-semi-space-size=16'];

/** V8 reads `--a_b` as `--a-b`, and a value may follow as `=v` or as the next argument. */
function optionName(arg: string): string {
  const eq = arg.indexOf('=');
  return (eq < 0 ? arg : arg.slice(0, eq)).replace(/_/g, '-');
}

/** The recommended options `execArgv` (process.execArgv) does not set, at any value: an operator's own value stands. */
export function missingNodeOptions(execArgv: readonly string[]): string[] {
  const given = new Set(execArgv.map(optionName));
  return RECOMMENDED_NODE_OPTIONS.filter((o) => !given.has(optionName(o)));
}

// wrk, run inside a lab namespace, and its report parsed: requests per
// second, the latency distribution (--latency), and every error it counts
// (socket connect/read/write/timeout, and answers that are not 2xx/3xx).
//
// Rate-limited runs: wrk 4 (Debian's) is closed-loop, and wrk2 is not
// packaged. A Lua `delay()` makes each connection wait after an answer
// before sending its next request, so C connections offer about
// C * 1000 / (D + latency) requests per second, D the mean wait; wrk times
// each request from its write to its answer, so the wait is not in the
// latency. C is chosen for the target rate with D = 10 ms and the rate
// actually reached is reported next to the latency, so a run that fell short
// is visible.
//
// The wait is drawn from an exponential distribution (mean D), not fixed.
// With a fixed D every connection answered in the same millisecond (wrk's
// timers have 1 ms resolution and fire together) sends again in the same
// millisecond: the connections stay in step and the proxy sees bursts of
// dozens of requests at once, where independent clients would arrive
// spread out (Poisson arrivals: many independent sources, each with random
// gaps). The burst, not the proxy, then sets the p99: the last request of a
// burst of 47 waits for the 46 before it. The same script is used for every
// path, direct included. WEFT_BENCH_PAUSE=fixed brings the old fixed wait
// back, to compare with runs made before.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../../lab/lab';
import { pinned } from '../weft/cpu-placement';

export type WrkResult = {
  rps: number;
  requests: number;
  seconds: number;
  /** latency percentiles in ms */
  p50: number;
  p90: number;
  p99: number;
  errors: { connect: number; read: number; write: number; timeout: number; status: number };
  raw: string;
};

export const DELAY_MS = 10;

const unitMs: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function duration(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) throw new Error(`wrk: cannot read duration "${text}"`);
  return Number(m[1]) * unitMs[m[2]];
}

export function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(out);
  if (!rps || !total) throw new Error(`wrk printed no summary:\n${out}`);
  const pct = (p: number) => {
    const m = new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out);
    if (!m) throw new Error(`wrk printed no ${p}% latency (run it with --latency):\n${out}`);
    return duration(m[1]);
  };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return {
    rps: Number(rps[1]),
    requests: Number(total[1]),
    seconds: duration(`${total[2]}${total[3]}`) / 1000,
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    errors: {
      connect: Number(sock?.[1] ?? 0), read: Number(sock?.[2] ?? 0), write: Number(sock?.[3] ?? 0), timeout: Number(sock?.[4] ?? 0),
      status: Number(non2xx?.[1] ?? 0),
    },
    raw: out,
  };
}

export const errorCount = (r: WrkResult): number => Object.values(r.errors).reduce((a, b) => a + b, 0);

export type PauseMode = 'exponential' | 'fixed';

export function pauseMode(env: string | undefined): PauseMode {
  if (env === undefined || env === '' || env === 'exponential') return 'exponential';
  if (env === 'fixed') return 'fixed';
  throw new Error(`WEFT_BENCH_PAUSE must be exponential or fixed (got ${env})`);
}

/** The Lua text of the pause: exponential with mean DELAY_MS (rounded to wrk's whole ms), or DELAY_MS each time. */
export function pauseLua(mode: PauseMode): string {
  if (mode === 'fixed') return `function delay()\n  return ${DELAY_MS}\nend\n`;
  // Each wrk thread has its own Lua state: seed it once, from the clock, on its first pause.
  return [
    'local seeded = false',
    'function delay()',
    '  if not seeded then',
    '    math.randomseed(os.time() + math.floor(os.clock() * 1e6))',
    '    seeded = true',
    '  end',
    `  return math.floor(-${DELAY_MS} * math.log(1 - math.random()) + 0.5)`,
    'end',
    '',
  ].join('\n');
}

/** The Lua file that makes every connection pause (mean DELAY_MS) between an answer and its next request. */
export function delayScript(dir: string, mode: PauseMode = 'exponential'): string {
  const p = join(dir, `delay-${mode}.lua`);
  writeFileSync(p, pauseLua(mode));
  return p;
}

/** Connections for about `rate` requests/s with the delay script (at least 1). */
export function connectionsFor(rate: number): number {
  return Math.max(1, Math.round((rate * DELAY_MS) / 1000));
}

/** cpus: a taskset CPU list to run wrk on (bench/weft/cpu-placement.ts), or anywhere */
export type WrkRun = { url: string; connections: number; seconds: number; script?: string; timeoutS?: number; cpus?: string | null };

/** One wrk run in `netns`, started as a lab process (stopped with the lab if interrupted). */
export async function wrk(lab: Lab, netns: string, r: WrkRun): Promise<WrkResult> {
  const args = ['-t1', `-c${r.connections}`, `-d${r.seconds}s`, '--latency', `--timeout`, `${r.timeoutS ?? 5}s`, ...(r.script ? ['-s', r.script] : []), r.url];
  const [cmd, argv] = pinned(r.cpus ?? null, 'wrk', args);
  const p = lab.spawn(netns, cmd, argv);
  const st = await p.wait();
  if (st.code !== 0) throw new Error(`wrk ${args.join(' ')} exited ${st.code ?? st.signal}: ${p.output()}`);
  return parseWrk(p.output());
}

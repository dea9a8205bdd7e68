// Where a benchmark's processes may run. On a small machine the load
// generator, the backends and the system under test otherwise take turns on
// the same CPUs, and the latency measured is mostly the time one of them
// waited for another to leave a CPU. A deployed proxy has its host's CPUs to
// itself, so a bench can give the process under test CPUs of its own and put
// everything that only plays the outside world (client, backends) on the rest.
// Every peer compared in a run gets the same placement.
//
// WEFT_BENCH_PLACEMENT: "shared" (the default: no pinning, every process
// anywhere) or "split" (the process under test on the last CPU, the rest on
// the others; needs 2 or more CPUs). On this 2-core lab, split did not lower
// any proxy's added p99 at half load (HAProxy +2.3 ms, weft L7 +3.9 ms, each
// waiting ~10 µs per request for its CPU), and it made the closed-loop
// throughput of the Node proxies swing 2x between rounds, because one CPU
// then carries wrk, four backends and most of the forwarding: the tail is
// not CPU queueing in the proxy.
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';

export type Placement = {
  mode: 'split' | 'shared';
  /** taskset list for the process under test, or null when nothing is pinned */
  underTest: string | null;
  /** taskset list for load generators and backends, or null when nothing is pinned */
  world: string | null;
};

export function placementFromEnv(env: string | undefined, cpuCount = cpus().length): Placement {
  const mode = env === undefined || env === '' ? 'shared' : env;
  if (mode === 'shared') return { mode, underTest: null, world: null };
  if (mode !== 'split') throw new Error(`WEFT_BENCH_PLACEMENT must be split or shared (got ${env})`);
  if (cpuCount < 2) throw new Error(`WEFT_BENCH_PLACEMENT=split needs at least 2 CPUs (this machine has ${cpuCount})`);
  const last = cpuCount - 1;
  return { mode, underTest: String(last), world: last === 1 ? '0' : `0-${last - 1}` };
}

/** Pins every thread of `pid` (and so the threads it starts later) to `list`; a no-op for null. */
export function pin(pid: number, list: string | null): void {
  if (list === null) return;
  execFileSync('taskset', ['-a', '-p', '-c', list, String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** The command line that starts `cmd` pinned to `list` (unchanged for null). */
export function pinned(list: string | null, cmd: string, args: string[]): [string, string[]] {
  return list === null ? [cmd, args] : ['taskset', ['-c', list, cmd, ...args]];
}

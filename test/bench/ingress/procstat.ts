// Where a process's time went during a run, from the kernel's own
// accounting: CPU time of its main thread and of its other threads (V8's GC
// and compiler helpers, libuv's pool), time spent runnable but waiting for a
// CPU (the run queue: on 2 cores shared by wrk, the proxy and four backends,
// this is the contention), and how often it was preempted. Read from
// /proc/<pid>/task/*/schedstat and status before and after, the difference
// per request served. And the GC of a Node process that exports prom-client's
// default metrics (the ingress's /metrics).
import { readFileSync, readdirSync } from 'node:fs';

export type ProcTimes = { mainCpuNs: number; otherCpuNs: number; waitNs: number; preempted: number };

const zero = (): ProcTimes => ({ mainCpuNs: 0, otherCpuNs: 0, waitNs: 0, preempted: 0 });

/** schedstat: "<ns on cpu> <ns waiting on a run queue> <timeslices>". */
export function parseSchedstat(text: string): { cpuNs: number; waitNs: number } {
  const [cpu, wait] = text.trim().split(/\s+/).map(Number);
  if (!Number.isFinite(cpu) || !Number.isFinite(wait)) throw new Error(`cannot read schedstat "${text.trim()}"`);
  return { cpuNs: cpu, waitNs: wait };
}

/** The sum over the process's threads now; threads that end between the listing and the read are skipped. */
export function procTimes(pid: number): ProcTimes {
  const t = zero();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let sched: string;
    let status: string;
    try {
      sched = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8');
      status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    } catch {
      continue;
    }
    const s = parseSchedstat(sched);
    if (Number(tid) === pid) t.mainCpuNs += s.cpuNs;
    else t.otherCpuNs += s.cpuNs;
    t.waitNs += s.waitNs;
    t.preempted += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  }
  return t;
}

export function sumTimes(pids: number[]): ProcTimes {
  return pids.map(procTimes).reduce((a, b) => ({
    mainCpuNs: a.mainCpuNs + b.mainCpuNs, otherCpuNs: a.otherCpuNs + b.otherCpuNs, waitNs: a.waitNs + b.waitNs, preempted: a.preempted + b.preempted,
  }), zero());
}

/** Per request, in microseconds (preemptions as a count per 1000 requests). */
export type PerRequest = { mainCpuUs: number; otherCpuUs: number; waitUs: number; preemptedPer1k: number };

export function perRequest(before: ProcTimes, after: ProcTimes, requests: number): PerRequest {
  const n = Math.max(1, requests);
  return {
    mainCpuUs: (after.mainCpuNs - before.mainCpuNs) / 1e3 / n,
    otherCpuUs: (after.otherCpuNs - before.otherCpuNs) / 1e3 / n,
    waitUs: (after.waitNs - before.waitNs) / 1e3 / n,
    preemptedPer1k: ((after.preempted - before.preempted) * 1000) / n,
  };
}

export type GcTotals = Record<string, { count: number; seconds: number }>;

/** prom-client's nodejs_gc_duration_seconds histogram, by kind (minor, major, incremental, weakcb). */
export function parseGcMetrics(text: string): GcTotals {
  const out: GcTotals = {};
  const re = /^nodejs_gc_duration_seconds_(sum|count)\{kind="([a-z]+)"\}\s+([\d.eE+-]+)$/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const k = (out[m[2]] ??= { count: 0, seconds: 0 });
    if (m[1] === 'sum') k.seconds = Number(m[3]);
    else k.count = Number(m[3]);
  }
  // prom-client always lists the kinds it has seen; none at all means the format changed, not "no GC"
  if (Object.keys(out).length === 0) throw new Error('no nodejs_gc_duration_seconds in the metrics (collectDefaultMetrics off, or renamed?)');
  return out;
}

/** GC between two scrapes: pauses and their total per 1000 requests. */
export type GcPerRequest = { pausesPer1k: number; msPer1k: number; meanPauseMs: number; pausesByKind: Record<string, number> };

export function gcPerRequest(before: GcTotals, after: GcTotals, requests: number): GcPerRequest {
  let count = 0;
  let seconds = 0;
  const pausesByKind: Record<string, number> = {};
  for (const [kind, a] of Object.entries(after)) {
    const b = before[kind] ?? { count: 0, seconds: 0 };
    count += a.count - b.count;
    seconds += a.seconds - b.seconds;
    if (a.count > b.count) pausesByKind[kind] = a.count - b.count;
  }
  const n = Math.max(1, requests);
  return { pausesPer1k: (count * 1000) / n, msPer1k: (seconds * 1e6) / n, meanPauseMs: count > 0 ? (seconds * 1000) / count : 0, pausesByKind };
}

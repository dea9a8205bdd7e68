// Update time of the L4 kernel path: `services` TCP service ports of
// `endpointsPerService` backends each are loaded into a table of a throwaway
// namespace, then `changes` single-endpoint changes are applied one sync at a
// time (remove one backend of a random service, or put back the one removed
// before), each timed from the sync call to its return (render, diff, one
// transaction, gen check). The namespace is removed afterwards, also on
// failure. Called by test/bench/ingress.ts for 100 and 10,000 services.
//
// Run alone: `npm run bench -- ingress-l4` measures 100 and 10,000 services x
// 10 endpoints in the same process, alternating, WEFT_BENCH_L4_ROUNDS times
// (3; the machine is shared, so the spread over rounds is reported), each
// round WEFT_BENCH_L4_CHANGES changes (200); the last line is the JSON
// summary: per size the median over rounds of p50 and p99 with their spread,
// and the ratios 10,000 / 100 of those medians. The goal: p99 < 50 ms at
// 10,000 and at most twice the p99 at 100.
// One size only: node --import tsx test/bench/ingress-l4.ts <services> [endpoints] [changes]
import { loadavg } from 'node:os';
import { round, spread, stats } from './weft/stats';
import { silentLogger } from '../../controller/common/log';
import { netnsAdd, netnsDelete, netnsExists } from '../../dataplane/netlink/netns';
import { createL4Programmer, type L4Service } from '../../ingress/l4';
import type { Endpoint } from '../../ingress/model';
import { recordOwnedNetns, uniqueName } from '../helpers/names';

function endpoint(ip: string, port: number): Endpoint {
  return { key: `${ip}:${port}`, ip, port, host: 'bench', rack: 'r1', datacenter: 'dc1', containerId: ip };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export async function measureL4Updates(services: number, endpointsPerService: number, changes: number): Promise<{ p50: number; p99: number; loadMs: number }> {
  if (services > 60_000) throw new Error('measureL4Updates: at most 60,000 service ports (one TCP port each)');
  const ns = uniqueName('l4b');
  netnsAdd(ns);
  recordOwnedNetns(ns);
  const p = createL4Programmer({ table: ns, addresses: ['192.0.2.1'], sourceNat: 'masquerade', logger: silentLogger, netns: ns });
  try {
    const all: Endpoint[][] = [];
    const svcs: L4Service[] = [];
    for (let i = 0; i < services; i++) {
      const eps = Array.from({ length: endpointsPerService }, (_, j) => endpoint(`10.${(i >> 8) & 255}.${i & 255}.${j + 1}`, 8080));
      all.push(eps);
      svcs.push({ name: `svc${i}`, port: 1024 + i, protocol: 'tcp', affinity: 'none', endpoints: [...eps] });
    }
    const load = await p.sync(svcs);
    // a deterministic sequence, so runs compare
    let seed = 12345;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    const removed = new Map<number, number>();
    const times: number[] = [];
    for (let c = 0; c < changes; c++) {
      const i = rand(services);
      const gone = removed.get(i);
      if (gone !== undefined) {
        removed.delete(i);
        svcs[i] = { ...svcs[i], endpoints: [...all[i]] };
      } else {
        const j = rand(endpointsPerService);
        removed.set(i, j);
        svcs[i] = { ...svcs[i], endpoints: all[i].filter((_, k) => k !== j) };
      }
      const t = performance.now();
      const r = await p.sync(svcs);
      times.push(performance.now() - t);
      if (r.changed === 0) throw new Error(`measureL4Updates: change ${c} changed nothing`);
    }
    times.sort((a, b) => a - b);
    return { p50: percentile(times, 50), p99: percentile(times, 99), loadMs: load.ms };
  } finally {
    try {
      await p.remove();
    } finally {
      p.close();
      if (netnsExists(ns)) netnsDelete(ns);
    }
  }
}

async function compareSizes(): Promise<void> {
  const rounds = Number(process.env.WEFT_BENCH_L4_ROUNDS ?? 3);
  const changes = Number(process.env.WEFT_BENCH_L4_CHANGES ?? 200);
  if (!(Number.isInteger(rounds) && rounds >= 1)) throw new Error(`WEFT_BENCH_L4_ROUNDS must be a whole number >= 1 (got ${process.env.WEFT_BENCH_L4_ROUNDS})`);
  if (!(Number.isInteger(changes) && changes >= 100)) throw new Error(`WEFT_BENCH_L4_CHANGES must be a whole number >= 100, so a p99 is not the maximum (got ${process.env.WEFT_BENCH_L4_CHANGES})`);
  const loadBefore = loadavg().map((x) => round(x, 2));
  const sizes = [100, 10_000] as const;
  const runs = new Map<number, Array<Awaited<ReturnType<typeof measureL4Updates>>>>(sizes.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    // alternating, so both sizes see the same spells of a busy machine
    for (const n of r % 2 === 0 ? sizes : [...sizes].reverse()) {
      (globalThis as { gc?: () => void }).gc?.();
      const m = await measureL4Updates(n, 10, changes);
      runs.get(n)!.push(m);
      console.log(`round ${r + 1}/${rounds}: ${n} services x 10: p50 ${round(m.p50, 2)} ms, p99 ${round(m.p99, 2)} ms (load ${round(m.loadMs, 0)} ms)`);
    }
  }
  const summary = (n: number) => {
    const p50 = stats(runs.get(n)!.map((m) => m.p50));
    const p99 = stats(runs.get(n)!.map((m) => m.p99));
    return { p50: round(p50.median, 2), p99: round(p99.median, 2), p50_spread: spread(p50, 2), p99_spread: spread(p99, 2), load_ms: round(stats(runs.get(n)!.map((m) => m.loadMs)).median, 0) };
  };
  const small = summary(100);
  const large = summary(10_000);
  const ratioP99 = round(large.p99 / small.p99, 2);
  console.log(JSON.stringify({
    changes, rounds, small, large, ratio_p99: ratioP99, ratio_p50: round(large.p50 / small.p50, 2),
    goal_met: large.p99 < 50 && ratioP99 <= 2, loadavg_before: loadBefore, loadavg_after: loadavg().map((x) => round(x, 2)),
  }));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [s, e, c] = process.argv.slice(2).map(Number);
  if (s) console.log(JSON.stringify(await measureL4Updates(s, e || 10, c || 200)));
  else await compareSizes();
}

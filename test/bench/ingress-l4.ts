// Update time of the L4 kernel path: `services` TCP service ports of
// `endpointsPerService` backends each are loaded into a table of a throwaway
// namespace, then `changes` single-endpoint changes are applied one sync at a
// time (remove one backend of a random service, or put back the one removed
// before), each timed from the sync call to its return (render, diff, one
// transaction, gen check). The namespace is removed afterwards, also on
// failure. Called by test/bench/ingress.ts for 100 and 10,000 services;
// run alone: node --import tsx test/bench/ingress-l4.ts [services] [endpoints] [changes]
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

if (import.meta.url === `file://${process.argv[1]}`) {
  const [s, e, c] = process.argv.slice(2).map(Number);
  const r = await measureL4Updates(s || 100, e || 10, c || 200);
  console.log(JSON.stringify(r));
}

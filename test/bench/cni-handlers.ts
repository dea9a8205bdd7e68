// Latency of the agent's ADD and DEL handlers (the agent's share of a
// container start/stop; the shim and socket come on top), against the kernel:
// a test namespace plays the host with its bridge, one namespace per
// container. The IPAM file lives on disk (/var/tmp), not tmpfs, because the
// fsync of every allocation is part of what is measured; the store's own
// allocate+release is timed alone as well, to show that share.
//
// Run: npm run bench -- cni-handlers   (or: node --import tsx test/bench/run.ts cni-handlers)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createCniHandlers } from '../../cni-plugin/agent/cni-handlers';
import { openIpamStore } from '../../cni-plugin/agent/ipam-store';
import type { NetworkAttachment } from '../../cni-plugin/agent/state/types';
import type { CniCommand, CniRequest } from '../../cni-plugin/cni/types';
import { netnsAdd, netnsDelete, netnsExists } from '../../dataplane/netlink/netns';
import { recordOwnedNetns, uniqueName } from '../helpers/names';

const CONTAINERS = Number(process.env.WEFT_BENCH_CONTAINERS ?? 100);
const REPS = Number(process.env.WEFT_BENCH_REPS ?? 3);

const ATT: NetworkAttachment = {
  network: 'bench', vni: 1, networkCidr: '10.97.0.0/16', subnet: '10.97.0.0/24', gateway: '10.97.0.1',
  vxlanDevice: 'weft.vx1', bridge: 'weft.br1', mtu: 1450,
};

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { n: s.length, mean: r(s.reduce((a, b) => a + b, 0) / s.length), p50: r(q(0.5)), p95: r(q(0.95)), p99: r(q(0.99)), max: r(s[s.length - 1]) };
}

function newNetns(): string {
  const name = uniqueName('c');
  netnsAdd(name);
  recordOwnedNetns(name);
  return name;
}

async function main(): Promise<void> {
  const made: string[] = [];
  const dir = mkdtempSync('/var/tmp/weft-bench-cni-');
  const ipam = openIpamStore({ path: join(dir, 'agent.db') });
  try {
    const host = newNetns();
    made.push(host);
    execFileSync('ip', ['-n', host, 'link', 'add', ATT.bridge, 'type', 'bridge']);
    execFileSync('ip', ['-n', host, 'addr', 'add', `${ATT.gateway}/24`, 'dev', ATT.bridge]);
    execFileSync('ip', ['-n', host, 'link', 'set', ATT.bridge, 'up']);
    const containers = Array.from({ length: CONTAINERS }, () => newNetns());
    made.push(...containers);

    const h = createCniHandlers({
      attachment: (n) => (n === ATT.network ? ATT : undefined),
      ipam,
      endpoints: { registered: () => {}, released: () => {} },
      hostNetns: `/run/netns/${host}`,
    });
    const req = (command: CniCommand, ns: string, i: number): CniRequest => ({
      command, containerId: `bench-${i}`, netns: `/run/netns/${ns}`, ifname: 'eth0', args: {}, path: [],
      config: { cniVersion: '1.1.0', name: 'weft', type: 'weft', network: ATT.network, agentSocket: '', raw: {} },
    });

    const add: number[] = [];
    const del: number[] = [];
    const store: number[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      globalThis.gc?.();
      for (let i = 0; i < CONTAINERS; i++) {
        const t0 = performance.now();
        await h.add(req('ADD', containers[i], i));
        add.push(performance.now() - t0);
      }
      // all attached at once: DEL timings include a bridge with CONTAINERS ports
      for (let i = 0; i < CONTAINERS; i++) {
        const t0 = performance.now();
        await h.del(req('DEL', containers[i], i));
        del.push(performance.now() - t0);
      }
      for (let i = 0; i < CONTAINERS; i++) {
        const t0 = performance.now();
        ipam.allocate('store-only', ATT.subnet, ATT.gateway, `s-${i}`, 'eth0');
        ipam.release('store-only', `s-${i}`, 'eth0');
        store.push(performance.now() - t0);
      }
    }
    const summary = {
      bench: 'cni-handlers',
      date: new Date().toISOString(),
      containers: CONTAINERS,
      reps: REPS,
      loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
      addMs: stats(add),
      delMs: stats(del),
      ipamAllocateReleaseMs: stats(store),
    };
    console.log(`ADD  ms: ${JSON.stringify(summary.addMs)}`);
    console.log(`DEL  ms: ${JSON.stringify(summary.delMs)}`);
    console.log(`IPAM allocate+release ms: ${JSON.stringify(summary.ipamAllocateReleaseMs)}`);
    console.log(JSON.stringify(summary));
  } finally {
    ipam.close();
    rmSync(dir, { recursive: true, force: true });
    for (const n of made) if (netnsExists(n)) netnsDelete(n);
  }
}

await main();

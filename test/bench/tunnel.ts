// Container-to-container TCP throughput between datacenters: weft's tunnel
// against WireGuard set up by hand with `wg` between the same gateway
// namespaces, in the same lab and the same run; plus the CPU each costs and
// how long weft takes to fail over when the gateway carrying traffic stops
// forwarding while it stays up.
//
// Lab: dc1 = rack a {g1a, g1b, h1}, dc2 = rack b {g2a, g2b, h2}, a
// controller; each datacenter's router joins the WAN router. Every link is
// MTU 1500.
//
// - weft: `weft controller`, a `weft agent` on all six hosts, `weft
//   datacenter add dc1 --gateways g1a,g1b` (and dc2), one container on h1 and
//   one on h2 through the CNI shim. Path: container ─ h1 ─ VXLAN ─ gateway ─
//   weft.xdc (VXLAN) in weft.wg0 (wireguard-go) ─ WAN ─ gateway ─ VXLAN ─ h2 ─
//   container; which gateways carry it is weft's choice.
// - raw WireGuard: wireguard-go (the same Debian binary) in g1a and g2a,
//   configured with `wg set`, routes by hand; container ─ h1 ─ routed ─ g1a ─
//   WireGuard ─ WAN ─ g2a ─ routed ─ h2 ─ container (see tunnel/raw-wg.ts).
//   So weft's path carries two VXLAN headers the hand-made one does not, and
//   its TCP segments are smaller (MSS clamped to weft.xdc's MTU 1390 − 40,
//   against 1440 − 40): that is the price of its design, and measured here.
//   Both wireguard-go run in the same namespaces with the same socket buffers
//   (net.core.[rw]mem_* are read-only outside the initial namespace; the
//   bench prints them). The tunnel lab runs its agents at log level debug.
//
// Each round runs one `iperf3 -c` per method (single TCP stream, h1's
// container to h2's), order alternating between rounds. Every run is
// verified: the method's WireGuard devices sent at least the bytes iperf3
// delivered, the dc1 router's WAN port did too, and the other method's
// devices sent next to nothing. CPU per run: see tunnel/cpu.ts. Then
// failover (see tunnel/failover.ts), alternating the black-holed gateway
// between dc1 and dc2.
//
// Run: npm run bench -- tunnel
// Knobs (env): WEFT_BENCH_ROUNDS (5), WEFT_BENCH_SECONDS (10),
// WEFT_BENCH_FAILOVERS (10); WEFT_BENCH_QUICK=1 for a short trial (2 rounds
// of 3 s, 3 failovers); WEFT_BENCH_TUNNEL_METHODS=raw measures the
// hand-made path alone (no weft).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '../helpers/wait';
import { createLab, type Lab, type LabHost } from '../lab/lab';
import { createTunnelLab, type TunnelContainer, type TunnelLab } from '../tunnel/lab';
import { cpuDelta, cpuSnapshot, wireguardGoPids, type CpuDelta } from './tunnel/cpu';
import { failoverTry, PingStream, type FailoverTry } from './tunnel/failover';
import { checkpoint, onCleanup, runInterruptible } from './weft/interruptible';
import { buildRawWireGuard, RAW_MTU, type RawPath } from './tunnel/raw-wg';
import { quantile, round, spread, stats, table, type Stats } from './weft/stats';

const QUICK = process.env.WEFT_BENCH_QUICK === '1';
const ROUNDS = Number(process.env.WEFT_BENCH_ROUNDS ?? (QUICK ? 2 : 5));
const SECONDS = Number(process.env.WEFT_BENCH_SECONDS ?? (QUICK ? 3 : 10));
const FAILOVERS = Number(process.env.WEFT_BENCH_FAILOVERS ?? (QUICK ? 3 : 10));
const WITH_WEFT = (process.env.WEFT_BENCH_TUNNEL_METHODS ?? 'weft,raw').split(',').includes('weft');
const OMIT = 1;
const PORT = 5201;
const WG_DEV = 'weft.wg0';
/** A try that has not recovered by then counts as this long. */
const FAILOVER_TIMEOUT_MS = 15_000;
/** After a black-hole is lifted: time for every prober to see that gateway answer again before the next try. */
const SETTLE_MS = 3_000;

type Key = 'weft' | 'raw_wg';
type Side = { host: LabHost; ctrNs: string; addr: string };
/** devices: [host, netns, ifname] of the method's WireGuard devices; wgPids: its wireguard-go processes now */
type Method = { key: Key; label: string; src: Side; dst: Side; devices: Array<[string, string, string]>; wgPids: () => number[] };
/** via: the gateway whose WireGuard device sent the most, per datacenter (data out of dc1, acks out of dc2) */
type Run = { gbps: number; retransmits: number; cpu: CpuDelta; wgPids: number; via: string };

let lab: Lab | undefined;
let tunnelLab: TunnelLab | undefined;

const sh = (ns: string, cmd: string, args: string[]) => lab!.exec(ns, cmd, args).stdout;

function txBytes(ns: string, dev: string): number {
  const r = lab!.exec(ns, 'ip', ['-j', '-s', 'link', 'show', 'dev', dev], { check: false });
  if (r.status !== 0) return 0; // a gateway that has no such device (yet) sent nothing on it
  return (JSON.parse(r.stdout) as Array<{ stats64: { tx: { bytes: number } } }>)[0].stats64.tx.bytes;
}

const devTx = (devs: Array<[string, string, string]>) => devs.map(([, ns, d]) => txBytes(ns, d));
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

async function reachable(from: Side, to: Side, what: string, ms: number): Promise<void> {
  await waitFor(`${what}: ${from.addr} (${from.host.name}) to reach ${to.addr} (${to.host.name})`,
    () => lab!.exec(from.ctrNs, 'ping', ['-c1', '-W1', to.addr], { check: false }).status === 0, ms, 200);
}

type Iperf = { end: { sum_received: { bytes: number; bits_per_second: number }; sum_sent: { retransmits?: number } }; error?: string };

function once(m: Method, others: Method[], wan: [string, string], seconds: number): Run {
  const pids = m.wgPids();
  if (pids.length === 0) throw new Error(`${m.key}: no wireguard-go process found`);
  const otherDevs = others.flatMap((o) => o.devices);
  const before = { own: devTx(m.devices), wan: txBytes(...wan), other: sum(devTx(otherDevs)) };
  const c0 = cpuSnapshot(pids);
  const res = lab!.exec(m.src.ctrNs, 'iperf3', ['-c', m.dst.addr, '-p', String(PORT), '-t', String(seconds), '-O', String(OMIT), '-J'], { timeoutMs: (seconds + OMIT + 30) * 1000, check: false });
  const c1 = cpuSnapshot(pids);
  const after = { own: devTx(m.devices), wan: txBytes(...wan), other: sum(devTx(otherDevs)) };
  const sent = after.own.map((b, i) => b - before.own[i]);
  let r: Iperf;
  try {
    r = JSON.parse(res.stdout) as Iperf;
  } catch {
    throw new Error(`${m.key}: iperf3 gave no JSON (exit ${res.status}): ${res.stderr || res.stdout}`);
  }
  if (r.error || res.status !== 0) throw new Error(`${m.key}: iperf3 failed: ${r.error ?? res.stderr}`);
  const got = r.end.sum_received.bytes;
  if (!(got > 0)) throw new Error(`${m.key}: iperf3 delivered nothing`);
  // the omitted second is not in sum_received, so the counters must show at least the counted bytes
  if (sum(sent) < got) throw new Error(`${m.key}: its WireGuard devices sent ${sum(sent)} bytes, iperf3 counted ${got}: the traffic did not take this tunnel`);
  if (after.wan - before.wan < got) throw new Error(`${m.key}: dc1's WAN port sent ${after.wan - before.wan} bytes, fewer than iperf3's ${got}: the traffic did not cross the WAN`);
  if (after.other - before.other > got / 100) throw new Error(`${m.key}: the other method's WireGuard devices also sent ${after.other - before.other} bytes during the run`);
  return { gbps: r.end.sum_received.bits_per_second / 1e9, retransmits: r.end.sum_sent.retransmits ?? 0, cpu: cpuDelta(c0, c1), wgPids: pids.length, via: busiest(m, sent) };
}

/** "g1a>g2a": per datacenter, the gateway whose device sent the most in the run. */
function busiest(m: Method, sent: number[]): string {
  const dcOf = (host: string) => lab!.host(host).datacenter;
  const best = new Map<string, [string, number]>();
  m.devices.forEach(([host], i) => {
    const b = best.get(dcOf(host));
    if (!b || sent[i] > b[1]) best.set(dcOf(host), [host, sent[i]]);
  });
  return [...best.keys()].sort().map((dc) => best.get(dc)![0]).join('>');
}

/** CPU-seconds per second (cores busy), divided by the Gbit/s of the run. */
const perGbps = (r: Run, s: number) => s / r.cpu.wallS / r.gbps;

async function main(): Promise<void> {
  if (!(ROUNDS >= 1)) throw new Error(`WEFT_BENCH_ROUNDS must be at least 1 (got ${process.env.WEFT_BENCH_ROUNDS})`);
  if (!(SECONDS >= 2 && SECONDS <= 60)) throw new Error(`WEFT_BENCH_SECONDS must be 2..60 (got ${process.env.WEFT_BENCH_SECONDS})`);
  if (WITH_WEFT && !(FAILOVERS >= 1)) throw new Error(`WEFT_BENCH_FAILOVERS must be at least 1 (got ${process.env.WEFT_BENCH_FAILOVERS})`);
  const started = Date.now();
  const loadBefore = loadavg().map((x) => round(x, 2));
  const dir = mkdtempSync('/var/tmp/weft-bench-tunnel-');
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const tag = `bt${process.pid.toString(36)}`;
  const spec = {
    name: tag,
    datacenters: [
      { name: 'dc1', racks: [{ name: 'a', hosts: ['g1a', 'g1b', 'h1'] }] },
      { name: 'dc2', racks: [{ name: 'b', hosts: ['g2a', 'g2b', 'h2'] }] },
    ],
    controller: true,
  };
  let weftSides: { src: Side; dst: Side } | undefined;
  if (WITH_WEFT) {
    // the tunnel tests' lab (same spec): agents in per-host mount namespaces, datacenters and gateways added with the CLI
    const t = await createTunnelLab({ name: tag, containers: { src: 'h1', dst: 'h2' }, logLevel: 'info' });
    onCleanup(() => t.close());
    tunnelLab = t;
    lab = t.lab;
    const side = (c: TunnelContainer): Side => ({ host: c.host, ctrNs: c.netns, addr: c.ip });
    weftSides = { src: side(tunnelLab.containers.get('src')!), dst: side(tunnelLab.containers.get('dst')!) };
  } else {
    const l = await createLab(spec);
    onCleanup(() => l.destroy());
    lab = l;
  }
  const [g1a, g1b, h1, g2a, g2b, h2] = ['g1a', 'g1b', 'h1', 'g2a', 'g2b', 'h2'].map((n) => lab!.host(n));
  const dc1Router = lab.plan.routers.find((r) => r.datacenter === 'dc1')!;
  const wan: [string, string] = [dc1Router.netns, dc1Router.wanIf];
  const gateways = { dc1: [g1a, g1b], dc2: [g2a, g2b] };
  const allGateways = [...gateways.dc1, ...gateways.dc2];

  const methods: Method[] = [];
  /** the hand-made path's wireguard-go processes (weft's run in the same namespaces) */
  const rawPids = new Set<number>();
  if (weftSides) {
    const { src, dst } = weftSides;
    await reachable(src, dst, 'weft', 60_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${tunnelLab!.diagnose()}\n${tunnelLab!.logs()}`);
    });
    methods.push({
      key: 'weft', label: 'weft (weft.xdc VXLAN in weft.wg0, wireguard-go)', src, dst,
      devices: allGateways.map((g) => [g.name, g.netns, WG_DEV]),
      // weft's are every wireguard-go in the gateway namespaces but the hand-made path's (built below)
      wgPids: () => wireguardGoPids(allGateways.map((g) => g.netns)).filter((p) => !rawPids.has(p)),
    });
  }
  const raw: RawPath = await buildRawWireGuard(lab, [h1, h2], [g1a, g2a], tag, dir);
  for (const g of raw.gateways) rawPids.add(g.proc.pid);
  await reachable(raw.src, raw.dst, 'raw WireGuard', 30_000);
  methods.push({
    key: 'raw_wg', label: 'wireguard-go set up by hand with wg', src: raw.src, dst: raw.dst,
    devices: raw.gateways.map((g) => [g.host.name, g.host.netns, g.dev]), wgPids: () => [...rawPids],
  });
  for (const p of rawPids) if (wireguardGoPids([g1a.netns, g2a.netns]).indexOf(p) < 0) throw new Error(`the hand-made path's wireguard-go ${p} is not where it was started`);
  for (const m of methods) {
    lab.spawn(m.dst.ctrNs, 'iperf3', ['-s', '-p', String(PORT)]);
    await waitFor(`the iperf3 server in ${m.dst.ctrNs} to listen`, () => sh(m.dst.ctrNs, 'ss', ['-Htln', `sport = :${PORT}`]).trim(), 10_000, 50);
  }
  const mtus = methods.map((m) => sh(m.src.ctrNs, 'cat', ['/sys/class/net/eth0/mtu']).trim());
  const iperfVersion = sh(h1.netns, 'iperf3', ['--version']).split('\n')[0].trim();
  const wgVersion = sh(g1a.netns, 'wireguard-go', ['--version']).split('\n')[0].trim();
  const sysctls = ['net.core.rmem_max', 'net.core.wmem_max', 'net.core.rmem_default', 'net.core.wmem_default'].map((k) => `${k}=${sh(g1a.netns, 'sysctl', ['-n', k]).trim()}`);
  console.log(`tunnel bench: iperf3 single TCP stream, container h1 (dc1) -> container h2 (dc2) across the WAN, ${ROUNDS} rounds x ${SECONDS} s (+${OMIT} s omitted) per method, order alternating`);
  console.log(`kernel ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}, ${iperfVersion}, ${wgVersion}; container MTU ${methods.map((m, i) => `${m.key} ${mtus[i]}`).join(', ')}; g1a ${sysctls.join(' ')}`);

  const samples: Record<Key, Run[]> = { weft: [], raw_wg: [] };
  for (const m of methods) {
    await checkpoint();
    once(m, methods.filter((o) => o !== m), wan, 2); // warm-up: handshakes, ARP, TCP metrics
  }
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? methods : [...methods].reverse();
    const line: string[] = [];
    for (const m of order) {
      await checkpoint();
      const run = once(m, methods.filter((o) => o !== m), wan, SECONDS);
      samples[m.key].push(run);
      line.push(`${m.key}=${round(run.gbps, 3)} Gbit/s via ${run.via} (wireguard-go ${round(run.cpu.wgProcS / run.cpu.wallS, 2)} + softirq ${round(run.cpu.softirqS / run.cpu.wallS, 2)} cores)`);
    }
    console.log(`  round ${r + 1}/${ROUNDS}: ${line.join('  ')} (all verified)`);
  }

  const tries: FailoverTry[] = [];
  if (WITH_WEFT) {
    const weft = methods[0];
    const stream = new PingStream(lab, weft.src.ctrNs, weft.dst.addr, dir);
    for (let i = 0; i < FAILOVERS; i++) {
      await checkpoint();
      const dc = i % 2 === 0 ? 'dc1' : 'dc2';
      const t = await failoverTry(lab, stream, dc, gateways[dc], WG_DEV, FAILOVER_TIMEOUT_MS);
      tries.push(t);
      console.log(`  failover ${i + 1}/${FAILOVERS}: black-holed ${t.gateway} (${dc}): ${t.timedOut ? `no recovery within ${FAILOVER_TIMEOUT_MS} ms` : `${round(t.ms, 0)} ms`}, ${t.lost} pings lost, ${t.dropped} packets dropped by the black-hole`);
      await sleep(SETTLE_MS);
    }
    await stream.stop();
    for (const [n, a] of tunnelLab!.agents) if (a.proc.exited) throw new Error(`the agent on ${n} exited during the bench`);
  }

  const st = Object.fromEntries(methods.map((m) => [m.key, stats(samples[m.key].map((s) => s.gbps))])) as Record<Key, Stats>;
  const cpuStats = (k: Key, pick: (r: Run) => number) => stats(samples[k].map((r) => perGbps(r, pick(r))));
  const cpu = Object.fromEntries(methods.map((m) => [m.key, {
    wgPlusSoftirq: cpuStats(m.key, (r) => r.cpu.wgProcS + r.cpu.softirqS),
    wg: cpuStats(m.key, (r) => r.cpu.wgProcS),
    softirq: cpuStats(m.key, (r) => r.cpu.softirqS),
    busy: cpuStats(m.key, (r) => r.cpu.busyS),
  }])) as Record<Key, Record<'wgPlusSoftirq' | 'wg' | 'softirq' | 'busy', Stats>>;
  const retr = (k: Key) => stats(samples[k].map((s) => s.retransmits)).median;
  const base = st.raw_wg.median;
  console.log('');
  console.log(table(
    ['method', 'median Gbit/s', 'min-max', 'retransmits (median)', 'wireguard-go + softirq cores per Gbit/s', 'all CPU cores per Gbit/s', 'vs raw WireGuard'],
    methods.map((m) => {
      const s = st[m.key];
      return [m.label, round(s.median, 3).toFixed(3), `${round(s.min, 3)}-${round(s.max, 3)}`, String(retr(m.key)),
        round(cpu[m.key].wgPlusSoftirq.median, 2).toFixed(2), round(cpu[m.key].busy.median, 2).toFixed(2), `${round(s.median / base, 2).toFixed(2)}x`];
    }),
  ));
  const paired = WITH_WEFT ? stats(samples.weft.map((x, i) => x.gbps / samples.raw_wg[i].gbps)) : undefined;
  if (paired) console.log(`weft / raw WireGuard per round: median ${round(paired.median, 3)}, min-max ${round(paired.min, 3)}-${round(paired.max, 3)}`);
  const ok = tries.filter((t) => !t.timedOut);
  const fo = tries.length ? { p50: quantile(tries.map((t) => t.ms).sort((a, b) => a - b), 0.5), p99: quantile(tries.map((t) => t.ms).sort((a, b) => a - b), 0.99), max: Math.max(...tries.map((t) => t.ms)), min: Math.min(...tries.map((t) => t.ms)) } : undefined;
  if (fo) console.log(`failover (gap in a 10 ms ping stream, ${tries.length} tries, ${tries.length - ok.length} without recovery in ${FAILOVER_TIMEOUT_MS} ms): p50 ${round(fo.p50, 0)} ms, p99 ${round(fo.p99, 0)} ms, min-max ${round(fo.min, 0)}-${round(fo.max, 0)} ms`);
  console.log(`took ${round((Date.now() - started) / 1000, 0)} s`);
  console.log('');
  const sp = (s: Stats, d = 3) => spread(s, d);
  const cpuJson = (k: Key) => ({ median: round(cpu[k].wgPlusSoftirq.median, 3), ...sp(cpu[k].wgPlusSoftirq), wireguard_go: round(cpu[k].wg.median, 3), softirq: round(cpu[k].softirq.median, 3), all_cpu: round(cpu[k].busy.median, 3) });
  console.log(JSON.stringify({
    bench: 'tunnel',
    weft_gbps: WITH_WEFT ? round(st.weft.median, 3) : null,
    raw_wg_gbps: round(base, 3),
    ratio: WITH_WEFT ? round(st.weft.median / base, 3) : null,
    ratio_paired: paired ? { median: round(paired.median, 3), ...sp(paired) } : null,
    weft_spread_gbps: WITH_WEFT ? sp(st.weft) : null,
    raw_wg_spread_gbps: sp(st.raw_wg),
    // CPU-seconds per second (cores) of the method's wireguard-go processes plus all CPUs' softirq, per Gbit/s
    weft_cpu_cores_per_gbps: WITH_WEFT ? round(cpu.weft.wgPlusSoftirq.median, 3) : null,
    raw_wg_cpu_cores_per_gbps: round(cpu.raw_wg.wgPlusSoftirq.median, 3),
    cpu_cores_per_gbps: { weft: WITH_WEFT ? cpuJson('weft') : null, raw_wg: cpuJson('raw_wg') },
    failover_p50_ms: fo ? round(fo.p50, 0) : null,
    failover_p99_ms: fo ? round(fo.p99, 0) : null,
    failover_max_ms: fo ? round(fo.max, 0) : null,
    failover_tries: tries.length,
    failover_timeouts: tries.length - ok.length,
    failover_ms: tries.map((t) => round(t.ms, 0)),
    // per datacenter, the gateway whose WireGuard device sent the most in a run (dc1 carries the data, dc2 the acks)
    gateways_used: Object.fromEntries(methods.map((m) => [m.key, [...new Set(samples[m.key].map((r) => r.via))]])),
    retransmits_median: Object.fromEntries(methods.map((m) => [m.key, retr(m.key)])),
    rounds: ROUNDS,
    seconds: SECONDS,
    container_mtu: Object.fromEntries(methods.map((m, i) => [m.key, Number(mtus[i])])),
    raw_wg_mtu: RAW_MTU,
    date: new Date().toISOString(),
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    iperf3: iperfVersion,
    wireguard_go: wgVersion,
    load: { before: loadBefore, after: loadavg().map((x) => round(x, 2)) },
  }));
}

await runInterruptible('tunnel', main);

// The ingress against HAProxy, in one run on one lab: the same four backend
// containers (test/ingress/lab.ts: two per rack, each a node HTTP server
// behind weft's CNI plugin), the same client namespace (its only link goes
// to the edge host), wrk as the load, and every path measured in the same
// rounds so they share the machine's state:
//
//   direct      client -> edge (kernel forwarding) -> overlay -> one backend
//   haproxy-http  HAProxy 2.6 http mode on the edge, keep-alive both sides
//   haproxy-tcp   HAProxy 2.6 tcp mode on the edge
//   weft-l7     `weft ingress`, a service with an http port (80:8080/http)
//   weft-l4k    `weft ingress`, a service with a tcp port (81:8080/tcp): nftables DNAT
//   node-floor  the least a Node proxy does (bench/ingress/node-proxy.ts): Node's
//               http server and undici pools, nothing of weft's; the floor for weft L7
//
// Throughput: per round, each path gets one wrk run (-t1 -c64, closed loop),
// the order rotating between rounds; the median of the rounds is reported
// with its spread. Added latency: at half of weft L7's median rps, wrk with
// a per-connection pause (bench/ingress/wrk.ts: wrk2 is not packaged; the
// pause is exponential, mean 10 ms, so connections do not fall into step and
// arrive in bursts; the number of connections fitted per path with two 2 s
// runs so each reaches the rate), the p99 of direct, HAProxy http, weft L7,
// the Node floor, HAProxy tcp (a user-space hop that only copies bytes) and
// weft L4 (the kernel's DNAT), rounds interleaved; "added" is the path's p99 minus
// direct's at the same rate. Beside each, from the kernel's accounting
// (bench/ingress/procstat.ts), per request: the proxy's CPU (main thread and
// helper threads), its time runnable but waiting for a CPU, and the
// backends' wait; for weft, its GC pauses (its own /metrics). Control plane: measureL4Updates
// (bench/ingress-l4.ts) at 100 and 10,000 services x 10 endpoints; Maglev:
// the slots that move besides the removed backend's own when 1 of N goes.
//
// On a 2-core machine wrk, the proxy and four node backends share the CPUs:
// the absolute numbers are the lab's, the ratios (same run, same backends)
// are the comparison.
//
// Run: npm run bench -- ingress
// Knobs (env): WEFT_BENCH_ROUNDS (5, at least 3), WEFT_BENCH_SECONDS (5), WEFT_BENCH_CONNECTIONS (64),
//              WEFT_BENCH_L4_CHANGES (passed to measureL4Updates, 200),
//              WEFT_BENCH_PAUSE (exponential; fixed: the 10 ms pause of earlier runs),
//              WEFT_BENCH_INGRESS_NODE_ARGS (default: the options the README recommends starting
//              `weft ingress` with, --min-semi-space-size=16; "none": bare node),
//              WEFT_BENCH_PLACEMENT (shared: no pinning; split: the proxies on the last CPU,
//              wrk and the backends on the others; see bench/weft/cpu-placement.ts)
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { waitFor } from '../helpers/wait';
import {
  BACKEND_HTTP_PORT, EDGE_IP, createIngressLab, type IngressLab,
} from '../ingress/lab';
import { measureL4Updates } from './ingress-l4';
import { haproxyVersion, startHaproxy } from './ingress/haproxy';
import { startNodeProxy } from './ingress/node-proxy';
import { gcPerRequest, parseGcMetrics, perRequest, sumTimes, type GcPerRequest, type GcTotals, type PerRequest } from './ingress/procstat';
import { remap } from './ingress/remap';
import { DELAY_MS, connectionsFor, delayScript, errorCount, pauseMode, wrk, type WrkResult } from './ingress/wrk';
import { RECOMMENDED_NODE_OPTIONS } from '../../ingress/l7/node-options';
import { pin, placementFromEnv } from './weft/cpu-placement';
import { benchDir, benchLab, checkpoint, runInterruptible } from './weft/interruptible';
import { round, spread, stats, table, type Stats } from './weft/stats';

const ROUNDS = Number(process.env.WEFT_BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.WEFT_BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.WEFT_BENCH_CONNECTIONS ?? 64);
const L4_CHANGES = Number(process.env.WEFT_BENCH_L4_CHANGES ?? 200);
const PAUSE = pauseMode(process.env.WEFT_BENCH_PAUSE);
// the ingress is measured as the README says to start it, unless told otherwise ("none": bare node)
const INGRESS_NODE_ARGS = nodeArgsFromEnv(process.env.WEFT_BENCH_INGRESS_NODE_ARGS);
const PLACEMENT = placementFromEnv(process.env.WEFT_BENCH_PLACEMENT);
const HAPROXY_HTTP = 8081;
const HAPROXY_TCP = 8082;
const NODE_FLOOR = 8083;
const WEFT_L7 = 80;
const WEFT_L4 = 81;

type Key = 'direct' | 'haproxy_http' | 'haproxy_tcp' | 'weft_l7' | 'weft_l4k' | 'node_floor';
type Target = { key: Key; label: string; url: string };
type Cell = { rps: Stats; p99: Stats; errors: number; runs: WrkResult[] };

function nodeArgsFromEnv(env: string | undefined): string[] {
  if (env === undefined) return [...RECOMMENDED_NODE_OPTIONS];
  if (env.trim() === 'none') return [];
  return env.split(/\s+/).filter((a) => a !== '');
}

const r1 = (x: number) => round(x, 1);
const r2 = (x: number) => round(x, 2);

/** One request through a path must reach a backend, and across a few every backend behind a proxy answers. */
async function verify(il: IngressLab, t: Target, everyBackend: boolean): Promise<void> {
  const seen = new Set<string>();
  await waitFor(`${t.label} to answer${everyBackend ? ' from every backend' : ''}`, async () => {
    const a = await il.httpGet(t.url, { timeoutMs: 2000 });
    if (a.status !== 200 || typeof a.json?.name !== 'string') throw new Error(`${t.url}: ${a.status} ${a.body.slice(0, 200)}`);
    seen.add(a.json.name);
    return everyBackend ? seen.size === il.backends.length : true;
  }, 30_000, 20);
}

async function l4Updates(): Promise<{ small: Awaited<ReturnType<typeof measureL4Updates>>; large: Awaited<ReturnType<typeof measureL4Updates>> }> {
  const small = await measureL4Updates(100, 10, L4_CHANGES);
  await checkpoint();
  const large = await measureL4Updates(10_000, 10, L4_CHANGES);
  return { small, large };
}

async function main(): Promise<void> {
  if (!(ROUNDS >= 3)) throw new Error(`WEFT_BENCH_ROUNDS must be at least 3 (got ${process.env.WEFT_BENCH_ROUNDS})`);
  const loadBefore = loadavg().map((x) => r2(x));
  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  const dir = benchDir('ingress');
  const il = await createIngressLab({ name: `bing${process.pid.toString(36)}`, dir, makeLab: benchLab });
  const edge = il.edge;
  console.log(`ingress bench: ${ROUNDS} rounds x ${SECONDS} s per path, wrk -t1 -c${CONNECTIONS}; ${il.backends.length} backends (${il.backends.map((b) => `${b.name} ${b.ip}`).join(', ')}); ${haproxyVersion()}; kernel ${kernel}, node ${process.version}; pause ${PAUSE}; ingress node options: ${INGRESS_NODE_ARGS.join(' ') || 'none'}; placement ${PLACEMENT.mode}${PLACEMENT.underTest === null ? '' : ` (proxies on CPU ${PLACEMENT.underTest}, wrk and backends on CPU ${PLACEMENT.world})`}`);

  const haproxy = await startHaproxy(il.lab, {
    dir, netns: edge.netns, listenIp: EDGE_IP, httpPort: HAPROXY_HTTP, tcpPort: HAPROXY_TCP,
    backends: il.backends.map((b) => ({ name: b.name, ip: b.ip, port: BACKEND_HTTP_PORT })),
  });
  const nodeFloor = await startNodeProxy(il.lab, {
    dir, netns: edge.netns, listenIp: EDGE_IP, port: NODE_FLOOR, backends: il.backends.map((b) => ({ ip: b.ip, port: BACKEND_HTTP_PORT })),
  });

  await il.service(['create', 'bench7', '--port', `${WEFT_L7}:${BACKEND_HTTP_PORT}/http`, '--selector', 'app=web', '--rack-policy', 'any']);
  await il.service(['create', 'bench4', '--port', `${WEFT_L4}:${BACKEND_HTTP_PORT}/tcp`, '--selector', 'app=web', '--rack-policy', 'any']);
  const ing = await il.startIngress(['--access-log-sample', '0'], { nodeArgs: INGRESS_NODE_ARGS });
  const l4SourceNat = ing.args.includes('--l4-source-nat') ? ing.args[ing.args.indexOf('--l4-source-nat') + 1] : 'masquerade (the default)';
  const targets: Target[] = [
    { key: 'direct', label: `direct (${il.backends[0].name})`, url: `http://${il.backends[0].ip}:${BACKEND_HTTP_PORT}/` },
    { key: 'haproxy_http', label: 'HAProxy http', url: `http://${EDGE_IP}:${HAPROXY_HTTP}/` },
    { key: 'haproxy_tcp', label: 'HAProxy tcp', url: `http://${EDGE_IP}:${HAPROXY_TCP}/` },
    { key: 'weft_l7', label: 'weft L7', url: `http://${EDGE_IP}:${WEFT_L7}/` },
    { key: 'weft_l4k', label: 'weft L4 kernel', url: `http://${EDGE_IP}:${WEFT_L4}/` },
    { key: 'node_floor', label: 'Node floor', url: `http://${EDGE_IP}:${NODE_FLOOR}/` },
  ];
  // the user-space process each path goes through on the edge (L4 and direct: the kernel only)
  const proxyPid: Partial<Record<Key, number>> = { haproxy_http: haproxy.pid, haproxy_tcp: haproxy.pid, weft_l7: ing.proc.pid, node_floor: nodeFloor.pid };
  const backendPids = il.backends.map((b) => b.proc!.pid);
  // the outside world (client, backends) on one side, the proxy under test on the other: the same for every peer
  for (const pid of Object.values(proxyPid)) pin(pid, PLACEMENT.underTest);
  for (const pid of backendPids) pin(pid, PLACEMENT.world);
  for (const t of targets) await verify(il, t, t.key !== 'direct');

  // warm-up: JIT of the backends and the ingress, pools filled, conntrack entries made
  for (const t of targets) {
    await checkpoint();
    await wrk(il.lab, il.clientNetns, { cpus: PLACEMENT.world, url: t.url, connections: CONNECTIONS, seconds: 2 });
  }

  const runs = new Map<Key, WrkResult[]>(targets.map((t) => [t.key, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const order = targets.map((_, i) => targets[(i + r) % targets.length]);
    const line: string[] = [];
    for (const t of order) {
      await checkpoint();
      const w = await wrk(il.lab, il.clientNetns, { cpus: PLACEMENT.world, url: t.url, connections: CONNECTIONS, seconds: SECONDS });
      runs.get(t.key)!.push(w);
      line.push(`${t.key} ${Math.round(w.rps)} rps p99 ${r2(w.p99)} ms${errorCount(w) ? ` (${errorCount(w)} errors)` : ''}`);
    }
    console.log(`  round ${r + 1}/${ROUNDS}: ${line.join('; ')}`);
  }
  const cells = new Map<Key, Cell>([...runs].map(([k, ws]) => [k, {
    rps: stats(ws.map((w) => w.rps)), p99: stats(ws.map((w) => w.p99)), errors: ws.reduce((a, w) => a + errorCount(w), 0), runs: ws,
  }]));

  // ---- added latency at half load ----
  const halfRate = Math.round(cells.get('weft_l7')!.rps.median / 2);
  const script = delayScript(dir, PAUSE);
  // the pause plus each path's own latency sets the rate C connections reach: C is fitted per path with two short runs
  const conns = new Map<Key, number>();
  // besides the L7 proxies, the two L4 paths: what a hop through a user-space proxy that only
  // copies bytes (HAProxy tcp) adds to the tail, and what the kernel's DNAT adds
  const halfKeys: Key[] = ['direct', 'haproxy_http', 'weft_l7', 'node_floor', 'haproxy_tcp', 'weft_l4k'];
  for (const k of halfKeys) {
    let c = connectionsFor(halfRate);
    for (let i = 0; i < 2; i++) {
      await checkpoint();
      const w = await wrk(il.lab, il.clientNetns, { cpus: PLACEMENT.world, url: targets.find((t) => t.key === k)!.url, connections: c, seconds: 2, script });
      c = Math.max(1, Math.round((c * halfRate) / Math.max(1, w.rps)));
    }
    conns.set(k, c);
  }
  type HalfRun = { w: WrkResult; proxy: PerRequest | null; backends: PerRequest; gc: GcPerRequest | null };
  const half = new Map<Key, HalfRun[]>(halfKeys.map((k) => [k, []]));
  const weftGc = async (): Promise<GcTotals> => parseGcMetrics(await ing.metrics());
  for (let r = 0; r < ROUNDS; r++) {
    const line: string[] = [];
    for (let i = 0; i < halfKeys.length; i++) {
      const k = halfKeys[(i + r) % halfKeys.length];
      await checkpoint();
      const pid = proxyPid[k];
      const gc0 = k === 'weft_l7' ? await weftGc() : undefined;
      const p0 = pid ? sumTimes([pid]) : undefined;
      const b0 = sumTimes(backendPids);
      const w = await wrk(il.lab, il.clientNetns, { cpus: PLACEMENT.world, url: targets.find((t) => t.key === k)!.url, connections: conns.get(k)!, seconds: SECONDS, script });
      const run: HalfRun = {
        w,
        proxy: pid ? perRequest(p0!, sumTimes([pid]), w.requests) : null,
        backends: perRequest(b0, sumTimes(backendPids), w.requests),
        gc: gc0 ? gcPerRequest(gc0, await weftGc(), w.requests) : null,
      };
      half.get(k)!.push(run);
      line.push(`${k} ${Math.round(w.rps)} rps p99 ${r2(w.p99)} ms${run.proxy ? ` cpu ${r1(run.proxy.mainCpuUs + run.proxy.otherCpuUs)} us/req` : ''}`);
    }
    console.log(`  half load round ${r + 1}/${ROUNDS}: ${line.join('; ')}`);
  }
  const med = (xs: number[]) => stats(xs).median;
  const halfCell = (k: Key) => {
    const hs = half.get(k);
    if (!hs) return null;
    const ws = hs.map((h) => h.w);
    const px = hs.map((h) => h.proxy).filter((x): x is PerRequest => x !== null);
    const gcs = hs.map((h) => h.gc).filter((x): x is NonNullable<HalfRun['gc']> => x !== null);
    return {
      p99: stats(ws.map((w) => w.p99)), p50: stats(ws.map((w) => w.p50)), rps: stats(ws.map((w) => w.rps)), errors: ws.reduce((a, w) => a + errorCount(w), 0),
      // medians over the rounds, microseconds per request
      proxy: px.length ? { main_cpu_us: r1(med(px.map((x) => x.mainCpuUs))), helper_cpu_us: r1(med(px.map((x) => x.otherCpuUs))), wait_us: r1(med(px.map((x) => x.waitUs))), preempted_per_1k: r1(med(px.map((x) => x.preemptedPer1k))) } : null,
      backends: { cpu_us: r1(med(hs.map((h) => h.backends.mainCpuUs + h.backends.otherCpuUs))), wait_us: r1(med(hs.map((h) => h.backends.waitUs))) },
      gc: gcs.length ? {
        pauses_per_1k: r2(med(gcs.map((g) => g.pausesPer1k))), ms_per_1k: r2(med(gcs.map((g) => g.msPer1k))), mean_pause_ms: r2(med(gcs.map((g) => g.meanPauseMs))),
        // summed over the rounds: minor (scavenge), major (mark-compact), incremental (marking steps), weakcb
        pauses_by_kind: gcs.reduce<Record<string, number>>((a, g) => {
          for (const [k, v] of Object.entries(g.pausesByKind)) a[k] = (a[k] ?? 0) + v;
          return a;
        }, {}),
      } : null,
    };
  };
  const hd = halfCell('direct')!;
  const hh = halfCell('haproxy_http')!;
  const hw = halfCell('weft_l7')!;
  const hn = halfCell('node_floor')!;
  const ht = halfCell('haproxy_tcp')!;
  const hk = halfCell('weft_l4k')!;

  // ---- control plane and Maglev ----
  await checkpoint();
  const l4 = await l4Updates();
  const remaps = [5, 10, 100, 1000].map((n) => remap(n));
  const remap10 = remaps.find((x) => x.n === 10)!;

  // ---- report ----
  const cell = (k: Key) => cells.get(k);
  const ratio = (a: Key, b: Key) => (cell(a) && cell(b) ? round(cell(a)!.rps.median / cell(b)!.rps.median, 3) : null);
  console.log('');
  console.log(table(
    ['path', 'rps (median)', 'rps p25..p75', 'p99 ms (median)', 'p99 ms p25..p75', 'errors', 'vs direct'],
    targets.map((t) => {
      const c = cell(t.key)!;
      return [t.label, String(Math.round(c.rps.median)), `${Math.round(c.rps.p25)}..${Math.round(c.rps.p75)}`, r2(c.p99.median).toFixed(2),
        `${r2(c.p99.p25).toFixed(2)}..${r2(c.p99.p75).toFixed(2)}`, String(c.errors), `${r2(c.rps.median / cell('direct')!.rps.median).toFixed(2)}x`];
    }),
  ));
  console.log('');
  console.log(`half load: ${halfRate} rps aimed at (half of weft L7's median), each connection pausing ${PAUSE === 'fixed' ? `${DELAY_MS} ms` : `an exponential time (mean ${DELAY_MS} ms)`} between requests`);
  console.log(table(
    ['path', 'connections', 'reached rps', 'p50 ms', 'p99 ms (median)', 'p99 p25..p75', 'added p99 ms', 'errors', 'proxy cpu us/req (main+helpers)', 'proxy cpu wait us/req', 'backends cpu / wait us/req'],
    halfKeys.map((k) => {
      const h = halfCell(k)!;
      return [targets.find((t) => t.key === k)!.label, String(conns.get(k)), String(Math.round(h.rps.median)), r2(h.p50.median).toFixed(2), r2(h.p99.median).toFixed(2),
        `${r2(h.p99.p25).toFixed(2)}..${r2(h.p99.p75).toFixed(2)}`, k === 'direct' ? '-' : r2(h.p99.median - hd.p99.median).toFixed(2), String(h.errors),
        h.proxy ? `${h.proxy.main_cpu_us}+${h.proxy.helper_cpu_us}` : '-', h.proxy ? String(h.proxy.wait_us) : '-', `${h.backends.cpu_us} / ${h.backends.wait_us}`];
    }),
  ));
  if (hw.gc) console.log(`weft L7 GC at half load: ${hw.gc.pauses_per_1k} pauses and ${hw.gc.ms_per_1k} ms per 1000 requests (mean pause ${hw.gc.mean_pause_ms} ms; by kind over the rounds ${JSON.stringify(hw.gc.pauses_by_kind)})`);
  if (Math.abs(hw.p99.median - hd.p99.median) < hd.p99.p75 - hd.p99.p25) {
    console.log(`NOTE: weft L7's added p99 (${r2(hw.p99.median - hd.p99.median)} ms) is inside direct's own p99 spread (${r2(hd.p99.p25)}..${r2(hd.p99.p75)} ms): the machine's noise is larger than the difference (load average ${loadavg().map((x) => r2(x)).join(', ')})`);
  }
  console.log('');
  console.log(`Maglev, 1 of N backends removed, slots that moved besides the removed backend's: ${remaps.map((x) => `N=${x.n} (M=${x.size}) ${(100 * x.excess.median).toFixed(2)}% (max ${(100 * x.excess.max).toFixed(2)}%, the minimum move is ${(100 * x.necessary).toFixed(2)}%; a fresh table would move ${(100 * x.freshExcess.median).toFixed(2)}% more)`).join('; ')}`);
  console.log(`L4 updates (measureL4Updates, ${L4_CHANGES} changes): 100 services x 10: p50 ${r2(l4.small.p50)} ms p99 ${r2(l4.small.p99)} ms (load ${r1(l4.small.loadMs)} ms); 10,000 x 10: p50 ${r2(l4.large.p50)} ms p99 ${r2(l4.large.p99)} ms (load ${r1(l4.large.loadMs)} ms)`);
  const rps = (k: Key) => (cell(k) ? Math.round(cell(k)!.rps.median) : null);
  const p99 = (k: Key) => (cell(k) ? r2(cell(k)!.p99.median) : null);
  console.log('');
  console.log(JSON.stringify({
    bench: 'ingress',
    direct_rps: rps('direct'),
    haproxy_http_rps: rps('haproxy_http'),
    haproxy_tcp_rps: rps('haproxy_tcp'),
    weft_l7_rps: rps('weft_l7'),
    weft_l4k_rps: rps('weft_l4k'),
    node_floor_rps: rps('node_floor'),
    ratio_l7: ratio('weft_l7', 'haproxy_http'),
    ratio_l4k: ratio('weft_l4k', 'haproxy_tcp'),
    ratio_l7_node_floor: ratio('weft_l7', 'node_floor'),
    direct_p99_ms: p99('direct'),
    haproxy_http_p99_ms: p99('haproxy_http'),
    haproxy_tcp_p99_ms: p99('haproxy_tcp'),
    weft_l7_p99_ms: p99('weft_l7'),
    weft_l4k_p99_ms: p99('weft_l4k'),
    node_floor_p99_ms: p99('node_floor'),
    rps_spread: Object.fromEntries([...cells].map(([k, c]) => [k, spread(c.rps, 0)])),
    p99_spread_ms: Object.fromEntries([...cells].map(([k, c]) => [k, spread(c.p99, 2)])),
    errors: Object.fromEntries([...cells].map(([k, c]) => [k, c.errors])),
    half_load_rps: halfRate,
    half_load_connections: Object.fromEntries(conns),
    half_reached_rps: Object.fromEntries(halfKeys.map((k) => [k, Math.round(halfCell(k)!.rps.median)])),
    half_direct_p99_ms: r2(hd.p99.median),
    half_haproxy_http_p99_ms: r2(hh.p99.median),
    half_weft_l7_p99_ms: r2(hw.p99.median),
    half_node_floor_p99_ms: r2(hn.p99.median),
    half_haproxy_tcp_p99_ms: r2(ht.p99.median),
    half_weft_l4k_p99_ms: r2(hk.p99.median),
    haproxy_tcp_added_p99_ms: r2(ht.p99.median - hd.p99.median),
    l4k_added_p99_ms: r2(hk.p99.median - hd.p99.median),
    l7_added_p99_ms: r2(hw.p99.median - hd.p99.median),
    haproxy_added_p99_ms: r2(hh.p99.median - hd.p99.median),
    node_floor_added_p99_ms: r2(hn.p99.median - hd.p99.median),
    half_pause: PAUSE,
    // per request, medians over the rounds: the proxy process's CPU (main thread, helper threads), its run-queue wait
    half_proxy_per_request: Object.fromEntries(halfKeys.filter((k) => halfCell(k)!.proxy).map((k) => [k, halfCell(k)!.proxy])),
    half_backends_per_request: Object.fromEntries(halfKeys.map((k) => [k, halfCell(k)!.backends])),
    half_weft_l7_gc: hw.gc,
    // an added p99 smaller than direct's own p25..p75 spread at that rate says nothing: the machine's noise is larger
    l7_added_p99_within_noise: Math.abs(hw.p99.median - hd.p99.median) < hd.p99.p75 - hd.p99.p25,
    half_p99_spread_ms: Object.fromEntries(halfKeys.map((k) => [k, spread(halfCell(k)!.p99, 2)])),
    update_p99_ms: r2(l4.large.p99),
    update_p50_ms: r2(l4.large.p50),
    update_load_ms: r1(l4.large.loadMs),
    update_p99_ms_small: r2(l4.small.p99),
    update_p50_ms_small: r2(l4.small.p50),
    services: 10_000,
    services_small: 100,
    endpoints_per_service: 10,
    l4_changes: L4_CHANGES,
    remap_excess: round(remap10.excess.median, 4),
    remap_excess_max: round(remap10.excess.max, 4),
    remap_n: remap10.n,
    remap: remaps.map((x) => ({ n: x.n, size: x.size, excess_median: round(x.excess.median, 4), excess_max: round(x.excess.max, 4), necessary: round(x.necessary, 4), fresh_excess_median: round(x.freshExcess.median, 4) })),
    l4_source_nat: l4SourceNat,
    ingress_node_args: INGRESS_NODE_ARGS,
    placement: PLACEMENT,
    notes: [],
    rounds: ROUNDS,
    seconds: SECONDS,
    connections: CONNECTIONS,
    backends: il.backends.length,
    haproxy: haproxyVersion(),
    date: new Date().toISOString(),
    kernel,
    node: process.version,
    load: { before: loadBefore, after: loadavg().map((x) => r2(x)) },
  }));
}

await runInterruptible('ingress', main);

// Container-to-container TCP throughput across racks: weft's overlay against
// a VXLAN overlay made by hand with iproute2, in the same lab, the same two
// host namespaces, the same run.
//
// Lab: h1 in rack a (172.31.1.11), h2 in rack b (172.31.2.11), the
// datacenter router between them, and a controller. Every link is MTU 1500.
//
// - weft: `weft controller` and a `weft agent` on h1 and h2 (joined with a
//   token, as in production); one container namespace per host, attached by
//   exec'ing the CNI shim for ADD as a runtime does.
// - raw VXLAN: built here with `ip` in the same two host namespaces, to the
//   same design as weft's (which is what makes the comparison fair): per host
//   a VXLAN device (its own VNI, same UDP port 4789, `nolearning`, local =
//   underlay address, MTU 1450) holding the subnet's .0/32, a bridge holding
//   the gateway .1/24, a veth into a container namespace (MTU 1450, default
//   route via the gateway), and for the other host a route `via <its .0>
//   onlink`, a permanent neighbour and a permanent FDB entry. `ip -d link`
//   shows the two VXLAN devices alike (udpcsum, ttl auto, no learning) but
//   for the VNI and possibly TX checksum offload, which weft turns off only
//   on kernels before 5.7 (turning it off also turns off TSO on the device,
//   so the kernel segments in software before encapsulating). weft's iptables chains and conntrack sit
//   in the same host namespaces, so both paths traverse them (weft's packets
//   match its accept rules a few lines in, the raw subnets only the jumps).
//
// Each run is one `iperf3 -c` (single TCP stream, container on h1 to
// container on h2, 5 s after 1 s omitted for slow start). Methods rotate
// order every run. Two more methods isolate the checksum mitigation: weft
// with TX checksum offload set the other way for the run, and raw VXLAN with
// it turned off. Every run is verified: the sender's VXLAN device and the
// router's port into rack b carried at least the bytes iperf3 delivered, the
// other overlay's device carried next to nothing, and the offload state was
// what the method says from start to end.
//
// Run: npm run bench -- overlay
// Knobs (env): WEFT_BENCH_RUNS (7, at least 5), WEFT_BENCH_SECONDS (5)
import { benchDir, benchLab, checkpoint, runInterruptible } from './weft/interruptible';
import { decideTxChecksum } from '../../cni-plugin/agent/host/checksum-policy';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { waitFor } from '../helpers/wait';
import type { Lab, LabHost } from '../lab/lab';
import { round, spread, stats, table, type Stats } from './weft/stats';
import { cniExec, SHIM, shimPath, startCluster, WEFT_VXLAN, weftConf } from './weft/cluster';

const RUNS = Number(process.env.WEFT_BENCH_RUNS ?? 7);
const SECONDS = Number(process.env.WEFT_BENCH_SECONDS ?? 5);
const OMIT = 1;
const PORT = 5201;
const MTU = 1450;
const RAW = { vni: 4242, port: 4789, vxlan: 'wtrawvx', bridge: 'wtrawbr', hostEnd: 'wtrawv0' } as const;

type Key = 'weft' | 'raw' | 'weft_alt' | 'raw_txoff';
type Side = { host: LabHost; ctrNs: string; addr: string };
type Path = { vxlan: string; src: Side; dst: Side };
type Method = { key: Key; label: string; path: Path; txCsum: 'on' | 'off'; restore: 'on' | 'off' };
type Run = { gbps: number; retransmits: number };

let lab: Lab | undefined;

const sh = (ns: string, cmd: string, args: string[]) => lab!.exec(ns, cmd, args).stdout;

function ipJson<T>(ns: string, args: string[]): T {
  const out = sh(ns, 'ip', ['-j', ...args]).trim();
  return (out ? JSON.parse(out) : []) as T;
}

function txBytes(ns: string, dev: string): number {
  const [l] = ipJson<Array<{ stats64: { tx: { bytes: number } } }>>(ns, ['-s', 'link', 'show', 'dev', dev]);
  return l.stats64.tx.bytes;
}

function txCsum(ns: string, dev: string): 'on' | 'off' {
  const m = /^tx-checksumming: (on|off)/m.exec(sh(ns, 'ethtool', ['-k', dev]));
  if (!m) throw new Error(`ethtool -k ${dev} in ${ns} shows no tx-checksumming line`);
  return m[1] as 'on' | 'off';
}

function setTxCsum(ns: string, dev: string, v: 'on' | 'off'): void {
  sh(ns, 'ethtool', ['-K', dev, 'tx', v]);
  if (txCsum(ns, dev) !== v) throw new Error(`ethtool -K ${dev} tx ${v} in ${ns} did not take`);
}

function underlayDev(h: LabHost): string {
  const links = ipJson<Array<{ ifname: string; addr_info: Array<{ local: string }> }>>(h.netns, ['addr', 'show']);
  const l = links.find((x) => x.addr_info.some((a) => a.local === h.underlayIp));
  if (!l) throw new Error(`no device holds ${h.underlayIp} in ${h.netns}`);
  return l.ifname;
}

/** The hand-made overlay: weft's design (routed VTEP, bridge per host) with iproute2 only. */
function buildRaw(hosts: LabHost[]): Side[] {
  const sides: Side[] = [];
  hosts.forEach((h, i) => {
    const k = i + 1;
    const mac = `0e:77:ee:00:00:0${k}`;
    const dev = underlayDev(h);
    const ctr = lab!.addContainerNetns(h, 'raw').slice('/run/netns/'.length);
    sh(h.netns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    const lines = [
      `link add ${RAW.vxlan} address ${mac} mtu ${MTU} type vxlan id ${RAW.vni} dstport ${RAW.port} local ${h.underlayIp} dev ${dev} nolearning`,
      `addr add 10.99.${k}.0/32 dev ${RAW.vxlan}`,
      `link set ${RAW.vxlan} up`,
      `link add ${RAW.bridge} mtu ${MTU} type bridge`,
      `addr add 10.99.${k}.1/24 dev ${RAW.bridge}`,
      `link set ${RAW.bridge} up`,
      `link add ${RAW.hostEnd} mtu ${MTU} type veth peer name eth0 netns ${ctr}`,
      `link set ${RAW.hostEnd} master ${RAW.bridge}`,
      `link set ${RAW.hostEnd} up`,
    ];
    lab!.exec(h.netns, 'ip', ['-batch', '-'], { input: lines.join('\n') + '\n' });
    lab!.exec(ctr, 'ip', ['-batch', '-'], {
      input: ['link set lo up', `addr add 10.99.${k}.2/24 dev eth0`, 'link set eth0 up', `route add default via 10.99.${k}.1`].join('\n') + '\n',
    });
    sides.push({ host: h, ctrNs: ctr, addr: `10.99.${k}.2` });
  });
  // each host learns the other: route via its VTEP address, neighbour = its VTEP MAC, FDB = its underlay address
  hosts.forEach((h, i) => {
    const o = 2 - i;
    const other = hosts[o - 1];
    lab!.exec(h.netns, 'ip', ['-batch', '-'], {
      input: [
        `neigh replace 10.99.${o}.0 lladdr 0e:77:ee:00:00:0${o} dev ${RAW.vxlan} nud permanent`,
        `route replace 10.99.${o}.0/24 via 10.99.${o}.0 dev ${RAW.vxlan} onlink`,
      ].join('\n') + '\n',
    });
    sh(h.netns, 'bridge', ['fdb', 'append', `0e:77:ee:00:00:0${o}`, 'dev', RAW.vxlan, 'dst', other.underlayIp, 'self', 'permanent']);
  });
  return sides;
}

/** A container per host on weft, attached through the shim exactly as a runtime would. */
function attachWeft(hosts: LabHost[], sockets: Map<string, string>): Side[] {
  return hosts.map((h) => {
    const netns = lab!.addContainerNetns(h, 'weft');
    const out = cniExec(h.netns, SHIM, { command: 'ADD', containerId: `bench-overlay-${h.name}`, netns, ifname: 'eth0', cniPath: shimPath() }, weftConf(sockets.get(h.name)!));
    if (out.status !== 0) throw new Error(`weft ADD on ${h.name} failed: ${out.stdout || out.stderr}`);
    const address = (JSON.parse(out.stdout) as { ips: Array<{ address: string }> }).ips[0].address;
    return { host: h, ctrNs: netns.slice('/run/netns/'.length), addr: address.split('/')[0] };
  });
}

async function reachable(from: Side, to: Side, what: string): Promise<void> {
  await waitFor(`${what}: ${from.addr} to reach ${to.addr}`, () => lab!.exec(from.ctrNs, 'ping', ['-c1', '-W1', to.addr], { check: false }).status === 0, 30_000, 200);
}

async function serverUp(s: Side): Promise<void> {
  await waitFor(`the iperf3 server in ${s.ctrNs} to listen`, () => sh(s.ctrNs, 'ss', ['-Htln', `sport = :${PORT}`]).trim(), 10_000, 50);
}

type Iperf = { end: { sum_received: { bytes: number; bits_per_second: number; seconds: number }; sum_sent: { retransmits?: number } }; error?: string };

function once(m: Method, others: Method[], routerNs: string, routerPort: string, seconds: number): Run {
  const { src, dst } = m.path;
  for (const s of [src, dst]) setTxCsum(s.host.netns, m.path.vxlan, m.txCsum);
  const watched = [...new Set(others.map((o) => o.path.vxlan))];
  const before = { own: txBytes(src.host.netns, m.path.vxlan), router: txBytes(routerNs, routerPort), other: watched.map((v) => txBytes(src.host.netns, v)) };
  const res = lab!.exec(src.ctrNs, 'iperf3', ['-c', dst.addr, '-p', String(PORT), '-t', String(seconds), '-O', String(OMIT), '-J'], { timeoutMs: (seconds + OMIT + 20) * 1000, check: false });
  const after = { own: txBytes(src.host.netns, m.path.vxlan), router: txBytes(routerNs, routerPort), other: watched.map((v) => txBytes(src.host.netns, v)) };
  const states = [src, dst].map((s) => txCsum(s.host.netns, m.path.vxlan));
  for (const s of [src, dst]) setTxCsum(s.host.netns, m.path.vxlan, m.restore);
  let r: Iperf;
  try {
    r = JSON.parse(res.stdout) as Iperf;
  } catch {
    throw new Error(`${m.key}: iperf3 gave no JSON (exit ${res.status}): ${res.stderr || res.stdout}`);
  }
  if (r.error || res.status !== 0) throw new Error(`${m.key}: iperf3 failed: ${r.error ?? res.stderr}`);
  const got = r.end.sum_received.bytes;
  if (!(got > 0)) throw new Error(`${m.key}: iperf3 delivered nothing`);
  // the omitted second is not in sum_received, so counters must show at least the counted bytes
  if (after.own - before.own < got) throw new Error(`${m.key}: ${m.path.vxlan} sent ${after.own - before.own} bytes, iperf3 counted ${got}: the traffic did not take this overlay`);
  if (after.router - before.router < got) throw new Error(`${m.key}: the router's port ${routerPort} sent ${after.router - before.router} bytes, fewer than iperf3's ${got}: the traffic did not cross racks`);
  watched.forEach((v, i) => {
    const d = after.other[i] - before.other[i];
    if (d > got / 100) throw new Error(`${m.key}: ${v} also sent ${d} bytes during the run`);
  });
  if (states.some((s) => s !== m.txCsum)) throw new Error(`${m.key}: TX checksum offload on ${m.path.vxlan} changed during the run (now ${states.join('/')}, set ${m.txCsum})`);
  return { gbps: r.end.sum_received.bits_per_second / 1e9, retransmits: r.end.sum_sent.retransmits ?? 0 };
}

async function main(): Promise<void> {
  if (!(RUNS >= 5)) throw new Error(`WEFT_BENCH_RUNS must be at least 5 (got ${process.env.WEFT_BENCH_RUNS})`);
  if (!(SECONDS >= 2 && SECONDS <= 30)) throw new Error(`WEFT_BENCH_SECONDS must be 2..30 (got ${process.env.WEFT_BENCH_SECONDS})`);
  const loadBefore = loadavg().map((x) => round(x, 2));
  const dir = benchDir('overlay');
  lab = await benchLab({
    name: `bov${process.pid.toString(36)}`,
    datacenters: [{ name: 'dc1', racks: [{ name: 'a', hosts: ['h1'] }, { name: 'b', hosts: ['h2'] }] }],
    controller: true,
  });
  const hosts = [lab.host('h1'), lab.host('h2')];
  const routerNs = lab.plan.routers[0].netns;
  const routerPort = lab.plan.routers[0].racks[1].routerIf; // towards rack b, where the receiver is
  const cluster = await startCluster(lab, hosts, dir);
  const sockets = new Map([...cluster.agents].map(([n, a]) => [n, a.socket]));
  const weftSides = attachWeft(hosts, sockets);
  const rawSides = buildRaw(hosts);
  const weftPath: Path = { vxlan: WEFT_VXLAN, src: weftSides[0], dst: weftSides[1] };
  const rawPath: Path = { vxlan: RAW.vxlan, src: rawSides[0], dst: rawSides[1] };
  await reachable(weftPath.src, weftPath.dst, 'weft');
  await reachable(rawPath.src, rawPath.dst, 'raw VXLAN');
  for (const p of [weftPath, rawPath]) {
    lab.spawn(p.dst.ctrNs, 'iperf3', ['-s', '-p', String(PORT)]);
    await serverUp(p.dst);
  }
  const weftCsum = hosts.map((h) => txCsum(h.netns, WEFT_VXLAN));
  const rawCsum = hosts.map((h) => txCsum(h.netns, RAW.vxlan));
  // what the agent decided for this kernel (--vxlan-tx-checksum auto) is what an operator gets
  const deployed = decideTxChecksum('auto').disable ? 'off' : 'on';
  const alt = deployed === 'on' ? 'off' : 'on';
  if (weftCsum.some((s) => s !== deployed)) throw new Error(`weft left TX checksum offload ${weftCsum.join('/')} on ${WEFT_VXLAN}; its policy for this kernel is ${deployed}`);
  if (rawCsum.some((s) => s !== 'on')) throw new Error(`the kernel created ${RAW.vxlan} with TX checksum offload ${rawCsum.join('/')}, expected on`);
  const mtus = [...hosts.map((h) => [h.netns, WEFT_VXLAN]), ...hosts.map((h) => [h.netns, RAW.vxlan])].map(([ns, d]) => ipJson<Array<{ mtu: number }>>(ns, ['link', 'show', 'dev', d])[0].mtu);
  if (mtus.some((x) => x !== MTU)) throw new Error(`VXLAN MTUs differ from ${MTU}: ${mtus.join(', ')}`);

  const methods: Method[] = [
    { key: 'weft', label: `weft (as deployed: TX csum offload ${deployed})`, path: weftPath, txCsum: deployed, restore: deployed },
    { key: 'raw', label: 'raw VXLAN by hand (kernel default: on)', path: rawPath, txCsum: 'on', restore: 'on' },
    { key: 'weft_alt', label: `weft, TX csum offload turned ${alt}`, path: weftPath, txCsum: alt, restore: deployed },
    { key: 'raw_txoff', label: 'raw VXLAN, TX csum offload turned off', path: rawPath, txCsum: 'off', restore: 'on' },
  ];
  const others = (m: Method) => methods.filter((o) => o.path !== m.path);
  const iperfVersion = sh(hosts[0].netns, 'iperf3', ['--version']).split('\n')[0].trim();
  console.log(`overlay bench: iperf3 single TCP stream, container h1 (rack a) -> container h2 (rack b) across the router, ${RUNS} runs x ${SECONDS} s (+${OMIT} s omitted) per method, order rotated each run`);
  console.log(`kernel ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}, ${iperfVersion}, VXLAN MTU ${MTU} on a 1500 underlay`);

  for (const m of methods) {
    await checkpoint();
    once(m, others(m), routerNs, routerPort, 2); // warm-up: ARP, FDB, TCP metrics
  }
  const samples: Record<Key, Run[]> = { weft: [], raw: [], weft_alt: [], raw_txoff: [] };
  for (let r = 0; r < RUNS; r++) {
    const order = methods.map((_, i) => methods[(i + r) % methods.length]);
    const line: string[] = [];
    for (const m of order) {
      await checkpoint();
      const run = once(m, others(m), routerNs, routerPort, SECONDS);
      samples[m.key].push(run);
      line.push(`${m.key}=${round(run.gbps, 2)}`);
    }
    console.log(`  run ${r + 1}/${RUNS}: ${line.join('  ')} Gbit/s (all verified)`);
  }
  for (const [n, a] of cluster.agents) if (a.proc.exited) throw new Error(`the agent on ${n} exited during the bench`);

  const st = Object.fromEntries(methods.map((m) => [m.key, stats(samples[m.key].map((s) => s.gbps))])) as Record<Key, Stats>;
  // per run: both methods ran back to back, so load that drifts between runs cancels out
  const pairedOf = (a: Key, b: Key) => stats(samples[a].map((x, i) => x.gbps / samples[b][i].gbps));
  const paired = pairedOf('weft', 'raw');
  const weftOn: Key = deployed === 'on' ? 'weft' : 'weft_alt';
  const weftOff: Key = deployed === 'off' ? 'weft' : 'weft_alt';
  const pairedOff = pairedOf(weftOff, 'raw_txoff');
  const pairedOn = pairedOf(weftOn, 'raw');
  const base = st.raw.median;
  const retr = (k: Key) => stats(samples[k].map((s) => s.retransmits)).median;
  console.log('');
  console.log(table(
    ['method', 'median Gbit/s', 'p25-p75', 'min-max', 'retransmits (median)', 'vs raw VXLAN'],
    methods.map((m) => {
      const s = st[m.key];
      return [m.label, round(s.median, 2).toFixed(2), `${round(s.p25, 2)}-${round(s.p75, 2)}`, `${round(s.min, 2)}-${round(s.max, 2)}`, String(retr(m.key)), `${round(s.median / base, 2).toFixed(2)}x`];
    }),
  ));
  const pr = (label: string, p: Stats) => console.log(`${label} per run: median ${round(p.median, 3)}, p25-p75 ${round(p.p25, 3)}-${round(p.p75, 3)}, min-max ${round(p.min, 3)}-${round(p.max, 3)}`);
  pr('weft / raw', paired);
  pr('same offload, off: weft / raw, both with it off', pairedOff);
  pr('same offload, on: weft / raw, both with it on', pairedOn);
  console.log(`TX checksum offload off costs: weft ${round(st[weftOff].median / st[weftOn].median, 2)}x, raw ${round(st.raw_txoff.median / st.raw.median, 2)}x of the throughput with it on`);
  console.log('');
  const sp = (s: Stats) => spread(s, 3);
  console.log(JSON.stringify({
    bench: 'overlay',
    weft_gbps: round(st.weft.median, 3),
    raw_vxlan_gbps: round(st.raw.median, 3),
    ratio: round(st.weft.median / base, 3),
    ratio_paired: { median: round(paired.median, 3), ...sp(paired) },
    weft_spread_gbps: sp(st.weft),
    raw_vxlan_spread_gbps: sp(st.raw),
    weft_txcsum_deployed: deployed,
    weft_txcsum_on_gbps: round(st[weftOn].median, 3),
    weft_txcsum_off_gbps: round(st[weftOff].median, 3),
    weft_txcsum_alt_spread_gbps: sp(st.weft_alt),
    raw_vxlan_txcsum_off_gbps: round(st.raw_txoff.median, 3),
    raw_vxlan_txcsum_off_spread_gbps: sp(st.raw_txoff),
    ratio_same_offload: { txcsum_off: round(st[weftOff].median / st.raw_txoff.median, 3), txcsum_on: round(st[weftOn].median / st.raw.median, 3) },
    ratio_same_offload_paired: { txcsum_off: { median: round(pairedOff.median, 3), ...sp(pairedOff) }, txcsum_on: { median: round(pairedOn.median, 3), ...sp(pairedOn) } },
    txcsum_cost: round(st[weftOn].median / st[weftOff].median, 2),
    retransmits_median: Object.fromEntries(methods.map((m) => [m.key, retr(m.key)])),
    runs: RUNS,
    seconds: SECONDS,
    mtu: MTU,
    date: new Date().toISOString(),
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    iperf3: iperfVersion,
    load: { before: loadBefore, after: loadavg().map((x) => round(x, 2)) },
  }));
}

await runInterruptible('overlay', main);

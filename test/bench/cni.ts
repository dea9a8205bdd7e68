// Container start/stop as the runtime sees it: the wall time of exec'ing the
// CNI plugin for ADD and for DEL, weft against the reference plugins.
//
// - weft: the `dist/weft-cni` shim, forwarding to a real `weft agent` that
//   joined a real `weft controller` in a lab (controller namespace, host
//   namespace, router between them), so the agent holds a leased subnet, its
//   bridge and VXLAN device, and reports every endpoint to the controller
//   through its outbox (a durable write per ADD/DEL, on disk).
// - reference: Debian's containernetworking-plugins `bridge` with
//   `host-local` IPAM (gateway on its own bridge `wtrb…`, default route,
//   same MTU as weft's 1450, no masquerade), data dir on the same disk.
//
// Both are exec'd from the same lab host namespace with only the CNI_*
// variables and PATH in the environment and the config on stdin, exactly as
// a runtime does. A container is a fresh, empty network namespace. Per
// round, 100 containers are ADDed with each plugin (weft and reference
// alternate which goes first), so at the end each bridge has 100 ports; then
// all are DELeted, alternating the same way. Every ADD is checked with `ip`
// (the interface is up and holds the address the result names), every DEL
// too (interface gone from the container, host end gone from the host).
//
// Run: npm run bench -- cni
// Knobs (env): WEFT_BENCH_ROUNDS (3, at least 3), WEFT_BENCH_CONTAINERS (100)
import { benchDir, benchLab, checkpoint, runInterruptible } from './weft/interruptible';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { netnsDelete, netnsExists } from '../../dataplane/netlink/netns';
import { ipJson } from '../helpers/ip';
import { median, quantile, round, table } from './weft/stats';
import {
  cniExec, REF_CNI_DIR, SHIM, shimPath, startCluster, WEFT_BRIDGE, weftConf, type CniOutcome,
} from './weft/cluster';

const ROUNDS = Number(process.env.WEFT_BENCH_ROUNDS ?? 3);
const CONTAINERS = Number(process.env.WEFT_BENCH_CONTAINERS ?? 100);
const IFNAME = 'eth0';
const CNI_VERSION = '1.0.0'; // the highest Debian's bridge plugin speaks; weft is given the same
const REF_BRIDGE = 'wtrb' + process.pid.toString(36);
const REF_SUBNET = '10.98.0.0/16'; // room for every container of every round, so host-local never runs dry

type Key = 'weft' | 'ref';
type Plugin = { key: Key; label: string; binary: string; cniPath: string; conf: string; bridge: string };
type Attached = { plugin: Plugin; netns: string; name: string; containerId: string; address: string; hostEnd: string };

type IpAddr = { ifname: string; flags: string[]; operstate: string; master?: string; addr_info: Array<{ family: string; local: string; prefixlen: number }> };

function fail(what: string, out: CniOutcome): never {
  throw new Error(`${what} failed (exit ${out.status}): ${out.stdout.trim() || out.stderr.trim()}`);
}

/** The result must name an address and a host end; the container must show the address on an up interface, the host end must be a port of the plugin's bridge. */
function verifyAdd(p: Plugin, hostNs: string, netns: string, out: CniOutcome): { address: string; hostEnd: string } {
  if (out.status !== 0) fail(`${p.key} ADD in ${netns}`, out);
  const res = JSON.parse(out.stdout) as { interfaces?: Array<{ name: string; sandbox?: string }>; ips?: Array<{ address: string }> };
  const address = res.ips?.[0]?.address;
  const hostEnd = res.interfaces?.find((i) => !i.sandbox && i.name !== p.bridge)?.name;
  if (!address || !hostEnd) throw new Error(`${p.key} ADD result names no address or host end: ${out.stdout}`);
  const [ifc] = ipJson<IpAddr[]>(netns, ['addr', 'show', 'dev', IFNAME]);
  if (!ifc || !ifc.flags.includes('UP')) throw new Error(`${p.key} ADD: ${IFNAME} in ${netns} is missing or down`);
  if (!ifc.addr_info.some((a) => a.family === 'inet' && `${a.local}/${a.prefixlen}` === address)) {
    throw new Error(`${p.key} ADD: ${IFNAME} in ${netns} lacks ${address} (has ${ifc.addr_info.map((a) => `${a.local}/${a.prefixlen}`).join(', ')})`);
  }
  const [host] = ipJson<IpAddr[]>(hostNs, ['link', 'show', 'dev', hostEnd]);
  if (host?.master !== p.bridge) throw new Error(`${p.key} ADD: host end ${hostEnd} is not a port of ${p.bridge}`);
  return { address, hostEnd };
}

function verifyDel(a: Attached, hostNs: string, out: CniOutcome): void {
  if (out.status !== 0) fail(`${a.plugin.key} DEL in ${a.netns}`, out);
  const left = ipJson<IpAddr[]>(a.netns, ['addr', 'show']).filter((l) => l.ifname !== 'lo');
  if (left.length > 0) throw new Error(`${a.plugin.key} DEL: ${a.netns} still has ${left.map((l) => l.ifname).join(', ')}`);
  const hostEnds = ipJson<IpAddr[]>(hostNs, ['link', 'show']).filter((l) => l.ifname === a.hostEnd);
  if (hostEnds.length > 0) throw new Error(`${a.plugin.key} DEL: host end ${a.hostEnd} still exists`);
}

type Sample = { add: number[]; del: number[] };

function summary(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: quantile(s, 0.5), p90: quantile(s, 0.9), max: s[s.length - 1], min: s[0] };
}

/** The agent logs every CNI request it answered with the time it took; only the timed rounds' containers count. */
function agentShare(logFile: string): { add: ReturnType<typeof summary>; del: ReturnType<typeof summary> } {
  const add: number[] = [];
  const del: number[] = [];
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('cni request done')) continue;
    const l = JSON.parse(line) as { command?: string; containerId?: string; ms?: number };
    if (typeof l.ms !== 'number' || !/^bench-r\d/.test(l.containerId ?? '')) continue;
    if (l.command === 'ADD') add.push(l.ms);
    else if (l.command === 'DEL') del.push(l.ms);
  }
  if (add.length !== ROUNDS * CONTAINERS || del.length !== ROUNDS * CONTAINERS) {
    throw new Error(`the agent logged ${add.length} ADDs and ${del.length} DELs of timed containers, expected ${ROUNDS * CONTAINERS} each`);
  }
  return { add: summary(add), del: summary(del) };
}

async function main(): Promise<void> {
  if (!(ROUNDS >= 3)) throw new Error(`WEFT_BENCH_ROUNDS must be at least 3 (got ${process.env.WEFT_BENCH_ROUNDS})`);
  if (!(CONTAINERS >= 10 && CONTAINERS <= 250)) throw new Error(`WEFT_BENCH_CONTAINERS must be 10..250 (got ${process.env.WEFT_BENCH_CONTAINERS})`);
  const loadBefore = loadavg().map((x) => round(x, 2));
  const dir = benchDir('cni');
  const lab = await benchLab({ name: `bcni${process.pid.toString(36)}`, datacenters: [{ name: 'dc1', racks: [{ name: 'a', hosts: ['h1'] }] }], controller: true });
  const host = lab.host('h1');
  const cluster = await startCluster(lab, [host], dir);
  const agent = cluster.agents.get('h1')!;

  const plugins: Record<Key, Plugin> = {
    weft: { key: 'weft', label: 'weft (shim -> agent)', binary: SHIM, cniPath: shimPath(), conf: weftConf(agent.socket, CNI_VERSION), bridge: WEFT_BRIDGE },
    ref: {
      key: 'ref', label: 'bridge + host-local', binary: join(REF_CNI_DIR, 'bridge'), cniPath: REF_CNI_DIR, bridge: REF_BRIDGE,
      conf: JSON.stringify({
        cniVersion: CNI_VERSION, name: 'wtref', type: 'bridge', bridge: REF_BRIDGE, isGateway: true, isDefaultGateway: true, ipMasq: false, mtu: 1450,
        ipam: { type: 'host-local', ranges: [[{ subnet: REF_SUBNET }]], dataDir: join(dir, 'host-local') },
      }),
    },
  };

  const newContainer = (tag: string) => {
    const name = tag;
    const netns = lab.addContainerNetns(host, name);
    return { name, netns, nsName: netns.slice('/run/netns/'.length) };
  };
  const dropContainer = (nsName: string) => {
    if (netnsExists(nsName)) netnsDelete(nsName);
  };

  const add = (p: Plugin, tag: string): { a: Attached; ms: number } => {
    const c = newContainer(tag);
    const containerId = `bench-${tag}`;
    const out = cniExec(host.netns, p.binary, { command: 'ADD', containerId, netns: c.netns, ifname: IFNAME, cniPath: p.cniPath }, p.conf);
    const v = verifyAdd(p, host.netns, c.nsName, out);
    return { a: { plugin: p, netns: c.nsName, name: c.name, containerId, ...v }, ms: out.ms };
  };
  const del = (a: Attached): number => {
    const out = cniExec(host.netns, a.plugin.binary, { command: 'DEL', containerId: a.containerId, netns: `/run/netns/${a.netns}`, ifname: IFNAME, cniPath: a.plugin.cniPath }, a.plugin.conf);
    verifyDel(a, host.netns, out);
    dropContainer(a.netns);
    return out.ms;
  };

  console.log(`cni bench: ${ROUNDS} rounds x ${CONTAINERS} containers, ADD then DEL, weft and reference interleaved; kernel ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}, node ${process.version}`);
  // warm-up: the reference creates its bridge on its first ADD, page cache for both binaries
  for (const p of Object.values(plugins)) for (let i = 0; i < 3; i++) {
    await checkpoint();
    del(add(p, `w${p.key}${i}`).a);
  }

  const samples: Record<Key, Sample> = { weft: { add: [], del: [] }, ref: { add: [], del: [] } };
  // the floor both pay: the same exec of a binary that only reads the config and writes it back (cat), once per container
  const floor: number[] = [];
  const perRound: Array<Record<Key, { add: number; del: number }>> = [];
  for (let r = 0; r < ROUNDS; r++) {
    const attached: Attached[][] = [];
    const thisRound = { weft: { add: [] as number[], del: [] as number[] }, ref: { add: [] as number[], del: [] as number[] } };
    globalThis.gc?.();
    for (let i = 0; i < CONTAINERS; i++) {
      await checkpoint();
      const order: Key[] = (i + r) % 2 === 0 ? ['weft', 'ref'] : ['ref', 'weft'];
      const pair: Attached[] = [];
      for (const k of order) {
        const { a, ms } = add(plugins[k], `r${r}${k[0]}${i}`);
        thisRound[k].add.push(ms);
        pair.push(a);
      }
      attached.push(pair);
      const t = cniExec(host.netns, '/bin/cat', { command: 'ADD', cniPath: REF_CNI_DIR }, plugins.weft.conf);
      if (t.status !== 0 || t.stdout !== plugins.weft.conf) fail('/bin/cat', t);
      floor.push(t.ms);
    }
    for (const pair of attached) {
      await checkpoint();
      for (const a of pair) thisRound[a.plugin.key].del.push(del(a));
    }
    perRound.push({
      weft: { add: median(thisRound.weft.add), del: median(thisRound.weft.del) },
      ref: { add: median(thisRound.ref.add), del: median(thisRound.ref.del) },
    });
    for (const k of ['weft', 'ref'] as Key[]) {
      samples[k].add.push(...thisRound[k].add);
      samples[k].del.push(...thisRound[k].del);
    }
    const pr = perRound[r];
    console.log(`  round ${r + 1}/${ROUNDS}: ADD p50 weft ${round(pr.weft.add, 2)} ms, ref ${round(pr.ref.add, 2)} ms; DEL p50 weft ${round(pr.weft.del, 2)} ms, ref ${round(pr.ref.del, 2)} ms (${CONTAINERS * 4} execs, all verified)`);
  }
  if (agent.proc.exited) throw new Error('the agent exited during the bench');
  const inAgent = agentShare(agent.logFile);

  const st = {
    weft: { add: summary(samples.weft.add), del: summary(samples.weft.del) },
    ref: { add: summary(samples.ref.add), del: summary(samples.ref.del) },
  };
  const r2 = (x: number) => round(x, 2);
  console.log('');
  console.log(table(
    ['plugin', 'verb', 'p50 ms', 'p90 ms', 'max ms', 'min ms', 'weft / ref (p50)'],
    (['weft', 'ref'] as Key[]).flatMap((k) => (['add', 'del'] as const).map((v) => [
      plugins[k].label, v.toUpperCase(), r2(st[k][v].p50).toFixed(2), r2(st[k][v].p90).toFixed(2), r2(st[k][v].max).toFixed(2), r2(st[k][v].min).toFixed(2),
      k === 'weft' ? `${r2(st.weft[v].p50 / st.ref[v].p50).toFixed(2)}x` : '1.00x',
    ])),
  ));
  const roundRatios = (v: 'add' | 'del') => perRound.map((p) => r2(p.weft[v] / p.ref[v]));
  console.log(`per-round p50 ratio weft/ref: ADD ${roundRatios('add').join(', ')}; DEL ${roundRatios('del').join(', ')}`);
  console.log(`weft's time inside the agent (its own log, socket request in to answer out): ADD p50 ${r2(inAgent.add.p50)} ms, p90 ${r2(inAgent.add.p90)}; DEL p50 ${r2(inAgent.del.p50)} ms, p90 ${r2(inAgent.del.p90)}; the rest is fork/exec of the shim and the socket round trip.`);
  const fl = summary(floor);
  console.log(`exec floor (/bin/cat of the config, same spawn from the host namespace): p50 ${r2(fl.p50)} ms, p90 ${r2(fl.p90)} ms.`);
  console.log(`${ROUNDS * CONTAINERS} samples per cell; each exec from the lab host namespace, timed from fork to exit.`);
  console.log('');
  console.log(JSON.stringify({
    bench: 'cni',
    weft_add_p50_ms: r2(st.weft.add.p50),
    ref_add_p50_ms: r2(st.ref.add.p50),
    weft_del_p50_ms: r2(st.weft.del.p50),
    ref_del_p50_ms: r2(st.ref.del.p50),
    ratio_add: round(st.weft.add.p50 / st.ref.add.p50, 3),
    ratio_del: round(st.weft.del.p50 / st.ref.del.p50, 3),
    weft_add_p90_ms: r2(st.weft.add.p90),
    ref_add_p90_ms: r2(st.ref.add.p90),
    weft_del_p90_ms: r2(st.weft.del.p90),
    ref_del_p90_ms: r2(st.ref.del.p90),
    weft_add_max_ms: r2(st.weft.add.max),
    ref_add_max_ms: r2(st.ref.add.max),
    weft_del_max_ms: r2(st.weft.del.max),
    ref_del_max_ms: r2(st.ref.del.max),
    weft_agent_add_p50_ms: r2(inAgent.add.p50),
    weft_agent_del_p50_ms: r2(inAgent.del.p50),
    exec_floor_p50_ms: r2(fl.p50),
    round_ratio_add: roundRatios('add'),
    round_ratio_del: roundRatios('del'),
    rounds: ROUNDS,
    containers: CONTAINERS,
    cni_version: CNI_VERSION,
    date: new Date().toISOString(),
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    node: process.version,
    load: { before: loadBefore, after: loadavg().map((x) => round(x, 2)) },
  }));
}

await runInterruptible('cni', main);

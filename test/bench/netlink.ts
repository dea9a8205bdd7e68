// How long it takes to program the overlay state for 1,000 remote hosts
// (a route, a neighbour and an FDB entry each: 3,000 kernel entries), with
// weft's batched netlink against the iproute2 tools a shell script would use.
//
// Every method, in every repetition, starts from a fresh namespace holding
// only the fixture (an underlay veth and a VXLAN device) and is checked
// afterwards with a dump: a run that did not land every entry aborts the bench.
// Methods are interleaved (the order rotates per repetition) so drift in the
// machine's state does not favour one of them.
//
// Run: npm run bench -- netlink   (or: node --import tsx test/bench/run.ts netlink)
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { openHandle, throwIfAny, type Handle, type Request } from '../../dataplane/netlink/handle';
import { AF_BRIDGE, AF_INET } from '../../dataplane/netlink/libc';
import { fdbList, fdbReplaceRequest, neighList, neighSetRequest, NTF_SELF, NUD_PERMANENT } from '../../dataplane/netlink/neigh';
import { routeList, routeReplaceRequest, RTPROT_WEFT } from '../../dataplane/netlink/route';
import { uniqueName } from '../helpers/names';
import { round, spread, stats, table, type Stats } from './weft/stats';

const HOSTS = 1000;
const REPS = Number(process.env.WEFT_BENCH_REPS ?? 15);
const EACH_SAMPLE = 100; // per kind, for the one-process-per-entry method
const VX = 'wtnbvx'; // weft.vxlan in production; test links carry the tests' prefix
const UNDERLAY_DEV = 'wtnbu0';
const LOCAL = '172.31.255.1';

type Remote = { subnet: string; vtepIP: string; vtepMAC: string; underlayIP: string };

const hex = (n: number) => n.toString(16).padStart(2, '0');

/** Remote host i: subnet 10.(100+hi).lo.0/24, its VTEP at the subnet's .0 (flannel's layout), a locally administered MAC. */
function remote(i: number): Remote {
  const hi = i >> 8;
  const lo = i & 0xff;
  return {
    subnet: `10.${100 + hi}.${lo}.0/24`,
    vtepIP: `10.${100 + hi}.${lo}.0`,
    vtepMAC: `0e:77:00:00:${hex(hi)}:${hex(lo)}`,
    underlayIP: `172.20.${i >> 7}.${(i & 0x7f) + 2}`,
  };
}

const REMOTES = Array.from({ length: HOSTS }, (_, i) => remote(i));

// ---- fixture ----

type Fixture = { ns: string; vx: number };
let live: string | undefined;

function ip(ns: string, args: string[], input?: string): string {
  return execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8', input });
}

function fixtureCreate(): Fixture {
  const ns = uniqueName('nb');
  execFileSync('ip', ['netns', 'add', ns]);
  live = ns;
  ip(ns, ['link', 'add', UNDERLAY_DEV, 'type', 'veth', 'peer', 'name', 'wtnbu1']);
  ip(ns, ['addr', 'add', `${LOCAL}/16`, 'dev', UNDERLAY_DEV]);
  ip(ns, ['link', 'set', UNDERLAY_DEV, 'up']);
  ip(ns, ['link', 'add', VX, 'type', 'vxlan', 'id', '42', 'dstport', '4789', 'nolearning', 'local', LOCAL, 'dev', UNDERLAY_DEV]);
  ip(ns, ['link', 'set', VX, 'up']);
  const vx = (JSON.parse(ip(ns, ['-j', 'link', 'show', VX])) as { ifindex: number }[])[0].ifindex;
  return { ns, vx };
}

function fixtureRemove(f: Fixture | undefined): void {
  const ns = f?.ns ?? live;
  if (!ns) return;
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  } catch {
    /* already gone */
  }
  if (live === ns) live = undefined;
}

// ---- the methods; each returns the milliseconds it took and the remotes it programmed ----

type Outcome = { ms: number; remotes: Remote[] };

function weftRequests(vx: number): Request[] {
  const reqs: Request[] = [];
  for (const r of REMOTES) {
    reqs.push(routeReplaceRequest({ dst: r.subnet, gw: r.vtepIP, linkIndex: vx, onlink: true, protocol: RTPROT_WEFT }));
    reqs.push(neighSetRequest({ linkIndex: vx, family: AF_INET, ip: r.vtepIP, mac: r.vtepMAC, state: NUD_PERMANENT, flags: 0 }));
    reqs.push(fdbReplaceRequest({ linkIndex: vx, family: AF_BRIDGE, mac: r.vtepMAC, dst: r.underlayIP, state: NUD_PERMANENT, flags: NTF_SELF }));
  }
  return reqs;
}

/** Opening the socket and encoding the requests are inside the timing: they are part of what weft does. */
function runWeft(f: Fixture): Outcome {
  const t0 = performance.now();
  const h = openHandle({ netns: f.ns });
  try {
    throwIfAny(h.batch(weftRequests(f.vx)));
  } finally {
    h.close();
  }
  return { ms: performance.now() - t0, remotes: REMOTES };
}

function ipLines(rs: Remote[]): string {
  return rs.map((r) => [
    `route replace ${r.subnet} via ${r.vtepIP} dev ${VX} onlink proto ${RTPROT_WEFT}`,
    `neigh replace ${r.vtepIP} lladdr ${r.vtepMAC} dev ${VX} nud permanent`,
  ].join('\n')).join('\n') + '\n';
}

function bridgeLines(rs: Remote[]): string {
  return rs.map((r) => `fdb replace ${r.vtepMAC} dev ${VX} dst ${r.underlayIP} self permanent`).join('\n') + '\n';
}

/** The script baseline: `ip -force -batch` for routes and neighbours, then `bridge -force -batch` for the FDB; both processes timed. */
function runIpBatch(f: Fixture): Outcome {
  const ipText = ipLines(REMOTES);
  const brText = bridgeLines(REMOTES);
  const t0 = performance.now();
  execFileSync('ip', ['-n', f.ns, '-force', '-batch', '-'], { input: ipText });
  execFileSync('bridge', ['-n', f.ns, '-force', '-batch', '-'], { input: brText });
  return { ms: performance.now() - t0, remotes: REMOTES };
}

/** One process per entry, sampled on EACH_SAMPLE remotes (3 entries each) and scaled to all of them. */
function runIpEach(f: Fixture): Outcome {
  const sample = REMOTES.slice(0, EACH_SAMPLE);
  const t0 = performance.now();
  for (const r of sample) {
    execFileSync('ip', ['-n', f.ns, 'route', 'replace', r.subnet, 'via', r.vtepIP, 'dev', VX, 'onlink', 'proto', String(RTPROT_WEFT)]);
    execFileSync('ip', ['-n', f.ns, 'neigh', 'replace', r.vtepIP, 'lladdr', r.vtepMAC, 'dev', VX, 'nud', 'permanent']);
    execFileSync('bridge', ['-n', f.ns, 'fdb', 'replace', r.vtepMAC, 'dev', VX, 'dst', r.underlayIP, 'self', 'permanent']);
  }
  const sampled = performance.now() - t0;
  return { ms: (sampled * HOSTS) / EACH_SAMPLE, remotes: sample };
}

// ---- verification: a dump must show exactly the programmed entries ----

function sameSet(what: string, got: string[], want: string[]): void {
  const g = new Set(got);
  const missing = want.filter((w) => !g.has(w));
  if (missing.length > 0 || got.length !== want.length) {
    throw new Error(`${what}: ${got.length} in the kernel, ${want.length} expected, ${missing.length} missing (first: ${missing[0]})`);
  }
}

function verify(f: Fixture, rs: Remote[]): void {
  const h: Handle = openHandle({ netns: f.ns });
  try {
    const routes = routeList(h, { family: AF_INET, protocol: RTPROT_WEFT, linkIndex: f.vx });
    sameSet('routes', routes.map((r) => `${r.dst} via ${r.gw} onlink=${r.onlink === true}`), rs.map((r) => `${r.subnet} via ${r.vtepIP} onlink=true`));
    const neighs = neighList(h, { linkIndex: f.vx, family: AF_INET }).filter((n) => (n.state & NUD_PERMANENT) !== 0);
    sameSet('neighbours', neighs.map((n) => `${n.ip} ${n.mac}`), rs.map((r) => `${r.vtepIP} ${r.vtepMAC}`));
    // `bridge fdb ... permanent` sends NUD_NOARP|NUD_PERMANENT, weft NUD_PERMANENT: both are permanent
    const fdb = fdbList(h, { linkIndex: f.vx }).filter((e) => (e.state & NUD_PERMANENT) !== 0 && (e.flags & NTF_SELF) !== 0);
    sameSet('fdb', fdb.map((e) => `${e.mac} ${e.dst}`), rs.map((r) => `${r.vtepMAC} ${r.underlayIP}`));
  } finally {
    h.close();
  }
}

// ---- report ----

type Method = { key: 'weft' | 'ip_batch' | 'ip_each'; label: string; run: (f: Fixture) => Outcome };

const METHODS: Method[] = [
  { key: 'weft', label: 'weft: netlink batch (h.batch), 1 socket', run: runWeft },
  { key: 'ip_batch', label: 'ip -force -batch + bridge -force -batch', run: runIpBatch },
  { key: 'ip_each', label: `ip/bridge per entry (${EACH_SAMPLE}x3 sampled, x${HOSTS / EACH_SAMPLE})`, run: runIpEach },
];

// run.ts starts benches with --expose-gc: every method starts from a collected
// heap, so garbage left by the previous one (300 child processes' buffers)
// is not collected on the next method's clock
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

function once(m: Method): number {
  let f: Fixture | undefined;
  try {
    f = fixtureCreate();
    gc();
    const out = m.run(f);
    verify(f, out.remotes);
    return out.ms;
  } finally {
    fixtureRemove(f);
  }
}

function kernelVersion(): string {
  return readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
}

function main(): void {
  if (!(REPS >= 7)) throw new Error(`WEFT_BENCH_REPS must be at least 7 (got ${process.env.WEFT_BENCH_REPS})`);
  const cleanup = () => fixtureRemove(undefined);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      cleanup();
      process.exit(130);
    });
  }
  const ipVersion = execFileSync('ip', ['-V'], { encoding: 'utf8' }).trim();
  console.log(`netlink bench: ${HOSTS} remote hosts = ${HOSTS * 3} entries (route + neighbour + FDB each) on ${VX}`);
  console.log(`kernel ${kernelVersion()}, node ${process.version}, ${ipVersion}; ${REPS} repetitions after 1 warm-up, order rotated each repetition`);

  // other work on the machine widens every spread; the load says how much to trust a run
  const loadBefore = round(loadavg()[0], 2);
  const samples: Record<Method['key'], number[]> = { weft: [], ip_batch: [], ip_each: [] };
  for (const m of METHODS) once(m); // warm-up: JIT, page cache for the ip binaries
  for (let rep = 0; rep < REPS; rep++) {
    const order = METHODS.map((_, i) => METHODS[(i + rep) % METHODS.length]);
    const line: string[] = [];
    for (const m of order) {
      const ms = once(m);
      samples[m.key].push(ms);
      line.push(`${m.key}=${round(ms)}ms`);
    }
    console.log(`  rep ${rep + 1}/${REPS}: ${line.join('  ')} (all verified)`);
  }

  // per-repetition ratio: both methods ran back to back, so load that drifts between repetitions cancels out
  const paired = stats(samples.weft.map((w, i) => w / samples.ip_batch[i]));
  const st = Object.fromEntries(METHODS.map((m) => [m.key, stats(samples[m.key])])) as Record<Method['key'], Stats>;
  const base = st.ip_batch.median;
  console.log('');
  const head = ['method', 'median ms', 'p25-p75 ms', 'min-max ms', 'vs ip -batch'];
  const rows = METHODS.map((m) => {
    const s = st[m.key];
    return [m.label, round(s.median).toFixed(1), `${round(s.p25)}-${round(s.p75)}`, `${round(s.min)}-${round(s.max)}`, `${round(s.median / base, 2).toFixed(2)}x`];
  });
  console.log(table(head, rows));
  console.log(`weft / ip -batch per repetition: median ${round(paired.median, 2)}, p25-p75 ${round(paired.p25, 2)}-${round(paired.p75, 2)}, min-max ${round(paired.min, 2)}-${round(paired.max, 2)}`);
  console.log(`ip per entry: ${EACH_SAMPLE * 3} processes timed per repetition, extrapolated linearly to ${HOSTS * 3}; ip -batch time is both processes (ip, then bridge for the FDB).`);
  console.log('');

  console.log(JSON.stringify({
    bench: 'netlink',
    entries: HOSTS * 3,
    weft_ms: round(st.weft.median),
    ip_batch_ms: round(st.ip_batch.median),
    ip_each_ms: round(st.ip_each.median),
    ratio_vs_ip_batch: round(st.weft.median / base, 3),
    ratio_paired: { median: round(paired.median, 3), p25: round(paired.p25, 3), p75: round(paired.p75, 3), min: round(paired.min, 3), max: round(paired.max, 3) },
    weft_spread_ms: spread(st.weft),
    ip_batch_spread_ms: spread(st.ip_batch),
    ip_each_spread_ms: spread(st.ip_each),
    ip_each_extrapolated_from: EACH_SAMPLE * 3,
    repetitions: REPS,
    date: new Date().toISOString(),
    kernel: kernelVersion(),
    node: process.version,
    loadavg_1m: { before: loadBefore, after: round(loadavg()[0], 2) },
    iproute2: ipVersion,
  }));
}

try {
  main();
} catch (e) {
  fixtureRemove(undefined);
  console.error(`netlink bench failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
}

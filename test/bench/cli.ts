// What a `weft` command costs before it does anything: the wall time of
// spawning `node dist/weft.mjs version` and `node dist/weft.mjs --help`,
// against spawning bare `node -e 0` (the floor for any Node program) in the
// same run; also `weft controller --help`, `weft token --help` and `weft
// agent --help`, the cheapest call into each role. Operators and scripts call `weft version`, `weft status` and
// `weft token create` by hand; each should start in a small multiple of Node
// itself, not pay for gRPC, SQLite, etcd, x509 and netlink it never uses.
//
// The commands are interleaved (the order rotates per repetition) after
// a warm-up, so page cache and machine drift favour none of them. Every run
// is checked: exit status 0 and the expected output.
//
// Run: npm run bench -- cli
// Knobs (env): WEFT_BENCH_REPS (30, at least 20), WEFT_BENCH_WARMUP (3),
// WEFT_BENCH_BUNDLE (the bundle to time instead of dist/weft.mjs, e.g. an
// older build to compare against).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { round, spread, stats, table, type Stats } from './weft/stats';
import { envInt } from './weft/env';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const REPS = envInt('WEFT_BENCH_REPS', 30, 20);
const WARMUP = envInt('WEFT_BENCH_WARMUP', 3, 1);
const BUNDLE = resolve(process.env.WEFT_BENCH_BUNDLE ?? join(ROOT, 'dist', 'weft.mjs'));
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

type Key = 'node' | 'version' | 'help' | 'controller' | 'token' | 'agent';
type Method = { key: Key; label: string; args: string[]; check: (stdout: string) => boolean };

const METHODS: Method[] = [
  { key: 'node', label: 'node -e 0', args: ['-e', '0'], check: (out) => out === '' },
  { key: 'version', label: 'weft version', args: [BUNDLE, 'version'], check: (out) => out === `weft ${VERSION}\n` },
  { key: 'help', label: 'weft --help', args: [BUNDLE, '--help'], check: (out) => out.startsWith('usage: weft <command>') },
  ...(['controller', 'token', 'agent'] as const).map((role) => ({
    key: role, label: `weft ${role} --help`, args: [BUNDLE, role, '--help'], check: (out: string) => out.startsWith(`usage: weft ${role}`),
  })),
];

// The children get this process's environment without NODE_OPTIONS, so a
// loader or flag meant for the bench (tsx) is not timed as part of weft.
const ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS'));

/** One spawn, start to exit, in milliseconds; a wrong exit or output aborts the bench. */
function once(m: Method): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, m.args, { env: ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = performance.now() - t0;
  if (r.status !== 0 || !m.check(r.stdout) || r.stderr !== '') {
    throw new Error(`${m.label}: exit ${r.status ?? r.signal}, stdout ${JSON.stringify(r.stdout.slice(0, 200))}, stderr ${JSON.stringify(r.stderr.slice(0, 400))}`);
  }
  return ms;
}

function main(): void {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: npm run bench builds it, or set WEFT_BENCH_BUNDLE`);
  const loadBefore = round(loadavg()[0], 2);
  for (let i = 0; i < WARMUP; i++) for (const m of METHODS) once(m);

  const samples = Object.fromEntries(METHODS.map((m) => [m.key, [] as number[]])) as Record<Key, number[]>;
  const ratios: number[] = [];
  for (let rep = 0; rep < REPS; rep++) {
    const order = METHODS.map((_, i) => METHODS[(i + rep) % METHODS.length]);
    const got = {} as Record<Key, number>;
    for (const m of order) got[m.key] = once(m);
    for (const m of METHODS) samples[m.key].push(got[m.key]);
    ratios.push(got.version / got.node);
  }

  const st = Object.fromEntries(METHODS.map((m) => [m.key, stats(samples[m.key])])) as Record<Key, Stats>;
  const paired = stats(ratios);
  const base = st.node.median;
  console.log(`bundle: ${BUNDLE}; ${REPS} repetitions after ${WARMUP} warm-up rounds, order rotated; node ${process.version}`);
  console.log('');
  const head = ['command', 'median ms', 'p25-p75 ms', 'min-max ms', 'vs node -e 0'];
  const rows = METHODS.map((m) => {
    const s = st[m.key];
    return [m.label, round(s.median).toFixed(1), `${round(s.p25)}-${round(s.p75)}`, `${round(s.min)}-${round(s.max)}`, `${round(s.median / base, 2).toFixed(2)}x`];
  });
  console.log(table(head, rows));
  console.log(`weft version / node -e 0 per repetition: median ${round(paired.median, 2)}, p25-p75 ${round(paired.p25, 2)}-${round(paired.p75, 2)}, min-max ${round(paired.min, 2)}-${round(paired.max, 2)}`);
  console.log('');

  console.log(JSON.stringify({
    bench: 'cli',
    weft_version_ms: round(st.version.median),
    weft_help_ms: round(st.help.median),
    node_ms: round(base),
    controller_help_ms: round(st.controller.median),
    token_help_ms: round(st.token.median),
    agent_help_ms: round(st.agent.median),
    ratio: round(st.version.median / base, 3),
    ratio_help: round(st.help.median / base, 3),
    ratio_paired: { median: round(paired.median, 3), p25: round(paired.p25, 3), p75: round(paired.p75, 3), min: round(paired.min, 3), max: round(paired.max, 3) },
    weft_version_spread_ms: spread(st.version),
    weft_help_spread_ms: spread(st.help),
    node_spread_ms: spread(st.node),
    repetitions: REPS,
    warmup: WARMUP,
    bundle: BUNDLE,
    date: new Date().toISOString(),
    node: process.version,
    loadavg_1m: { before: loadBefore, after: round(loadavg()[0], 2) },
  }));
}

try {
  main();
} catch (e) {
  console.error(`cli bench failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
}

// The lab's connectivity matrix: every test container pings every other one
// (a real ICMP echo through whatever weft programmed), and with an ingress an
// outside client fetches the demo service through the edge. A cell is what
// the packets did, nothing else: no pair is skipped or expected to fail.
import { nsExecAsync } from '../e2e/traffic';

export interface MatrixEndpoint {
  /** the host the container runs on */
  host: string;
  datacenter: string;
  netns: string;
  ip: string;
}

export interface Cell {
  ok: boolean;
  /** average round trip of the answered probes */
  rttMs: number | null;
  /** why it failed, or who answered */
  detail: string;
}

export interface ServiceProbe {
  service: string;
  /** the outside client's namespace and address */
  clientNetns: string;
  clientIp: string;
  url: string;
}

export interface Matrix {
  endpoints: MatrixEndpoint[];
  /** cells[from][to]; null on the diagonal */
  cells: Array<Array<Cell | null>>;
  service: { probe: ServiceProbe; cell: Cell } | null;
  ms: number;
}

export interface MeasureOptions {
  /** failing cells are probed again until this much time has passed since the start (0: one probe each) */
  settleMs: number;
  service?: ServiceProbe | null;
  /** probes running at once (2 cores are easily drowned in ping processes) */
  concurrency?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function pingOnce(from: MatrixEndpoint, to: MatrixEndpoint): Promise<Cell> {
  const r = await nsExecAsync(from.netns, 'ping', ['-n', '-q', '-c', '2', '-i', '0.2', '-W', '1', to.ip], { timeoutMs: 10_000 });
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  const received = m ? Number(m[2]) : 0;
  const rtt = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  if (received > 0) return { ok: true, rttMs: rtt ? Number(rtt[1]) : null, detail: '' };
  const why = (r.stderr.trim().split('\n').pop() || (m ? `${m[1]} sent, 0 received` : `ping exited ${r.status}`)).replace(/^ping: /, '');
  return { ok: false, rttMs: null, detail: why };
}

/**
 * An HTTP GET from inside the client namespace, timed there: node's start-up
 * is not the service's latency (nor is loading fetch's HTTP stack, hence http.get).
 */
const FETCH_JS = `
const t = performance.now();
const req = require('http').get(process.argv[1], { timeout: 2000 }, (res) => {
  let body = '';
  res.on('data', (d) => (body += d));
  res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, ms: performance.now() - t, body: body.slice(0, 200) })));
});
req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
req.on('error', (e) => console.log(JSON.stringify({ error: String(e.code || e.message) })));
`;

async function fetchOnce(p: ServiceProbe): Promise<Cell> {
  const r = await nsExecAsync(p.clientNetns, process.execPath, ['-e', FETCH_JS, p.url], { timeoutMs: 15_000 });
  let out: { status?: number; ms?: number; body?: string; error?: string };
  try {
    out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    return { ok: false, rttMs: null, detail: `client exited ${r.status}: ${r.stderr.trim().slice(0, 120)}` };
  }
  if (out.error) return { ok: false, rttMs: null, detail: out.error };
  if (out.status !== 200) return { ok: false, rttMs: null, detail: `HTTP ${out.status}` };
  return { ok: true, rttMs: out.ms ?? null, detail: (out.body ?? '').trim() };
}

/** Probe until ok or the settle time is over: an overlay converging right after start-up is not a failure yet. */
async function settle(probe: () => Promise<Cell>, deadline: number): Promise<Cell> {
  for (;;) {
    const c = await probe();
    if (c.ok || performance.now() >= deadline) return c;
    await sleep(250);
  }
}

async function limited<T>(jobs: Array<() => Promise<T>>, n: number): Promise<T[]> {
  const out = new Array<T>(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, jobs.length) }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await jobs[i]();
      }
    }),
  );
  return out;
}

export async function measureMatrix(endpoints: MatrixEndpoint[], o: MeasureOptions): Promise<Matrix> {
  const t0 = performance.now();
  const deadline = t0 + o.settleMs;
  const cells: Array<Array<Cell | null>> = endpoints.map(() => endpoints.map(() => null));
  const jobs: Array<() => Promise<void>> = [];
  endpoints.forEach((a, i) =>
    endpoints.forEach((b, j) => {
      if (i !== j) jobs.push(async () => void (cells[i][j] = await settle(() => pingOnce(a, b), deadline)));
    }),
  );
  let service: Matrix['service'] = null;
  if (o.service) {
    const probe = o.service;
    jobs.push(async () => void (service = { probe, cell: await settle(() => fetchOnce(probe), deadline) }));
  }
  await limited(jobs, o.concurrency ?? 8);
  return { endpoints, cells, service, ms: Math.round(performance.now() - t0) };
}

export function cellText(c: Cell | null): string {
  if (!c) return '-';
  if (!c.ok) return 'FAIL';
  return c.rttMs === null ? 'ok' : `ok ${c.rttMs < 10 ? c.rttMs.toFixed(2) : c.rttMs.toFixed(1)}ms`;
}

export function matrixOk(m: Matrix): boolean {
  return m.cells.every((row) => row.every((c) => c === null || c.ok)) && (m.service === null || m.service.cell.ok);
}

/** The failed cells, each with its reason. */
export function failures(m: Matrix): string[] {
  const out: string[] = [];
  m.cells.forEach((row, i) =>
    row.forEach((c, j) => {
      if (c && !c.ok) out.push(`${label(m, i)} -> ${label(m, j)}: ${c.detail}`);
    }),
  );
  if (m.service && !m.service.cell.ok) out.push(`client -> ${m.service.probe.url}: ${m.service.cell.detail}`);
  return out;
}

function label(m: Matrix, i: number): string {
  const e = m.endpoints[i];
  const manyDcs = new Set(m.endpoints.map((x) => x.datacenter)).size > 1;
  return `${e.host}${manyDcs ? `/${e.datacenter}` : ''} ${e.ip}`;
}

export function formatMatrix(m: Matrix): string {
  const rows: string[][] = [['from \\ to', ...m.endpoints.map((_, j) => label(m, j))]];
  m.cells.forEach((row, i) => rows.push([label(m, i), ...row.map(cellText)]));
  const widths = rows[0].map((_, k) => Math.max(...rows.map((r) => r[k].length)));
  const lines = rows.map((r) => r.map((s, k) => s.padEnd(widths[k])).join('  ').trimEnd());
  const pairs = m.cells.flat().filter((c): c is Cell => c !== null);
  const ok = pairs.filter((c) => c.ok).length;
  lines.unshift('connectivity: ping between the test containers (average RTT of 2 echoes)');
  if (m.service) {
    const { probe, cell } = m.service;
    const who = cell.ok && cell.detail ? ` (answered by ${cell.detail})` : '';
    lines.push(`outside client ${probe.clientIp} -> service ${probe.service} ${probe.url}: ${cellText(cell)}${who}`);
  }
  lines.push(`${ok}/${pairs.length} container pairs ok${m.service ? `, service ${m.service.cell.ok ? 'ok' : 'FAIL'}` : ''} (${(m.ms / 1000).toFixed(1)} s)`);
  for (const f of failures(m)) lines.push(`  FAIL ${f}`);
  return lines.join('\n');
}

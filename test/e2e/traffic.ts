// Traffic between lab containers: ping (parsed counts), a matrix of pings run
// in parallel, TCP transfers with a Node server and client, and the kernel's
// IP fragmentation counters of a namespace. Every command runs inside a lab
// namespace and targets lab addresses only.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export type AsyncResult = { status: number; stdout: string; stderr: string };

/** `ip netns exec NS CMD ARGS` without blocking the event loop (pings run in parallel). */
export function nsExecAsync(netns: string, cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<AsyncResult> {
  return new Promise((resolve, reject) => {
    // without input, the child gets no stdin pipe at all: one it never reads
    // (ping) may close it first, and writing to it would raise EPIPE
    const child = spawn('ip', ['netns', 'exec', netns, cmd, ...args], { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ status: code ?? 128 + (signal ? 9 : 0), stdout, stderr });
    });
    if (opts.input !== undefined) {
      // the input is the child's to read; if it exits early, its exit status tells the story
      child.stdin!.on('error', () => {});
      child.stdin!.end(opts.input);
    }
  });
}

export type PingResult = { from: string; to: string; transmitted: number; received: number; loss: number; status: number; output: string };

/** Runs ping in `netns` to `dst`; extra args e.g. ['-c', '3', '-W', '1']. */
export async function ping(netns: string, dst: string, args: string[], timeoutMs = 120_000): Promise<PingResult> {
  const r = await nsExecAsync(netns, 'ping', ['-n', ...args, dst], { timeoutMs });
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  const transmitted = m ? Number(m[1]) : 0;
  const received = m ? Number(m[2]) : 0;
  return {
    from: netns, to: dst, transmitted, received, loss: transmitted ? (transmitted - received) / transmitted : 1,
    status: r.status, output: (r.stdout + r.stderr).trim(),
  };
}

export type Endpoint = { name: string; netns: string; ip: string };

/** Every ordered pair of distinct endpoints pings the other, all at once. */
export async function pingMatrix(eps: Endpoint[], args = ['-c', '3', '-W', '1']): Promise<PingResult[]> {
  const pairs: Array<[Endpoint, Endpoint]> = [];
  for (const a of eps) for (const b of eps) if (a !== b) pairs.push([a, b]);
  return Promise.all(
    pairs.map(async ([a, b]) => ({ ...(await ping(a.netns, b.ip, args)), from: a.name, to: b.name })),
  );
}

// ---- TCP ----------------------------------------------------------------------

/** Counts what it receives, answers with byte count and SHA-256 when the client half-closes. */
export const TCP_SINK = `
const net = require('net'), crypto = require('crypto');
const port = Number(process.argv[1]);
net.createServer({ allowHalfOpen: true }, (s) => {
  const h = crypto.createHash('sha256'); let n = 0;
  s.on('data', (d) => { h.update(d); n += d.length; });
  s.on('end', () => s.end(JSON.stringify({ bytes: n, sha256: h.digest('hex'), peer: s.remoteAddress }) + '\\n'));
  s.on('error', () => {});
}).listen(port, '0.0.0.0', () => console.log('listening'));
`;

/** Sends N random bytes, prints the server's answer and its own hash and timing as JSON; a connect timeout prints {error}. */
export const TCP_SEND = `
const net = require('net'), crypto = require('crypto');
const [host, port, bytes, timeoutMs] = process.argv.slice(1);
const payload = crypto.randomBytes(Number(bytes));
const sha256 = crypto.createHash('sha256').update(payload).digest('hex');
const t0 = Date.now();
const s = net.connect({ host, port: Number(port), allowHalfOpen: true });
const timer = setTimeout(() => { console.log(JSON.stringify({ error: 'timeout', ms: Date.now() - t0 })); process.exit(0); }, Number(timeoutMs));
let answer = '';
s.on('connect', () => s.end(payload));
s.on('data', (d) => (answer += d));
s.on('end', () => {
  clearTimeout(timer);
  let server = null; try { server = JSON.parse(answer); } catch {}
  console.log(JSON.stringify({ server, sha256, ms: Date.now() - t0 }));
  process.exit(0);
});
s.on('error', (e) => { clearTimeout(timer); console.log(JSON.stringify({ error: e.code, ms: Date.now() - t0 })); process.exit(0); });
`;

export type SendResult = { server?: { bytes: number; sha256: string; peer: string } | null; sha256?: string; ms: number; error?: string };

export async function tcpSend(netns: string, host: string, port: number, bytes: number, timeoutMs: number): Promise<SendResult> {
  const r = await nsExecAsync(netns, process.execPath, ['-e', TCP_SEND, host, String(port), String(bytes), String(timeoutMs)], {
    timeoutMs: timeoutMs + 30_000,
  });
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as SendResult;
  } catch {
    throw new Error(`TCP client in ${netns} printed no result (exit ${r.status}): ${r.stdout} ${r.stderr}`);
  }
}

// ---- kernel counters ---------------------------------------------------------------

export type FragCounters = { FragCreates: number; FragOKs: number; ReasmReqds: number; ReasmOKs: number };

/** IP fragmentation counters of a namespace (/proc/net/snmp as that namespace sees it). */
export async function fragCounters(netns: string): Promise<FragCounters> {
  const r = await nsExecAsync(netns, 'cat', ['/proc/net/snmp']);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('Ip:'));
  const keys = lines[0].split(/\s+/).slice(1);
  const vals = lines[1].split(/\s+/).slice(1).map(Number);
  const get = (k: string) => vals[keys.indexOf(k)];
  return { FragCreates: get('FragCreates'), FragOKs: get('FragOKs'), ReasmReqds: get('ReasmReqds'), ReasmOKs: get('ReasmOKs') };
}

/** A pause that shapes traffic (keep pings running across an outage); to wait for a condition use waitFor in ../helpers/wait. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Lines of a JSON log file (pino), skipping anything that is not JSON. */
export function readJsonLog(file: string): Array<Record<string, any>> {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: Array<Record<string, any>> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      /* a line still being written */
    }
  }
  return out;
}

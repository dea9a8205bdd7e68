// A small world for the L4 kernel path: a client namespace, the ingress
// namespace (where the programmer runs) and backend namespaces, each joined to
// the ingress by a veth, with the backends' default route via the ingress.
// Every backend runs one echo server (TCP and UDP on port 8080) that answers
// each line or datagram with `<its own address> <the peer it saw>`; the
// client is one long-lived node process driven by JSON lines, so a TCP
// connection can stay open across a change. Processes are ended by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { execFileSync } from 'node:child_process';
import { createTestNetns, removeTestNetns } from '../../helpers/netns';
import { uniqueName } from '../../helpers/names';
import { waitFor } from '../../helpers/wait';
import type { Endpoint } from '../../../ingress/model';

export const INGRESS_IP = '10.71.0.1';
export const CLIENT_IP = '10.71.0.2';
export const PORT = 8080;

const ECHO = `
const net = require('net'), dgram = require('dgram');
const srv = net.createServer((s) => {
  let buf = '';
  s.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\\n')) >= 0) { buf = buf.slice(i + 1); s.write(s.localAddress + ' ' + s.remoteAddress + '\\n'); } });
  s.on('error', () => {});
});
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => u.send(process.env.ADDR + ' ' + r.address, r.port, r.address));
let n = 0; const ready = () => { if (++n === 2) console.log('ready'); };
srv.listen(${PORT}, '0.0.0.0', ready); u.bind(${PORT}, '0.0.0.0', ready);
`;

const CLIENT = `
const net = require('net'), dgram = require('dgram'), rl = require('readline').createInterface({ input: process.stdin });
const conns = new Map();
const out = (id, r) => process.stdout.write(JSON.stringify({ id, ...r }) + '\\n');
function line(sock, cb) {
  let buf = '', done = false;
  const t = setTimeout(() => fin({ error: 'timeout' }), 3000);
  const fin = (r) => { if (done) return; done = true; clearTimeout(t); sock.off('data', on); sock.off('error', err); sock.off('close', cls); cb(r); };
  const on = (d) => { buf += d; const i = buf.indexOf('\\n'); if (i >= 0) fin({ reply: buf.slice(0, i) }); };
  const err = (e) => fin({ error: e.code || String(e) });
  const cls = () => fin({ error: 'closed' });
  sock.on('data', on); sock.on('error', err); sock.on('close', cls);
}
rl.on('line', (l) => {
  const c = JSON.parse(l);
  if (c.op === 'tcp' || c.op === 'open') {
    const s = net.connect({ host: c.host, port: c.port });
    s.on('error', () => {});
    line(s, (r) => { if (c.op === 'tcp' || r.error) s.destroy(); else conns.set(c.conn, s); out(c.id, r); });
    s.write('hi\\n');
  } else if (c.op === 'send') {
    const s = conns.get(c.conn);
    if (!s) return out(c.id, { error: 'no such connection' });
    line(s, (r) => out(c.id, r));
    s.write('hi\\n');
  } else if (c.op === 'udp') {
    const u = dgram.createSocket('udp4');
    const t = setTimeout(() => { u.close(); out(c.id, { error: 'timeout' }); }, c.timeoutMs || 2000);
    u.on('message', (m) => { clearTimeout(t); u.close(); out(c.id, { reply: String(m) }); });
    u.on('error', (e) => { clearTimeout(t); out(c.id, { error: e.code }); });
    u.bind(c.sport || 0, () => u.send('hi', c.port, c.host));
  }
});
console.log(JSON.stringify({ id: 0, ready: true }));
`;

export type Reply = { reply?: string; error?: string };

export class Client {
  private next = 1;
  private waiting = new Map<number, (r: Reply) => void>();
  constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      const m = JSON.parse(l) as Reply & { id: number };
      this.waiting.get(m.id)?.(m);
      this.waiting.delete(m.id);
    });
  }
  private ask(cmd: Record<string, unknown>): Promise<Reply> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.proc.stdin!.write(`${JSON.stringify({ id, ...cmd })}\n`);
    });
  }
  /** One TCP connection: connect, one line, close. The backend address that answered, or the error. */
  tcp(host: string, port: number) { return this.ask({ op: 'tcp', host, port }); }
  open(conn: string, host: string, port: number) { return this.ask({ op: 'open', conn, host, port }); }
  send(conn: string) { return this.ask({ op: 'send', conn }); }
  udp(host: string, port: number, sport?: number, timeoutMs?: number) { return this.ask({ op: 'udp', host, port, sport, timeoutMs }); }
}

export type World = {
  client: string;
  ingress: string;
  backends: Array<{ ns: string; ip: string; endpoint: Endpoint }>;
  cli: Client;
  teardown(): void;
};

function ip(ns: string, ...args: string[]): void {
  execFileSync('ip', ['-n', ns, ...args]);
}

function spawnIn(ns: string, script: string, env: Record<string, string> = {}): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
}

export async function buildWorld(backendCount: number): Promise<World> {
  const made: string[] = [];
  const procs: ChildProcess[] = [];
  const teardown = () => {
    for (const p of procs) if (p.pid && p.exitCode === null) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    for (const n of made) removeTestNetns(n);
  };
  try {
    const client = createTestNetns('l4c');
    made.push(client);
    const ingress = createTestNetns('l4i');
    made.push(ingress);
    execFileSync('ip', ['netns', 'exec', ingress, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    const a = uniqueName('l4v');
    const b = uniqueName('l4v');
    ip(client, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b, 'netns', ingress);
    ip(client, 'addr', 'add', `${CLIENT_IP}/24`, 'dev', a);
    ip(client, 'link', 'set', a, 'up');
    ip(client, 'route', 'add', 'default', 'via', INGRESS_IP);
    ip(ingress, 'addr', 'add', `${INGRESS_IP}/24`, 'dev', b);
    ip(ingress, 'link', 'set', b, 'up');
    const backends: World['backends'] = [];
    for (let k = 1; k <= backendCount; k++) {
      const ns = createTestNetns('l4b');
      made.push(ns);
      const x = uniqueName('l4v');
      const y = uniqueName('l4v');
      ip(ingress, 'link', 'add', x, 'type', 'veth', 'peer', 'name', y, 'netns', ns);
      ip(ingress, 'addr', 'add', `10.72.${k}.1/24`, 'dev', x);
      ip(ingress, 'link', 'set', x, 'up');
      const bip = `10.72.${k}.2`;
      ip(ns, 'addr', 'add', `${bip}/24`, 'dev', y);
      ip(ns, 'link', 'set', y, 'up');
      ip(ns, 'route', 'add', 'default', 'via', `10.72.${k}.1`);
      backends.push({ ns, ip: bip, endpoint: { key: `${bip}:${PORT}`, ip: bip, port: PORT, host: `h${k}`, rack: 'r1', datacenter: 'dc1', containerId: `c${k}` } });
    }
    for (const be of backends) {
      const p = spawnIn(be.ns, ECHO, { ADDR: be.ip });
      procs.push(p);
      let ready = false;
      createInterface({ input: p.stdout! }).on('line', (l) => { if (l === 'ready') ready = true; });
      await waitFor(`echo server in ${be.ns}`, () => ready || (p.exitCode !== null ? (() => { throw new Error('echo server exited'); })() : false), 10_000);
    }
    const cp = spawnIn(client, CLIENT);
    procs.push(cp);
    const cli = new Client(cp);
    return { client, ingress, backends, cli, teardown };
  } catch (e) {
    teardown();
    throw e;
  }
}

/** Which backend answered: the first word of the reply. */
export function answeredBy(r: Reply): string | undefined {
  return r.reply?.split(' ')[0];
}

/** A table of a few hundred service ports lists as tens of megabytes. */
const MAX_OUTPUT = 256 << 20;

export function nsRun(ns: string, cmd: string, args: string[], input?: string): string {
  return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], input === undefined ? { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: MAX_OUTPUT } : { encoding: 'utf8', input, maxBuffer: MAX_OUTPUT });
}

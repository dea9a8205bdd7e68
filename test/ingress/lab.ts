// The ingress lab: a weft cluster in a netns lab with an edge host, an
// outside client and labelled backend containers, plus the tools the ingress
// tests and the ingress bench measure with.
//
//   rack r1: r1a, r1b (backends), edge (agent + `weft ingress`)
//   rack r2: r2a, r2b (backends)
//   client: 198.18.0.2/24 ── veth ── edge 198.18.0.1/24   (not the lab underlay)
//
// - Every host runs `weft agent`, so the edge has routes into every container
//   subnet over the overlay. The client's only link is to the edge; it has a
//   default route there and nothing else.
// - Backends are container namespaces attached through weft's CNI plugin
//   (the conflist `weft install-cni` wrote, exec'd as a runtime does) with
//   CNI_ARGS `weft.label.app=web;weft.label.backend=<name>`, each running one
//   node process (BACKEND_JS, started by PID with `ip netns exec`): HTTP with
//   its own name and address, the client address it saw, X-Forwarded-For and
//   a PROXY v1/v2 source; `/healthz`; a WebSocket-style upgrade that echoes;
//   TCP (line echo) and UDP (datagram echo) that report the peer address.
// - Return path for traffic that keeps the client's address (direct, or L4
//   with `--l4-source-nat none`): the datacenter router routes 198.18.0.0/24
//   to the edge's underlay address. Every lab host has its default route via
//   that router, so a backend's reply reaches the edge, whose conntrack undoes
//   the DNAT. The router is the lab's own namespace; the route is added here,
//   the lab's code is unchanged.
// - Load: LOAD_JS, a keep-alive HTTP client loop run in the client namespace,
//   counting every request as ok (200 with a backend's JSON) or failed (any
//   other status, reset, timeout), with no retries; a status file shows
//   progress while it runs.
//
// Every process is a lab process (stopped with the lab, by its group);
// every file lives under one temp dir removed by destroy().
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  adminCert, agentPaths, cleanEnv, createToken, grpcCall, installCni, requireBuild, ROOT, startAgent, startController, tail, WEFT, weftCli,
  type Agent, type CertFiles, type Controller,
} from '../e2e/cluster';
import { cniAdd, cniDel, loadConflist, pluginConfig } from '../e2e/cni';
import { nsExecAsync } from '../e2e/traffic';
import { GiveUp, waitFor } from '../helpers/wait';
import { createLab, type Lab, type LabHost, type LabProcess, type LabSpec } from '../lab/lab';
import { ipBatch, nsRun } from '../lab/run';
// Types only: the bench loads this module outside vitest, where importing vitest throws.
import type { afterAll, afterEach } from 'vitest';

// ---- addresses and ports ---------------------------------------------------------

export const CLIENT_IP = '198.18.0.2';
/** The edge's address on the client's link: where the ingress listens. */
export const EDGE_IP = '198.18.0.1';
export const CLIENT_NET = '198.18.0.0/24';
export const BACKEND_HTTP_PORT = 8080;
/** TCP line echo and UDP datagram echo, both reporting the peer. */
export const BACKEND_ECHO_PORT = 9000;
export const INGRESS_METRICS_PORT = 7090;
export const NETWORK = 'default';
export const RACKS = { r1: ['r1a', 'r1b'], r2: ['r2a', 'r2b'] } as const;
export const EDGE = 'edge';

// ---- the scripts run inside the lab ---------------------------------------------------
// Plain CommonJS written to the lab's dir and run with `node FILE 'JSON config'`:
// they use nothing but Node's own modules, so they run in any namespace.

/** PROXY protocol v1/v2 reader shared by the backend's HTTP and TCP servers. */
const PROXY_JS = String.raw`
const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
function ipv6(b) { const p = []; for (let i = 0; i < 16; i += 2) p.push(b.readUInt16BE(i).toString(16)); return p.join(':'); }
function parseV2(buf) {
  const verCmd = buf[12], fam = buf[13], len = buf.readUInt16BE(14);
  const info = { version: 2, command: (verCmd & 0x0f) === 1 ? 'PROXY' : 'LOCAL', transport: (fam & 0x0f) === 2 ? 'udp' : 'tcp' };
  if ((verCmd & 0x0f) === 1 && (fam >> 4) === 1 && len >= 12) {
    info.src = Array.from(buf.subarray(16, 20)).join('.'); info.dst = Array.from(buf.subarray(20, 24)).join('.');
    info.srcPort = buf.readUInt16BE(24); info.dstPort = buf.readUInt16BE(26);
  } else if ((verCmd & 0x0f) === 1 && (fam >> 4) === 2 && len >= 36) {
    info.src = ipv6(buf.subarray(16, 32)); info.dst = ipv6(buf.subarray(32, 48));
    info.srcPort = buf.readUInt16BE(48); info.dstPort = buf.readUInt16BE(50);
  }
  return info;
}
// Reads an optional PROXY header off the start of a connection, then hands
// the socket on (paused, the bytes after the header put back).
function readProxyHeader(socket, cb) {
  let buf = Buffer.alloc(0);
  let decided = false;
  const finish = (info, rest) => {
    decided = true;
    socket.removeListener('data', onData);
    socket.removeListener('end', onEnd);
    socket.pause();
    if (rest.length) socket.unshift(rest);
    cb(info);
  };
  const onData = (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    const n = Math.min(buf.length, 12);
    if (buf.subarray(0, n).equals(SIG.subarray(0, n))) {
      if (buf.length < 16) return;
      const size = 16 + buf.readUInt16BE(14);
      if (buf.length < size) return;
      return finish(parseV2(buf), buf.subarray(size));
    }
    const m = Math.min(buf.length, 6);
    if (buf.subarray(0, m).toString('latin1') === 'PROXY '.slice(0, m)) {
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return buf.length > 107 ? finish(null, buf) : undefined;
      const f = buf.subarray(0, eol).toString('latin1').split(' ');
      return finish({ version: 1, command: 'PROXY', transport: 'tcp', src: f[2], dst: f[3], srcPort: Number(f[4]), dstPort: Number(f[5]) }, buf.subarray(eol + 2));
    }
    finish(null, buf);
  };
  const onEnd = () => { if (!decided) socket.destroy(); };
  socket.on('data', onData);
  socket.on('end', onEnd);
}
`;

/**
 * One backend container's servers. Config: { name, httpPort, echoPort }.
 * SIGUSR1 makes /healthz answer 503, SIGUSR2 makes it answer 200 again;
 * SIGTERM stops accepting, lets requests in flight finish, then exits 0.
 */
export const BACKEND_JS = String.raw`'use strict';
const http = require('http'), net = require('net'), dgram = require('dgram'), crypto = require('crypto');
const cfg = JSON.parse(process.argv[2]);
const NAME = cfg.name;
let healthy = true, closing = false, inFlight = 0;
const counts = { requests: 0, health: 0, upgrades: 0, tcp: 0, udp: 0 };
process.on('SIGUSR1', () => { healthy = false; });
process.on('SIGUSR2', () => { healthy = true; });
` + PROXY_JS + String.raw`
const addr = (s) => s.localAddress + ':' + s.localPort;
function handler(req, res) {
  const s = req.socket;
  const path = req.url || '/';
  const q = new URL(path, 'http://x').searchParams;
  inFlight++;
  let done = false;
  const end = (status, type, text) => {
    if (done) return;
    done = true;
    const h = { 'content-type': type, 'content-length': Buffer.byteLength(text), 'x-backend': NAME };
    if (closing) h.connection = 'close';
    res.writeHead(status, h);
    res.end(text);
    inFlight--;
  };
  req.resume();
  if (path === '/healthz' || path.startsWith('/healthz?')) {
    counts.health++;
    return end(healthy ? 200 : 503, 'text/plain', healthy ? 'ok\n' : 'unhealthy\n');
  }
  if (path === '/_stats') return end(200, 'application/json', JSON.stringify({ name: NAME, ...counts }) + '\n');
  counts.requests++;
  const body = {
    name: NAME, server: addr(s), client: s.remoteAddress, clientPort: s.remotePort,
    xff: req.headers['x-forwarded-for'] ?? null, proxy: s.proxyInfo ?? null,
    host: req.headers.host ?? null, method: req.method, path,
  };
  const bytes = Number(q.get('bytes') || 0);
  if (bytes > 0) body.pad = 'x'.repeat(bytes);
  const delay = Number(q.get('delay') || 0);
  const send = () => end(200, 'application/json', JSON.stringify(body) + '\n');
  if (delay > 0) setTimeout(send, delay); else send();
}
const httpServer = http.createServer(handler);
httpServer.on('upgrade', (req, socket, head) => {
  counts.upgrades++;
  const accept = crypto.createHash('sha1').update(String(req.headers['sec-websocket-key'] || '') + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.on('error', () => {});
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ' + accept +
    '\r\nX-Backend: ' + NAME + '\r\nX-Client: ' + socket.remoteAddress + '\r\nX-Forwarded-For-Seen: ' + (req.headers['x-forwarded-for'] || '') + '\r\n\r\n');
  if (head.length) socket.write(head);
  socket.on('data', (d) => socket.write(d));
});
httpServer.on('clientError', (err, socket) => {
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
  if (socket.writable) socket.end('HTTP/1.1 ' + status + '\r\nconnection: close\r\n\r\n'); else socket.destroy();
});
const front = net.createServer((socket) => {
  socket.on('error', () => {});
  readProxyHeader(socket, (info) => {
    socket.proxyInfo = info;
    httpServer.emit('connection', socket);
    socket.resume();
  });
});
const echo = net.createServer((socket) => {
  counts.tcp++;
  socket.on('error', () => {});
  readProxyHeader(socket, (info) => {
    let pending = '';
    socket.on('data', (d) => {
      pending += d.toString('utf8');
      let i;
      while ((i = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, i);
        pending = pending.slice(i + 1);
        socket.write(JSON.stringify({ name: NAME, server: addr(socket), peer: socket.remoteAddress, peerPort: socket.remotePort, proxy: info, echo: line }) + '\n');
      }
    });
    socket.resume();
  });
});
const udp = dgram.createSocket('udp4');
udp.on('message', (msg, r) => {
  counts.udp++;
  udp.send(Buffer.from(JSON.stringify({ name: NAME, peer: r.address, peerPort: r.port, echo: msg.toString('utf8') }) + '\n'), r.port, r.address);
});
let listening = 0;
const ready = () => { if (++listening === 3) console.log(JSON.stringify({ ready: true, name: NAME, pid: process.pid })); };
front.listen(cfg.httpPort, '0.0.0.0', ready);
echo.listen(cfg.echoPort, '0.0.0.0', ready);
udp.bind(cfg.echoPort, '0.0.0.0', ready);
process.on('SIGTERM', () => {
  closing = true;
  front.close(); echo.close(); udp.close();
  httpServer.closeIdleConnections();
  const t = setInterval(() => { if (inFlight === 0) { clearInterval(t); process.exit(0); } }, 5);
});
`;

/**
 * The load client: `concurrency` loops, each on its own keep-alive
 * connection, one GET after another, no retries. Config:
 * { host, port, path, hostHeader?, concurrency, rate? (requests/s over all loops),
 *   timeoutMs, statusFile, durationMs?, keepAlive? }.
 * Runs until SIGTERM (or durationMs), then lets the requests in flight finish,
 * writes the final status and exits 0.
 */
export const LOAD_JS = String.raw`'use strict';
const http = require('http'), fs = require('fs');
const cfg = JSON.parse(process.argv[2]);
const agent = new http.Agent({ keepAlive: cfg.keepAlive !== false, maxSockets: cfg.concurrency, maxFreeSockets: cfg.concurrency });
const st = { ok: 0, failed: 0, statuses: {}, errors: {}, backends: {}, failures: [], inFlight: 0, startedAt: Date.now(), endedAt: 0, final: false, latency: null };
let lat = new Float64Array(1 << 16), nLat = 0;
let stopping = false;
const headers = cfg.hostHeader ? { host: cfg.hostHeader } : {};
function write() {
  fs.writeFileSync(cfg.statusFile + '.tmp', JSON.stringify(st));
  fs.renameSync(cfg.statusFile + '.tmp', cfg.statusFile);
}
function record(ok, kind, detail, backend, ms) {
  if (ok) {
    st.ok++;
    st.backends[backend] = (st.backends[backend] || 0) + 1;
    if (nLat === lat.length) { const n = new Float64Array(lat.length * 2); n.set(lat); lat = n; }
    lat[nLat++] = ms;
  } else {
    st.failed++;
    st.errors[kind] = (st.errors[kind] || 0) + 1;
    if (st.failures.length < 50) st.failures.push({ at: Date.now() - st.startedAt, kind, detail: String(detail || '').slice(0, 200) });
  }
}
function one() {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    st.inFlight++;
    let settled = false;
    const finish = (ok, kind, detail, backend) => {
      if (settled) return;
      settled = true;
      st.inFlight--;
      record(ok, kind, detail, backend, Number(process.hrtime.bigint() - t0) / 1e6);
      resolve();
    };
    const req = http.request({ host: cfg.host, port: cfg.port, path: cfg.path || '/', method: 'GET', agent, headers, timeout: cfg.timeoutMs || 5000 }, (res) => {
      const chunks = [];
      st.statuses[res.statusCode] = (st.statuses[res.statusCode] || 0) + 1;
      res.on('data', (c) => chunks.push(c));
      res.on('error', (e) => finish(false, e.code || 'response-error', e.message));
      res.on('aborted', () => finish(false, 'aborted', 'response aborted'));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let name = null;
        try { name = JSON.parse(body).name; } catch {}
        if (res.statusCode === 200 && typeof name === 'string') finish(true, null, null, name);
        else finish(false, 'status-' + res.statusCode, body.slice(0, 200));
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('no answer within ' + (cfg.timeoutMs || 5000) + ' ms'), { code: 'TIMEOUT' })));
    req.on('error', (e) => finish(false, e.code || 'request-error', e.message));
    req.end();
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function loop(i) {
  const every = cfg.rate ? (cfg.concurrency * 1000) / cfg.rate : 0;
  let next = Date.now() + (every * i) / cfg.concurrency;
  while (!stopping) {
    if (every) { const wait = next - Date.now(); if (wait > 0) await sleep(wait); next += every; if (stopping) break; }
    await one();
  }
}
function pct(sorted, q) { return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * q))] : null; }
const timer = setInterval(write, 100);
const loops = Array.from({ length: cfg.concurrency }, (_, i) => loop(i));
async function stop() {
  if (stopping) return;
  stopping = true;
  await Promise.all(loops);
  clearInterval(timer);
  st.endedAt = Date.now();
  const s = Array.from(lat.subarray(0, nLat)).sort((a, b) => a - b);
  st.latency = { p50: pct(s, 0.5), p99: pct(s, 0.99), max: s.length ? s[s.length - 1] : null };
  st.final = true;
  write();
  console.log(JSON.stringify(st));
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (cfg.durationMs) setTimeout(stop, cfg.durationMs);
write();
`;

/**
 * A long-lived WebSocket-style connection: the upgrade handshake, then one
 * line every intervalMs, each expected back. Config:
 * { host, port, path, hostHeader?, intervalMs, statusFile }. Until SIGTERM.
 */
export const WS_JS = String.raw`'use strict';
const net = require('net'), fs = require('fs'), crypto = require('crypto');
const cfg = JSON.parse(process.argv[2]);
const st = { upgraded: false, status: null, backend: null, sent: 0, echoed: 0, mismatched: 0, closed: false, closeReason: null, headers: {} };
const write = () => { fs.writeFileSync(cfg.statusFile + '.tmp', JSON.stringify(st)); fs.renameSync(cfg.statusFile + '.tmp', cfg.statusFile); };
const s = net.connect({ host: cfg.host, port: cfg.port });
let head = '', rest = '', n = 0, timer = null;
s.on('connect', () => {
  s.write('GET ' + (cfg.path || '/ws') + ' HTTP/1.1\r\nHost: ' + (cfg.hostHeader || cfg.host) + '\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: ' + crypto.randomBytes(16).toString('base64') + '\r\nSec-WebSocket-Version: 13\r\n\r\n');
});
s.on('data', (d) => {
  if (!st.upgraded && st.status === null) {
    head += d.toString('latin1');
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    const lines = head.slice(0, end).split('\r\n');
    st.status = Number(lines[0].split(' ')[1]);
    for (const l of lines.slice(1)) { const i = l.indexOf(':'); st.headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim(); }
    st.backend = st.headers['x-backend'] || null;
    rest = head.slice(end + 4);
    if (st.status !== 101) { st.closeReason = 'status ' + st.status; s.destroy(); write(); return; }
    st.upgraded = true;
    timer = setInterval(() => { s.write('msg ' + n++ + '\n'); st.sent++; }, cfg.intervalMs || 50);
  } else {
    rest += d.toString('utf8');
  }
  let i;
  while ((i = rest.indexOf('\n')) >= 0) {
    const line = rest.slice(0, i);
    rest = rest.slice(i + 1);
    if (line === 'msg ' + st.echoed) st.echoed++; else st.mismatched++;
  }
  write();
});
s.on('error', (e) => { st.closeReason = st.closeReason || e.code || e.message; });
s.on('close', () => { st.closed = true; st.closeReason = st.closeReason || 'closed by peer'; if (timer) clearInterval(timer); write(); });
process.on('SIGTERM', () => { if (timer) clearInterval(timer); const open = !st.closed; write(); if (open) { st.closeReason = 'closed by client'; } console.log(JSON.stringify({ ...st, openAtStop: open })); process.exit(0); });
write();
`;

/**
 * Slow clients: `connections` connections that each send a request line and
 * then one header byte every `byteEveryMs`, never finishing the head. Prints
 * how many the server closed and when. Config: { host, port, connections, byteEveryMs, maxMs }.
 */
const SLOWLORIS_JS = String.raw`'use strict';
const net = require('net');
const cfg = JSON.parse(process.argv[2]);
const t0 = Date.now();
const out = { closedByServer: 0, stillOpen: 0, closedAfterMs: [], answers: [], errors: {} };
let left = cfg.connections;
const done = () => { if (--left === 0) { console.log(JSON.stringify(out)); process.exit(0); } };
for (let c = 0; c < cfg.connections; c++) {
  const s = net.connect({ host: cfg.host, port: cfg.port });
  let timer = null, finished = false, answer = '';
  const header = 'X-Slow-' + c + ': ' + 'a'.repeat(4000) + '\r\n';
  let i = 0;
  const end = (byServer) => {
    if (finished) return;
    finished = true;
    clearInterval(timer);
    if (byServer) { out.closedByServer++; out.closedAfterMs.push(Date.now() - t0); if (answer) out.answers.push(answer.split('\r\n')[0]); }
    else { out.stillOpen++; s.destroy(); }
    done();
  };
  s.on('connect', () => {
    s.write('GET / HTTP/1.1\r\nHost: slow\r\n');
    timer = setInterval(() => { if (i < header.length) s.write(header[i++]); }, cfg.byteEveryMs);
  });
  s.on('data', (d) => { answer += d.toString('latin1'); });
  s.on('error', (e) => { out.errors[e.code || e.message] = (out.errors[e.code || e.message] || 0) + 1; });
  s.on('close', () => end(true));
  setTimeout(() => end(false), cfg.maxMs);
}
`;

// ---- types -------------------------------------------------------------------------

export type Backend = {
  /** `<host>-<container>`, also its `backend` label and what it answers as `name` */
  name: string;
  host: LabHost;
  rack: string;
  /** container namespace name (for ip netns exec) */
  netns: string;
  netnsPath: string;
  containerId: string;
  ip: string;
  labels: Record<string, string>;
  /** the running server, null once stopped or killed */
  proc: LabProcess | null;
  /** false once CNI DEL removed its interface */
  attached: boolean;
};

export type LoadOptions = {
  host?: string;
  port: number;
  path?: string;
  hostHeader?: string;
  concurrency?: number;
  /** requests per second over all loops; unset: as fast as answers come */
  rate?: number;
  timeoutMs?: number;
  keepAlive?: boolean;
};

export type LoadStatus = {
  ok: number;
  failed: number;
  statuses: Record<string, number>;
  errors: Record<string, number>;
  backends: Record<string, number>;
  failures: Array<{ at: number; kind: string; detail: string }>;
  inFlight: number;
  startedAt: number;
  endedAt: number;
  final: boolean;
  latency: { p50: number | null; p99: number | null; max: number | null } | null;
};

export type LoadRun = {
  proc: LabProcess;
  /** what the client wrote last (every 100 ms) */
  status(): LoadStatus;
  /** waits until `n` more requests have succeeded than when called */
  more(n: number, ms?: number): Promise<LoadStatus>;
  /** SIGTERM, requests in flight finish, the final counts */
  stop(): Promise<LoadStatus>;
};

export type WsStatus = {
  upgraded: boolean;
  status: number | null;
  backend: string | null;
  sent: number;
  echoed: number;
  mismatched: number;
  closed: boolean;
  closeReason: string | null;
  headers: Record<string, string>;
};

export type WsRun = { proc: LabProcess; status(): WsStatus; stop(): Promise<WsStatus & { openAtStop: boolean }> };

export type Ingress = {
  proc: LabProcess;
  logFile: string;
  args: string[];
  /** its /metrics text */
  metrics(): Promise<string>;
};

export type HttpAnswer = { status: number; headers: Record<string, string>; body: string; json: any };

export type IngressLab = {
  lab: Lab;
  dir: string;
  ctl: Controller;
  admin: CertFiles;
  agents: Map<string, Agent>;
  edge: LabHost;
  clientNetns: string;
  backends: Backend[];
  backend(name: string): Backend;

  /** a labelled container on `host`, attached through the CNI plugin, its server started */
  addBackend(host: string, container: string, labels?: Record<string, string>): Promise<Backend>;
  startBackend(b: Backend): Promise<void>;
  /** SIGTERM: stops accepting, finishes what is in flight */
  stopBackend(b: Backend): Promise<void>;
  /** SIGKILL: the process is gone at once, its connections with it */
  killBackend(b: Backend): Promise<void>;
  /** /healthz answers 503 (false) or 200 (true) from now on */
  setHealthy(b: Backend, healthy: boolean): void;
  /** the container's endpoint removed at the controller (as CNI DEL does), while the container keeps serving */
  releaseEndpoint(b: Backend): Promise<void>;
  /** CNI DEL: the container's interface is gone and its endpoint released */
  detachBackend(b: Backend): Promise<void>;
  /** the controller's current backends of a service, as WatchServices would send them (names) */
  endpointsOf(labels: Record<string, string>): Promise<string[]>;

  /** `weft service ARGS` with the admin certificate, run in the controller's namespace; stdout */
  service(args: string[]): Promise<string>;
  /** the `weft ingress --server … --token … --ca-cert-hash …` line `weft token create --role ingress` printed */
  ingressJoinLine(): string;
  /** `weft ingress` in the edge namespace with the printed line plus the edge's place and paths; resolves once /readyz answers 200 */
  /** nodeArgs: options for node itself, before the script (V8 flags such as --min-semi-space-size=16) */
  startIngress(extraArgs?: string[], opts?: { takeover?: boolean; logName?: string; nodeArgs?: string[] }): Promise<Ingress>;

  /** from the client namespace */
  httpGet(url: string, opts?: { hostHeader?: string; headers?: Record<string, string>; timeoutMs?: number }): Promise<HttpAnswer>;
  /** one line to a TCP echo; the JSON it answered */
  tcpWho(host: string, port: number, line?: string): Promise<any>;
  udpWho(host: string, port: number, text?: string): Promise<any>;
  /** raw bytes to host:port, what came back until close or timeout */
  raw(host: string, port: number, data: string, timeoutMs?: number): Promise<{ answer: string; closed: boolean; error: string | null }>;
  slowloris(host: string, port: number, o: { connections: number; byteEveryMs: number; maxMs: number }): Promise<{ closedByServer: number; stillOpen: number; closedAfterMs: number[]; answers: string[]; errors: Record<string, number> }>;
  load(o: LoadOptions): Promise<LoadRun>;
  websocket(o: { host?: string; port: number; path?: string; hostHeader?: string; intervalMs?: number }): Promise<WsRun>;

  destroy(): Promise<void>;
};

export type IngressLabOptions = {
  /** lab name: lowercase letters, digits, '-', at most 32 (unique per test file) */
  name: string;
  /** containers per backend host (default 1) */
  perHost?: number;
  /** where the lab's files go (default: a new temp dir); removed by destroy() either way */
  dir?: string;
  /** how the netns lab is made (default createLab; the bench passes its own, removed on interrupt too) */
  makeLab?: (spec: LabSpec) => Promise<Lab>;
};

// ---- building ------------------------------------------------------------------------

export async function createIngressLab(o: IngressLabOptions): Promise<IngressLab> {
  requireBuild();
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), `wt${o.name}-`));
  const lab = await (o.makeLab ?? createLab)({
    name: o.name,
    datacenters: [{ name: 'dc1', racks: [{ name: 'r1', hosts: [...RACKS.r1, EDGE] }, { name: 'r2', hosts: [...RACKS.r2] }] }],
    controller: true,
  });
  let il: IngressLab | undefined;
  try {
    il = await build(lab, dir, o);
    return il;
  } finally {
    if (!il) {
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

async function build(lab: Lab, dir: string, o: IngressLabOptions): Promise<IngressLab> {
  const scripts = join(dir, 'scripts');
  mkdirSync(scripts);
  const script = (name: string, text: string) => {
    const p = join(scripts, name);
    writeFileSync(p, text);
    return p;
  };
  const BACKEND = script('backend.cjs', BACKEND_JS);
  const LOAD = script('load.cjs', LOAD_JS);
  const WS = script('ws.cjs', WS_JS);
  const SLOW = script('slowloris.cjs', SLOWLORIS_JS);

  const edge = lab.host(EDGE);
  const clientNetns = addOutsideClient(lab, edge);
  // replies to the client's own address go back through the edge
  for (const r of lab.plan.routers) ipBatch(r.netns, [`route add ${CLIENT_NET} via ${edge.underlayIp}`]);
  // replies arrive on the edge's underlay link although the edge routes the containers over VXLAN: loose, not strict
  nsRun(edge.netns, 'sysctl', ['-qw', 'net.ipv4.conf.all.rp_filter=2', 'net.ipv4.conf.eth0.rp_filter=2']);

  const ctl = await startController(lab, join(dir, 'controller'), join(dir, 'controller.log'));
  const admin = adminCert(ctl.dataDir, join(dir, 'admin'));
  const token = createToken(ctl.dataDir);
  const agents = new Map<string, Agent>();
  await Promise.all(lab.hosts.map(async (h) => {
    const paths = agentPaths(dir, h);
    installCni(paths, NETWORK);
    agents.set(h.name, await startAgent(lab, ctl, h, paths, token, { debugLog: false }));
  }));
  // the edge must route to every backend host's subnet before anything is measured
  const backendHosts = [...RACKS.r1, ...RACKS.r2];
  await waitFor('the edge to route to every backend host over the overlay', () => {
    const routes = lab.exec(edge.netns, 'ip', ['-j', 'route', 'show']).stdout;
    const vx = (JSON.parse(routes || '[]') as Array<{ dev?: string; gateway?: string }>).filter((r) => String(r.dev ?? '').startsWith('weft.vx') && r.gateway);
    return vx.length >= lab.hosts.length - 1;
  }, 30_000);

  const backends: Backend[] = [];
  const cniConf = (h: LabHost) => pluginConfig(loadConflist(join(agents.get(h.name)!.cniConfDir, `10-weft-${NETWORK}.conflist`)));
  const cniPath = (h: LabHost) => agents.get(h.name)!.cniBinDir;

  const startBackend = async (b: Backend) => {
    if (b.proc && !b.proc.exited) throw new Error(`backend ${b.name} is already running`);
    const p = lab.spawn(b.netns, process.execPath, [BACKEND, JSON.stringify({ name: b.name, httpPort: BACKEND_HTTP_PORT, echoPort: BACKEND_ECHO_PORT })], { env: cleanEnv() });
    b.proc = p;
    await waitFor(`backend ${b.name} to listen`, () => {
      if (p.exited) throw new GiveUp(`backend ${b.name} exited: ${p.output()}`);
      return p.output().includes('"ready":true');
    }, 15_000);
  };

  const addBackend = async (hostName: string, container: string, extra: Record<string, string> = {}) => {
    const host = lab.host(hostName);
    const name = `${hostName}-${container}`;
    const labels = { app: 'web', backend: name, rack: host.rack, ...extra };
    const netnsPath = lab.addContainerNetns(host, container);
    const containerId = randomBytes(32).toString('hex');
    const res = await cniAdd({
      hostNetns: host.netns, cniPath: cniPath(host), containerId, netns: netnsPath, ifname: 'eth0', config: cniConf(host),
      args: Object.entries(labels).map(([k, v]) => `weft.label.${k}=${v}`).join(';'),
    });
    const netns = netnsPath.replace('/run/netns/', '');
    ipBatch(netns, ['link set lo up']);
    const b: Backend = {
      name, host, rack: host.rack, netns, netnsPath, containerId, ip: String(res.ips[0].address).split('/')[0], labels, proc: null, attached: true,
    };
    backends.push(b);
    await startBackend(b);
    return b;
  };

  const perHost = o.perHost ?? 1;
  await Promise.all(backendHosts.map(async (h) => {
    for (let i = 1; i <= perHost; i++) await addBackend(h, `web${i}`);
  }));
  backends.sort((a, b) => (a.name < b.name ? -1 : 1));

  const ctlNetns = lab.controller!.netns;
  const certArgs = ['--server', ctl.server, '--ca', admin.ca, '--cert', admin.cert, '--key', admin.key];

  const endpointsOf = async (labels: Record<string, string>) => {
    const r = await grpcCall(ctlNetns, ctl.server, admin, 'ListEndpoints', { network: NETWORK });
    if (!r.ok) throw new Error(`ListEndpoints: ${r.code} ${r.details}`);
    return (r.res.endpoints as Array<{ labels: Record<string, string> }>)
      .filter((e) => Object.entries(labels).every(([k, v]) => e.labels[k] === v))
      .map((e) => e.labels.backend)
      .sort();
  };

  let joinLine: string | null = null;
  const ingressJoinLine = () => {
    if (joinLine) return joinLine;
    const line = weftCli(['token', 'create', '--role', 'ingress', '--ttl', '1h', '--data-dir', ctl.dataDir]).trim().split('\n').pop() ?? '';
    if (!/^weft ingress --server \S+ --token \S+ --ca-cert-hash sha256:[0-9a-f]{64}$/.test(line)) throw new Error(`unexpected ingress join line: ${line}`);
    joinLine = line;
    return line;
  };

  const ingressState = join(dir, 'ingress');
  let ingressCount = 0;
  const startIngress = async (extraArgs: string[] = [], opts: { takeover?: boolean; logName?: string; nodeArgs?: string[] } = {}) => {
    const printed = ingressJoinLine().split(/\s+/).slice(1);
    const args = [
      ...printed, '--name', EDGE, '--rack', edge.rack, '--datacenter', edge.datacenter, '--state-dir', ingressState,
      '--listen-address', EDGE_IP, '--metrics-listen', `127.0.0.1:${INGRESS_METRICS_PORT}`,
      ...extraArgs, ...(opts.takeover ? ['--takeover'] : []),
    ];
    const logFile = join(dir, opts.logName ?? `ingress-${++ingressCount}.log`);
    const proc = lab.spawn(edge.netns, process.execPath, [...(opts.nodeArgs ?? []), WEFT, ...args], { env: cleanEnv(), logFile, cwd: ROOT });
    const ing: Ingress = {
      proc, logFile, args,
      metrics: async () => (await httpIn(edge.netns, `http://127.0.0.1:${INGRESS_METRICS_PORT}/metrics`)).body,
    };
    await waitFor('the ingress to be ready (/readyz)', async () => {
      if (proc.exited) throw new GiveUp(`weft ingress exited: ${tail(logFile)}`);
      // during a takeover both processes may hold the metrics socket; the old one answers 503 (handed over)
      const r = await httpIn(edge.netns, `http://127.0.0.1:${INGRESS_METRICS_PORT}/readyz`);
      return r.status === 200 && (!opts.takeover || ownsMetricsPort(edge.netns, proc.pid));
    }, 30_000);
    return ing;
  };

  const il: IngressLab = {
    lab, dir, ctl, admin, agents, edge, clientNetns, backends,
    backend(name) {
      const b = backends.find((x) => x.name === name);
      if (!b) throw new Error(`no backend ${name} (have ${backends.map((x) => x.name).join(', ')})`);
      return b;
    },
    addBackend,
    startBackend,
    async stopBackend(b) {
      const st = await b.proc?.stop('SIGTERM', 10_000);
      if (st && st.code !== 0) throw new Error(`backend ${b.name} exited ${st.code ?? st.signal} on SIGTERM: ${b.proc?.output()}`);
      b.proc = null;
    },
    async killBackend(b) {
      await b.proc?.stop('SIGKILL', 1000);
      b.proc = null;
    },
    setHealthy(b, healthy) {
      if (!b.proc || b.proc.exited) throw new Error(`backend ${b.name} is not running`);
      process.kill(b.proc.pid, healthy ? 'SIGUSR2' : 'SIGUSR1');
    },
    async releaseEndpoint(b) {
      const r = await grpcCall(ctlNetns, ctl.server, admin, 'ReleaseEndpoint', { network: NETWORK, ip: b.ip, container_id: b.containerId });
      if (!r.ok) throw new Error(`ReleaseEndpoint ${b.name}: ${r.code} ${r.details}`);
    },
    async detachBackend(b) {
      await cniDel({ hostNetns: b.host.netns, cniPath: cniPath(b.host), containerId: b.containerId, netns: b.netnsPath, ifname: 'eth0', config: cniConf(b.host) });
      b.attached = false;
    },
    endpointsOf,
    async service(args) {
      const r = await nsExecAsync(ctlNetns, process.execPath, [WEFT, 'service', ...args, ...certArgs], { timeoutMs: 30_000 });
      if (r.status !== 0) throw new Error(`weft service ${args.join(' ')} exited ${r.status}: ${r.stderr.trim() || r.stdout.trim()}`);
      return r.stdout;
    },
    ingressJoinLine,
    startIngress,
    httpGet: (url, opts = {}) => httpIn(clientNetns, url, { ...opts, headers: { ...(opts.hostHeader ? { host: opts.hostHeader } : {}), ...opts.headers } }),
    tcpWho: (host, port, line = 'who') => tcpWhoIn(clientNetns, host, port, line),
    udpWho: (host, port, text = 'who') => udpWhoIn(clientNetns, host, port, text),
    async raw(host, port, data, timeoutMs = 5000) {
      const js = "const s=require('net').connect({host:process.argv[1],port:+process.argv[2]});let a='',err=null;" +
        "const done=(closed)=>{console.log(JSON.stringify({answer:a.slice(0,4096),closed,error:err}));process.exit(0)};" +
        "setTimeout(()=>done(false),+process.argv[4]);s.on('connect',()=>s.write(Buffer.from(process.argv[3],'base64')));" +
        "s.on('data',(d)=>{a+=d.toString('latin1')});s.on('error',(e)=>{err=e.code||e.message});s.on('close',()=>done(true))";
      return lastJson(await nsExecAsync(clientNetns, process.execPath, ['-e', js, host, String(port), Buffer.from(data, 'latin1').toString('base64'), String(timeoutMs)], { timeoutMs: timeoutMs + 15_000 }), 'raw');
    },
    async slowloris(host, port, so) {
      return lastJson(await nsExecAsync(clientNetns, process.execPath, [SLOW, JSON.stringify({ host, port, ...so })], { timeoutMs: so.maxMs + 30_000 }), 'slowloris');
    },
    async load(lo) {
      const statusFile = join(dir, `load-${randomBytes(4).toString('hex')}.json`);
      const cfg = { host: lo.host ?? EDGE_IP, port: lo.port, path: lo.path ?? '/', hostHeader: lo.hostHeader, concurrency: lo.concurrency ?? 8, rate: lo.rate, timeoutMs: lo.timeoutMs ?? 5000, keepAlive: lo.keepAlive, statusFile };
      const proc = lab.spawn(clientNetns, process.execPath, [LOAD, JSON.stringify(cfg)], { env: cleanEnv() });
      const status = () => readStatus<LoadStatus>(statusFile);
      await waitFor('the load client to start', () => {
        if (proc.exited) throw new GiveUp(`load client exited: ${proc.output()}`);
        return existsSync(statusFile);
      }, 10_000);
      return {
        proc,
        status,
        async more(n, ms = 30_000) {
          const from = status().ok;
          return waitFor(`${n} more successful requests (from ${from})`, () => {
            if (proc.exited) throw new GiveUp(`load client exited: ${proc.output()}`);
            const s = status();
            return s.ok >= from + n && s;
          }, ms, 50);
        },
        async stop() {
          const st = await proc.stop('SIGTERM', 20_000);
          const s = status();
          if (!s.final) throw new Error(`load client ended (${st.code ?? st.signal}) without its final count: ${proc.output()}`);
          return s;
        },
      };
    },
    async websocket(wo) {
      const statusFile = join(dir, `ws-${randomBytes(4).toString('hex')}.json`);
      const cfg = { host: wo.host ?? EDGE_IP, port: wo.port, path: wo.path ?? '/ws', hostHeader: wo.hostHeader, intervalMs: wo.intervalMs ?? 50, statusFile };
      const proc = lab.spawn(clientNetns, process.execPath, [WS, JSON.stringify(cfg)], { env: cleanEnv() });
      const status = () => readStatus<WsStatus>(statusFile);
      await waitFor('the WebSocket to be upgraded', () => {
        if (!existsSync(statusFile)) return false;
        const s = status();
        if (s.status !== null && !s.upgraded) throw new GiveUp(`upgrade refused: ${JSON.stringify(s)}`);
        if (s.closed) throw new GiveUp(`WebSocket closed: ${JSON.stringify(s)}`);
        return s.upgraded && s.echoed > 0;
      }, 15_000, 50);
      return {
        proc,
        status,
        async stop() {
          await proc.stop('SIGTERM', 5000);
          return JSON.parse(proc.output().trim().split('\n').pop() ?? '{}');
        },
      };
    },
    async destroy() {
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return il;
}

// ---- small helpers ---------------------------------------------------------------------

/**
 * The outside client: a namespace whose one link is a veth into `edge`
 * (CLIENT_IP there, EDGE_IP on the edge's end, the default route via the
 * edge), made inside the client namespace. Returns its netns name.
 */
export function addOutsideClient(lab: Lab, edge: LabHost): string {
  const clientNetns = lab.addContainerNetns(edge, 'client').replace('/run/netns/', '');
  ipBatch(clientNetns, [
    `link add name eth0 mtu 1500 type veth peer name wtclient mtu 1500 netns ${edge.netns}`,
    `addr add ${CLIENT_IP}/24 dev eth0`, 'link set lo up', 'link set eth0 up', `route add default via ${EDGE_IP}`,
  ]);
  ipBatch(edge.netns, [`addr add ${EDGE_IP}/24 dev wtclient`, 'link set wtclient up']);
  return clientNetns;
}

function readStatus<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

function lastJson(r: { status: number; stdout: string; stderr: string }, what: string): any {
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    throw new Error(`${what} printed no JSON (exit ${r.status}): ${r.stdout} ${r.stderr}`);
  }
}

/** True when the process `pid` holds a listening socket on the ingress's metrics port in `netns`. */
function ownsMetricsPort(netns: string, pid: number): boolean {
  const out = nsRun(netns, 'ss', ['-Hltnp', `sport = :${INGRESS_METRICS_PORT}`], { check: false }).stdout;
  return out.includes(`pid=${pid},`);
}

/**
 * One HTTP request from inside a namespace with Node's http module (any
 * status is an answer; a connection failure throws).
 */
export async function httpIn(netns: string, url: string, opts: { headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<HttpAnswer> {
  const js = "const u=new URL(process.argv[1]);const r=require('http').request({host:u.hostname,port:u.port||80,path:u.pathname+u.search,headers:JSON.parse(process.argv[2]),timeout:+process.argv[3]}," +
    "(res)=>{let b='';res.on('data',(d)=>b+=d);res.on('end',()=>{console.log(JSON.stringify({status:res.statusCode,headers:res.headers,body:b}))})});" +
    "r.on('timeout',()=>r.destroy(new Error('timeout')));r.on('error',(e)=>{console.error(e.code||e.message);process.exit(1)});r.end()";
  const timeoutMs = opts.timeoutMs ?? 5000;
  const r = await nsExecAsync(netns, process.execPath, ['-e', js, url, JSON.stringify(opts.headers ?? {}), String(timeoutMs)], { timeoutMs: timeoutMs + 10_000 });
  if (r.status !== 0) throw new Error(`GET ${url} in ${netns}: ${r.stderr.trim() || r.stdout.trim()}`);
  const a = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as Omit<HttpAnswer, 'json'>;
  let json: any = null;
  try {
    json = JSON.parse(a.body);
  } catch {
    /* not JSON */
  }
  return { ...a, json };
}

/** One line to a backend's TCP echo from inside a namespace: the JSON it answered, or `{ error }` (refused, reset, 5 s without an answer). */
export async function tcpWhoIn(netns: string, host: string, port: number, line: string): Promise<any> {
  const js = "const s=require('net').connect({host:process.argv[1],port:+process.argv[2]});let b='';s.setTimeout(5000,()=>{console.log(JSON.stringify({error:'timeout'}));process.exit(0)});" +
    "s.on('connect',()=>s.write(process.argv[3]+'\\n'));s.on('data',(d)=>{b+=d;const i=b.indexOf('\\n');if(i>=0){console.log(b.slice(0,i));process.exit(0)}});" +
    "s.on('error',(e)=>{console.log(JSON.stringify({error:e.code||e.message}));process.exit(0)})";
  return lastJson(await nsExecAsync(netns, process.execPath, ['-e', js, host, String(port), line], { timeoutMs: 15_000 }), 'tcpWho');
}

/** One datagram to a backend's UDP echo from inside a namespace: the JSON it answered, or `{ error: 'timeout' }` after 3 s. */
export async function udpWhoIn(netns: string, host: string, port: number, text: string): Promise<any> {
  const js = "const s=require('dgram').createSocket('udp4');const t=setTimeout(()=>{console.log(JSON.stringify({error:'timeout'}));process.exit(0)},3000);" +
    "s.on('message',(m)=>{clearTimeout(t);console.log(m.toString().trim());process.exit(0)});s.send(process.argv[3],+process.argv[2],process.argv[1])";
  return lastJson(await nsExecAsync(netns, process.execPath, ['-e', js, host, String(port), text], { timeoutMs: 15_000 }), 'udpWho');
}

/** Prometheus text: the sum of every sample of `name` whose labels include `match`. */
export function metricSum(text: string, name: string, match: Record<string, string> = {}): number {
  let sum = 0;
  for (const s of samples(text, name)) if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  return sum;
}

/** Every sample of one metric, labels parsed. */
export function samples(text: string, name: string): Array<{ labels: Record<string, string>; value: number }> {
  const out: Array<{ labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ labels, value: Number(m[4]) });
  }
  return out;
}

/**
 * The teardown of an ingress lab test file: under a failed test, the tail of
 * the ingress's log; after the last, the lab destroyed. `hooks` are vitest's
 * own (this module does not import vitest: see above); `current` gives the
 * lab and the ingress the file's beforeAll made, either missing when it
 * failed before making them.
 */
export function tearDownLab(
  hooks: { afterEach: typeof afterEach; afterAll: typeof afterAll }, current: () => { il?: IngressLab; ingress?: Ingress },
): void {
  hooks.afterEach((ctx) => {
    const { ingress } = current();
    if (ctx.task.result?.state === 'fail' && ingress) console.log(`ingress log tail: ${tail(ingress.logFile, 30)}`);
  });
  hooks.afterAll(async () => {
    await current().il?.destroy();
  }, 60_000);
}

/** A lab name unique to this process: `<tag><pid base 36>`. */
export function labName(tag: string): string {
  return `${tag}${process.pid.toString(36)}`;
}


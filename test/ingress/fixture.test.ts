// The ingress lab itself, with direct traffic (client -> edge -> overlay ->
// container, no ingress in the path): the tools the ingress tests measure
// with must be right before their numbers mean anything. Each check here is
// one the ingress tests rely on: backends reachable from the outside client
// with its own address, labels at the controller for the service selector,
// PROXY v1/v2 and X-Forwarded-For reported, the WebSocket echo, TCP/UDP echo
// with the peer address, health toggling, endpoint release vs CNI DEL, a load
// client whose counts agree with the backends' own, and that notices failures.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait';
import { nsRun } from '../lab/run';
import {
  BACKEND_ECHO_PORT, BACKEND_HTTP_PORT, CLIENT_IP, EDGE_IP, createIngressLab, labName, type IngressLab,
} from './lab';

let il: IngressLab;

beforeAll(async () => {
  il = await createIngressLab({ name: labName('ingf') });
}, 120_000);

afterAll(async () => {
  await il?.destroy();
}, 60_000);

const url = (ip: string, path = '/') => `http://${ip}:${BACKEND_HTTP_PORT}${path}`;

/** A PROXY v2 header (PROXY, TCP over IPv4) for src:sport -> dst:dport. */
function proxyV2(src: string, sport: number, dst: string, dport: number): string {
  const b = Buffer.alloc(28);
  Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c]).copy(b);
  src.split('.').forEach((o, i) => (b[16 + i] = Number(o)));
  dst.split('.').forEach((o, i) => (b[20 + i] = Number(o)));
  b.writeUInt16BE(sport, 24);
  b.writeUInt16BE(dport, 26);
  return b.toString('latin1');
}

const body = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));

describe('ingress lab (direct traffic)', () => {
  it('has two backends per rack, each on its own host, and a client whose one link goes to the edge', () => {
    expect(il.backends.map((b) => [b.name, b.rack])).toEqual([['r1a-web1', 'r1'], ['r1b-web1', 'r1'], ['r2a-web1', 'r2'], ['r2b-web1', 'r2']]);
    expect(new Set(il.backends.map((b) => b.ip)).size).toBe(4);
    const links = JSON.parse(nsRun(il.clientNetns, 'ip', ['-j', 'link', 'show']).stdout) as Array<{ ifname: string }>;
    expect(links.map((l) => l.ifname).sort()).toEqual(['eth0', 'lo']);
    const routes = JSON.parse(nsRun(il.clientNetns, 'ip', ['-j', 'route', 'show']).stdout) as Array<{ dst: string; gateway?: string }>;
    expect(routes.map((r) => `${r.dst} ${r.gateway ?? ''}`.trim()).sort()).toEqual(['198.18.0.0/24', `default ${EDGE_IP}`]);
  });

  it('reaches every backend over HTTP, TCP and UDP with the client address preserved', async () => {
    for (const b of il.backends) {
      const a = await il.httpGet(url(b.ip, '/hello'));
      expect([a.status, a.json.name, a.json.server, a.json.client, a.json.path]).toEqual([200, b.name, `${b.ip}:${BACKEND_HTTP_PORT}`, CLIENT_IP, '/hello']);
      expect(a.headers['x-backend']).toBe(b.name);
      const t = await il.tcpWho(b.ip, BACKEND_ECHO_PORT, 'line-1');
      expect([t.name, t.peer, t.echo, t.proxy]).toEqual([b.name, CLIENT_IP, 'line-1', null]);
      const u = await il.udpWho(b.ip, BACKEND_ECHO_PORT, 'dgram-1');
      expect([u.name, u.peer, u.echo]).toEqual([b.name, CLIENT_IP, 'dgram-1']);
    }
  });

  it('labels every container at the controller, so a selector app=web finds all four', async () => {
    expect(await il.endpointsOf({ app: 'web' })).toEqual(il.backends.map((b) => b.name));
    expect(await il.endpointsOf({ app: 'web', rack: 'r2' })).toEqual(['r2a-web1', 'r2b-web1']);
  });

  it('reports the source a PROXY v2 or v1 header names, and X-Forwarded-For', async () => {
    const b = il.backends[0];
    const req = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}Connection: close\r\n\r\n`;
    const v2 = await il.raw(b.ip, BACKEND_HTTP_PORT, proxyV2('203.0.113.9', 40000, EDGE_IP, 80) + req('/v2'));
    expect(body(v2.answer).proxy).toEqual({ version: 2, command: 'PROXY', transport: 'tcp', src: '203.0.113.9', dst: EDGE_IP, srcPort: 40000, dstPort: 80 });
    const v1 = await il.raw(b.ip, BACKEND_HTTP_PORT, `PROXY TCP4 203.0.113.7 ${EDGE_IP} 40001 80\r\n` + req('/v1'));
    expect(body(v1.answer).proxy).toMatchObject({ version: 1, src: '203.0.113.7', srcPort: 40001 });
    const none = await il.raw(b.ip, BACKEND_HTTP_PORT, req('/plain', 'X-Forwarded-For: 203.0.113.5\r\n'));
    expect([body(none.answer).proxy, body(none.answer).xff, body(none.answer).client]).toEqual([null, '203.0.113.5', CLIENT_IP]);
    const tcp = await il.raw(b.ip, BACKEND_ECHO_PORT, proxyV2('203.0.113.8', 40002, EDGE_IP, 9000) + 'x\n', 1000);
    expect(JSON.parse(tcp.answer.trim()).proxy).toMatchObject({ src: '203.0.113.8', srcPort: 40002 });
  });

  it('keeps a WebSocket-style upgrade open and echoes every message in order', async () => {
    const b = il.backends[2];
    const ws = await il.websocket({ host: b.ip, port: BACKEND_HTTP_PORT });
    await waitFor('20 echoes', () => ws.status().echoed >= 20, 10_000, 50);
    const s = await ws.stop();
    expect([s.upgraded, s.backend, s.mismatched, s.openAtStop, s.headers['x-client']]).toEqual([true, b.name, 0, true, CLIENT_IP]);
  });

  it('answers /healthz 503 after SIGUSR1 and 200 after SIGUSR2', async () => {
    const b = il.backends[1];
    expect((await il.httpGet(url(b.ip, '/healthz'))).status).toBe(200);
    il.setHealthy(b, false);
    await waitFor('/healthz to answer 503', async () => (await il.httpGet(url(b.ip, '/healthz'))).status === 503, 5000);
    il.setHealthy(b, true);
    await waitFor('/healthz to answer 200', async () => (await il.httpGet(url(b.ip, '/healthz'))).status === 200, 5000);
  });

  it('counts exactly what the backend served: the load client and the backend agree', async () => {
    const b = il.backends[3];
    const before = (await il.httpGet(url(b.ip, '/_stats'))).json.requests as number;
    const load = await il.load({ host: b.ip, port: BACKEND_HTTP_PORT, concurrency: 4 });
    await load.more(2000);
    const s = await load.stop();
    const after = (await il.httpGet(url(b.ip, '/_stats'))).json.requests as number;
    expect(s.failed).toBe(0);
    expect(s.backends).toEqual({ [b.name]: s.ok });
    expect(after - before).toBe(s.ok);
    expect(s.latency?.p99).toBeGreaterThan(0);
  });

  it('holds a rate when asked: 400 requests at 200/s take two seconds', async () => {
    const b = il.backends[2];
    const load = await il.load({ host: b.ip, port: BACKEND_HTTP_PORT, concurrency: 4, rate: 200 });
    const t0 = Date.now();
    await load.more(400);
    const ms = Date.now() - t0;
    const s = await load.stop();
    expect(s.failed).toBe(0);
    expect(ms).toBeGreaterThanOrEqual(1800);
    expect(ms).toBeLessThan(6000);
  });

  it('counts the failures when its backend is killed under load, and recovers when it is back', async () => {
    const b = il.backends[0];
    const load = await il.load({ host: b.ip, port: BACKEND_HTTP_PORT, concurrency: 4, timeoutMs: 2000 });
    await load.more(500);
    await il.killBackend(b);
    await waitFor('failures to be counted', () => load.status().failed >= 20, 10_000, 50);
    await il.startBackend(b);
    await load.more(500);
    const s = await load.stop();
    expect(s.failed).toBeGreaterThanOrEqual(20);
    // a killed process: refused new connections, reset or half-answered ones in flight; nothing silently lost
    expect(Object.keys(s.errors).every((k) => ['ECONNREFUSED', 'ECONNRESET', 'socket hang up', 'EPIPE'].includes(k)), JSON.stringify(s.errors)).toBe(true);
    expect(Object.values(s.errors).reduce((x, y) => x + y, 0)).toBe(s.failed);
  });

  it('tells a server that leaves slow headers open from one that closes them', async () => {
    const b = il.backends[1];
    // Node's own 60 s header timeout: nothing is closed within 1.5 s, so a test expecting closes can fail
    const r = await il.slowloris(b.ip, BACKEND_HTTP_PORT, { connections: 5, byteEveryMs: 100, maxMs: 1500 });
    expect([r.closedByServer, r.stillOpen]).toEqual([0, 5]);
    // an oversized head (> Node's 16 KiB) is refused by the backend itself with 431
    const big = await il.raw(b.ip, BACKEND_HTTP_PORT, `GET / HTTP/1.1\r\nHost: t\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(big.answer.split('\r\n')[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large');
  });

  it('release takes the endpoint from the controller while the container serves on; CNI DEL removes the container', async () => {
    const b = await il.addBackend('r2b', 'web9', { app: 'extra' });
    expect(await il.endpointsOf({ app: 'extra' })).toEqual([b.name]);
    await il.releaseEndpoint(b);
    await waitFor('the endpoint to be gone at the controller', async () => (await il.endpointsOf({ app: 'extra' })).length === 0, 10_000);
    expect((await il.httpGet(url(b.ip))).json.name).toBe(b.name);
    await il.detachBackend(b);
    await expect(il.httpGet(url(b.ip), { timeoutMs: 1000 })).rejects.toThrow();
    await il.stopBackend(b);
  });
});

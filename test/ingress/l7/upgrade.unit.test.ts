// Upgrades (WebSocket-like) through the proxy: a raw tunnel per connection
// that outlives route changes and holds a drain until it closes.
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait';
import { closedAfterEach, RawClient, RecordingPicker, refusedEndpoint, route, startBackend, type Backend } from './fixtures';

const { proxy, client, cleanups } = closedAfterEach(afterEach);

/** A backend that switches to an echo protocol, prefixing what it echoes with its name. */
async function echoBackend(name: string, o: { proxyProtocol?: boolean } = {}): Promise<Backend & { upgrades: { headers: Record<string, unknown> }[] }> {
  const b = Object.assign(await startBackend(name, o), { upgrades: [] as { headers: Record<string, unknown> }[] });
  cleanups.push(() => b.close());
  b.server.on('upgrade', (req, socket: Socket, head: Buffer) => {
    b.upgrades.push({ headers: req.headers });
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
    if (head.length) socket.write(`${name}:${head.toString()}`);
    socket.on('data', (d: Buffer) => socket.write(`${name}:${d.toString()}`));
    socket.on('error', () => socket.destroy());
  });
  return b;
}

const UPGRADE = 'GET /ws HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n';

async function upgraded(c: RawClient): Promise<void> {
  await c.send(UPGRADE);
  await waitFor('the 101', () => c.data.includes('\r\n\r\n') && c.data);
  expect(c.data).toMatch(/^HTTP\/1\.1 101 /);
  c.data = '';
}

async function echo(c: RawClient, text: string): Promise<string> {
  c.data = '';
  await c.send(text);
  return waitFor(`the echo of ${text}`, () => (c.data.endsWith(text) ? c.data : undefined));
}

describe('L7 proxy: upgrades', () => {
  it('tunnels an upgrade both ways and keeps it across a route change', async () => {
    const [one, two] = await Promise.all([echoBackend('one'), echoBackend('two')]);
    const p1 = new RecordingPicker([one.ep]);
    const p = await proxy([route('ws', p1)]);
    const c = client(p.port);
    await upgraded(c);
    expect(await echo(c, 'ping')).toBe('one:ping');
    expect(one.upgrades[0].headers).toMatchObject({ upgrade: 'echo', connection: 'upgrade', 'x-forwarded-for': '127.0.0.1', 'x-forwarded-host': 'ws.test' });

    const p2 = new RecordingPicker([two.ep]);
    p.proxy.setRoutes(0, [route('ws', p2)]);
    expect(await echo(c, 'still')).toBe('one:still');
    const c2 = client(p.port);
    await upgraded(c2);
    expect(await echo(c2, 'new')).toBe('two:new');

    expect(p.metrics.inFlightTotal()).toBe(2);
    c.destroy();
    c2.destroy();
    await waitFor('both tunnels accounted', () => p.metrics.requests.length === 2);
    expect(p.metrics.requests.map((r) => r.status)).toEqual([101, 101]);
    expect(p.metrics.inFlightTotal()).toBe(0);
    expect(p1.done).toEqual([{ key: one.ep.key, outcome: 'ok' }]);
    expect(p2.done).toEqual([{ key: two.ep.key, outcome: 'ok' }]);
  });

  it('sends the PROXY header first on an upgrade tunnel when the route wants it, and retries a refused backend', async () => {
    const dead = await refusedEndpoint();
    const b = await echoBackend('pp', { proxyProtocol: true });
    const picker = new RecordingPicker([dead, b.ep]);
    const p = await proxy([route('ws', picker, { proxyProtocol: true })]);
    const c = client(p.port);
    await upgraded(c);
    expect(await echo(c, 'x')).toBe('pp:x');
    expect(picker.done).toEqual([{ key: dead.key, outcome: 'connect-error' }]);
    expect(b.connections).toBe(1);
    expect(b.proxyHeaders).toEqual([{ length: 28, source: { ip: '127.0.0.1', port: c.socket.localPort }, destination: { ip: '127.0.0.1', port: p.port } }]);
  });

  it('gives up an upgrade after two retries, as a request does: 502 naming the service', async () => {
    const deads = await Promise.all([refusedEndpoint(), refusedEndpoint(), refusedEndpoint(), refusedEndpoint()]);
    const picker = new RecordingPicker(deads);
    const p = await proxy([route('ws', picker)]);
    const c = client(p.port);
    await c.send(UPGRADE);
    const r = await c.response();
    expect(r.status).toBe(502);
    expect(r.body).toBe('weft ingress: the backend of service "ws" failed (connection refused)\n');
    expect(picker.done.map((d) => d.outcome)).toEqual(['connect-error', 'connect-error', 'connect-error']);
    expect(picker.picks.map((k) => k.exclude.length)).toEqual([0, 1, 2]);
    expect(picker.open).toBe(0);
  });

  it('answers 503 to an upgrade with no backend', async () => {
    const p = await proxy([route('ws', new RecordingPicker([]))]);
    const c = client(p.port);
    await c.send(UPGRADE);
    const r = await c.response();
    expect(r.status).toBe(503);
    expect(r.body).toContain('"ws"');
  });

  it('drain waits for open tunnels and cuts them at the deadline', async () => {
    const b = await echoBackend('one');
    const picker = new RecordingPicker([b.ep]);
    const p = await proxy([route('ws', picker)]);
    const early = client(p.port);
    await upgraded(early);
    const late = client(p.port);
    await upgraded(late);

    let drained = false;
    const draining = p.proxy.drain(60_000).then(() => (drained = true));
    expect(await echo(early, 'during drain')).toBe('one:during drain');
    early.destroy();
    late.destroy();
    await draining;
    expect(drained).toBe(true);
    expect(picker.open).toBe(0);

    const p2 = await proxy([route('ws', new RecordingPicker([b.ep]))]);
    const stuck = client(p2.port);
    await upgraded(stuck);
    const t0 = Date.now();
    await p2.proxy.drain(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    await stuck.waitClosed();
  });
});

describe('L7 proxy: upstream pools follow the routes', () => {
  it('closes the pooled connections of an endpoint that left every route', async () => {
    const [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
    cleanups.push(() => a.close(), () => b.close());
    const p = await proxy([route('svc', new RecordingPicker([a.ep]), { endpoints: [a.ep] })]);
    const c = client(p.port);
    await c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await c.response()).body).toBe('a');
    expect(a.connections).toBe(1);
    p.proxy.setRoutes(0, [route('svc', new RecordingPicker([b.ep]), { endpoints: [b.ep] })]);
    await waitFor("a's pooled connection closed", () => a.closed === 1);
    c.data = '';
    await c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await c.response()).body).toBe('b');
  });
});

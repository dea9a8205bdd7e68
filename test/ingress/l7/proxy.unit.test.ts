// The L7 proxy end to end over loopback: real backends, a recording picker.
import { Agent, request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { captureLogger } from '../../helpers/log';
import { waitFor } from '../../helpers/wait';
import { closedAfterEach, RawClient, RecordingPicker, refusedEndpoint, route } from './fixtures';
import { send } from './http';

const { backend, proxy, cleanups } = closedAfterEach(afterEach);

/** Every lease was finished exactly once. */
function leasesSettled(...pickers: RecordingPicker[]): void {
  for (const p of pickers) {
    expect(p.doubleDone).toEqual([]);
    expect(p.open).toBe(0);
  }
}

describe('L7 proxy: routing and forwarding', () => {
  it('routes by host and longest path prefix, and answers 404 with a clear body when nothing matches', async () => {
    const [web, api, other] = await Promise.all([backend('web'), backend('api'), backend('other')]);
    const pw = new RecordingPicker([web.ep]);
    const pa = new RecordingPicker([api.ep]);
    const po = new RecordingPicker([other.ep]);
    const p = await proxy([route('web', pw, { hostnames: ['shop.test'] }), route('api', pa, { hostnames: ['shop.test'], pathPrefix: '/api' }), route('other', po, { hostnames: ['other.test'] })]);

    expect((await send(`${p.url}/`, { headers: { host: 'SHOP.test:8080' } })).body).toBe('web');
    expect((await send(`${p.url}/api/items?x=1`, { headers: { host: 'shop.test' } })).body).toBe('api');
    expect((await send(`${p.url}/api`, { headers: { host: 'other.test' } })).body).toBe('other');
    expect(api.requests[0].url).toBe('/api/items?x=1');

    const miss = await send(`${p.url}/x`, { headers: { host: 'nobody.test' } });
    expect(miss.status).toBe(404);
    expect(miss.body).toContain('no route for host "nobody.test"');
    expect(p.metrics.rejections).toEqual(['no-route']);
    await waitFor('requests accounted', () => p.metrics.requests.length === 3);
    leasesSettled(pw, pa, po);
  });

  it('adds X-Forwarded-For/Proto/Host and strips hop-by-hop headers on the way in and out', async () => {
    const b = await backend('b', {
      handler: (_req, res) => {
        res.writeHead(200, { connection: 'keep-alive, x-internal', 'x-internal': 'secret', 'keep-alive': 'timeout=30', 'x-kept': 'yes' });
        res.end('ok');
      },
    });
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))]);
    const a = await send(`${p.url}/`, { headers: { host: 'app.test', 'x-forwarded-for': '203.0.113.5', 'x-forwarded-proto': 'https', connection: 'keep-alive, x-drop', 'x-drop': '1', 'proxy-connection': 'x', te: 'trailers' } });
    expect(a.status).toBe(200);
    expect(a.headers['x-kept']).toBe('yes');
    expect(a.headers['x-internal']).toBeUndefined();
    // the backend's Keep-Alive was for its hop; the one the client sees is the proxy's own idle timeout
    expect(a.headers['keep-alive']).toBe('timeout=60');
    const seen = b.requests[0].headers;
    expect(seen['x-forwarded-for']).toBe('203.0.113.5, 127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-forwarded-host']).toBe('app.test');
    expect(seen.host).toBe('app.test');
    expect(seen['x-drop']).toBeUndefined();
    expect(seen['proxy-connection']).toBeUndefined();
    expect(seen.te).toBeUndefined();
  });

  it('reuses upstream connections across requests and clients (keep-alive pool)', async () => {
    const b = await backend('b');
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))]);
    // every request on a client connection of its own: reuse can only be the proxy's
    for (let i = 0; i < 20; i++) expect((await send(`${p.url}/${i}`)).status).toBe(200);
    expect(b.requests).toHaveLength(20);
    expect(b.connections).toBe(1);
  });

  it('streams bodies both ways without waiting for their end', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const b = await backend('b', {
      stream: true,
      handler: (req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        // echo the request body as it comes, then a tail once the test allows it
        req.on('data', (c: Buffer) => res.write(c));
        req.on('end', () => void released.then(() => res.end('|tail')));
      },
    });
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))]);
    const got: string[] = [];
    let ended = false;
    const req = request(`${p.url}/upload`, { method: 'PUT', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      res.on('data', (c: Buffer) => got.push(c.toString()));
      res.on('end', () => (ended = true));
    });
    req.write('first-');
    await waitFor('the first chunk echoed through the proxy', () => got.join('') === 'first-');
    req.end('second');
    await waitFor('the second chunk', () => got.join('') === 'first-second');
    expect(ended).toBe(false);
    release();
    await waitFor('the end of the response', () => ended);
    expect(got.join('')).toBe('first-second|tail');
  });
});

describe('L7 proxy: failures and retries', () => {
  it('retries a GET on another backend when the connection is refused, reporting each attempt', async () => {
    const dead = await refusedEndpoint();
    const b = await backend('alive');
    const picker = new RecordingPicker([dead, b.ep]);
    const p = await proxy([route('svc', picker)]);
    const a = await send(`${p.url}/`);
    expect(a.status).toBe(200);
    expect(a.body).toBe('alive');
    expect(picker.done).toEqual([
      { key: dead.key, outcome: 'connect-error' },
      { key: b.ep.key, outcome: 'ok' },
    ]);
    expect(picker.picks[1].exclude).toEqual([dead.key]);
    leasesSettled(picker);
  });

  it('does not retry a POST with a body: 502 naming the service', async () => {
    const dead = await refusedEndpoint();
    const b = await backend('alive');
    const picker = new RecordingPicker([dead, b.ep]);
    const p = await proxy([route('orders', picker)]);
    const a = await send(`${p.url}/`, { method: 'POST', body: 'payload' });
    expect(a.status).toBe(502);
    expect(a.body).toBe('weft ingress: the backend of service "orders" failed (connection refused)\n');
    expect(picker.done).toEqual([{ key: dead.key, outcome: 'connect-error' }]);
    expect(b.requests).toHaveLength(0);
    await waitFor('the request accounted', () => p.metrics.requests.length === 1);
    expect(p.metrics.requests[0]).toMatchObject({ service: 'orders', backend: dead.key, status: 502 });
    leasesSettled(picker);
  });

  it('gives up after two retries', async () => {
    const deads = await Promise.all([refusedEndpoint(), refusedEndpoint(), refusedEndpoint(), refusedEndpoint()]);
    const picker = new RecordingPicker(deads);
    const p = await proxy([route('svc', picker)]);
    expect((await send(`${p.url}/`)).status).toBe(502);
    expect(picker.done.map((d) => d.outcome)).toEqual(['connect-error', 'connect-error', 'connect-error']);
    leasesSettled(picker);
  });

  it('answers 503 when the picker has no backend', async () => {
    const p = await proxy([route('empty', new RecordingPicker([]))]);
    const a = await send(`${p.url}/`);
    expect(a.status).toBe(503);
    expect(a.body).toBe('weft ingress: no healthy backend for service "empty"\n');
    expect(a.headers['content-type']).toBe('text/plain; charset=utf-8');
  });

  it('answers 502 when the backend resets the connection, and reports a reset', async () => {
    const b = await backend('rude', { handler: (req) => req.socket.destroy() });
    const picker = new RecordingPicker([b.ep]);
    const p = await proxy([route('rude', picker)]);
    const a = await send(`${p.url}/`, { method: 'POST', body: 'x' });
    expect(a.status).toBe(502);
    expect(a.body).toMatch(/^weft ingress: the backend of service "rude" failed \(.+\)\n$/);
    expect(a.body).not.toMatch(/at .*\.js|Error:/);
    expect(picker.done).toEqual([{ key: b.ep.key, outcome: 'reset' }]);
  });

  it('answers 504 when the backend does not answer in time', async () => {
    const b = await backend('slow', { handler: () => {} });
    const picker = new RecordingPicker([b.ep]);
    const p = await proxy([route('slow', picker)], { limits: { upstreamTimeoutMs: 200 } });
    const a = await send(`${p.url}/`);
    expect(a.status).toBe(504);
    expect(a.body).toBe('weft ingress: the backend of service "slow" timed out (no response in time)\n');
    expect(picker.done).toEqual([{ key: b.ep.key, outcome: 'timeout' }]);
  });

  it('reports a backend 5xx as http-5xx and passes it through', async () => {
    const b = await backend('err', {
      handler: (_req, res) => {
        res.writeHead(500);
        res.end('boom');
      },
    });
    const picker = new RecordingPicker([b.ep]);
    const p = await proxy([route('err', picker)]);
    const a = await send(`${p.url}/`);
    expect([a.status, a.body]).toEqual([500, 'boom']);
    expect(picker.done).toEqual([{ key: b.ep.key, outcome: 'http-5xx' }]);
  });

  it('refuses bodies over maxRequestBodyBytes with 413, declared or chunked', async () => {
    const b = await backend('b');
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))], { limits: { maxRequestBodyBytes: 10 } });
    expect((await send(`${p.url}/`, { method: 'POST', body: 'x'.repeat(11) })).status).toBe(413);
    expect((await send(`${p.url}/`, { method: 'POST', body: 'x'.repeat(10) })).status).toBe(200);
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request(`${p.url}/`, { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.write('x'.repeat(8));
      req.end('x'.repeat(8));
    });
    expect(chunked).toBe(413);
  });
});

describe('L7 proxy: hostile clients', () => {
  it('answers 431 to oversized headers and 400 to malformed requests', async () => {
    const b = await backend('b');
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))], { limits: { maxHeaderBytes: 1024 } });
    const big = new RawClient(p.port);
    await big.send(`GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(2000)}\r\n\r\n`);
    expect((await big.response()).status).toBe(431);
    const bad = new RawClient(p.port);
    await bad.send('NOT HTTP AT ALL\r\n\r\n');
    expect((await bad.response()).status).toBe(400);
    expect(p.metrics.rejections.sort()).toEqual(['bad-request', 'header-too-large']);
    expect(b.requests).toHaveLength(0);
  });

  it('closes a slowloris connection after the header timeout while another client is served', async () => {
    const b = await backend('b');
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))], { limits: { headerTimeoutMs: 300 } });
    const slow = new RawClient(p.port);
    await slow.send('GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ');
    // served while the slow one dribbles
    const served = await send(`${p.url}/`);
    expect(served.status).toBe(200);
    await slow.waitClosed();
    expect(slow.data).toMatch(/^HTTP\/1\.1 408 /);
    expect(p.metrics.rejections).toContain('header-timeout');
  });

  it('closes connections over maxConnections at once and serves again when one goes', async () => {
    const b = await backend('b');
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))], { limits: { maxConnections: 2 } });
    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    cleanups.push(() => agent.destroy());
    await Promise.all([send(`${p.url}/`, { agent }), send(`${p.url}/`, { agent })]);
    await waitFor('two held connections', () => p.proxy.connections === 2);
    const third = new RawClient(p.port);
    await third.waitClosed();
    expect(third.data).toBe('');
    expect(p.metrics.rejections).toEqual(['too-many-connections']);
    // the held ones are still served
    expect((await send(`${p.url}/`, { agent })).status).toBe(200);
    agent.destroy();
    await waitFor('the held connections gone', () => p.proxy.connections === 0);
    expect((await send(`${p.url}/`)).status).toBe(200);
  });
});

describe('L7 proxy: stopping', () => {
  it('stopAccepting + drain: the in-flight request finishes with Connection: close, new connections are refused', async () => {
    let answer!: () => void;
    const arrived: string[] = [];
    const b = await backend('b', {
      handler: (req, res) => {
        arrived.push(req.url!);
        answer = () => res.end('late');
      },
    });
    const picker = new RecordingPicker([b.ep]);
    const p = await proxy([route('svc', picker)]);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());
    const inFlight = send(`${p.url}/slow`, { agent });
    await waitFor('the request at the backend', () => arrived.length === 1);

    await p.proxy.stopAccepting();
    const refused = await send(`${p.url}/`).then(
      () => 'served',
      (e: NodeJS.ErrnoException) => e.code,
    );
    expect(refused).toBe('ECONNREFUSED');

    let drained = false;
    const draining = p.proxy.drain(10_000).then(() => (drained = true));
    // drain waits for the request; it does not end on its own
    await new Promise((r) => setImmediate(r));
    expect(drained).toBe(false);
    answer();
    const a = await inFlight;
    expect(a.body).toBe('late');
    expect(a.headers.connection).toBe('close');
    await draining;
    leasesSettled(picker);
  });

  it('tells an idle keep-alive client Connection: close on its next response', async () => {
    const b = await backend('b');
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))]);
    const c = new RawClient(p.port);
    await c.send('GET /1 HTTP/1.1\r\nHost: a\r\n\r\n');
    const first = await c.response();
    expect(first.headers.connection).toBe('keep-alive');
    c.data = '';
    await p.proxy.stopAccepting();
    await c.send('GET /2 HTTP/1.1\r\nHost: a\r\n\r\n');
    const second = await c.response();
    expect(second.status).toBe(200);
    expect(second.headers.connection).toBe('close');
    await c.waitClosed();
  });

  it('drain cuts what is left at the deadline and settles its lease', async () => {
    const b = await backend('never', { handler: () => {} });
    const picker = new RecordingPicker([b.ep]);
    const p = await proxy([route('svc', picker)]);
    const c = new RawClient(p.port);
    await c.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    await waitFor('the request at the backend', () => b.requests.length === 1);
    const t0 = Date.now();
    await p.proxy.drain(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    await c.waitClosed();
    await waitFor('the lease settled', () => picker.open === 0);
    leasesSettled(picker);
    expect(p.metrics.inFlightTotal()).toBe(0);
  });
});

describe('L7 proxy: one port at a time', () => {
  it('closePort stops accepting on that port, letting its in-flight request finish', async () => {
    let answer!: () => void;
    const b = await backend('b', { handler: (_req, res) => (answer = () => res.end('done')) });
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))]);
    const pending = send(`${p.url}/`);
    await waitFor('the request at the backend', () => b.requests.length === 1);
    await p.proxy.closePort(0);
    expect(p.proxy.listeners()).toEqual([]);
    const refused = await send(`${p.url}/`).then(
      () => 'served',
      (e: NodeJS.ErrnoException) => e.code,
    );
    expect(refused).toBe('ECONNREFUSED');
    answer();
    expect((await pending).body).toBe('done');
  });
});

describe('L7 proxy: metrics and access log', () => {
  it('reports each request with its status and duration, and logs a sample of them', async () => {
    const b = await backend('b');
    const { logger, lines } = captureLogger('info');
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))], { logger, accessLog: { sampleRate: 1 } });
    await send(`${p.url}/hello?x=1`, { headers: { host: 'a.test' } });
    await waitFor('the request accounted', () => p.metrics.requests.length === 1);
    expect(p.metrics.requests[0]).toMatchObject({ service: 'svc', backend: b.ep.key, status: 200 });
    expect(p.metrics.requests[0].seconds).toBeGreaterThan(0);
    expect(p.metrics.requests[0].seconds).toBeLessThan(5);
    expect(p.metrics.inFlightTotal()).toBe(0);
    const access = lines.filter((l) => l.msg === 'request');
    expect(access).toHaveLength(1);
    expect(access[0]).toMatchObject({ level: 'info', client: '127.0.0.1', method: 'GET', host: 'a.test', path: '/hello?x=1', status: 200, service: 'svc', backend: b.ep.key });
  });

  it('logs no access lines at sample rate 0', async () => {
    const b = await backend('b');
    const { logger, lines } = captureLogger('info');
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))], { logger });
    await send(`${p.url}/`);
    await waitFor('the request accounted', () => p.metrics.requests.length === 1);
    expect(lines.filter((l) => l.msg === 'request')).toEqual([]);
  });
});

describe('L7 proxy: faults in its collaborators', () => {
  it('answers 500 when the picker throws, and keeps serving', async () => {
    const b = await backend('b');
    const broken = { pick: () => { throw new Error('picker bug'); } };
    const p = await proxy([route('broken', broken, { pathPrefix: '/broken' }), route('fine', new RecordingPicker([b.ep]))]);
    const a = await send(`${p.url}/broken`);
    expect(a.status).toBe(500);
    expect(a.body).toBe('weft ingress: internal error\n');
    expect((await send(`${p.url}/ok`)).body).toBe('b');
  });
});

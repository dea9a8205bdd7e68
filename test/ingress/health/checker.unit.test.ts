// Active checks against loopback servers, with short intervals, waiting on
// conditions: first result decides a pending endpoint, thresholds after that,
// HTTP status and path, timeouts, target changes that leave others alone,
// and close() that leaves no timer or socket behind.
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HealthChecker } from '../../../ingress/health/checker';
import { endpointKey, type Endpoint } from '../../../ingress/model';
import { InvalidArgumentError } from '../../../controller/common/errors';
import { waitFor } from '../../helpers/wait';
import { freePort } from '../../helpers/ports';

const fast = { intervalMs: 20, jitter: 0.1, timeoutMs: 200 };

function ep(port: number): Endpoint {
  return { key: endpointKey('127.0.0.1', port), ip: '127.0.0.1', port, host: 'h1', rack: 'r1', datacenter: 'dc1', containerId: `c${port}` };
}

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function listen<S extends Server | HttpServer>(srv: S): Promise<{ srv: S; port: number; conns: () => number }> {
  let conns = 0;
  const open = new Set<Socket>();
  srv.on('connection', (s: Socket) => {
    conns++;
    open.add(s);
    s.on('close', () => open.delete(s));
  });
  cleanup.push(
    () =>
      new Promise<void>((r) => {
        for (const s of open) s.destroy();
        srv.close(() => r());
        if (!srv.listening) r();
      }),
  );
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ srv, port: (srv.address() as { port: number }).port, conns: () => conns })));
}

/** An HTTP server answering `status.code` and recording the paths asked for. */
async function httpServer(status = { code: 200 }) {
  const paths: string[] = [];
  const s = await listen(
    createHttpServer((req, res) => {
      paths.push(req.url ?? '');
      res.writeHead(status.code).end('x');
    }),
  );
  return { ...s, paths, status };
}

function checker(o: Partial<ConstructorParameters<typeof HealthChecker>[0]> = {}) {
  const events: string[] = [];
  const c = new HealthChecker({ ...fast, onChange: (key, healthy) => events.push(`${key} ${healthy ? 'up' : 'down'}`), ...o });
  cleanup.push(() => c.close());
  return { c, events };
}

describe('HealthChecker', () => {
  it('starts a new endpoint pending and lets its first TCP check decide, either way', async () => {
    const { port } = await listen(createServer());
    const dead = await freePort();
    const { c, events } = checker();
    c.setTargets([ep(port), ep(dead)], { path: '' });
    expect(c.state(ep(port).key)).toBe('pending');
    await waitFor('both first results', () => events.length === 2);
    expect(events.sort()).toEqual([`127.0.0.1:${port} up`, `127.0.0.1:${dead} down`].sort());
    expect(c.state(ep(port).key)).toBe('healthy');
    expect(c.state(ep(dead).key)).toBe('unhealthy');
  });

  it('turns unhealthy after two failures in a row and healthy after two successes (HTTP status)', async () => {
    const h = await httpServer();
    const { c, events } = checker();
    const key = ep(h.port).key;
    c.setTargets([ep(h.port)], { path: '/healthz' });
    await waitFor('healthy', () => c.state(key) === 'healthy');

    h.status.code = 503;
    const asked = h.paths.length;
    await waitFor('unhealthy', () => c.state(key) === 'unhealthy');
    // not on the first 503: the threshold is two
    expect(h.paths.length - asked).toBeGreaterThanOrEqual(2);

    h.status.code = 302; // 3xx counts as up
    const again = h.paths.length;
    await waitFor('healthy again', () => c.state(key) === 'healthy');
    expect(h.paths.length - again).toBeGreaterThanOrEqual(2);
    expect(events).toEqual([`${key} up`, `${key} down`, `${key} up`]);
    expect(new Set(h.paths)).toEqual(new Set(['/healthz']));
  });

  it('counts a check that gets no answer within the timeout as a failure', async () => {
    // accepts connections, never answers
    const { port } = await listen(createServer());
    const { c } = checker({ timeoutMs: 50 });
    c.setTargets([ep(port)], { path: '/' });
    await waitFor('unhealthy by timeout', () => c.state(ep(port).key) === 'unhealthy');
  });

  it('adds and removes targets without disturbing the others', async () => {
    const a = await httpServer();
    const b = await httpServer();
    const { c, events } = checker();
    c.setTargets([ep(a.port)], { path: '/a' });
    await waitFor('a healthy', () => c.state(ep(a.port).key) === 'healthy');

    c.setTargets([ep(a.port), ep(b.port)], { path: '/a' });
    await waitFor('b healthy', () => c.state(ep(b.port).key) === 'healthy');
    expect(c.state(ep(a.port).key)).toBe('healthy');
    expect(events).toEqual([`${ep(a.port).key} up`, `${ep(b.port).key} up`]);

    // a goes away: b keeps being checked, a is not any more
    c.setTargets([ep(b.port)], { path: '/a' });
    expect(c.state(ep(a.port).key)).toBeUndefined();
    const aSeen = a.paths.length;
    const bSeen = b.paths.length;
    await waitFor('b checked three more times', () => b.paths.length >= bSeen + 3);
    expect(a.paths.length).toBeLessThanOrEqual(aSeen + 1); // at most the check already in flight
    expect(events).toHaveLength(2);
  });

  it('close() leaves no timer or socket behind and reports nothing after', async () => {
    const count = (kind: string) => process.getActiveResourcesInfo().filter((r) => r === kind).length;
    const timers = count('Timeout');
    const sockets = count('TCPSocketWrap');
    const h = await httpServer();
    // accepts and never answers: its check is still in flight at close();
    // reads, so it sees the checker's end of the connection close
    const silent = await listen(createServer((s) => s.resume()));
    const { c, events } = checker({ intervalMs: 60_000, timeoutMs: 60_000 });
    c.setTargets([ep(h.port), ep(silent.port)], { path: '/' });
    await waitFor('one result, one check in flight', () => events.length === 1 && silent.conns() === 1);
    c.close();
    // the next check's timer and the hung check's timeout, cleared at once
    expect(count('Timeout')).toBeLessThanOrEqual(timers);
    await waitFor('sockets closed', () => count('TCPSocketWrap') <= sockets, 5000);
    expect(events).toHaveLength(1);
    c.setTargets([ep(h.port)], { path: '' });
    expect(c.state(ep(h.port).key)).toBeUndefined();
  });

  it('refuses a relative path', () => {
    const { c } = checker();
    expect(() => c.setTargets([], { path: 'healthz' })).toThrow(InvalidArgumentError);
  });
});

// Draining the L7 proxy the way Go's http.Server.Shutdown does, with
// HAProxy's idle-close-on-response: no connection is cut while its client
// may be about to use it, idle ones close with a FIN after a grace, and
// drain ends as soon as nothing is left, or at its deadline.
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait';
import { closedAfterEach, RecordingPicker, route } from './fixtures';

const { backend, proxy, client } = closedAfterEach(afterEach);

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`;

describe('L7 proxy: drain', () => {
  it('serves a connection accepted before stopAccepting whose request comes 200 ms later, with Connection: close', async () => {
    const b = await backend('b');
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))]);
    const c = client(p.port);
    await waitFor('the connection admitted', () => p.proxy.connections === 1);
    await p.proxy.stopAccepting();
    let drained = false;
    const draining = p.proxy.drain(10_000).then(() => (drained = true));
    // The client's own pace, the case under test: it writes well after the drain has looked at its connection.
    setTimeout(() => void c.send(GET('/late')), 200);
    const r = await c.response('the late request answered');
    expect(r.status).toBe(200);
    expect(r.body).toBe('b');
    expect(r.headers.connection).toBe('close');
    await c.waitClosed();
    expect(c.error).toBeUndefined();
    await draining;
    expect(drained).toBe(true);
    expect(b.requests.map((q) => q.url)).toEqual(['/late']);
  });

  it('answers a keep-alive client whose next request comes right as the drain starts, with Connection: close', async () => {
    const b = await backend('b');
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))]);
    const c = client(p.port);
    await c.send(GET('/1'));
    expect((await c.response()).headers.connection).toBe('keep-alive');
    c.data = '';
    await p.proxy.stopAccepting();
    // Written in the same tick as the drain starts: a FIN now would cross this request, and it would fail.
    c.socket.write(GET('/2'));
    const t0 = Date.now();
    await p.proxy.drain(10_000);
    expect(Date.now() - t0).toBeLessThan(5000);
    const r = await c.response('the crossing request answered');
    expect([r.status, r.body, r.headers.connection]).toEqual([200, 'b', 'close']);
    await c.waitClosed();
    expect(c.error).toBeUndefined();
    expect(b.requests.map((q) => q.url)).toEqual(['/1', '/2']);
    expect(p.proxy.connections).toBe(0);
  });

  it('closes with a FIN a keep-alive connection that stays idle through the grace, and at once one idle for longer', async () => {
    const b = await backend('b');
    // The grace is min(header timeout, 5 s): 300 ms here.
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))], { limits: { headerTimeoutMs: 300 } });
    const quiet = client(p.port);
    await quiet.send(GET('/1'));
    await quiet.response();
    // Idle for longer than the grace before the drain begins (a condition on the clock, not a pause in the code under test).
    const since = Date.now();
    await waitFor('the first connection to be idle past the grace', () => Date.now() - since > 400, 5000, 20);
    const recent = client(p.port);
    await recent.send(GET('/2'));
    await recent.response();
    const t0 = Date.now();
    const draining = p.proxy.drain(10_000);
    await quiet.waitClosed();
    const quietTook = Date.now() - t0;
    await recent.waitClosed();
    const recentTook = Date.now() - t0;
    await draining;
    expect([quiet.ended, recent.ended, quiet.error, recent.error]).toEqual([true, true, undefined, undefined]);
    expect(quietTook).toBeLessThan(200);
    expect(recentTook).toBeGreaterThanOrEqual(200);
    expect(recentTook).toBeLessThan(5000);
    expect(b.requests.map((q) => q.url)).toEqual(['/1', '/2']);
  });

  it('resolves as soon as the last request is done, long before its deadline; idle connections do not hold it past their grace', async () => {
    let answer!: () => void;
    const b = await backend('b', { handler: (_req, res) => (answer = () => res.end('late')) });
    const picker = new RecordingPicker([b.ep]);
    const p = await proxy([route('svc', picker)], { limits: { headerTimeoutMs: 300 } });
    const idle = client(p.port);
    await idle.send(GET('/idle'));
    await waitFor('the first request at the backend', () => b.requests.length === 1);
    answer();
    await idle.response();
    const busy = client(p.port);
    await busy.send(GET('/slow'));
    await waitFor('the slow request at the backend', () => b.requests.length === 2);

    let drained = false;
    const t0 = Date.now();
    const draining = p.proxy.drain(60_000).then(() => (drained = true));
    await idle.waitClosed();
    expect(idle.ended).toBe(true);
    expect(drained).toBe(false);
    answer();
    const r = await busy.response();
    expect(r.body).toBe('late');
    expect(r.headers.connection).toBe('close');
    await draining;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(p.proxy.connections).toBe(0);
    expect(picker.open).toBe(0);
  });

  it('gives a connection that sends nothing the grace from its accept, then closes it with a FIN', async () => {
    const b = await backend('b');
    // The grace is min(header timeout, 5 s): 400 ms here.
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))], { limits: { headerTimeoutMs: 400 } });
    const silent = client(p.port);
    await waitFor('the connection admitted', () => p.proxy.connections === 1);
    const t0 = Date.now();
    await p.proxy.drain(10_000);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(300);
    expect(took).toBeLessThan(5000);
    await silent.waitClosed();
    expect(silent.ended).toBe(true);
    expect(silent.error).toBeUndefined();
  });

  it('cuts at the deadline a connection still within its grace and a request still running', async () => {
    const b = await backend('never', { handler: () => {} });
    const picker = new RecordingPicker([b.ep]);
    const p = await proxy([route('svc', picker)]);
    const silent = client(p.port);
    const slow = client(p.port);
    await slow.send(GET('/never'));
    await waitFor('the request at the backend', () => b.requests.length === 1 && p.proxy.connections === 2);
    const t0 = Date.now();
    await p.proxy.drain(200);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(150);
    // The default grace is 5 s: the deadline, not the grace, ended it.
    expect(took).toBeLessThan(4000);
    await silent.waitClosed();
    await slow.waitClosed();
    expect(slow.data).toBe('');
    await waitFor('the lease settled', () => picker.open === 0);
    expect(p.metrics.inFlightTotal()).toBe(0);
  });
});

describe('L7 proxy: closePort drains that port', () => {
  it('answers the in-flight request with Connection: close and closes an idle connection with a FIN', async () => {
    let answer!: () => void;
    const b = await backend('b', {
      handler: (req, res) => {
        if (req.url === '/slow') answer = () => res.end('done');
        else res.end('quick');
      },
    });
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))], { limits: { headerTimeoutMs: 300 } });
    const idle = client(p.port);
    await idle.send(GET('/quick'));
    expect((await idle.response()).headers.connection).toBe('keep-alive');
    const busy = client(p.port);
    await busy.send(GET('/slow'));
    await waitFor('the slow request at the backend', () => b.requests.length === 2);

    await p.proxy.closePort(0);
    await idle.waitClosed();
    expect(idle.ended).toBe(true);
    expect(idle.error).toBeUndefined();
    answer();
    const r = await busy.response();
    expect(r.body).toBe('done');
    expect(r.headers.connection).toBe('close');
    await busy.waitClosed();
    await waitFor('no connection left', () => p.proxy.connections === 0);
  });
});

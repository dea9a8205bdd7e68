// PROXY protocol on the wire: trusted balancers in front of the proxy, and
// backends behind it that want the client's address.
import { afterEach, describe, expect, it } from 'vitest';
import { encodeProxyV2 } from '../../../ingress/l7/proxy-protocol';
import { waitFor } from '../../helpers/wait';
import { closedAfterEach, RecordingPicker, route, startProxy } from './fixtures';

const { backend, proxy, client } = closedAfterEach(afterEach);

const GET = 'GET / HTTP/1.1\r\nHost: app.test\r\n\r\n';

describe('L7 proxy: PROXY protocol in', () => {
  it('takes the client address from a v2 header sent by a trusted source', async () => {
    const b = await backend('b');
    const picker = new RecordingPicker([b.ep]);
    const p = await proxy([route('svc', picker)], { acceptProxyFrom: ['127.0.0.0/8'] });
    const c = client(p.port);
    const header = encodeProxyV2({ ip: '198.51.100.23', port: 4242 }, { ip: '203.0.113.1', port: 80 });
    // split across writes: the header may arrive in pieces
    await c.send(header.subarray(0, 10));
    await c.send(Buffer.concat([header.subarray(10), Buffer.from(GET)]));
    expect((await c.response()).status).toBe(200);
    expect(b.requests[0].headers['x-forwarded-for']).toBe('198.51.100.23');
    expect(picker.picks[0].clientIp).toBe('198.51.100.23');
  });

  it('accepts a v1 text header too, and keeps the connection for more requests', async () => {
    const b = await backend('b');
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))], { acceptProxyFrom: ['127.0.0.1/32'] });
    const c = client(p.port);
    await c.send(`PROXY TCP4 192.0.2.77 10.0.0.1 5000 80\r\n${GET}`);
    expect((await c.response()).status).toBe(200);
    c.data = '';
    await c.send(GET);
    expect((await c.response()).status).toBe(200);
    expect(b.requests.map((r) => r.headers['x-forwarded-for'])).toEqual(['192.0.2.77', '192.0.2.77']);
  });

  it('treats a PROXY header from an unlisted source as a bad request', async () => {
    const b = await backend('b');
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))], { acceptProxyFrom: ['10.0.0.0/8'] });
    const c = client(p.port);
    await c.send(Buffer.concat([encodeProxyV2({ ip: '198.51.100.23', port: 1 }, { ip: '10.0.0.1', port: 80 }), Buffer.from(GET)]));
    expect((await c.response()).status).toBe(400);
    expect(b.requests).toHaveLength(0);
    // and the listed-nowhere source is still served as itself
    const plain = client(p.port);
    await plain.send(GET);
    expect((await plain.response()).status).toBe(200);
    expect(b.requests[0].headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('requires the header from a listed source', async () => {
    const b = await backend('b');
    const p = await proxy([route('svc', new RecordingPicker([b.ep]))], { acceptProxyFrom: ['127.0.0.0/8'] });
    const c = client(p.port);
    await c.send(GET);
    const r = await c.response();
    expect(r.status).toBe(400);
    expect(r.body).toContain('PROXY');
    expect(p.metrics.rejections).toEqual(['bad-request']);
    expect(b.requests).toHaveLength(0);
  });

  it('refuses listen options with a bad CIDR', async () => {
    await expect(startProxy([], { acceptProxyFrom: ['10.0.0.1/8'] })).rejects.toMatchObject({ code: 'WEFT_CIDR_INVALID' });
  });
});

describe('L7 proxy: PROXY protocol out', () => {
  it('starts each upstream connection with a v2 header naming the client; one client connection keeps its own', async () => {
    const b = await backend('pp', { proxyProtocol: true });
    const p = await proxy([route('svc', new RecordingPicker([b.ep]), { proxyProtocol: true })]);
    const c1 = client(p.port);
    await c1.send(GET);
    await c1.response();
    c1.data = '';
    await c1.send(GET);
    await c1.response();
    const c2 = client(p.port);
    await c2.send(GET);
    await c2.response();
    const port1 = c1.socket.localPort!;
    const port2 = c2.socket.localPort!;
    expect(b.requests.map((r) => r.proxyHeader?.source)).toEqual([
      { ip: '127.0.0.1', port: port1 },
      { ip: '127.0.0.1', port: port1 },
      { ip: '127.0.0.1', port: port2 },
    ]);
    expect(b.requests[0].proxyHeader?.destination).toEqual({ ip: '127.0.0.1', port: p.port });
    // keep-alive per client connection, never shared between clients
    expect(b.connections).toBe(2);
    // the client's upstream connection goes with it
    c1.destroy();
    await waitFor('the first client upstream connection closed', () => b.closed === 1);
  });

  it('passes on the address a trusted balancer gave', async () => {
    const b = await backend('pp', { proxyProtocol: true });
    const p = await proxy([route('svc', new RecordingPicker([b.ep]), { proxyProtocol: true })], { acceptProxyFrom: ['127.0.0.0/8'] });
    const c = client(p.port);
    await c.send(Buffer.concat([encodeProxyV2({ ip: '2001:db8::7', port: 555 }, { ip: '2001:db8::1', port: 443 }), Buffer.from(GET)]));
    expect((await c.response()).status).toBe(200);
    expect(b.requests[0].proxyHeader).toMatchObject({ source: { ip: '2001:db8::7', port: 555 }, destination: { ip: '2001:db8::1', port: 443 } });
    expect(b.requests[0].headers['x-forwarded-for']).toBe('2001:db8::7');
  });
});

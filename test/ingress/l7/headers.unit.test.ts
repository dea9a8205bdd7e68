import { describe, expect, it } from 'vitest';
import { forwardRequestHeaders, forwardResponseHeaders } from '../../../ingress/l7/headers';

const pairs = (flat: string[]) => {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i].toLowerCase(), flat[i + 1]]);
  return out;
};

describe('L7 header rewriting', () => {
  it('strips hop-by-hop request headers and the ones Connection names, keeps the rest', () => {
    const h = forwardRequestHeaders(
      ['Host', 'a.test', 'Connection', 'keep-alive, X-Secret', 'X-Secret', '1', 'Keep-Alive', 'timeout=5', 'TE', 'trailers', 'Trailer', 'x', 'Transfer-Encoding', 'chunked', 'Proxy-Connection', 'keep-alive', 'Upgrade', 'h2c', 'Expect', '100-continue', 'Accept', '*/*', 'Cookie', 'a=b'],
      '10.0.0.9',
      false,
    );
    expect(pairs(h.headers)).toEqual([
      ['host', 'a.test'],
      ['accept', '*/*'],
      ['cookie', 'a=b'],
      ['x-forwarded-for', '10.0.0.9'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-host', 'a.test'],
    ]);
    expect(h.hasBody).toBe(true);
    expect(h.host).toBe('a.test');
  });

  it('appends the client to X-Forwarded-For and replaces what the client claimed for proto and host', () => {
    const h = forwardRequestHeaders(['host', 'b.test', 'X-Forwarded-For', '1.1.1.1', 'x-forwarded-for', '2.2.2.2', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'evil'], '3.3.3.3', false);
    expect(pairs(h.headers)).toEqual([
      ['host', 'b.test'],
      ['x-forwarded-for', '1.1.1.1, 2.2.2.2, 3.3.3.3'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-host', 'b.test'],
    ]);
  });

  it('keeps Upgrade for an upgrade, with Connection: upgrade', () => {
    const h = forwardRequestHeaders(['Host', 'w.test', 'Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', 'k'], '1.2.3.4', true);
    expect(pairs(h.headers)).toEqual([
      ['host', 'w.test'],
      ['sec-websocket-key', 'k'],
      ['upgrade', 'websocket'],
      ['connection', 'upgrade'],
      ['x-forwarded-for', '1.2.3.4'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-host', 'w.test'],
    ]);
  });

  it('notes the body and refuses a second Host', () => {
    expect(forwardRequestHeaders(['Host', 'a', 'Content-Length', '0'], 'c', false)).toMatchObject({ hasBody: false, contentLength: 0 });
    expect(forwardRequestHeaders(['Host', 'a', 'Content-Length', '12'], 'c', false)).toMatchObject({ hasBody: true, contentLength: 12 });
    expect(forwardRequestHeaders(['Host', 'a', 'Host', 'b'], 'c', false).invalid).toMatch(/Host/);
  });

  it('strips hop-by-hop response headers and says Connection: close when asked', () => {
    const raw = ['Content-Type', 'text/plain', 'Connection', 'keep-alive, X-Hop', 'X-Hop', 'y', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2'].map((s) => Buffer.from(s, 'latin1'));
    expect(pairs(forwardResponseHeaders(raw, false))).toEqual([
      ['content-type', 'text/plain'],
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
    ]);
    expect(pairs(forwardResponseHeaders(raw, true)).at(-1)).toEqual(['connection', 'close']);
  });

  it('passes header bytes beyond ASCII through unchanged', () => {
    const raw = [Buffer.from('X-Name'), Buffer.from([0xc3, 0xa9])];
    const out = forwardResponseHeaders(raw, false);
    expect(Buffer.from(out[1], 'latin1')).toEqual(Buffer.from([0xc3, 0xa9]));
  });
});

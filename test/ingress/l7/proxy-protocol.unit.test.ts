import { describe, expect, it } from 'vitest';
import { canonicalIp, encodeProxyV2, ipBytes, parseProxyHeader } from '../../../ingress/l7/proxy-protocol';

const SIG = '0d0a0d0a000d0a515549540a';

describe('PROXY protocol', () => {
  it('writes the v2 header byte for byte (IPv4)', () => {
    const b = encodeProxyV2({ ip: '192.0.2.1', port: 51000 }, { ip: '198.51.100.7', port: 443 });
    expect(b.toString('hex')).toBe(`${SIG}2111000cc0000201c6336407c73801bb`);
  });

  it('reads back what it writes, IPv4 and IPv6, with bytes after it', () => {
    for (const [src, dst] of [
      ['10.1.2.3', '10.9.8.7'],
      ['2001:db8::1', 'fd00:1:2::abcd'],
    ]) {
      const h = encodeProxyV2({ ip: src, port: 1234 }, { ip: dst, port: 80 });
      const r = parseProxyHeader(Buffer.concat([h, Buffer.from('GET / HTTP/1.1\r\n')]));
      expect(r).toEqual({ kind: 'ok', header: { length: h.length, source: { ip: src, port: 1234 }, destination: { ip: dst, port: 80 } } });
    }
  });

  it('maps IPv4 into IPv6 when the two addresses differ in family', () => {
    const h = encodeProxyV2({ ip: '2001:db8::5', port: 1 }, { ip: '10.0.0.1', port: 2 });
    const r = parseProxyHeader(h);
    // an IPv4-mapped address reads back as plain IPv4
    expect(r).toMatchObject({ kind: 'ok', header: { source: { ip: '2001:db8::5' }, destination: { ip: '10.0.0.1' } } });
  });

  it('asks for more bytes until the header is whole', () => {
    const h = encodeProxyV2({ ip: '10.1.2.3', port: 1 }, { ip: '10.1.2.4', port: 2 });
    for (let n = 1; n < h.length; n++) expect(parseProxyHeader(h.subarray(0, n)).kind).toBe('incomplete');
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4')).kind).toBe('incomplete');
  });

  it('accepts LOCAL (no addresses) and skips TLVs', () => {
    const local = Buffer.from(`${SIG}20000000`, 'hex');
    expect(parseProxyHeader(local)).toEqual({ kind: 'ok', header: { length: 16 } });
    const withTlv = Buffer.concat([Buffer.from(`${SIG}21110013`, 'hex'), Buffer.from('0a0000010a00000204d20050', 'hex'), Buffer.from('04000261620000', 'hex').subarray(0, 7)]);
    const r = parseProxyHeader(withTlv);
    expect(r).toMatchObject({ kind: 'ok', header: { length: 16 + 19, source: { ip: '10.0.0.1', port: 1234 } } });
  });

  it('reads v1 text headers', () => {
    const line = 'PROXY TCP4 203.0.113.9 10.0.0.1 40000 80\r\n';
    expect(parseProxyHeader(Buffer.from(`${line}GET /`))).toEqual({
      kind: 'ok',
      header: { length: line.length, source: { ip: '203.0.113.9', port: 40000 }, destination: { ip: '10.0.0.1', port: 80 } },
    });
    expect(parseProxyHeader(Buffer.from('PROXY TCP6 2001:DB8:0:0::1 ::1 1 2\r\n'))).toMatchObject({ kind: 'ok', header: { source: { ip: '2001:db8::1' } } });
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))).toEqual({ kind: 'ok', header: { length: 15 } });
  });

  it('refuses what is not a PROXY header', () => {
    expect(parseProxyHeader(Buffer.from('GET / HTTP/1.1\r\n')).kind).toBe('invalid');
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 nope 1 2\r\n')).kind).toBe('invalid');
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n')).kind).toBe('invalid');
    expect(parseProxyHeader(Buffer.from(`PROXY ${'x'.repeat(120)}`)).kind).toBe('invalid');
    expect(parseProxyHeader(Buffer.from(`${SIG}31110000`, 'hex')).kind).toBe('invalid'); // version 3
    expect(parseProxyHeader(Buffer.from(`${SIG}2111ffff`, 'hex')).kind).toBe('invalid'); // absurd length
    expect(parseProxyHeader(Buffer.from(`${SIG}21110004`, 'hex')).kind).toBe('incomplete');
  });

  it('spells addresses one way', () => {
    expect(canonicalIp('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(canonicalIp('2001:0DB8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1');
    expect(canonicalIp('1:0:0:2:0:0:0:3')).toBe('1:0:0:2::3');
    expect([...ipBytes('::ffff:1.2.3.4')].slice(10)).toEqual([0xff, 0xff, 1, 2, 3, 4]);
  });
});

// Rendering per requested version: the shapes of a result, errors and
// VERSION, and that what weft prints parses back to itself. That portmap (the
// usual next plugin in a chain) passes it on unchanged is render.test.ts,
// which runs the reference plugin.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseResult } from '../../cni-plugin/cni/parse';
import { renderError, renderResult, renderVersion, resultJson } from '../../cni-plugin/cni/render';
import { CNI_ERR, CniError, SUPPORTED_VERSIONS, type CniResult } from '../../cni-plugin/cni/types';
import { result } from './result-fixture';


describe('result shapes', () => {
  it('1.1.0 carries interface and route mtu and priority', () => {
    expect(JSON.parse(renderResult(result, '1.1.0'))).toEqual({ ...result, cniVersion: '1.1.0' });
  });

  it('1.0.0 drops what 1.1.0 added', () => {
    const o = resultJson(result, '1.0.0');
    expect(o.interfaces).toEqual([
      { name: 'weft.br1', mac: '02:42:0a:f4:03:01' },
      { name: 'eth0', mac: '02:42:0a:f4:03:07', sandbox: '/var/run/netns/cni-1' },
    ]);
    expect(o.routes).toEqual([
      { dst: '0.0.0.0/0', gw: '10.244.3.1' },
      { dst: '::/0', gw: 'fd00:244:3::1' },
    ]);
    expect(o.ips).toEqual(result.ips);
  });

  it('0.4.0 and 0.3.x name each address family as "4" or "6"', () => {
    for (const v of ['0.3.0', '0.3.1', '0.4.0']) {
      const o = resultJson(result, v);
      expect(o.cniVersion).toBe(v);
      expect(o.ips).toEqual([
        { version: '4', address: '10.244.3.7/24', gateway: '10.244.3.1', interface: 1 },
        { version: '6', address: 'fd00:244:3::7/64', gateway: 'fd00:244:3::1', interface: 1 },
      ]);
    }
  });

  it('leaves out empty parts in 1.x and keeps the dns object 0.x always had', () => {
    expect(resultJson({ cniVersion: '1.1.0', ips: [], dns: {} }, '1.0.0')).toEqual({ cniVersion: '1.0.0' });
    expect(resultJson({ cniVersion: '1.1.0' }, '0.4.0')).toEqual({ cniVersion: '0.4.0', dns: {} });
  });

  it('always prints the requested version, not the handler result\'s', () => {
    expect(JSON.parse(renderResult({ ...result, cniVersion: '0.4.0' }, '1.0.0')).cniVersion).toBe('1.0.0');
  });
});

describe('errors and VERSION', () => {
  it('renders {cniVersion, code, msg, details}, details only when there are some', () => {
    const withDetails = new CniError(CNI_ERR.INVALID_CONFIG, 'mtu 9 is invalid', 'must be 68..65535');
    expect(JSON.parse(renderError(withDetails, '0.4.0'))).toEqual({
      cniVersion: '0.4.0',
      code: 7,
      msg: 'mtu 9 is invalid',
      details: 'must be 68..65535',
    });
    expect(JSON.parse(renderError(new CniError(CNI_ERR.TRY_AGAIN_LATER, 'busy'), '1.1.0'))).toEqual({
      cniVersion: '1.1.0',
      code: 11,
      msg: 'busy',
    });
  });

  it('lists the supported versions', () => {
    expect(JSON.parse(renderVersion())).toEqual({ cniVersion: '1.1.0', supportedVersions: [...SUPPORTED_VERSIONS] });
  });
});

describe('render then parse', () => {
  const octet = fc.integer({ min: 0, max: 255 });
  const v4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
  const v6 = fc
    .array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 })
    .map((h) => h.map((x) => x.toString(16)).join(':'));
  const prefixed = (ip: fc.Arbitrary<string>, max: number) =>
    fc.tuple(ip, fc.integer({ min: 0, max })).map(([a, p]) => `${a}/${p}`);
  const addr = fc.oneof(prefixed(v4, 32), prefixed(v6, 128));
  const mtu = fc.integer({ min: 68, max: 9000 });
  const iface = fc.record(
    {
      name: fc.stringMatching(/^[a-z][a-z0-9]{0,14}$/),
      mac: fc.constant('02:00:00:00:00:01'),
      mtu,
      sandbox: fc.constant('/run/netns/x'),
    },
    { requiredKeys: ['name'] },
  );
  const ipOn = (n: number) =>
    fc.record(
      { address: addr, gateway: fc.oneof(v4, v6), interface: fc.integer({ min: 0, max: n - 1 }) },
      { requiredKeys: ['address'] },
    );
  const route = fc.record({ dst: addr, gw: v4, mtu, priority: fc.nat() }, { requiredKeys: ['dst'] });
  const gen = fc.array(iface, { minLength: 1, maxLength: 3 }).chain((interfaces) =>
    fc.record(
      {
        cniVersion: fc.constant('1.1.0'),
        interfaces: fc.constant(interfaces),
        ips: fc.array(ipOn(interfaces.length), { minLength: 1, maxLength: 3 }),
        routes: fc.array(route, { minLength: 1, maxLength: 3 }),
        dns: fc.record({ nameservers: fc.array(v4, { minLength: 1, maxLength: 2 }), domain: fc.constant('example.com') }),
      },
      { requiredKeys: ['cniVersion', 'interfaces', 'ips'] },
    ),
  );

  it('a 1.1.0 result reads back exactly', () => {
    fc.assert(
      fc.property(gen, (r: CniResult) => {
        expect(parseResult(JSON.parse(renderResult(r, '1.1.0')), 'prevResult', '1.1.0')).toEqual(r);
      }),
    );
  });

  it('older versions read back with only the fields they define', () => {
    fc.assert(
      fc.property(gen, fc.constantFrom('0.3.1', '0.4.0', '1.0.0'), (r: CniResult, v: string) => {
        const back = parseResult(JSON.parse(renderResult(r, v)), 'prevResult', v);
        expect(back.cniVersion).toBe(v);
        expect(back.ips).toEqual(r.ips);
        expect(back.interfaces?.map((i) => i.name)).toEqual(r.interfaces?.map((i) => i.name));
        expect((back.interfaces ?? []).some((i) => i.mtu !== undefined)).toBe(false);
        expect(back.routes?.map((x) => x.dst)).toEqual(r.routes?.map((x) => x.dst));
        expect((back.routes ?? []).some((x) => x.mtu !== undefined || x.priority !== undefined)).toBe(false);
      }),
    );
  });
});

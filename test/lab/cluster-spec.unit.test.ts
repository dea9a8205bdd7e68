import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { clusterLayout, type ClusterSpec } from './cluster-spec';
import { formatMatrix, matrixOk, type Matrix } from './matrix';
import { DEFAULT_SPEC, LabSpecError } from './plan';

const twoDcs = (extra: Partial<ClusterSpec> = {}, gateways?: string[]): ClusterSpec => ({
  name: 't',
  controller: true,
  datacenters: [
    { name: 'dc1', racks: [{ name: 'a', hosts: ['h1', 'h2', 'h3'] }], ...(gateways ? { gateways } : {}) },
    { name: 'dc2', racks: [{ name: 'b', hosts: ['h4'] }] },
  ],
  ...extra,
});

describe('lab cluster spec', () => {
  it('the default spec: one datacenter, so no gateways, and no edge host, so no ingress', () => {
    expect(clusterLayout(DEFAULT_SPEC)).toEqual({ gateways: new Map(), edge: null });
  });

  it('vagrant/topology.json: gateways are the first two hosts of each datacenter, the host named edge runs the ingress', () => {
    const spec = JSON.parse(readFileSync(new URL('../../vagrant/topology.json', import.meta.url), 'utf8')) as ClusterSpec;
    const l = clusterLayout(spec);
    expect([...l.gateways]).toEqual([['dc1', ['h1', 'h2']], ['dc2', ['h4']]]);
    expect(l.edge).toBe('edge');
  });

  it('takes the gateways and the ingress host the spec names, and refuses hosts that are not where it says', () => {
    expect(clusterLayout(twoDcs({}, ['h3'])).gateways.get('dc1')).toEqual(['h3']);
    expect(clusterLayout(twoDcs({ ingress: 'h2' })).edge).toBe('h2');
    expect(clusterLayout(twoDcs({ ingress: false })).edge).toBeNull();
    expect(() => clusterLayout(twoDcs({}, ['h4']))).toThrow(LabSpecError);
    expect(() => clusterLayout(twoDcs({ ingress: 'nope' }))).toThrow(/not a host/);
    expect(() => clusterLayout({ ...DEFAULT_SPEC, controller: false })).toThrow(/controller/);
  });
});

describe('lab matrix', () => {
  const ep = (host: string, datacenter: string, ip: string) => ({ host, datacenter, netns: `wt-t.${host}.c`, ip });
  const m: Matrix = {
    endpoints: [ep('h1', 'dc1', '10.244.1.2'), ep('h4', 'dc2', '10.244.4.2')],
    cells: [
      [null, { ok: false, rttMs: null, detail: '2 sent, 0 received' }],
      [{ ok: true, rttMs: 0.31, detail: '' }, null],
    ],
    service: null,
    ms: 1200,
  };

  it('prints every pair as it went, names the datacenters when there are several, and lists each failure with its reason', () => {
    const text = formatMatrix(m);
    expect(text).toMatch(/^h1\/dc1 10\.244\.1\.2 +- +FAIL$/m);
    expect(text).toMatch(/^h4\/dc2 10\.244\.4\.2 +ok 0\.31ms +-$/m);
    expect(text).toContain('1/2 container pairs ok');
    expect(text).toContain('FAIL h1/dc1 10.244.1.2 -> h4/dc2 10.244.4.2: 2 sent, 0 received');
    expect(matrixOk(m)).toBe(false);
  });

  it('a failed service row fails the matrix', () => {
    const probe = { service: 'demo', clientNetns: 'x', clientIp: '198.18.0.2', url: 'http://198.18.0.1/' };
    const ok = { ...m, cells: [[null, m.cells[1][0]], [m.cells[1][0], null]] };
    expect(matrixOk(ok)).toBe(true);
    const bad = { ...ok, service: { probe, cell: { ok: false, rttMs: null, detail: 'ECONNREFUSED' } } };
    expect(matrixOk(bad)).toBe(false);
    expect(formatMatrix(bad)).toContain('outside client 198.18.0.2 -> service demo http://198.18.0.1/: FAIL');
  });
});

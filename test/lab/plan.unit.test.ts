import { describe, expect, it } from 'vitest';
import { planLab, planNamespaces, containerNetnsName, DEFAULT_SPEC, LabSpecError } from './plan';

describe('lab plan', () => {
  it('gives each rack a /24, hosts addresses from it and the gateway .1', () => {
    const p = planLab(DEFAULT_SPEC);
    expect(p.hosts.map((h) => [h.name, h.underlayIp, h.gateway, h.rack, h.datacenter])).toEqual([
      ['h1', '172.31.1.11', '172.31.1.1', 'a', 'dc1'],
      ['h2', '172.31.1.12', '172.31.1.1', 'a', 'dc1'],
      ['h3', '172.31.2.11', '172.31.2.1', 'b', 'dc1'],
    ]);
    expect(p.controller).toMatchObject({ ip: '172.31.0.10', gateway: '172.31.0.1' });
  });

  it('names every namespace with the lab prefix and link names fit in 15 characters', () => {
    const p = planLab({
      name: 'x',
      datacenters: Array.from({ length: 3 }, (_, d) => ({
        name: `dc${d}`,
        racks: Array.from({ length: 4 }, (_, r) => ({ name: `r${r}`, hosts: Array.from({ length: 30 }, (_, h) => `d${d}r${r}h${h}`) })),
      })),
      controller: true,
    });
    for (const ns of planNamespaces(p)) expect(ns.startsWith('wt-x.')).toBe(true);
    const links = [...p.hosts.map((h) => h.fabricPort), ...p.routers.flatMap((r) => [r.wanIf, r.peerIf, ...r.racks.flatMap((k) => [k.bridge, k.routerIf, k.fabricPort])])];
    for (const l of links) expect(l.length).toBeLessThanOrEqual(15);
    expect(new Set(links).size).toBe(links.length - (p.routers.length - 1)); // wanIf repeats, one per router namespace
    expect(p.routers.map((r) => [r.ip, r.peerIp])).toEqual([
      ['198.51.100.2', '198.51.100.1'],
      ['198.51.100.6', '198.51.100.5'],
      ['198.51.100.10', '198.51.100.9'],
    ]);
    expect(p.hosts.at(-1)!.underlayIp).toBe('172.31.12.40');
  });

  it('refuses names that could collide or escape the prefix', () => {
    const bad = (spec: unknown) => expect(() => planLab(spec as never)).toThrow(LabSpecError);
    bad({ name: 'a.b', datacenters: [{ name: 'd', racks: [{ name: 'r', hosts: ['h'] }] }] });
    bad({ name: 'A', datacenters: [{ name: 'd', racks: [{ name: 'r', hosts: ['h'] }] }] });
    bad({ name: 'ok', datacenters: [] });
    bad({ name: 'ok', datacenters: [{ name: 'd', racks: [{ name: 'r', hosts: ['h', 'h'] }] }] });
    bad({ name: 'ok', datacenters: [{ name: 'd', racks: [{ name: 'r', hosts: ['_fabric'] }] }] });
    bad({ name: 'ok', datacenters: [{ name: 'd', racks: [{ name: 'r', hosts: ['a.b'] }] }] });
    expect(() => containerNetnsName('ok', 'h1', '../x')).toThrow(LabSpecError);
  });
});

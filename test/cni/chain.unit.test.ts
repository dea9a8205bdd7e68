// chainResult: weft's result after an earlier plugin's (CNI spec 1.0,
// chained plugins): the earlier interfaces, addresses, routes and DNS first
// and unchanged, weft's after them with its interface indexes moved.
import { describe, expect, it } from 'vitest';
import { chainResult } from '../../cni-plugin/cni/chain';
import type { CniResult } from '../../cni-plugin/cni/types';

const own: CniResult = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'wv0123456789ab', mac: '02:00:00:00:00:01', mtu: 1450 }, { name: 'eth0', mac: '02:00:00:00:00:02', mtu: 1450, sandbox: '/run/netns/c' }],
  ips: [{ address: '10.244.3.7/24', gateway: '10.244.3.1', interface: 1 }],
  routes: [{ dst: '0.0.0.0/0', gw: '10.244.3.1' }],
};

describe('chainResult', () => {
  it('is weft\'s own result when weft is first', () => {
    expect(chainResult(undefined, own)).toBe(own);
  });

  it('keeps the earlier result first and moves weft\'s interface indexes past it', () => {
    const prev: CniResult = {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'lo', mac: '00:00:00:00:00:00', sandbox: '/run/netns/c' }, { name: 'net1', sandbox: '/run/netns/c' }],
      ips: [{ address: '127.0.0.1/8', interface: 0 }, { address: '192.168.5.9/24', interface: 1 }],
      routes: [{ dst: '192.168.0.0/16', gw: '192.168.5.1' }],
      dns: { nameservers: ['192.168.5.1'], search: ['example.org'] },
    };
    const out = chainResult(prev, own);
    expect(out.interfaces).toEqual([...prev.interfaces!, ...own.interfaces!]);
    expect(out.ips).toEqual([...prev.ips!, { address: '10.244.3.7/24', gateway: '10.244.3.1', interface: 3 }]);
    expect(out.routes).toEqual([...prev.routes!, ...own.routes!]);
    expect(out.dns).toEqual(prev.dns);
    expect(out.cniVersion).toBe('1.0.0');
  });

  it('lists a route the earlier plugin already reported once, and keeps an address without an interface as it is', () => {
    const prev: CniResult = { cniVersion: '1.0.0', ips: [{ address: '10.9.0.2/24' }], routes: [{ dst: '0.0.0.0/0', gw: '10.244.3.1' }] };
    const out = chainResult(prev, own);
    expect(out.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.244.3.1' }]);
    expect(out.ips).toEqual([{ address: '10.9.0.2/24' }, { address: '10.244.3.7/24', gateway: '10.244.3.1', interface: 1 }]);
    expect(out.dns).toBeUndefined();
  });
});

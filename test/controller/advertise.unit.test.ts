// Which address the join command names and which addresses the serving
// certificate covers, from the machine's interfaces and default routes.
import { readFileSync } from 'node:fs';
import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  advertisedServer, machineAddresses, parseProcIpv6Route, parseProcRoute, preferredAddress, readDefaultRoutes, servingAddresses, type Machine,
} from '../../controller/daemon/advertise';
import { loadControllerConfig } from '../../controller/daemon/config';

const v4 = (address: string, internal = false): NetworkInterfaceInfo =>
  ({ address, netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:00:01', internal, cidr: `${address}/24` }) as NetworkInterfaceInfo;
const v6 = (address: string, internal = false): NetworkInterfaceInfo =>
  ({ address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal, cidr: `${address}/64`, scopeid: 0 }) as NetworkInterfaceInfo;

const lo = { lo: [v4('127.0.0.1', true), v6('::1', true)] };
const machine = (interfaces: Machine['interfaces'], v4Routes: string[] = [], v6Routes: string[] = []): Machine => ({
  interfaces, defaultRoutes: { v4: v4Routes, v6: v6Routes },
});
const config = (argv: string[] = []) => loadControllerConfig(argv, {}, () => {
  throw new Error('no file');
});

// As this kernel prints them: a default route via eth0 and a connected route.
const PROC_ROUTE = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth1\t00000000\t010300C6\t0003\t0\t0\t50\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
`;
const PROC_IPV6_ROUTE = `fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
`;

describe('machine addresses', () => {
  it('leaves out loopback, link-local and kube-ipvs0, keeps interface order and drops duplicates', () => {
    const got = machineAddresses({
      ...lo,
      eth0: [v4('192.0.2.5'), v6('fe80::1'), v6('2001:db8::5')],
      eth1: [v4('169.254.10.1'), v4('192.0.2.5')],
      'kube-ipvs0': [v4('10.96.0.1')],
      docker0: [v4('172.17.0.1')],
    });
    expect(got).toEqual([
      { iface: 'eth0', address: '192.0.2.5', family: 4 },
      { iface: 'eth0', address: '2001:db8::5', family: 6 },
      { iface: 'docker0', address: '172.17.0.1', family: 4 },
    ]);
  });

  it('reads the default-route interfaces from procfs, lowest metric first, skipping lo and reject routes', () => {
    expect(parseProcRoute(PROC_ROUTE)).toEqual(['eth1', 'eth0']);
    expect(parseProcIpv6Route(PROC_IPV6_ROUTE)).toEqual(['eth0']);
    expect(parseProcRoute('')).toEqual([]);
    expect(readDefaultRoutes(() => {
      throw new Error('ENOENT');
    })).toEqual({ v4: [], v6: [] });
    // this process's own namespace: whatever it holds, it parses
    expect(readDefaultRoutes().v4).toEqual(parseProcRoute(readFileSync('/proc/net/route', 'utf8')));
  });
});

describe('the address the join command names', () => {
  const ifaces = { ...lo, docker0: [v4('172.17.0.1')], 'weft.br1': [v4('10.244.3.1')], ens3: [v4('192.0.2.5'), v6('2001:db8::5')], ens4: [v4('198.51.100.9')] };

  it('is the address on the interface of the default route', () => {
    expect(preferredAddress(machine(ifaces, ['ens4']))).toMatchObject({ address: '198.51.100.9' });
    const a = advertisedServer(config(), 7443, machine(ifaces, ['ens4']));
    expect(a).toMatchObject({ server: '198.51.100.9:7443', host: '198.51.100.9' });
    expect(a.source).toContain('default route');
  });

  it('without a default route, is the first address not on a container bridge', () => {
    expect(advertisedServer(config(), 7443, machine(ifaces)).server).toBe('192.0.2.5:7443');
    // only a bridge: still better than nothing
    expect(advertisedServer(config(), 7443, machine({ ...lo, docker0: [v4('172.17.0.1')] })).server).toBe('172.17.0.1:7443');
  });

  it('is IPv4 before IPv6, and IPv6 only when the controller listens on ::', () => {
    const only6 = { ...lo, ens3: [v6('fe80::5'), v6('2001:db8::5')] };
    expect(advertisedServer(config(['--listen', '[::]:7443']), 7443, machine(ifaces, [], ['ens3'])).server).toBe('192.0.2.5:7443');
    expect(advertisedServer(config(['--listen', '[::]:7443']), 7443, machine(only6, [], ['ens3'])).server).toBe('[2001:db8::5]:7443');
    expect(advertisedServer(config(), 7443, machine(only6)).server).toBe('127.0.0.1:7443');
  });

  it('is the first --advertise name, else a specific listen address, and the bound port', () => {
    expect(advertisedServer(config(['--advertise', 'ctl.example,192.0.2.5']), 17443, machine(ifaces, ['ens4'])).server).toBe('ctl.example:17443');
    expect(advertisedServer(config(['--listen', '192.0.2.5:7443']), 7443, machine(ifaces, ['ens4'])).server).toBe('192.0.2.5:7443');
    expect(advertisedServer(config(['--listen', '[2001:db8::5]:7443']), 7443, machine(ifaces)).server).toBe('[2001:db8::5]:7443');
  });

  it('is loopback only on a machine with nothing else, and says so; never the hostname', () => {
    const a = advertisedServer(config(), 7443, machine({ ...lo, eth0: [v4('169.254.1.1')] }));
    expect(a.server).toBe('127.0.0.1:7443');
    expect(a.source).toMatch(/^loopback.*--advertise/);
  });
});

describe('addresses for the serving certificate', () => {
  const ifaces = { ...lo, ens3: [v4('192.0.2.5'), v6('2001:db8::5'), v6('fe80::5')] };
  it('are every reachable address of a family the listen address answers, none for a specific listen address', () => {
    expect(servingAddresses('0.0.0.0', { interfaces: ifaces })).toEqual(['192.0.2.5']);
    expect(servingAddresses('::', { interfaces: ifaces })).toEqual(['192.0.2.5', '2001:db8::5']);
    expect(servingAddresses('192.0.2.5', { interfaces: ifaces })).toEqual([]);
  });
});

// The field checks on their own: accepted and refused values, messages that
// name the field, and property tests over generated valid values.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkCreateService, checkRegisterHost } from '../../controller/service/requests';
import {
  InvalidArgumentError, canonicalIp, checkCidr, checkContainerId, checkHostName, checkIfname, checkIpInSubnet, checkLabels,
  checkMac, checkName, checkNetworkExists, checkPort, checkProtocol, checkUnicastIp, checkWgPublicKey,
} from '../../controller/api/validate';

const ok = (p: string | undefined) => expect(p).toBeUndefined();
const bad = (p: string | undefined, field: string, re?: RegExp) => {
  expect(p).toBeDefined();
  expect(p!.startsWith(`${field}: `)).toBe(true);
  if (re) expect(p).toMatch(re);
};

describe('names', () => {
  it('accepts DNS labels of 1-63 and refuses the rest', () => {
    for (const v of ['a', 'h1', 'rack-7', '0', 'a'.repeat(63)]) ok(checkName(v, 'rack'));
    for (const v of ['', '-a', 'a-', 'A', 'a_b', 'a.b', 'a b', 'a'.repeat(64), 'é']) bad(checkName(v, 'rack'), 'rack');
    bad(checkName(undefined, 'rack'), 'rack', /is required/);
    bad(checkHostName('admin', 'name'), 'name', /reserved/);
  });

  it('accepts every generated label', () => {
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/);
    fc.assert(fc.property(label, (l) => checkName(l, 'x') === undefined));
  });
});

describe('addresses', () => {
  it('checks unicast IPs', () => {
    for (const v of ['10.0.0.1', '192.168.1.255', 'fd00::1', '2001:db8::5']) ok(checkUnicastIp(v, 'underlay_ip'));
    const refused: Array<[string, RegExp]> = [
      ['', /not an IP/], ['10.0.0', /not an IP/], ['010.0.0.1', /not an IP/], ['1.2.3.4/32', /not an IP/], ['fe80::1%eth0', /not an IP/],
      ['0.0.0.0', /unspecified/], ['::', /unspecified/], ['127.0.0.1', /loopback/], ['::1', /loopback/],
      ['239.1.1.1', /multicast/], ['ff02::1', /multicast/], ['255.255.255.255', /broadcast/],
    ];
    for (const [v, re] of refused) bad(checkUnicastIp(v, 'underlay_ip'), 'underlay_ip', re);
  });

  it('canonicalises IPv6 and round-trips IPv4', () => {
    expect(canonicalIp('FD00:0:0::00AB')).toBe('fd00::ab');
    expect(canonicalIp('nope')).toBeUndefined();
    fc.assert(fc.property(fc.ipV4(), (ip) => canonicalIp(ip) === ip));
    fc.assert(fc.property(fc.ipV6(), (ip) => {
      const c = canonicalIp(ip);
      return c !== undefined && canonicalIp(c) === c;
    }));
  });

  it('checks CIDRs', () => {
    ok(checkCidr('10.0.0.0/8', 'cidr'));
    bad(checkCidr('10.0.0.1/8', 'cidr'), 'cidr', /host bits/);
    bad(checkCidr('10.0.0.0', 'cidr'), 'cidr');
  });

  it('checks MACs: unicast, not all zero', () => {
    for (const v of ['02:42:ac:11:00:02', '00:1A:2b:3c:4d:5e']) ok(checkMac(v, 'vtep_mac'));
    bad(checkMac('zz:00:00:00:00:01', 'vtep_mac'), 'vtep_mac', /not a MAC/);
    bad(checkMac('02:42:ac:11:00', 'vtep_mac'), 'vtep_mac', /not a MAC/);
    bad(checkMac('02-42-ac-11-00-02', 'vtep_mac'), 'vtep_mac', /not a MAC/);
    bad(checkMac('00:00:00:00:00:00', 'vtep_mac'), 'vtep_mac', /all-zero/);
    bad(checkMac('ff:ff:ff:ff:ff:ff', 'vtep_mac'), 'vtep_mac', /multicast/);
    const unicast = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 })
      .map((o) => [o[0] & 0xfe, ...o.slice(1)])
      .filter((o) => o.some((x) => x !== 0));
    fc.assert(fc.property(unicast, (o) => checkMac(o.map((x) => x.toString(16).padStart(2, '0')).join(':'), 'm') === undefined));
  });

  it('checks WireGuard keys: empty, or base64 of exactly 32 bytes', () => {
    ok(checkWgPublicKey('', 'wg_public_key'));
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (b) => checkWgPublicKey(Buffer.from(b).toString('base64'), 'k') === undefined));
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }).filter((b) => b.length !== 32), (b) =>
      checkWgPublicKey(Buffer.from(b).toString('base64'), 'k') !== undefined));
    // 43 base64 digits can say more than 32 bytes: the last one must leave its low bits zero.
    bad(checkWgPublicKey(`${'A'.repeat(42)}B=`, 'wg_public_key'), 'wg_public_key');
    bad(checkWgPublicKey(`${'A'.repeat(43)}=`.replace(/=$/, ''), 'wg_public_key'), 'wg_public_key');
  });

  it('keeps endpoint IPs inside the host subnet, off its network, gateway and broadcast addresses', () => {
    ok(checkIpInSubnet('10.244.3.2', 'endpoint.ip', '10.244.3.0/24', 'h1'));
    ok(checkIpInSubnet('10.244.3.254', 'endpoint.ip', '10.244.3.0/24', 'h1'));
    bad(checkIpInSubnet('10.244.4.2', 'endpoint.ip', '10.244.3.0/24', 'h1'), 'endpoint.ip', /outside host "h1"'s subnet 10.244.3.0\/24/);
    bad(checkIpInSubnet('fd00::2', 'endpoint.ip', '10.244.3.0/24', 'h1'), 'endpoint.ip', /outside/);
    bad(checkIpInSubnet('10.244.3.0', 'endpoint.ip', '10.244.3.0/24', 'h1'), 'endpoint.ip', /subnet address/);
    bad(checkIpInSubnet('10.244.3.1', 'endpoint.ip', '10.244.3.0/24', 'h1'), 'endpoint.ip', /gateway/);
    bad(checkIpInSubnet('10.244.3.255', 'endpoint.ip', '10.244.3.0/24', 'h1'), 'endpoint.ip', /broadcast/);
    ok(checkIpInSubnet('fd00:10:0:3::ffff', 'endpoint.ip', 'fd00:10:0:3::/64', 'h1'));
    bad(checkIpInSubnet('fd00:10:0:3::1', 'endpoint.ip', 'fd00:10:0:3::/64', 'h1'), 'endpoint.ip', /gateway/);
    // The smallest subnets: a /30 has one container address; in a /31 and /32 the subnet and gateway addresses take everything.
    ok(checkIpInSubnet('10.0.0.2', 'endpoint.ip', '10.0.0.0/30', 'h1'));
    bad(checkIpInSubnet('10.0.0.3', 'endpoint.ip', '10.0.0.0/30', 'h1'), 'endpoint.ip', /broadcast/);
    bad(checkIpInSubnet('10.0.0.1', 'endpoint.ip', '10.0.0.0/31', 'h1'), 'endpoint.ip', /gateway/);
    bad(checkIpInSubnet('10.0.0.0', 'endpoint.ip', '10.0.0.0/32', 'h1'), 'endpoint.ip', /subnet address/);
    bad(checkIpInSubnet('10.0.0.1', 'endpoint.ip', '10.0.0.0/32', 'h1'), 'endpoint.ip', /outside/);
  });
});

describe('labels and small fields', () => {
  it('checks label keys, values, count and size', () => {
    ok(checkLabels({}, 'labels'));
    ok(checkLabels({ app: 'web', 'example.com/tier': 'front', 'a.b_c-d': '' }, 'labels'));
    bad(checkLabels({}, 'selector', { nonEmpty: true }), 'selector', /at least one/);
    bad(checkLabels({ '': 'x' }, 'labels'), 'labels');
    bad(checkLabels({ 'a b': 'x' }, 'labels'), 'labels', /not a valid label name/);
    bad(checkLabels({ 'Example.com/x': 'y' }, 'labels'), 'labels', /prefix/);
    bad(checkLabels({ '/x': 'y' }, 'labels'), 'labels', /prefix/);
    bad(checkLabels({ ['a'.repeat(64)]: 'y' }, 'labels'), 'labels');
    bad(checkLabels({ a: 'x y' }, 'labels'), 'labels', /not a valid label value/);
    bad(checkLabels({ a: 'v'.repeat(64) }, 'labels'), 'labels');
    bad(checkLabels(Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])), 'labels'), 'labels', /at most 32/);
    bad(checkLabels(Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`example.com/${'k'.repeat(60)}${i}`, 'v'.repeat(63)])), 'labels'), 'labels', /total/);
    bad(checkLabels([], 'labels'), 'labels', /map/);
  });

  it('checks ports, protocols, container ids and interface names', () => {
    for (const v of [1, 80, 65535]) ok(checkPort(v, 'port'));
    for (const v of [0, -1, 65536, 1.5, NaN]) bad(checkPort(v, 'port'), 'port', /not a port/);
    ok(checkProtocol('tcp', 'protocol'));
    ok(checkProtocol('http', 'protocol'));
    ok(checkProtocol('udp', 'protocol'));
    bad(checkProtocol('sctp', 'protocol'), 'protocol', /"tcp", "udp", "http"/);
    ok(checkContainerId('3f4e-abc_1.2', 'container_id'));
    ok(checkContainerId('a'.repeat(256), 'container_id'));
    for (const v of ['', '-a', 'a/b', 'a b', 'a'.repeat(257)]) bad(checkContainerId(v, 'container_id'), 'container_id');
    ok(checkIfname('', 'ifname'));
    ok(checkIfname('eth0', 'ifname'));
    for (const v of ['a'.repeat(16), 'a/b', 'a b', '.', '..']) bad(checkIfname(v, 'ifname'), 'ifname');
  });

  it('checks networks against the config', () => {
    ok(checkNetworkExists('default', 'network', [{ name: 'default' }]));
    bad(checkNetworkExists('blue', 'network', [{ name: 'default' }]), 'network', /does not exist \(configured: "default"\)/);
  });
});

describe('whole requests', () => {
  const nets = [{ name: 'default' }, { name: 'blue' }];
  const svc = {
    name: 'web', ports: [{ name: '', port: 443, target_port: 0, protocol: 'tcp' }], selector: { app: 'web' }, network: 'blue', rack_policy: '',
    hostnames: [] as string[], path_prefix: '', affinity: '', health_path: '', proxy_protocol: false,
  };
  const req = {
    name: 'h1', underlay_ip: '10.0.0.1', vtep_mac: '02:AA:00:00:00:01', rack: '', datacenter: 'dc1',
    wg_public_key: '', agent_version: '1.0', networks: [] as string[],
  };

  it('normalises a host registration', () => {
    expect(checkRegisterHost(req, nets)).toEqual({
      name: 'h1', underlayIp: '10.0.0.1', vtepMac: '02:aa:00:00:00:01', rack: '', datacenter: 'dc1',
      wgPublicKey: '', agentVersion: '1.0', networks: ['default', 'blue'],
    });
    expect(checkRegisterHost({ ...req, networks: ['blue', 'blue'] }, nets).networks).toEqual(['blue']);
  });

  it('throws InvalidArgumentError carrying the field', () => {
    try {
      checkRegisterHost({ ...req, vtep_mac: 'zz' }, nets);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect((e as InvalidArgumentError).field).toBe('vtep_mac');
      expect((e as Error).message).toBe('vtep_mac: "zz" is not a MAC address (expected six hex octets like "02:42:ac:11:00:02")');
    }
  });

  it('fills service defaults', () => {
    const s = checkCreateService({ service: { ...svc, ports: [{ name: '', port: 443, target_port: 0, protocol: '' }] } }, nets);
    expect(s).toEqual({
      name: 'web', ports: [{ name: '', port: 443, targetPort: 443, protocol: 'tcp' }], selector: { app: 'web' }, network: 'blue', rackPolicy: 'prefer-local',
      hostnames: [], pathPrefix: '', affinity: 'none', healthPath: '', proxyProtocol: false,
    });
  });

  it('keeps the ingress fields of a service', () => {
    const s = checkCreateService({
      service: {
        ...svc, ports: [{ name: 'web', port: 80, target_port: 8080, protocol: 'http' }, { name: 'dns', port: 80, target_port: 53, protocol: 'udp' }],
        hostnames: ['shop.example.com', '*.shop.example.com'], path_prefix: '/api', affinity: 'client-ip', health_path: '/healthz', proxy_protocol: true,
      },
    }, nets);
    expect(s).toMatchObject({
      ports: [{ port: 80, targetPort: 8080, protocol: 'http' }, { port: 80, targetPort: 53, protocol: 'udp' }],
      hostnames: ['shop.example.com', '*.shop.example.com'], pathPrefix: '/api', affinity: 'client-ip', healthPath: '/healthz', proxyProtocol: true,
    });
  });

  it('refuses bad ingress fields, naming the field', () => {
    const http = [{ name: '', port: 80, target_port: 0, protocol: 'http' }];
    const cases: Array<[Record<string, unknown>, string, RegExp?]> = [
      [{ ports: [{ name: '', port: 80, target_port: 0, protocol: 'http' }, { name: '', port: 80, target_port: 0, protocol: 'tcp' }] }, 'service.ports[1].port', /tcp port 80 is already used by service.ports\[0\]/],
      [{ ports: [{ name: '', port: 0, target_port: 0, protocol: 'udp' }] }, 'service.ports[0].port'],
      [{ ports: [{ name: '', port: 65536, target_port: 0, protocol: 'udp' }] }, 'service.ports[0].port'],
      [{ ports: http, hostnames: ['Shop.example.com'] }, 'service.hostnames[0]'],
      [{ ports: http, hostnames: ['a.example.com', 'a.example.com'] }, 'service.hostnames[1]', /twice/],
      [{ ports: http, hostnames: ['a.*.example.com'] }, 'service.hostnames[0]'],
      [{ ports: http, hostnames: ['*.com'] }, 'service.hostnames[0]', /too wide/],
      [{ ports: http, hostnames: ['*'] }, 'service.hostnames[0]'],
      [{ ports: http, hostnames: ['ok.example.com', ''] }, 'service.hostnames[1]'],
      [{ ports: http, hostnames: Array.from({ length: 17 }, (_, i) => `h${i}.example.com`) }, 'service.hostnames', /at most 16/],
      [{ hostnames: ['shop.example.com'] }, 'service.hostnames', /only http ports/],
      [{ path_prefix: '/api' }, 'service.path_prefix', /only http ports/],
      [{ ports: http, path_prefix: 'api' }, 'service.path_prefix', /start with "\/"/],
      [{ ports: http, path_prefix: '/a/../b' }, 'service.path_prefix', /"\.\." segment/],
      [{ ports: http, path_prefix: '/a b' }, 'service.path_prefix', /printable ASCII/],
      [{ ports: http, path_prefix: '/é' }, 'service.path_prefix', /printable ASCII/],
      [{ ports: http, path_prefix: '/' + 'a'.repeat(256) }, 'service.path_prefix', /at most 256/],
      [{ health_path: 'healthz' }, 'service.health_path'],
      [{ health_path: '/x/..' }, 'service.health_path'],
      [{ affinity: 'cookie' }, 'service.affinity', /"none", "client-ip"/],
    ];
    for (const [patch, field, msg] of cases) {
      try {
        checkCreateService({ service: { ...svc, ...patch } as typeof svc }, nets);
        expect.unreachable(`${JSON.stringify(patch).slice(0, 80)} was accepted`);
      } catch (e) {
        expect((e as InvalidArgumentError).field, JSON.stringify(patch).slice(0, 80)).toBe(field);
        if (msg) expect((e as Error).message).toMatch(msg);
      }
    }
  });
});

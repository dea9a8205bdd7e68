// A host's underlay address is where every other host sends its VXLAN
// traffic. RegisterHost refuses addresses that cannot be one: unspecified,
// loopback, multicast, link-local, broadcast, "this network", IPv4-mapped
// IPv6 (which would carry a refused IPv4 address past the IPv4 checks), and
// anything inside a weft network. Public addresses stay allowed: some clouds
// give hosts nothing else.
import * as grpc from '@grpc/grpc-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkUnderlayIp } from '../../controller/api/validate';
import { type Harness, TEST_CONFIG, registerHost, startHarness } from './api-harness';

const REFUSED: Array<[string, RegExp]> = [
  ['0.0.0.0', /unspecified/],
  ['::', /unspecified/],
  ['0.1.2.3', /this network/],
  ['127.0.0.1', /loopback/],
  ['127.8.9.10', /loopback/],
  ['::1', /loopback/],
  ['224.0.0.1', /multicast/],
  ['239.255.255.250', /multicast/],
  ['ff02::1', /multicast/],
  ['169.254.169.254', /link-local/],
  ['fe80::1', /link-local/],
  ['febf:ffff::1', /link-local/],
  ['255.255.255.255', /broadcast/],
  ['::ffff:127.0.0.1', /IPv4-mapped/],
  ['::ffff:10.0.0.1', /IPv4-mapped/],
  ['::ffff:7f00:1', /IPv4-mapped/],
  ['10.244.3.7', /inside weft network "default" \(10\.244\.0\.0\/16\)/],
  ['10.250.0.1', /inside weft network "blue"/],
];

const ACCEPTED = ['8.8.8.8', '203.0.113.10', '10.0.0.1', '192.168.1.5', '100.64.0.1', '2001:db8::5', 'fd00::1', 'fec0::1', '10.243.255.255', '10.245.0.0'];

describe('checkUnderlayIp', () => {
  it('refuses each kind of address that cannot carry the overlay, naming why', () => {
    for (const [ip, why] of REFUSED) {
      const p = checkUnderlayIp(ip, 'underlay_ip', TEST_CONFIG.networks);
      expect(p, ip).toBeDefined();
      expect(p!.startsWith('underlay_ip: '), p).toBe(true);
      expect(p, ip).toMatch(why);
    }
  });

  it('accepts private and public unicast addresses outside the overlay', () => {
    for (const ip of ACCEPTED) expect(checkUnderlayIp(ip, 'underlay_ip', TEST_CONFIG.networks), ip).toBeUndefined();
  });
});

describe('RegisterHost underlay_ip', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    return () => h.close();
  });

  it('is refused with INVALID_ARGUMENT for each address that cannot be an underlay, writing nothing', async () => {
    for (const [ip, why] of REFUSED) {
      const before = await h.store.revision();
      const err = (await registerHost(h, 'h1', 1, { underlay_ip: ip }).then(
        () => {
          throw new Error(`${ip} was accepted as an underlay address`);
        },
        (e) => e,
      )) as grpc.ServiceError;
      expect(grpc.status[err.code], `${ip}: ${err.details}`).toBe('INVALID_ARGUMENT');
      expect(err.details.startsWith('underlay_ip: '), err.details).toBe(true);
      expect(err.details, ip).toMatch(why);
      expect(await h.store.revision(), ip).toBe(before);
    }
  });

  it('accepts a public address', async () => {
    const r = await registerHost(h, 'cloud', 2, { underlay_ip: '8.8.8.8' });
    expect(r.host.underlay_ip).toBe('8.8.8.8');
  });
});

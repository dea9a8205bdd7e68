import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ClusterConfigError, DEFAULTS, validateClusterConfig } from '../../controller/ipam';

const net = (over: Record<string, unknown> = {}) => ({ name: 'blue', vni: 7, cidr: '10.1.0.0/16', hostPrefixLength: 24, ...over });

function refusal(x: unknown): ClusterConfigError {
  try {
    validateClusterConfig(x);
  } catch (err) {
    expect(err).toBeInstanceOf(ClusterConfigError);
    return err as ClusterConfigError;
  }
  throw new Error(`accepted ${JSON.stringify(x)}`);
}

describe('validateClusterConfig', () => {
  it('fills the defaults', () => {
    expect(validateClusterConfig({})).toEqual({
      networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/16', hostPrefixLength: 24 }],
      vxlanPort: 4789,
      leaseTtlSeconds: 60,
      reclaimGraceSeconds: 600,
    });
    expect(DEFAULTS.leaseTtlSeconds).toBeLessThan(DEFAULTS.reclaimGraceSeconds);
  });

  it('accepts a full config and canonicalises CIDRs', () => {
    const cfg = validateClusterConfig({
      networks: [
        net({ datacenterPools: { 'dc-a': '10.1.0.0/17', 'dc-b': '10.1.128.0/18' } }),
        { name: 'v6', vni: 16777215, cidr: 'fd00:0:0:0::/48', hostPrefixLength: 64 },
      ],
      vxlanPort: 8472,
      mtu: 1450,
      leaseTtlSeconds: 30,
      reclaimGraceSeconds: 0,
    });
    expect(cfg.networks[1].cidr).toBe('fd00::/48');
    expect(cfg.networks[0].datacenterPools).toEqual({ 'dc-a': '10.1.0.0/17', 'dc-b': '10.1.128.0/18' });
    expect(cfg.mtu).toBe(1450);
  });

  it('refuses each bad field, naming it', () => {
    const cases: Array<[unknown, string, RegExp]> = [
      [null, '(root)', /JSON object/],
      [{ vxlanport: 1 }, 'vxlanport', /unknown field/],
      [{ networks: [] }, 'networks', /non-empty array/],
      [{ networks: [net({ name: 'Blue' })] }, 'networks[0].name', /DNS label/],
      [{ networks: [net({ name: '-x' })] }, 'networks[0].name', /DNS label/],
      [{ networks: [net({ name: 'a'.repeat(64) })] }, 'networks[0].name', /DNS label/],
      [{ networks: [net({ vni: 0 })] }, 'networks[0].vni', /between 1 and 16777215/],
      [{ networks: [net({ vni: 16777216 })] }, 'networks[0].vni', /between 1 and 16777215/],
      [{ networks: [net({ vni: '7' })] }, 'networks[0].vni', /integer/],
      [{ networks: [net({ cidr: '10.1.0.1/16' })] }, 'networks[0].cidr', /host bits set/],
      [{ networks: [net({ cidr: 'nope' })] }, 'networks[0].cidr', /invalid CIDR/],
      [{ networks: [net({ hostPrefixLength: 15 })] }, 'networks[0].hostPrefixLength', /cannot be larger than its network/],
      [{ networks: [net({ hostPrefixLength: 31 })] }, 'networks[0].hostPrefixLength', /no room for a gateway.*at most 30/],
      [{ networks: [net({ cidr: 'fd00::/48', hostPrefixLength: 127 })] }, 'networks[0].hostPrefixLength', /at most 126/],
      [{ networks: [net({ hostPrefixLength: 24.5 })] }, 'networks[0].hostPrefixLength', /integer/],
      [{ networks: [net({ colour: 'red' })] }, 'networks[0].colour', /unknown field/],
      [{ networks: [net(), net({ vni: 8, cidr: '10.2.0.0/16' })] }, 'networks[1].name', /duplicate network name "blue"/],
      [{ networks: [net(), net({ name: 'red', cidr: '10.2.0.0/16' })] }, 'networks[1].vni', /VNI 7 is already used by network "blue"/],
      [{ networks: [net(), net({ name: 'red', vni: 8, cidr: '10.0.0.0/8' })] }, 'networks[1].cidr', /overlaps network "blue"/],
      [{ networks: [net({ datacenterPools: { dc1: '10.2.0.0/24' } })] }, 'networks[0].datacenterPools.dc1', /not inside the network/],
      [{ networks: [net({ datacenterPools: { dc1: '10.1.0.0/25' } })] }, 'networks[0].datacenterPools.dc1', /smaller than one \/24/],
      [
        { networks: [net({ datacenterPools: { dc1: '10.1.0.0/17', dc2: '10.1.64.0/18' } })] },
        'networks[0].datacenterPools.dc2',
        /overlaps the pool of datacenter "dc1"/,
      ],
      [{ networks: [net({ datacenterPools: { DC1: '10.1.0.0/17' } })] }, 'networks[0].datacenterPools.DC1', /invalid datacenter name/],
      [{ networks: [net({ datacenterPools: ['10.1.0.0/17'] })] }, 'networks[0].datacenterPools', /must be an object/],
      [{ vxlanPort: 0 }, 'vxlanPort', /between 1 and 65535/],
      [{ vxlanPort: 65536 }, 'vxlanPort', /between 1 and 65535/],
      [{ mtu: 1000 }, 'mtu', /between 1280 and 9216/],
      [{ leaseTtlSeconds: 1 }, 'leaseTtlSeconds', /between 5 and/],
      [{ reclaimGraceSeconds: -1 }, 'reclaimGraceSeconds', /between 0 and/],
    ];
    for (const [input, field, msg] of cases) {
      const err = refusal(input);
      expect(err.field, JSON.stringify(input)).toBe(field);
      expect(err.message, JSON.stringify(input)).toMatch(msg);
      expect(err.message.startsWith(`${field}: `)).toBe(true);
    }
  });

  // Random IPv4 networks: the validator's verdict must match an independent
  // check written with plain integer ranges.
  it('accepts exactly the networks a brute-force check accepts', () => {
    const arbNet = fc.record({
      a: fc.integer({ min: 0, max: 255 }),
      len: fc.integer({ min: 8, max: 32 }),
      host: fc.integer({ min: 4, max: 32 }),
      vni: fc.integer({ min: 1, max: 4 }),
      name: fc.constantFrom('a', 'b', 'c'),
    });
    fc.assert(
      fc.property(fc.array(arbNet, { minLength: 1, maxLength: 4 }), (nets) => {
        const input = nets.map((n) => {
          const base = ((n.a << 24) >>> 0) & (n.len === 0 ? 0 : ~((1 << (32 - n.len)) - 1) >>> 0);
          const ip = [base >>> 24, (base >>> 16) & 255, (base >>> 8) & 255, base & 255].join('.');
          return { name: n.name, vni: n.vni, cidr: `${ip}/${n.len}`, hostPrefixLength: n.host, lo: base >>> 0, hi: (base >>> 0) + 2 ** (32 - n.len) - 1 };
        });
        let expectOk = true;
        input.forEach((n, i) => {
          if (n.hostPrefixLength < Number(n.cidr.split('/')[1]) || n.hostPrefixLength > 30) expectOk = false;
          for (const o of input.slice(0, i)) {
            if (o.name === n.name || o.vni === n.vni || (o.lo <= n.hi && n.lo <= o.hi)) expectOk = false;
          }
        });
        const networks = input.map(({ lo: _lo, hi: _hi, ...n }) => n);
        let ok = true;
        try {
          validateClusterConfig({ networks });
        } catch (err) {
          expect(err).toBeInstanceOf(ClusterConfigError);
          ok = false;
        }
        expect(ok).toBe(expectOk);
      }),
      { numRuns: 500 },
    );
  });
});

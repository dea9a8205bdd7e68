// validateHostNetworkSpec: what the agent refuses before it touches the
// kernel. ensureHostNetwork itself, in a namespace, is in host-network.test.ts.
import { describe, expect, it } from 'vitest';
import { overlayMtu, validateHostNetworkSpec, vxlanSource, type HostNetworkSpec } from '../../cni-plugin/agent/host/host-network';
import type { Link } from '../../dataplane/netlink/link';
import { MAC, spec } from './host-network-spec';
import { caught } from '../helpers/process';


describe('validateHostNetworkSpec', () => {
  it.each([
    [{ vxlanPort: 0 }, 'invalid vxlanPort 0 (must be between 1 and 65535)'],
    [{ mtu: 1000 }, 'invalid mtu 1000 (must be between 1280 and 65485)'],
    [{ self: { underlayIp: 'x', vtepMac: MAC } }, 'self.underlayIp: "x" is not an IP address'],
    [{ self: { underlayIp: '192.168.90.1', vtepMac: '01:00:00:00:00:01' } }, 'invalid self.vtepMac 01:00:00:00:00:01 (must be a unicast address, not all zero)'],
    [{ attachments: [{ network: 'a', vni: 1, networkCidr: '10.244.0.0/16', subnet: '10.245.1.0/24' }] }, 'attachments[0].subnet: 10.245.1.0/24 is not inside networkCidr 10.244.0.0/16'],
    [{ attachments: [{ network: 'a', vni: 1, networkCidr: '10.244.0.0/16', subnet: '10.244.1.1/24' }] }, 'attachments[0].subnet: 10.244.1.1/24 has host bits set (the network is 10.244.1.0/24)'],
    [{ attachments: [{ network: 'a', vni: 1, networkCidr: '10.244.0.0/16', subnet: '10.244.1.0/31' }] }, 'attachments[0].subnet: 10.244.1.0/31 is too small for a gateway and containers (prefix at most /30)'],
    [
      { attachments: [{ network: 'a', vni: 1, networkCidr: '10.244.0.0/16', subnet: '10.244.1.0/24' }, { network: 'b', vni: 1, networkCidr: '10.245.0.0/16', subnet: '10.245.1.0/24' }] },
      'attachments[1].vni: 1 is already network "a"\'s',
    ],
    [{ attachments: [{ network: 'a', vni: 1 << 24, networkCidr: '10.244.0.0/16', subnet: '10.244.1.0/24' }] }, 'attachments[0].vni: invalid VNI 16777216 (must be between 0 and 16777215)'],
  ])('refuses %j', (over, msg) => {
    expect(caught(() => validateHostNetworkSpec(spec(over as Partial<HostNetworkSpec>))).message).toBe(msg);
  });
});

describe('a mesh datacenter\'s host network', () => {
  const two = { attachments: [
    { network: 'b', vni: 2, networkCidr: '10.245.0.0/16', subnet: '10.245.7.0/24' },
    { network: 'a', vni: 1, networkCidr: '10.244.0.0/16', subnet: '10.244.7.0/24' },
  ] };
  const link = (mtu: number) => ({ name: 'eth0', mtu }) as unknown as Link;

  it('the VXLAN devices send from the VTEP address of the first network by name; elsewhere from the underlay', () => {
    expect(vxlanSource(spec({ ...two, mesh: true }))).toBe('10.244.7.0');
    expect(vxlanSource(spec(two))).toBe(spec(two).self.underlayIp);
  });

  it('the MTU leaves room for WireGuard inside the underlay, and a configured one that does not fit is refused', () => {
    expect(overlayMtu(link(1500))).toBe(1450);
    expect(overlayMtu(link(1500), undefined, { underlayIp: '192.168.90.1' })).toBe(1390);
    expect(overlayMtu(link(1500), undefined, { underlayIp: 'fd00::1' })).toBe(1370);
    expect(overlayMtu(link(9000), 1450, { underlayIp: '192.168.90.1' })).toBe(1450);
    expect(caught(() => overlayMtu(link(1500), 1450, { underlayIp: '192.168.90.1' })).message)
      .toBe('mtu 1450 too large for underlay eth0 (MTU 1500) with VXLAN inside WireGuard (mesh): at most 1390, or raise the underlay MTU');
  });
});

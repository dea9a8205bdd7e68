// validateHostNetworkSpec: what the agent refuses before it touches the
// kernel. ensureHostNetwork itself, in a namespace, is in host-network.test.ts.
import { describe, expect, it } from 'vitest';
import { validateHostNetworkSpec, type HostNetworkSpec } from '../../cni-plugin/agent/host/host-network';
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

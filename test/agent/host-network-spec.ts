// The host network spec the host-network tests start from, two networks on one underlay.
import type { HostNetworkSpec } from '../../cni-plugin/agent/host/host-network';

export const MAC = '02:77:00:00:00:01';

export function spec(over: Partial<HostNetworkSpec> = {}): HostNetworkSpec {
  return {
    self: { underlayIp: '192.168.90.1', vtepMac: MAC },
    attachments: [
      { network: 'a', vni: 101, networkCidr: '10.244.0.0/16', subnet: '10.244.3.0/24' },
      { network: 'b', vni: 102, networkCidr: '10.245.0.0/16', subnet: '10.245.3.0/24' },
    ],
    vxlanPort: 4789,
    ...over,
  };
}

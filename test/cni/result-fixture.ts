// A CNI result with every field a version can carry, shared by the rendering tests.
import type { CniResult } from '../../cni-plugin/cni/types';

export const result: CniResult = {
  cniVersion: '1.1.0',
  interfaces: [
    { name: 'weft.br1', mac: '02:42:0a:f4:03:01', mtu: 1450 },
    { name: 'eth0', mac: '02:42:0a:f4:03:07', mtu: 1450, sandbox: '/var/run/netns/cni-1' },
  ],
  ips: [
    { address: '10.244.3.7/24', gateway: '10.244.3.1', interface: 1 },
    { address: 'fd00:244:3::7/64', gateway: 'fd00:244:3::1', interface: 1 },
  ],
  routes: [
    { dst: '0.0.0.0/0', gw: '10.244.3.1', mtu: 1450, priority: 100 },
    { dst: '::/0', gw: 'fd00:244:3::1' },
  ],
  dns: { nameservers: ['10.244.0.10'], search: ['svc.cluster.local'], options: ['ndots:5'] },
};

// Child for the namespace-path tests: the CNI handlers behind the agent's
// socket, in a process of their own, so a handler that blocks its thread
// (the fault under test) blocks this child and not the test runner. The host
// namespace is a test namespace with weft.br1 made by the parent. Prints
// "ready" once the socket listens; runs until the parent kills it.
import { openIpamStore } from '../../cni-plugin/agent/ipam-store';
import { createCniHandlers } from '../../cni-plugin/agent/cni-handlers';
import type { NetworkAttachment } from '../../cni-plugin/agent/state/types';
import { startCniServer } from '../../cni-plugin/cni/server';

const [socketPath, hostNetns, dbPath] = process.argv.slice(2);
const BLUE: NetworkAttachment = {
  network: 'blue', vni: 1, networkCidr: '10.99.0.0/16', subnet: '10.99.0.0/24', gateway: '10.99.0.1',
  vxlanDevice: 'weft.vx1', bridge: 'weft.br1', mtu: 1450,
};
const handlers = createCniHandlers({
  attachment: (n) => (n === 'blue' ? BLUE : undefined),
  ipam: openIpamStore({ path: dbPath }),
  endpoints: { registered: () => {}, released: () => {} },
  hostNetns,
});
await startCniServer({ socketPath, handlers });
process.stdout.write('ready\n');

// The README's "Datacenters and gateways" commands, as written, against a
// real controller whose store holds the hosts they name (h7, h8, h9 in dc2).
// Each line gets the flags that say where the controller is, which on the
// controller's own machine are its defaults.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostCommand } from '../../controller/cli/cluster-commands';
import { datacenterCommand, datacentersCommand } from '../../controller/cli/datacenter-commands';
import { putHost } from '../../controller/registry/hosts';
import { type Cluster, type RunningController, startCluster } from '../agent/controller-fixture';
import { readmeCommands, words } from '../e2e/readme';
import { runCommand } from './run-command';

let cluster: Cluster;
let ctl: RunningController;

beforeAll(async () => {
  cluster = await startCluster();
  ctl = await cluster.startController();
  for (const n of [7, 8, 9]) {
    await putHost(cluster.store, {
      name: `h${n}`, underlayIp: `192.168.1.${n}`, vtepMac: `02:00:00:00:00:0${n}`, rack: 'r1', datacenter: 'dc2',
      wgPublicKey: Buffer.alloc(32, n).toString('base64'), agentVersion: 'test', lastHeartbeat: Date.now(),
    });
  }
});
afterAll(async () => {
  await cluster?.close();
});

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = { datacenter: datacenterCommand, datacenters: datacentersCommand, host: hostCommand };

describe('README: datacenters and gateways', () => {
  it('every command in the section works as written, in order', async () => {
    const blocks = readmeCommands('Datacenters and gateways');
    expect(blocks).toHaveLength(1);
    const outputs: string[] = [];
    for (const line of blocks[0]) {
      const [weft, cmd, ...argv] = words(line);
      expect(weft, line).toBe('weft');
      const r = await runCommand(COMMANDS[cmd], [...argv, '--server', ctl.address, '--data-dir', join(cluster.dir, 'ca')]);
      expect([r.code, r.err], line).toEqual([0, '']);
      outputs.push(r.out);
    }
    // list shows both gateways with their endpoints; the last line deleted dc2
    expect(outputs[1]).toMatch(/^dc2 .*h7\s+active\s+203\.0\.113\.7:51820/m);
    expect(outputs[1]).toMatch(/h8\s+active\s+203\.0\.113\.8:51820/);
    expect(outputs.at(-1)).toBe('deleted datacenter dc2\n');
  });
});

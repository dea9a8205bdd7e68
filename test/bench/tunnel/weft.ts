// weft's half of the tunnel bench: `weft controller`, a `weft agent` on every
// host (started as in production by test/bench/weft/cluster.ts), both
// datacenters with their two gateways named through the operator's CLI
// (`weft datacenter add dcN --gateways ...`, WAN endpoints defaulting to the
// gateways' underlay addresses), and one container on each of the two
// non-gateway hosts, attached by exec'ing the CNI shim as a runtime does.
import { join } from 'node:path';
import { cleanEnv, WEFT } from '../../e2e/cluster';
import type { Lab, LabHost } from '../../lab/lab';
import { cniExec, SHIM, shimPath, startCluster, weftConf, type Cluster } from '../weft/cluster';

export type WeftSide = { host: LabHost; ctrNs: string; addr: string };

export async function startWeft(lab: Lab, hosts: LabHost[], datacenters: Array<{ name: string; gateways: LabHost[] }>, dir: string): Promise<Cluster> {
  const cluster = await startCluster(lab, hosts, dir);
  const ctl = lab.controller!;
  for (const dc of datacenters) {
    lab.exec(ctl.netns, process.execPath, [WEFT, 'datacenter', 'add', dc.name, '--gateways', dc.gateways.map((g) => g.name).join(','),
      '--server', `${ctl.ip}:7443`, '--data-dir', join(dir, 'controller')], { env: cleanEnv() });
  }
  return cluster;
}

export function attachWeft(lab: Lab, cluster: Cluster, h: LabHost): WeftSide {
  const netns = lab.addContainerNetns(h, 'weft');
  const out = cniExec(h.netns, SHIM, { command: 'ADD', containerId: `bench-tunnel-${h.name}`, netns, ifname: 'eth0', cniPath: shimPath() }, weftConf(cluster.agents.get(h.name)!.socket));
  if (out.status !== 0) throw new Error(`weft ADD on ${h.name} failed: ${out.stdout || out.stderr}`);
  const address = (JSON.parse(out.stdout) as { ips: Array<{ address: string }> }).ips[0].address;
  return { host: h, ctrNs: netns.slice('/run/netns/'.length), addr: address.split('/')[0] };
}

// Networks added and deleted while agents run: a real controller and two
// agents in a netns lab (hosts in two racks, so VXLAN crosses a router),
// `weft network add` and `weft network delete` run against the controller's
// data dir as an operator does. No agent is restarted: each must lease a
// subnet in the new network and make its devices from the topology watch
// alone, within a bounded time, and containers on the new network must reach
// each other across the hosts; after the delete the devices, addresses,
// leases and allocations are gone and a CNI ADD for the network is refused
// with the reason.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hostVethName } from '../../cni-plugin/agent/host/naming';
import { CNI_ERR } from '../../cni-plugin/cni/types';
import { createLab, type Lab, type LabHost } from '../lab/lab';
import { ipJson } from '../lab/run';
import { waitFor } from '../helpers/wait';
import {
  agentPaths, conflistPath, createToken, installCni, requireBuild, startAgent, startController, tail, weftCli, weftCliResult,
  type Agent, type Controller,
} from './cluster';
import { cniAdd, cniDel, execCni, loadConflist, pluginConfig } from './cni';
import { pingMatrix } from './traffic';

const SPEC = {
  name: 'lnet',
  datacenters: [{ name: 'dc1', racks: [{ name: 'a', hosts: ['h1'] }, { name: 'b', hosts: ['h2'] }] }],
  controller: true,
};
const GREEN = { name: 'green', vni: 7, cidr: '10.247.0.0/16' };
/** From the operator's command to devices on every host: a watch event, a registration and an ensure. */
const BOUND_MS = 10_000;

let lab: Lab;
let dir: string;
let ctl: Controller;
const agents = new Map<string, Agent>();

const links = (h: LabHost): Array<{ ifname: string; master?: string }> => ipJson(h.netns, ['link', 'show']);
const addrsOf = (h: LabHost, dev: string): string[] =>
  (ipJson<any[]>(h.netns, ['addr', 'show', 'dev', dev])[0]?.addr_info ?? []).filter((a: any) => a.family === 'inet').map((a: any) => `${a.local}/${a.prefixlen}`);
const hasLink = (h: LabHost, name: string) => links(h).some((l) => l.ifname === name);
/** What podman network inspect shows for a conflist: its labels. */
const labels = (h: LabHost, network: string): Record<string, string> => (loadConflist(conflistPath(agents.get(h.name)!.cniConfDir, network)) as any).args?.podman_labels ?? {};
/** The host's subnet and gateway, as the bridge holds them. */
const addressing = (h: LabHost, bridge: string) => {
  const [gw, len] = addrsOf(h, bridge)[0].split('/');
  return { subnet: `${gw.replace(/\.1$/, '.0')}/${len}`, gateway: gw };
};

function config(h: LabHost, network: string) {
  return pluginConfig(loadConflist(conflistPath(agents.get(h.name)!.cniConfDir, network)));
}

async function add(h: LabHost, network: string, name: string) {
  const netns = lab.addContainerNetns(h, name);
  const id = randomBytes(32).toString('hex');
  const call = { hostNetns: h.netns, cniPath: agents.get(h.name)!.cniBinDir, containerId: id, netns, ifname: 'eth0', config: config(h, network) };
  return { call, netns: netns.replace('/run/netns/', ''), id };
}

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'weft-lnet-'));
  lab = await createLab(SPEC);
  ctl = await startController(lab, join(dir, 'controller'), join(dir, 'controller.log'));
  const token = createToken(ctl.dataDir);
  for (const h of lab.hosts) {
    const paths = agentPaths(dir, h);
    installCni(paths, 'default');
    // a short resync: a conflist installed after its network's lease gets its labels at the next one
    agents.set(h.name, await startAgent(lab, ctl, h, paths, token, { extraArgs: ['--resync-interval', '2s'] }));
  }
  await waitFor('both hosts to have the default network', () => lab.hosts.every((h) => hasLink(h, 'weft.br1')), 30_000);
}, 120_000);

afterEach((ctx) => {
  if (ctx.task.result?.state !== 'fail') return;
  console.log(`controller log tail: ${tail(ctl.logFile, 20)}`);
  for (const a of agents.values()) console.log(`agent ${a.host.name} log tail: ${tail(a.logFile, 25)}`);
});

afterAll(async () => {
  try {
    if (lab) expect((await lab.destroy()).errors).toEqual([]);
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

describe('networks added and deleted under running agents', () => {
  const ctrs: Array<{ host: LabHost; netns: string; id: string; ip: string; call: any }> = [];

  it('a network added while two agents run gets a subnet and devices on both within the bound, and carries traffic across hosts', async () => {
    const pids = [...agents.values()].map((a) => a.proc.pid);
    const t0 = Date.now();
    expect(weftCli(['network', 'add', GREEN.name, '--vni', String(GREEN.vni), '--cidr', GREEN.cidr, '--data-dir', ctl.dataDir])).toMatch(/added network green/);
    await waitFor(
      'both agents to lease a subnet in green and make weft.vx7 and weft.br7 with its gateway',
      () => lab.hosts.every((h) => hasLink(h, 'weft.vx7') && addrsOf(h, 'weft.br7').some((a) => a.startsWith('10.247.'))),
      BOUND_MS,
    );
    const ms = Date.now() - t0;
    console.log(`network add -> devices on both hosts in ${ms} ms`);
    // no agent restarted
    expect([...agents.values()].map((a) => [a.proc.pid, a.proc.exited])).toEqual(pids.map((p) => [p, false]));
    const subnets = lab.hosts.map((h) => addrsOf(h, 'weft.br7')[0]);
    expect(new Set(subnets).size).toBe(2);
    for (const s of subnets) expect(s).toMatch(/^10\.247\.\d+\.1\/24$/);

    for (const h of lab.hosts) {
      installCni(agents.get(h.name)!, GREEN.name);
      const c = await add(h, GREEN.name, `g${h.name}`);
      const result = await cniAdd(c.call);
      ctrs.push({ host: h, ...c, ip: String(result.ips[0].address).split('/')[0], call: c.call });
    }
    // the overlay routes to the other host's green subnet come from the same watch
    // the conflists carry what podman network inspect shows: this host's subnet and gateway in the network
    await waitFor("each host's green conflist to carry its subnet and gateway", () => lab.hosts.every((h) => {
      const { subnet, gateway } = addressing(h, 'weft.br7');
      const l = labels(h, GREEN.name);
      return l['weft.subnet'] === subnet && l['weft.gateway'] === gateway;
    }), BOUND_MS);
    for (const h of lab.hosts) {
      const { subnet, gateway } = addressing(h, 'weft.br1');
      expect(labels(h, 'default')).toEqual({ 'weft.network': 'default', 'weft.subnet': subnet, 'weft.gateway': gateway });
    }
    const results = await waitFor('green containers to reach each other across the racks', async () => {
      const r = await pingMatrix(ctrs.map((c) => ({ name: c.netns, netns: c.netns, ip: c.ip })), ['-c', '2', '-W', '1']);
      return r.every((p) => p.received === p.transmitted && p.transmitted > 0) ? r : undefined;
    }, BOUND_MS);
    expect(results).toHaveLength(2);
  }, 90_000);

  it('a network with containers is not deleted without --force; with it, its devices, host ends, addresses and leases go and ADD is refused', async () => {
    const refused = weftCliResult(['network', 'delete', GREEN.name, '--data-dir', ctl.dataDir]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^weft network delete: network green has 2 container endpoint\(s\), e\.g\. 10\.247\.\d+\.\d+ \(host h\d, container [0-9a-f]{12}\), .*; detach those containers first, or delete with --force/);
    expect(hasLink(lab.hosts[0], 'weft.br7')).toBe(true);

    const t0 = Date.now();
    const out = weftCli(['network', 'delete', GREEN.name, '--force', '--data-dir', ctl.dataDir]);
    expect(out).toMatch(/^deleted network green: released 2 subnet lease\(s\) \(h\d 10\.247\.\d+\.0\/24, h\d 10\.247\.\d+\.0\/24\), removed 2 endpoint\(s\)/);
    await waitFor(
      "both agents to remove green's devices and the containers' host ends",
      () => lab.hosts.every((h) => !hasLink(h, 'weft.vx7') && !hasLink(h, 'weft.br7')) &&
        ctrs.every((c) => !hasLink(c.host, hostVethName(GREEN.name, c.id, 'eth0'))),
      BOUND_MS,
    );
    console.log(`network delete -> devices gone on both hosts in ${Date.now() - t0} ms`);
    for (const c of ctrs) {
      // the container's end went with its pair
      expect(ipJson<any[]>(c.netns, ['link', 'show']).map((l) => l.ifname)).toEqual(['lo']);
    }
    // no route into green is left on either host, and the default network is as it was
    for (const h of lab.hosts) {
      expect(ipJson<any[]>(h.netns, ['route', 'show']).filter((r) => String(r.dst).startsWith('10.247.'))).toEqual([]);
      expect(addrsOf(h, 'weft.br1')).toHaveLength(1);
    }
    expect(JSON.parse(weftCli(['network', 'list', '--json', '--data-dir', ctl.dataDir])).map((n: any) => n.name)).toEqual(['default']);
    // the deleted network's conflists no longer show a subnet
    for (const h of lab.hosts) expect(labels(h, GREEN.name)).toEqual({ 'weft.network': GREEN.name });

    // ADD for the deleted network: refused with its own code and the reason
    const h = lab.hosts[0];
    const c = await add(h, GREEN.name, 'glate');
    const r = await execCni({ ...c.call, command: 'ADD' });
    expect(r.code).not.toBe(0);
    expect(r.json.code).toBe(CNI_ERR.NETWORK_DELETED);
    expect(r.json.msg).toMatch(/^weft network "green" was deleted from the cluster \(weft network delete, seen here at .*\); attach the container to another network/);
    expect(ipJson<any[]>(c.netns, ['link', 'show']).map((l) => l.ifname)).toEqual(['lo']);
    // DEL of the gone attachments still succeeds, as a runtime tearing its containers down needs
    for (const x of ctrs) await cniDel(x.call);
  }, 90_000);

  it('a network deleted while an agent is stopped is removed from its host when it starts again', async () => {
    const AMBER = { name: 'amber', vni: 9, cidr: '10.249.0.0/16' };
    weftCli(['network', 'add', AMBER.name, '--vni', String(AMBER.vni), '--cidr', AMBER.cidr, '--data-dir', ctl.dataDir]);
    await waitFor('both hosts to make amber\'s devices', () => lab.hosts.every((h) => hasLink(h, 'weft.br9')), BOUND_MS);
    const h2 = lab.host('h2');
    const a2 = agents.get('h2')!;
    await a2.proc.stop('SIGTERM', 5000);
    expect(weftCli(['network', 'delete', AMBER.name, '--data-dir', ctl.dataDir])).toMatch(/^deleted network amber: released 2 subnet lease\(s\)/);
    // the running agent follows at once; the stopped one's devices stay as they were
    await waitFor('h1 to remove amber\'s devices', () => !hasLink(lab.host('h1'), 'weft.br9'), BOUND_MS);
    expect(hasLink(h2, 'weft.br9')).toBe(true);
    const token = createToken(ctl.dataDir);
    agents.set('h2', await startAgent(lab, ctl, h2, a2, token, { extraArgs: ['--resync-interval', '2s'] }));
    await waitFor('h2 to remove amber\'s devices after its restart', () => !hasLink(h2, 'weft.br9') && !hasLink(h2, 'weft.vx9'), BOUND_MS);
    // and it knows why there is no amber any more
    installCni(agents.get('h2')!, AMBER.name);
    const c = await add(h2, AMBER.name, 'alate');
    const r = await execCni({ ...c.call, command: 'ADD' });
    expect([r.code === 0, r.json?.code]).toEqual([false, CNI_ERR.NETWORK_DELETED]);
    expect(hasLink(h2, 'weft.br1')).toBe(true);
  }, 90_000);

  it('the agents hold no allocation of the deleted network and still attach to the default one', async () => {
    for (const h of lab.hosts) {
      const c = await add(h, 'default', `d${h.name}`);
      const res = await cniAdd(c.call);
      expect(String(res.ips[0].address)).toMatch(/^10\.244\./);
    }
    const a = agents.get('h1')!;
    // the agent DB: no row of green survives (read through the agent's own store module)
    const { openIpamStore } = await import('../../cni-plugin/agent/ipam-store');
    const { agentDbPath } = await import('../../cni-plugin/agent/state/agent-db');
    const ipam = openIpamStore({ path: agentDbPath(a.stateDir) });
    try {
      expect(ipam.list(GREEN.name)).toEqual([]);
      expect(ipam.list('default')).toHaveLength(1);
    } finally {
      ipam.close();
    }
  }, 60_000);
});

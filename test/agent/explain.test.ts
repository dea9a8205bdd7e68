// `weft explain` in a lab: a real controller, agents on two hosts, one
// container on each (CNI ADD through the shim). The built command runs in a
// host's namespace with that agent's own join line (`agent` replaced by
// `explain`). A healthy path is complete (exit 0) with its hops in order,
// from the sending host and from the receiving one; then it is broken one way
// at a time (--size above the MTU, an address nobody has, an address in the
// other host's subnet that no container holds, and with the agent stopped so
// nothing heals it: the FDB entry deleted, then the overlay route) and each
// is the reported break with exit 1. Agents resync only hourly here.
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failClosedOf } from '../../cni-plugin/agent/explain/hops';
import type { Explanation, Hop } from '../../cni-plugin/agent/explain/verdicts';
import { createLab, type Lab, type LabHost } from '../lab/lab';
import { ipJson } from '../lab/run';
import { waitFor } from '../helpers/wait';
import {
  AGENT_METRICS_PORT, adminCert, agentPaths, conflistPath, createToken, httpGetIn, installCni, joinArgs, requireBuild, startAgent, startController, tail, WEFT,
  type Agent, type CertFiles, type Controller, waitOverlayRoute,
} from '../e2e/cluster';
import { cniAdd, loadConflist, pluginConfig } from '../e2e/cni';
import { nsExecAsync } from '../e2e/traffic';

type Report = Explanation & { break: (Hop & { hop: number }) | null };

let lab: Lab;
let dir: string;
let ctl: Controller;
let token: string;
let admin: CertFiles;
const agents = new Map<string, Agent>();
/** Container address per host. */
const ips = new Map<string, string>();

async function explain(h: LabHost, src: string, dst: string, extra: string[] = [], json = true): Promise<{ status: number; report?: Report; stdout: string }> {
  const a = agents.get(h.name)!;
  const args = [WEFT, 'explain', src, dst, ...joinArgs(ctl.agentCommand, token).slice(1), '--host-name', h.name, '--state-dir', a.stateDir, ...extra, ...(json ? ['--json'] : [])];
  const r = await nsExecAsync(h.netns, process.execPath, args, { timeoutMs: 60_000 });
  if (json && r.stdout.trim() === '') throw new Error(`weft explain printed nothing (exit ${r.status}): ${r.stderr}`);
  return { status: r.status, stdout: r.stdout, ...(json ? { report: JSON.parse(r.stdout) as Report } : {}) };
}

const hops = (r: Report) => r.hops.map((h) => `${h.kind}@${h.host}`);
const sh = (h: LabHost, cmd: string, args: string[]) => lab.exec(h.netns, cmd, args).stdout;

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'weft-explain-'));
  lab = await createLab({ name: `exp${process.pid.toString(36)}`, datacenters: [{ name: 'dc1', racks: [{ name: 'a', hosts: ['h1', 'h2'] }] }], controller: true });
  ctl = await startController(lab, join(dir, 'controller'), join(dir, 'controller.log'));
  token = createToken(ctl.dataDir);
  admin = adminCert(ctl.dataDir, join(dir, 'admin'));
  for (const h of lab.hosts) {
    const paths = agentPaths(dir, h);
    installCni(paths, 'default');
    agents.set(h.name, await startAgent(lab, ctl, h, paths, token, { extraArgs: ['--resync-interval', '1h', '--gc-interval', '1h'], debugLog: false }));
  }
  for (const h of lab.hosts) {
    await waitFor(`${h.name}'s agent ready`, async () => {
      try {
        return JSON.parse(await httpGetIn(h.netns, `http://127.0.0.1:${AGENT_METRICS_PORT}/readyz`)).ready === true;
      } catch {
        return false;
      }
    }, 30_000);
    const list = loadConflist(conflistPath(agents.get(h.name)!.cniConfDir, 'default'));
    const res = await cniAdd({
      hostNetns: h.netns, cniPath: agents.get(h.name)!.cniBinDir, containerId: randomBytes(32).toString('hex'),
      netns: lab.addContainerNetns(h, 'c1'), ifname: 'eth0', config: pluginConfig(list),
    });
    ips.set(h.name, String(res.ips[0].address).split('/')[0]);
  }
  // a second container on h1: two containers of one subnet, the bridge between them
  const h1 = lab.host('h1');
  const second = await cniAdd({
    hostNetns: h1.netns, cniPath: agents.get('h1')!.cniBinDir, containerId: randomBytes(32).toString('hex'),
    netns: lab.addContainerNetns(h1, 'c2'), ifname: 'eth0', config: pluginConfig(loadConflist(conflistPath(agents.get('h1')!.cniConfDir, 'default'))),
  });
  ips.set('h1/c2', String(second.ips[0].address).split('/')[0]);
  for (const h of lab.hosts) {
    await waitOverlayRoute(h);
  }
}, 180_000);

afterAll(async () => {
  try {
    await lab?.destroy();
  } finally {
    if (dir && !process.env.WEFT_TEST_KEEP_LOGS) rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

describe('weft explain in a lab', () => {
  it('a healthy path from h1: container, veth, bridge, route, vxlan, underlay, remote host, container; exit 0', async () => {
    const [h1, h2] = [lab.host('h1'), lab.host('h2')];
    const r = await explain(h1, ips.get('h1')!, ips.get('h2')!);
    expect(r.report!.break, `${r.stdout}\nagent log: ${tail(agents.get('h1')!.logFile)}`).toBeNull();
    expect(r.status).toBe(0);
    expect(hops(r.report!)).toEqual(['container@h1', 'veth@h1', 'bridge@h1', 'route@h1', 'vxlan@h1', 'underlay@h1', 'host@h2', 'container@h2']);
    // what the kernel holds, named: the route's gateway is h2's VTEP, the FDB sends to h2's underlay address
    const [fdb] = JSON.parse(sh(h1, 'bridge', ['-j', 'fdb', 'show', 'dev', 'weft.vx1'])).filter((f: { dst?: string }) => f.dst) as Array<{ mac: string; dst: string }>;
    expect(r.report!.hops[4].what).toContain(`lladdr ${fdb.mac}, FDB dst ${fdb.dst} (h2)`);
    expect(r.report!.hops[5].what).toContain(`VXLAN UDP to ${fdb.dst}`);
    expect(r.report!.hops[0].mtu).toBe(ipJson<Array<{ mtu: number }>>(h1.netns, ['link', 'show', 'dev', 'weft.br1'])[0].mtu);
    // a host certificate sees no health; it says so
    expect(r.report!.hops[6].why).toContain('admin certificate');

    // with the admin certificate: h2's health and the report its agent last sent
    const withAdmin = await explain(h1, ips.get('h1')!, ips.get('h2')!, ['--cert', admin.cert, '--key', admin.key, '--ca', admin.ca]);
    expect(withAdmin.status).toBe(0);
    expect(withAdmin.report!.hops[6].what).toContain('health alive');

    const text = await explain(h1, ips.get('h1')!, ips.get('h2')!, ['--cert', admin.cert, '--key', admin.key, '--ca', admin.ca], false);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^5\. ok {3}vxlan {5}h1: weft\.vx1: neighbour /m);
    expect(text.stdout).toContain('path complete: 8 hops');
    console.log(`weft explain on a healthy lab path:\n${text.stdout}`);

    // run where dst lives, the receiving side is read from that host's kernel
    const back = await explain(h2, ips.get('h1')!, ips.get('h2')!);
    expect(back.status, back.stdout).toBe(0);
    expect(hops(back.report!)).toEqual(['container@h1', 'host@h1', 'vxlan@h2', 'route@h2', 'bridge@h2', 'veth@h2', 'container@h2']);
    expect(back.report!.hops[3].what.startsWith(`ip route get ${ips.get('h2')} from ${ips.get('h1')} iif weft.vx1: dev weft.br1`)).toBe(true);
  }, 120_000);

  it('two containers of one subnet on h1: the bridge carries it, no routing', async () => {
    const r = await explain(lab.host('h1'), ips.get('h1')!, ips.get('h1/c2')!);
    expect(r.status, r.stdout).toBe(0);
    expect(hops(r.report!)).toEqual(['container@h1', 'veth@h1', 'bridge@h1', 'veth@h1', 'container@h1']);
    expect(r.report!.hops[0].what).toMatch(/: dev eth0/);
    expect(r.report!.hops[4].what).toContain(ips.get('h1/c2'));
  }, 60_000);

  it('a packet larger than the overlay MTU breaks at the first device it does not fit', async () => {
    const h1 = lab.host('h1');
    const mtu = ipJson<Array<{ mtu: number }>>(h1.netns, ['link', 'show', 'dev', 'weft.br1'])[0].mtu;
    const ok = await explain(h1, ips.get('h1')!, ips.get('h2')!, ['--size', String(mtu)]);
    expect(ok.status, ok.stdout).toBe(0);
    const r = await explain(h1, ips.get('h1')!, ips.get('h2')!, ['--size', String(mtu + 1)]);
    expect(r.status).toBe(1);
    expect(r.report!.break).toMatchObject({ hop: 1, kind: 'container', host: 'h1', mtu, verdict: 'drop' });
    expect(r.report!.break!.why).toContain(`a ${mtu + 1}-byte packet is larger than the MTU ${mtu} of eth0 in the container`);
    expect(r.report!.hops).toHaveLength(1);
  }, 60_000);

  it('an address nobody has, and one in h2\'s subnet that no container holds', async () => {
    const h1 = lab.host('h1');
    const h2ip = ips.get('h2')!;
    const routed = ipJson<Array<{ dst: string }>>(h1.netns, ['route', 'show', 'proto', '119']).map((r) => r.dst.split('.').slice(0, 3).join('.'));
    const own = ips.get('h1')!.split('.').slice(0, 3).join('.');
    const [a, b] = h2ip.split('.');
    const free = [...Array(250).keys()].map((i) => `${a}.${b}.${i}`).find((p) => p !== own && !routed.includes(p))!;
    const nobody = await explain(h1, ips.get('h1')!, `${free}.9`);
    expect(nobody.status).toBe(1);
    expect(nobody.report!.break).toMatchObject({ kind: 'locate' });
    expect(nobody.report!.break!.why).toBe(`${free}.9 is in network default, but in no host's subnet: no host has it`);

    const empty = `${h2ip.split('.').slice(0, 3).join('.')}.250`;
    const r = await explain(h1, ips.get('h1')!, empty);
    expect(r.status).toBe(1);
    expect(hops(r.report!)).toEqual(['container@h1', 'veth@h1', 'bridge@h1', 'route@h1', 'vxlan@h1', 'underlay@h1', 'host@h2', 'container@h2']);
    expect(r.report!.break!.why).toContain(`no container holds ${empty}`);
  }, 60_000);

  it('with the agent stopped: a deleted FDB entry, then a deleted overlay route, each the break', async () => {
    const h1 = lab.host('h1');
    await agents.get('h1')!.proc.stop('SIGTERM');
    const [fdb] = JSON.parse(sh(h1, 'bridge', ['-j', 'fdb', 'show', 'dev', 'weft.vx1'])).filter((f: { dst?: string }) => f.dst) as Array<{ mac: string; dst: string }>;
    sh(h1, 'bridge', ['fdb', 'del', fdb.mac, 'dev', 'weft.vx1', 'dst', fdb.dst, 'self']);
    try {
      const r = await explain(h1, ips.get('h1')!, ips.get('h2')!);
      expect(r.status).toBe(1);
      expect(r.report!.break).toMatchObject({ hop: 5, kind: 'vxlan', host: 'h1' });
      expect(r.report!.break!.why).toContain(`no FDB entry for ${fdb.mac} on weft.vx1`);
      expect(r.report!.break!.fix).toContain(`bridge fdb append ${fdb.mac} dev weft.vx1 dst ${fdb.dst} self permanent`);
      const text = await explain(h1, ips.get('h1')!, ips.get('h2')!, [], false);
      expect(text.status).toBe(1);
      expect(text.stdout).toContain(`BREAK at hop 5 (vxlan on h1): no FDB entry for ${fdb.mac}`);
    } finally {
      sh(h1, 'bridge', ['fdb', 'append', fdb.mac, 'dev', 'weft.vx1', 'dst', fdb.dst, 'self', 'permanent']);
    }
    expect((await explain(h1, ips.get('h1')!, ips.get('h2')!)).status).toBe(0);

    const [route] = ipJson<Array<{ dst: string; gateway: string; dev: string }>>(h1.netns, ['route', 'show', 'proto', '119']);
    sh(h1, 'ip', ['route', 'del', route.dst, 'proto', '119']);
    try {
      const r = await explain(h1, ips.get('h1')!, ips.get('h2')!);
      expect(r.status).toBe(1);
      expect(r.report!.break).toMatchObject({ hop: 4, kind: 'route', host: 'h1' });
      expect(r.report!.break!.what).toContain(`ip route get ${ips.get('h2')} from ${ips.get('h1')} iif weft.br1`);
      // with a default route the packet would leave unencapsulated by it; without one, there is no route
      const hasDefault = ipJson<unknown[]>(h1.netns, ['route', 'show', 'default']).length > 0;
      expect(r.report!.break!.why).toContain(hasDefault ? "not weft's weft.vx1: the packet would leave unencapsulated" : 'no route');
      console.log(`weft explain with h1's overlay route deleted:\n${(await explain(h1, ips.get('h1')!, ips.get('h2')!, [], false)).stdout}`);
    } finally {
      sh(h1, 'ip', ['route', 'replace', route.dst, 'via', route.gateway, 'dev', route.dev, 'onlink', 'proto', '119']);
    }
  }, 90_000);

  it("reads the fail-closed table's tunnel_ifs set, and its absence", () => {
    const h1 = lab.host('h1');
    expect(failClosedOf(h1.netns)).toEqual({ exists: false });
    sh(h1, 'nft', ['add table inet weft_xdc; add set inet weft_xdc tunnel_ifs { type ifname; }; add element inet weft_xdc tunnel_ifs { "weft.vx1", "weft.xdc" }']);
    try {
      expect(failClosedOf(h1.netns)).toEqual({ exists: true, tunnelIfs: ['weft.vx1', 'weft.xdc'] });
    } finally {
      lab.exec(h1.netns, 'nft', ['delete table inet weft_xdc'], { check: false });
    }
  });

  it('with the controller down, a remote address cannot be placed: said so, exit 1', async () => {
    const h1 = lab.host('h1');
    await ctl.proc.stop('SIGTERM');
    const r = await explain(h1, ips.get('h1')!, ips.get('h2')!);
    expect(r.status).toBe(1);
    expect(r.report!.break).toMatchObject({ kind: 'locate', host: 'h1' });
    expect(r.report!.break!.why).toContain(`the controller at ${ctl.server} could not be asked`);
    // what this host's kernel shows is still explained up to there
    expect(hops(r.report!)).toEqual(['container@h1', 'veth@h1', 'bridge@h1', 'locate@h1']);
  }, 60_000);
});

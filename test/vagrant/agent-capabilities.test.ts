// weft-agent.service gives the agent only the capabilities it lists
// (CapabilityBoundingSet=) and NoNewPrivileges. This runs real agents with
// exactly that set, read from the unit, in a netns lab: two hosts join, and
// two containers are attached through the CNI plugin, one by a bind-mounted
// namespace (podman's way) and one by /proc/<pid>/ns/net of a process
// holding capabilities the agent lacks (ctr run --cni's way, which needs
// CAP_SYS_PTRACE), then reach each other over the overlay and are detached.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab, type LabHost } from '../lab/lab';
import { waitFor, GiveUp } from '../helpers/wait';
import {
  agentPaths, cleanEnv, conflistPath, createToken, installCni, joinArgs, requireBuild, startController, tail, ROOT, WEFT,
  type AgentPaths, type Controller,
} from '../e2e/cluster';
import { cniAdd, cniDel, loadConflist, pluginConfig } from '../e2e/cni';

const UNIT = join(ROOT, 'vagrant', 'systemd', 'weft-agent.service');
/** The unit's CapabilityBoundingSet= as setpriv(1) takes it: -all,+net_admin,... */
function unitCapabilities(): string {
  const line = readFileSync(UNIT, 'utf8').split('\n').find((l) => l.startsWith('CapabilityBoundingSet='));
  const caps = line!.slice(line!.indexOf('=') + 1).trim().split(/\s+/);
  expect(caps.every((c) => /^CAP_[A-Z_]+$/.test(c))).toBe(true);
  return ['-all', ...caps.map((c) => `+${c.slice(4).toLowerCase()}`)].join(',');
}

// What containerd and podman give a container by default: not a subset of the agent's set.
const CONTAINER_CAPS = '-all,+chown,+dac_override,+fsetid,+fowner,+mknod,+net_raw,+setgid,+setuid,+setfcap,+setpcap,+net_bind_service,+sys_chroot,+kill,+audit_write';

let lab: Lab;
let dir: string;
let ctl: Controller;
const paths = new Map<string, AgentPaths>();
let task: ChildProcess | undefined;

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'wtvcap-'));
  lab = await createLab({ name: 'vcap', datacenters: [{ name: 'dc1', racks: [{ name: 'a', hosts: ['h1'] }, { name: 'b', hosts: ['h2'] }] }], controller: true });
  ctl = await startController(lab, join(dir, 'controller'), join(dir, 'controller.log'));
  const token = createToken(ctl.dataDir);
  const caps = unitCapabilities();
  await Promise.all(lab.hosts.map(async (h) => {
    const p = agentPaths(dir, h);
    installCni(p, 'default');
    paths.set(h.name, p);
    const proc = lab.spawn(h.netns, 'setpriv', [
      '--bounding-set', caps, '--inh-caps=-all', '--no-new-privs',
      process.execPath, WEFT, ...joinArgs(ctl.agentCommand, token),
      '--host-name', h.name, '--rack', h.rack, '--datacenter', h.datacenter, '--state-dir', p.stateDir, '--cni-socket', p.socket,
    ], { env: cleanEnv(), logFile: p.logFile, cwd: ROOT });
    await waitFor(`agent on ${h.name} to answer CNI`, async () => {
      if (proc.exited) throw new GiveUp(`agent on ${h.name} exited; log: ${tail(p.logFile)}`);
      return readFileSync(p.logFile, 'utf8').includes('"msg":"weft agent running"') || undefined;
    }, 60_000);
  }));
}, 120_000);

afterAll(async () => {
  if (task?.pid && task.exitCode === null) task.kill('SIGKILL');
  await lab?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function config(h: LabHost) {
  return pluginConfig(loadConflist(conflistPath(paths.get(h.name)!.cniConfDir, 'default')));
}

describe('weft-agent.service capabilities', () => {
  it('are enough to attach containers by both kinds of namespace path and carry traffic between hosts', async () => {
    const [h1, h2] = lab.hosts;
    // podman: a namespace bind-mounted under /run/netns
    const ns1 = lab.addContainerNetns(h1, 'c1');
    const r1 = await cniAdd({ hostNetns: h1.netns, cniPath: paths.get('h1')!.cniBinDir, containerId: 'vcap-c1', netns: ns1, ifname: 'eth0', config: config(h1) });
    // ctr run --cni: the task's own /proc/<pid>/ns/net, with a container's capabilities
    task = spawn('unshare', ['-n', 'setpriv', '--bounding-set', CONTAINER_CAPS, '--inh-caps=-all', 'sleep', '600'], { stdio: 'ignore' });
    const ns2 = `/proc/${task.pid}/ns/net`;
    // unshare, then setpriv, exec into sleep: once it is sleep, namespace and capabilities are set
    await waitFor('the task to run in its own namespace', () => readFileSync(`/proc/${task!.pid}/cmdline`, 'utf8').startsWith('sleep\0') || undefined, 10_000);
    const r2 = await cniAdd({ hostNetns: h2.netns, cniPath: paths.get('h2')!.cniBinDir, containerId: 'vcap-c2', netns: ns2, ifname: 'eth0', config: config(h2) });
    const ip2 = String(r2.ips[0].address).split('/')[0];
    expect(String(r1.ips[0].address)).toMatch(/^10\.244\./);

    await waitFor(`c1 on h1 to reach c2 on h2 (${ip2})`, () => lab.exec(ns1.replace('/run/netns/', ''), 'ping', ['-c1', '-W1', ip2], { check: false }).status === 0 || undefined, 30_000);

    await cniDel({ hostNetns: h2.netns, cniPath: paths.get('h2')!.cniBinDir, containerId: 'vcap-c2', netns: ns2, ifname: 'eth0', config: config(h2) });
    await cniDel({ hostNetns: h1.netns, cniPath: paths.get('h1')!.cniBinDir, containerId: 'vcap-c1', netns: ns1, ifname: 'eth0', config: config(h1) });
    for (const h of lab.hosts) expect(readFileSync(paths.get(h.name)!.logFile, 'utf8')).not.toMatch(/EPERM|EACCES|not permitted/);
  });
});

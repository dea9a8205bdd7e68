// Each unit in vagrant/systemd/ gives weft only the capabilities it lists
// (CapabilityBoundingSet=) and NoNewPrivileges=. This runs the real daemons
// with exactly those sets, read from the units, in a netns lab (setpriv
// stands in for systemd): the controller with none, two agents that join
// and attach containers through the CNI plugin, one by a bind-mounted
// namespace (podman's way) and one by /proc/<pid>/ns/net of a process
// holding capabilities the agent lacks (ctr run --cni's way: this one needs
// CAP_SYS_PTRACE), and an ingress on h2 that binds port 80 and programs
// nftables for a UDP port. A container on h1 is reached over the overlay
// from the other container and through the ingress.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab, type LabHost } from '../lab/lab';
import type { LabProcess } from '../lab/procs';
import { waitFor, GiveUp } from '../helpers/wait';
import {
  adminCert, agentPaths, cleanEnv, conflistPath, createToken, installCni, joinArgs, requireBuild, tail, weftCli, ROOT, WEFT,
  type AgentPaths, type CertFiles,
} from '../e2e/cluster';
import { cniAdd, cniDel, loadConflist, pluginConfig } from '../e2e/cni';
import { nsExecAsync, readJsonLog } from '../e2e/traffic';
import { httpIn } from '../ingress/lab';

/** A unit's CapabilityBoundingSet= as setpriv(1) takes it: -all,+net_admin,... */
function unitCapabilities(unit: string): string {
  const line = readFileSync(join(ROOT, 'vagrant', 'systemd', unit), 'utf8').split('\n').find((l) => l.startsWith('CapabilityBoundingSet='));
  const caps = line!.slice(line!.indexOf('=') + 1).trim().split(/\s+/).filter(Boolean);
  expect(caps.every((c) => /^CAP_[A-Z_]+$/.test(c)), unit).toBe(true);
  return ['-all', ...caps.map((c) => `+${c.slice(4).toLowerCase()}`)].join(',');
}

/** setpriv's arguments for a daemon run as its unit runs it. */
const asUnit = (unit: string) => ['--bounding-set', unitCapabilities(unit), '--inh-caps=-all', '--no-new-privs'];

// What containerd and podman give a container by default: not a subset of the agent's set.
const CONTAINER_CAPS = '-all,+chown,+dac_override,+fsetid,+fowner,+mknod,+net_raw,+setgid,+setuid,+setfcap,+setpcap,+net_bind_service,+sys_chroot,+kill,+audit_write';
const GRPC_PORT = 7443;

let lab: Lab;
let dir: string;
let server: string;
let dataDir: string;
let admin: CertFiles;
const paths = new Map<string, AgentPaths>();
const daemons: Array<{ what: string; proc: LabProcess; log: string }> = [];
let task: ChildProcess | undefined;

function daemon(what: string, h: string, unit: string, args: string[], log: string): LabProcess {
  const proc = lab.spawn(h, 'setpriv', [...asUnit(unit), process.execPath, WEFT, ...args], { env: cleanEnv(), logFile: log, cwd: ROOT });
  daemons.push({ what, proc, log });
  return proc;
}

const running = (what: string) => {
  const d = daemons.find((x) => x.what === what)!;
  if (d.proc.exited) throw new GiveUp(`${what} exited; log: ${tail(d.log)}`);
};

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'wtvcap-'));
  lab = await createLab({ name: 'vcap', datacenters: [{ name: 'dc1', racks: [{ name: 'a', hosts: ['h1'] }, { name: 'b', hosts: ['h2'] }] }], controller: true });
  const c = lab.controller!;
  dataDir = join(dir, 'controller');
  const ctlLog = join(dir, 'controller.log');
  daemon('controller', c.netns, 'weft-controller.service', ['controller', '--data-dir', dataDir, '--listen', `${c.ip}:${GRPC_PORT}`, '--metrics-listen', `${c.ip}:7080`], ctlLog);
  const agentCommand = await waitFor('the controller to print the join command', () => {
    running('controller');
    return readJsonLog(ctlLog).find((l) => typeof l.agentCommand === 'string')?.agentCommand as string | undefined;
  }, 30_000);
  server = `${c.ip}:${GRPC_PORT}`;
  admin = adminCert(dataDir, join(dir, 'admin'));
  const token = createToken(dataDir);
  await Promise.all(lab.hosts.map(async (h) => {
    const p = agentPaths(dir, h);
    installCni(p, 'default');
    paths.set(h.name, p);
    daemon(`agent ${h.name}`, h.netns, 'weft-agent.service', [
      ...joinArgs(agentCommand, token), '--host-name', h.name, '--rack', h.rack, '--datacenter', h.datacenter, '--state-dir', p.stateDir, '--cni-socket', p.socket,
    ], p.logFile);
    await waitFor(`agent on ${h.name} to run`, () => {
      running(`agent ${h.name}`);
      return readFileSync(p.logFile, 'utf8').includes('"msg":"weft agent running"') || undefined;
    }, 60_000);
  }));
}, 180_000);

afterAll(async () => {
  if (task?.pid && task.exitCode === null && task.signalCode === null) task.kill('SIGKILL');
  await lab?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const config = (h: LabHost) => pluginConfig(loadConflist(conflistPath(paths.get(h.name)!.cniConfDir, 'default')));
const cniPath = (h: LabHost) => paths.get(h.name)!.cniBinDir;

async function adminCli(args: string[]): Promise<string> {
  const r = await nsExecAsync(lab.controller!.netns, process.execPath, [WEFT, ...args, '--server', server, '--ca', admin.ca, '--cert', admin.cert, '--key', admin.key], { timeoutMs: 30_000 });
  if (r.status !== 0) throw new Error(`weft ${args.join(' ')} exited ${r.status}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

describe('the units\' capability sets', () => {
  it('run the controller and agents: containers attached by both kinds of namespace path reach each other across hosts', async () => {
    const [h1, h2] = lab.hosts;
    // podman: a namespace bind-mounted under /run/netns; labelled as a web backend for the ingress below
    const ns1 = lab.addContainerNetns(h1, 'c1');
    const r1 = await cniAdd({ hostNetns: h1.netns, cniPath: cniPath(h1), containerId: 'vcap-c1', netns: ns1, ifname: 'eth0', config: config(h1), args: 'weft.label.app=web' });
    // ctr run --cni: the task's own /proc/<pid>/ns/net, with a container's capabilities
    task = spawn('unshare', ['-n', 'setpriv', '--bounding-set', CONTAINER_CAPS, '--inh-caps=-all', 'sleep', '600'], { stdio: 'ignore' });
    const ns2 = `/proc/${task.pid}/ns/net`;
    // unshare, then setpriv, exec into sleep: once it is sleep, its namespace and capabilities are set
    await waitFor('the task to run in its own namespace', () => readFileSync(`/proc/${task!.pid}/cmdline`, 'utf8').startsWith('sleep\0') || undefined, 10_000);
    const r2 = await cniAdd({ hostNetns: h2.netns, cniPath: cniPath(h2), containerId: 'vcap-c2', netns: ns2, ifname: 'eth0', config: config(h2) });
    const ip1 = String(r1.ips[0].address).split('/')[0];
    const ip2 = String(r2.ips[0].address).split('/')[0];
    await waitFor(`c1 on h1 to reach c2 on h2 (${ip2})`, () => lab.exec(ns1.replace('/run/netns/', ''), 'ping', ['-c1', '-W1', ip2], { check: false }).status === 0 || undefined, 30_000);

    await cniDel({ hostNetns: h2.netns, cniPath: cniPath(h2), containerId: 'vcap-c2', netns: ns2, ifname: 'eth0', config: config(h2) });
    expect(ip1).toMatch(/^10\.244\./);
  });

  it('run the ingress: it binds port 80, proxies to a container on another host and programs nftables', async () => {
    const [h1, h2] = lab.hosts;
    lab.spawn('wt-vcap.h1.c1', process.execPath, ['-e', "require('http').createServer((q, s) => s.end('vcap backend')).listen(8080)"], { env: cleanEnv() });
    await adminCli(['service', 'create', 'web', '--port', '80:8080/http', '--selector', 'app=web']);
    await adminCli(['service', 'create', 'dns', '--port', '53/udp', '--selector', 'app=dns']);
    const line = weftCli(['token', 'create', '--role', 'ingress', '--ttl', '1h', '--data-dir', dataDir]).trim().split(/\s+/).slice(1);
    const log = join(dir, 'ingress.log');
    daemon('ingress', h2.netns, 'weft-ingress.service', [...line, '--name', 'edge', '--rack', h2.rack, '--datacenter', h2.datacenter, '--state-dir', join(dir, 'ingress')], log);
    const answer = await waitFor(`the ingress on h2 to answer on port 80 from ${h1.name}'s container`, async () => {
      running('ingress');
      const r = await httpIn(h2.netns, `http://${h2.underlayIp}:80/`).catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    }, 30_000);
    expect(answer.body).toBe('vcap backend');
    await waitFor('the L4 table in nftables', () => lab.exec(h2.netns, 'nft', ['list', 'tables'], { check: false }).stdout.includes('weft-ingress') || undefined, 15_000);
    for (const d of daemons) expect(readFileSync(d.log, 'utf8'), d.what).not.toMatch(/EPERM|EACCES|not permitted/);
  });
});

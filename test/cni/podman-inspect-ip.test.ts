// What podman 4.3 (CNI backend) makes of weft's conflist, with the real
// podman, a real controller and agent (test/runtimes rig) and the recording
// wrapper around the plugin:
//  - `podman network inspect` shows this host's subnet and gateway (as the
//    conflist's labels: podman reads subnets only from bridge, macvlan and
//    ipvlan configs);
//  - `podman run --ip` reaches weft (podman sends one address as CNI_ARGS
//    IP=) and the container gets exactly that address; one outside the
//    host's subnet fails `podman run` with weft's reason and leaves nothing
//    allocated; two addresses arrive as runtimeConfig.ips (the conflist's
//    "ips" capability) and are refused, since weft gives one per network.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuild, weftCli } from '../e2e/cluster';
import { uniqueName } from '../helpers/names';
import { RUNTIME_PACKAGES, requireSystem } from '../helpers/system';
import { waitFor } from '../helpers/wait';
import { busyboxImageArchive } from '../runtimes/image';
import { startPodman, type Podman } from '../runtimes/podman';
import { makeRecorder, describeCalls, type Recorder } from '../runtimes/recorder/recorder';
import { startSandbox, type Sandbox } from '../runtimes/sandbox';
import { startWeftHost, type WeftHost } from '../runtimes/weft-host';

const REAL_PLUGINS = '/usr/lib/cni';

let dir: string;
let rec: Recorder;
let sandbox: Sandbox | undefined;
let host: WeftHost | undefined;
let podman: Podman | undefined;

beforeAll(async () => {
  requireSystem(RUNTIME_PACKAGES);
  busyboxImageArchive();
  requireBuild();
  dir = mkdtempSync('/tmp/wtrt-pinsp-');
  const realDir = join(dir, 'cni-bin');
  const podConf = join(dir, 'podman-net.d');
  for (const d of [realDir, podConf]) mkdirSync(d);
  symlinkSync(join(REAL_PLUGINS, 'loopback'), join(realDir, 'loopback'));
  const socket = join(dir, 'agent.sock');
  weftCli(['install-cni', '--bin-dir', realDir, '--conf-dir', podConf, '--network', 'default', '--name', 'weft', '--cni-version', '1.0.0', '--socket', socket]);
  rec = makeRecorder(join(dir, 'rec'), realDir, ['weft']);
  sandbox = await startSandbox(join(dir, 'sandbox'));
  host = await startWeftHost(sandbox, join(dir, 'weft'), socket);
  podman = await startPodman({ dir: join(dir, 'podman'), cniConfigDir: podConf, pluginDirs: [rec.pluginDir], sandbox });
  podman.loadImage(busyboxImageArchive());
}, 900_000);

afterAll(async () => {
  try {
    podman?.close();
    await host?.close();
  } finally {
    sandbox?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);

describe('podman 4.3 on a weft conflist', () => {
  it('network inspect shows the network and this host\'s subnet and gateway', async () => {
    const inspect = await waitFor('podman network inspect to show the subnet label', () => {
      const [n] = JSON.parse(podman!.run(['network', 'inspect', 'weft'])) as Array<{ name: string; driver: string; labels?: Record<string, string>; subnets?: unknown }>;
      return n.labels?.['weft.subnet'] ? n : undefined;
    }, 30_000);
    console.log(`podman network inspect weft: ${JSON.stringify({ driver: inspect.driver, labels: inspect.labels, subnets: inspect.subnets ?? null })}`);
    expect(inspect.driver).toBe('weft');
    expect(inspect.labels).toEqual({ 'weft.network': 'default', 'weft.subnet': host!.subnet, 'weft.gateway': host!.gateway });
    // `network ls` can filter on them
    expect(podman!.run(['network', 'ls', '--filter', `label=weft.subnet=${host!.subnet}`, '--format', '{{.Name}}']).trim()).toBe('weft');
  });

  it('run --ip gives the container exactly that address; podman sends it as CNI_ARGS IP=', () => {
    const want = host!.subnet.replace(/0\/\d+$/, '50');
    const name = uniqueName('ip');
    const id = podman!.run(['run', '-d', '--pull', 'never', '--name', name, '--network', 'weft', '--ip', want, 'localhost/wt-busybox:latest', 'sleep', '600']).trim();
    expect(podman!.ip(name, 'weft')).toBe(want);
    const add = rec.calls().find((c) => c.plugin === 'weft' && c.command === 'ADD' && c.env.CNI_CONTAINERID === id);
    if (!add) throw new Error(`no weft ADD for ${id}:\n${describeCalls(rec.calls())}`);
    console.log(`podman --ip ADD: CNI_ARGS=${add.env.CNI_ARGS} runtimeConfig=${JSON.stringify(add.config?.runtimeConfig ?? null)}`);
    expect(add.env.CNI_ARGS.split(';')).toContain(`IP=${want}`);
    expect(host!.allocations().find((a) => a.containerId === id)?.ip).toBe(want);
  });

  it('two addresses for one network arrive as runtimeConfig.ips (the ips capability) and are refused: one interface, one address', () => {
    const [x, y] = ['60', '61'].map((d) => host!.subnet.replace(/0\/\d+$/, d));
    const before = host!.allocations().map((a) => a.ip);
    const name = uniqueName('two');
    const r = podman!.tryRun(['run', '-d', '--pull', 'never', '--name', name, '--network', `weft:ip=${x},ip=${y}`, 'localhost/wt-busybox:latest', 'sleep', '600']);
    const add = rec.calls().filter((c) => c.plugin === 'weft' && c.command === 'ADD').pop();
    console.log(`podman two addresses: CNI_ARGS=${add?.env.CNI_ARGS} runtimeConfig=${JSON.stringify(add?.config?.runtimeConfig ?? null)}; ${r.stderr.trim().split('\n').pop()}`);
    expect(add?.config?.runtimeConfig).toEqual({ ips: [x, y] });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`runtimeConfig.ips asks for ${x}, ${y}: weft gives one address per interface and network`);
    expect(host!.allocations().map((a) => a.ip)).toEqual(before);
  });

  it('run --ip outside the host subnet fails with the reason, and nothing is allocated', () => {
    const before = host!.allocations().map((a) => a.ip);
    const links = host!.links().filter((l) => l.startsWith('wv')).sort();
    const r = podman!.tryRun(['run', '-d', '--pull', 'never', '--name', uniqueName('out'), '--network', 'weft', '--ip', '10.99.99.99', 'localhost/wt-busybox:latest', 'sleep', '600']);
    expect(r.code).not.toBe(0);
    console.log(`podman run --ip 10.99.99.99: ${r.stderr.trim().split('\n').pop()}`);
    expect(r.stderr).toContain(`requested address 10.99.99.99 in network "default": outside this host's subnet ${host!.subnet}`);
    expect(host!.allocations().map((a) => a.ip)).toEqual(before);
    expect(host!.links().filter((l) => l.startsWith('wv')).sort()).toEqual(links);
  });
});

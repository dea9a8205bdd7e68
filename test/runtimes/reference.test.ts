// The runtime rig proven with the reference plugins (bridge + host-local +
// portmap): real containers under podman 4.3 (CNI backend) and
// `ctr run --cni`, each call recorded, so the runtime behaviours weft's
// plugin relies on are checked against the real runtimes, not assumed.
// Swapping in weft's conflist and plugin dir is all the weft e2e has to do.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { uniqueName } from '../helpers/names';
import { RUNTIME_PACKAGES, requireSystem } from '../helpers/system';
import { waitFor } from '../helpers/wait';
import { busyboxImageArchive } from './image';
import { startPodman, type Podman } from './podman';
import { startContainerd, type Containerd } from './containerd';
import { makeRecorder, describeCalls, type Recorder, type CniCall } from './recorder/recorder';

const REAL_PLUGINS = '/usr/lib/cni';
// Third octet from the pid: two runs of this file on one machine do not share a subnet.
const subnet = (n: number) => `10.${231 + n}.${process.pid % 250}.0/24`;

interface Net {
  name: string;
  bridge: string;
  file: string;
}

function writeConflist(dir: string, n: number, cniVersion: string, extra: object[] = []): Net {
  const name = uniqueName('net');
  const bridge = uniqueName('br');
  const file = join(dir, `${10 + n}-${name}.conflist`);
  writeFileSync(
    file,
    JSON.stringify({
      cniVersion,
      name,
      plugins: [
        {
          type: 'bridge',
          bridge,
          isGateway: true,
          // No masquerade and no published ports: the reference plugins then
          // leave the machine's iptables alone.
          ipMasq: false,
          ipam: { type: 'host-local', ranges: [[{ subnet: subnet(n) }]], dataDir: join(dir, '..', 'ipam') },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
        ...extra,
      ],
    }),
  );
  return { name, bridge, file };
}

type Host = { host(cmd: string, args: string[]): string };

/** Interface indexes on the runtime's host side (its sandbox's network namespace). */
function hostIfindexes(rt: Host): Set<number> {
  const links = JSON.parse(rt.host('ip', ['-j', 'link', 'show'])) as { ifindex: number }[];
  return new Set(links.map((l) => l.ifindex));
}

const forContainer = (calls: CniCall[], id: string) => calls.filter((c) => c.env.CNI_CONTAINERID === id);

beforeAll(() => {
  requireSystem(RUNTIME_PACKAGES);
  busyboxImageArchive();
}, 900_000);

describe('podman 4.3, CNI backend', () => {
  let dir: string;
  let rec: Recorder;
  let podman: Podman;
  let net: Net;
  let net04: Net;
  let netBad: Net;
  let netBadConf: Net;

  beforeAll(async () => {
    dir = mkdtempSync('/tmp/wtrt-podman-');
    const confDir = join(dir, 'net.d');
    mkdirSync(confDir);
    rec = makeRecorder(join(dir, 'rec'), REAL_PLUGINS, ['bridge', 'host-local', 'portmap', 'loopback', 'tuning']);
    net = writeConflist(confDir, 0, '1.0.0');
    net04 = writeConflist(confDir, 1, '0.4.0');
    // A third plugin whose ADD fails (no such sysctl) after bridge and
    // portmap succeeded, while its DEL succeeds.
    netBad = writeConflist(confDir, 2, '1.0.0', [{ type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.wt_no_such_key': '1' } }]);
    // A third plugin whose config does not parse: both its ADD and DEL fail.
    netBadConf = writeConflist(confDir, 3, '1.0.0', [{ type: 'portmap', snat: 'not-a-bool' }]);
    podman = await startPodman({ dir: join(dir, 'podman'), cniConfigDir: confDir, pluginDirs: [rec.pluginDir] });
    podman.loadImage(busyboxImageArchive());
  }, 120_000);

  afterAll(() => {
    try {
      // the bridges go with the sandbox's network namespace
      podman?.close();
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  it('two containers reach each other over the conflist network; ADD carries the conflist cniVersion', () => {
    const a = podman.start(uniqueName('a'), net.name, ['httpd', '-f', '-p', '80', '-h', '/www']);
    const b = podman.start(uniqueName('b'), net.name, ['sleep', '600']);
    const ipA = podman.ip(a, net.name);
    expect(ipA).toMatch(/^10\.231\./);
    expect(podman.run(['exec', b, 'wget', '-qO-', `http://${ipA}/`])).toBe('wt-busybox\n');
    expect(podman.run(['exec', b, 'ping', '-c1', '-W2', ipA])).toContain('1 packets received');

    const adds = forContainer(rec.calls(), a).filter((c) => c.command === 'ADD');
    expect(adds.map((c) => c.plugin)).toEqual(['bridge', 'host-local', 'portmap']);
    expect(adds.every((c) => c.cniVersion === '1.0.0')).toBe(true);
    expect(adds.find((c) => c.plugin === 'portmap')!.hasPrevResult).toBe(true);
    expect(adds[0].env.CNI_NETNS).toMatch(/^\/run\/netns\//);
    expect(adds[0].env.CNI_IFNAME).toBe('eth0');
  });

  it('calls VERSION for each plugin of the list with dummy netns and ifname', () => {
    const versions = rec.calls().filter((c) => c.command === 'VERSION');
    expect(versions.length).toBeGreaterThan(0);
    for (const v of versions) {
      expect(v.env.CNI_NETNS).toBe('dummy');
      expect(v.env.CNI_IFNAME).toBe('dummy');
      expect(v.env.CNI_PATH).toBeDefined();
    }
    // Every plugin entry of every list in the dir, not only the one in use.
    expect(new Set(versions.map((v) => v.plugin))).toEqual(new Set(['bridge', 'portmap', 'tuning']));
  });

  it('sends cniVersion 0.4.0 for a 0.4.0 conflist', () => {
    const c = podman.start(uniqueName('c'), net04.name, ['sleep', '600']);
    const calls = forContainer(rec.calls(), c).filter((x) => x.command === 'ADD');
    expect(calls.length).toBe(3);
    expect(calls.every((x) => x.cniVersion === '0.4.0')).toBe(true);
  });

  it('podman rm sends DEL with prevResult and the veth goes away', () => {
    const name = uniqueName('d');
    const d = podman.start(name, net.name, ['sleep', '600']);
    const hostIfindex = Number(podman.run(['exec', d, 'cat', '/sys/class/net/eth0/iflink']).trim());
    expect(hostIfindexes(podman).has(hostIfindex)).toBe(true);
    podman.run(['rm', '-f', '-t', '0', d]);
    expect(hostIfindexes(podman).has(hostIfindex)).toBe(false);
    const dels = forContainer(rec.calls(), d).filter((c) => c.command === 'DEL');
    // Reverse order of the list; bridge hands its own stdin to host-local.
    expect(dels.map((c) => c.plugin)).toEqual(['portmap', 'bridge', 'host-local']);
    expect(dels.every((c) => c.hasPrevResult && c.cniVersion === '1.0.0' && c.rc === 0)).toBe(true);
    expect(dels[0].env.CNI_NETNS).toMatch(/^\/run\/netns\//);
  });

  const failRun = (net: Net) => {
    const name = uniqueName('e');
    const r = podman.tryRun(['run', '-d', '--pull', 'never', '--name', name, '--network', net.name, 'localhost/wt-busybox:latest', 'sleep', '600']);
    expect(r.code).not.toBe(0);
    const id = podman.run(['inspect', '--format', '{{.Id}}', name]).trim();
    const calls = forContainer(rec.calls(), id);
    podman.tryRun(['rm', '-f', '-t', '0', name]);
    const failed = calls.findIndex((c) => c.command === 'ADD' && c.rc !== 0);
    expect(failed, describeCalls(calls)).toBe(3);
    return { calls, dels: calls.slice(failed + 1).filter((c) => c.command === 'DEL') };
  };

  it('a failed ADD is followed by DEL of the whole list, without prevResult', () => {
    const { calls, dels } = failRun(netBad);
    expect(dels.map((c) => c.plugin), describeCalls(calls)).toEqual(['tuning', 'portmap', 'bridge', 'host-local']);
    for (const d of dels) {
      expect(d.hasPrevResult).toBe(false);
      expect(d.env.CNI_NETNS).toMatch(/^\/run\/netns\//);
    }
  });

  it('a DEL that fails stops the DEL chain: earlier plugins never get DEL', () => {
    const { calls, dels } = failRun(netBadConf);
    expect(dels.map((c) => [c.plugin, c.rc !== 0]), describeCalls(calls)).toEqual([['portmap', true]]);
    // podman rm of the failed container sends nothing more.
    expect(calls.filter((c) => c.command === 'DEL').length).toBe(1);
  });
});

describe('containerd 1.6, ctr run --cni', () => {
  let dir: string;
  let rec: Recorder;
  let ctrd: Containerd;
  let net: Net;

  beforeAll(async () => {
    dir = mkdtempSync('/tmp/wtrt-ctr-');
    const confDir = join(dir, 'net.d');
    mkdirSync(confDir);
    rec = makeRecorder(join(dir, 'rec'), REAL_PLUGINS, ['bridge', 'host-local', 'portmap', 'loopback']);
    net = writeConflist(confDir, 4, '1.0.0');
    ctrd = await startContainerd({ dir: join(dir, 'ctr'), cniConfigDir: confDir, pluginDir: rec.pluginDir });
    ctrd.importImage(busyboxImageArchive());
  }, 120_000);

  afterAll(async () => {
    try {
      await ctrd?.close();
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a container is reachable from the host and from another container; stopping it sends DEL with an empty CNI_NETNS', async () => {
    const a = uniqueName('a');
    const b = uniqueName('b');
    const runA = ctrd.run(a, ['httpd', '-f', '-p', '80', '-h', '/www']);
    const runB = ctrd.run(b, ['sleep', '600']);
    const pidA = await ctrd.waitRunning(a);
    await ctrd.waitRunning(b);

    const addr = JSON.parse(execFileSync('nsenter', ['-t', String(pidA), '-n', 'ip', '-j', '-4', 'addr', 'show', 'eth0'], { encoding: 'utf8' })) as {
      addr_info: { local: string }[];
    }[];
    const ipA = addr[0].addr_info[0].local;
    expect(ipA).toMatch(/^10\.235\./);
    const fromHost = ctrd.host('node', ['-e', `fetch('http://${ipA}/').then((r) => r.text()).then((t) => process.stdout.write(t))`]);
    expect(fromHost).toBe('wt-busybox\n');
    expect(ctrd.ctr(['task', 'exec', '--exec-id', 'wget', b, 'wget', '-qO-', `http://${ipA}/`])).toBe('wt-busybox\n');

    const fullId = `wt-${a}`; // ctr passes "<namespace>-<id>" as CNI_CONTAINERID
    const adds = forContainer(rec.calls(), fullId).filter((c) => c.command === 'ADD');
    expect(adds.map((c) => c.plugin)).toEqual(['bridge', 'host-local', 'portmap']);
    expect(adds.every((c) => c.cniVersion === '1.0.0')).toBe(true);
    expect(adds[0].env.CNI_NETNS).toBe(`/proc/${pidA}/ns/net`);

    // Not /sys via nsenter: sysfs shows the namespace of whoever mounted it.
    const hostIfindex = Number(ctrd.ctr(['task', 'exec', '--exec-id', 'iflink', a, 'cat', '/sys/class/net/eth0/iflink']).trim());
    expect(hostIfindexes(ctrd).has(hostIfindex)).toBe(true);
    await ctrd.stop(runA);
    // DEL without a netns cannot remove the veth; it goes when the kernel
    // frees the dead task's namespace, which is asynchronous.
    await waitFor(`host interface ${hostIfindex} to go`, () => !hostIfindexes(ctrd).has(hostIfindex), 10_000);
    const dels = forContainer(rec.calls(), fullId).filter((c) => c.command === 'DEL');
    expect(dels.map((c) => c.plugin), describeCalls(rec.calls())).toEqual(['portmap', 'bridge', 'host-local']);
    for (const d of dels) {
      expect(d.env.CNI_NETNS).toBe('');
      expect(d.hasPrevResult).toBe(true);
      expect(d.rc).toBe(0);
    }
    await ctrd.stop(runB);
    // ctr never asks for VERSION.
    expect(rec.calls().filter((c) => c.command === 'VERSION')).toEqual([]);
  });
});

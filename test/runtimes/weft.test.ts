// weft's CNI plugin, unmodified, under the real runtimes: podman 4.3 (CNI
// backend) and containerd 1.6 `ctr run --cni`, both in one sandbox whose
// network namespace is a single weft host running a real controller and a
// real agent joined with a bootstrap token (weft-host.ts). The conflists and
// the plugin binary are what `weft install-cni --with-portmap` writes; every
// plugin call goes through the recorder, so each check of what weft did is
// paired with what the runtime actually sent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostVethName } from '../../cni-plugin/agent/host/naming';
import { requireBuild, weftCli } from '../e2e/cluster';
import { uniqueName } from '../helpers/names';
import { RUNTIME_PACKAGES, requireSystem } from '../helpers/system';
import { waitFor } from '../helpers/wait';
import { busyboxImageArchive } from './image';
import { startPodman, type Podman } from './podman';
import { startContainerd, type Containerd, CTR_NAMESPACE } from './containerd';
import { startSandbox, type Sandbox } from './sandbox';
import { makeRecorder, describeCalls, type Recorder, type CniCall } from './recorder/recorder';
import { startWeftHost, UNDERLAY_IP, type WeftHost } from './weft-host';

const REAL_PLUGINS = '/usr/lib/cni';
const WEFT_NETWORK = 'default';
const IMAGE = 'localhost/wt-busybox:latest';
const HTTPD = ['httpd', '-f', '-p', '80', '-h', '/www'];
const PAGE = 'wt-busybox\n';

let dir: string;
let rec: Recorder;
let sandbox: Sandbox | undefined;
let host: WeftHost | undefined;
let podConf: string;
let ctrConf: string;
let rootBefore: string;

/**
 * What this file could leave in the machine's own network namespace if the
 * sandbox leaked: weft's devices, the underlay pair, a runtime's bridge, and
 * the forwarding sysctl. (Other test files run alongside and may briefly own
 * links of their own names there, so only these names are compared.)
 */
function rootNetState(): string {
  const links = (JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[])
    .map((l) => l.ifname)
    .filter((n) => /^(wv|weft\.|wtul|cni|podman)/.test(n))
    .sort();
  return JSON.stringify({ links, ipForward: readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() });
}

/** `weft install-cni --with-portmap` into a conf dir; the plugin goes into the real plugin dir the recorder wraps. */
function installCni(binDir: string, confDir: string, name: string, cniVersion: string, socket: string): string {
  weftCli([
    'install-cni', '--bin-dir', binDir, '--conf-dir', confDir, '--network', WEFT_NETWORK, '--name', name,
    '--cni-version', cniVersion, '--socket', socket, '--with-portmap',
  ]);
  return join(confDir, `10-${name}.conflist`);
}

/** GET from the weft host itself (the sandbox's network namespace), with Node's fetch. */
function fetchFromHost(url: string): string {
  const script =
    'fetch(process.argv[1], { signal: AbortSignal.timeout(5000) }).then(async (r) => process.stdout.write(await r.text()), (e) => { console.error(String(e.cause ?? e)); process.exit(1); })';
  return sandbox!.exec(process.execPath, ['-e', script, url], { timeout: 15_000 });
}

const forContainer = (calls: CniCall[], id: string) => calls.filter((c) => c.env.CNI_CONTAINERID === id);
const ofVerb = (calls: CniCall[], verb: string, plugins = ['weft', 'portmap', 'tuning']) =>
  calls.filter((c) => c.command === verb && plugins.includes(c.plugin));
const weftAdd = (calls: CniCall[]) => {
  const add = ofVerb(calls, 'ADD', ['weft'])[0];
  if (!add) throw new Error(`no weft ADD in:\n${describeCalls(calls)}`);
  return { call: add, result: JSON.parse(add.stdout) as { cniVersion: string; interfaces: { name: string; sandbox?: string }[]; ips: { address: string; version?: string }[] } };
};
const inSubnet = (ip: string) => ip.startsWith(host!.subnet.split('.').slice(0, 3).join('.') + '.');
const allocationOf = (containerId: string) => host!.allocations().find((a) => a.containerId === containerId);
const endpointOf = (containerId: string) => host!.endpoints().find((e) => e.containerId === containerId);
const nextAddress = (ip: string) => ip.replace(/\d+$/, (d) => String(Number(d) + 1));

beforeAll(async () => {
  requireSystem(RUNTIME_PACKAGES);
  busyboxImageArchive();
  requireBuild();
  rootBefore = rootNetState();
  dir = mkdtempSync('/tmp/wtrt-weft-');
  const realDir = join(dir, 'cni-bin');
  podConf = join(dir, 'podman-net.d');
  ctrConf = join(dir, 'ctr-net.d');
  for (const d of [realDir, podConf, ctrConf]) mkdirSync(d);
  // The chain partners beside weft, so install-cni finds portmap in its --bin-dir
  // (loopback too, should a runtime ask for it: ctr 1.6 was not seen to).
  for (const p of ['portmap', 'tuning', 'loopback']) symlinkSync(join(REAL_PLUGINS, p), join(realDir, p));
  const socket = join(dir, 'agent.sock');
  installCni(realDir, ctrConf, 'weft', '1.0.0', socket);
  const pod10 = installCni(realDir, podConf, 'weft', '1.0.0', socket);
  installCni(realDir, podConf, 'weft04', '0.4.0', socket);
  // weft, then a plugin whose ADD fails (no such sysctl) and whose DEL succeeds.
  const bad = JSON.parse(readFileSync(pod10, 'utf8')) as { name: string; plugins: object[] };
  bad.name = 'weftbad';
  bad.plugins = [bad.plugins[0], { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.wt_no_such_key': '1' } }];
  writeFileSync(join(podConf, '20-weftbad.conflist'), JSON.stringify(bad, null, 2));
  rec = makeRecorder(join(dir, 'rec'), realDir, ['weft', 'portmap', 'tuning', 'loopback']);
  // ctr reads only the fixed paths: this host's are the ctr conf dir and the recorder.
  sandbox = await startSandbox(join(dir, 'sandbox'), [
    { source: ctrConf, target: '/etc/cni/net.d' },
    { source: rec.pluginDir, target: '/opt/cni/bin' },
  ]);
  host = await startWeftHost(sandbox, join(dir, 'weft'), socket);
}, 900_000);

afterAll(async () => {
  try {
    await host?.close();
  } finally {
    sandbox?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
  // Nothing of the run is left in the machine's own namespace.
  expect(rootNetState()).toBe(rootBefore);
});

describe('podman 4.3, CNI backend, on weft', () => {
  let podman: Podman;
  let httpdIp: string;
  let client: string;

  beforeAll(async () => {
    podman = await startPodman({ dir: join(dir, 'podman'), cniConfigDir: podConf, pluginDirs: [rec.pluginDir], sandbox: sandbox! });
    podman.loadImage(busyboxImageArchive());
  }, 120_000);

  afterAll(() => podman?.close());

  it('two containers reach each other over weft; ADD carries the conflist cniVersion 1.0.0', async () => {
    const a = podman.start(uniqueName('a'), 'weft', HTTPD);
    client = podman.start(uniqueName('b'), 'weft', ['sleep', '600']);
    httpdIp = podman.ip(a, 'weft');
    expect(inSubnet(httpdIp), `${httpdIp} in ${host!.subnet}`).toBe(true);
    expect(podman.run(['exec', client, 'wget', '-qO-', `http://${httpdIp}/`])).toBe(PAGE);
    expect(podman.run(['exec', client, 'ping', '-c1', '-W2', httpdIp])).toContain('1 packets received');

    const calls = forContainer(rec.calls(), a);
    const adds = ofVerb(calls, 'ADD');
    expect(adds.map((c) => [c.plugin, c.cniVersion, c.rc]), describeCalls(calls)).toEqual([['weft', '1.0.0', 0], ['portmap', '1.0.0', 0]]);
    const { call, result } = weftAdd(calls);
    expect(call.hasPrevResult).toBe(false);
    expect(call.env.CNI_NETNS).toMatch(/^\/run\/netns\//);
    expect(call.env.CNI_IFNAME).toBe('eth0');
    expect(result.cniVersion).toBe('1.0.0');
    expect(result.ips[0].address).toBe(`${httpdIp}/24`);
    expect(result.interfaces[0].name).toBe(hostVethName(WEFT_NETWORK, a, 'eth0'));
    // portmap is handed weft's result
    const portmap = adds[1].config!.prevResult as { ips: { address: string }[] };
    expect(portmap.ips[0].address).toBe(`${httpdIp}/24`);
    expect(allocationOf(a)?.ip).toBe(httpdIp);
    // podman took weft's result as the container's network settings
    expect(podman.run(['inspect', '--format', '{{(index .NetworkSettings.Networks "weft").Gateway}}', a]).trim()).toBe(host!.gateway);
    // the agent reported the endpoint to the controller, labelled from podman's CNI_ARGS
    await waitFor(`the endpoint of ${a} at the controller`, () => endpointOf(a) !== undefined, 10_000);
    expect(endpointOf(a)).toMatchObject({ network: WEFT_NETWORK, ip: httpdIp, host: 'wtrthost', labels: { 'k8s.pod.name': call.env.CNI_ARGS.split('K8S_POD_NAME=')[1] } });
  });

  it('VERSION, asked with dummy netns and ifname, is answered by the weft binary alone', () => {
    const versions = rec.calls().filter((c) => c.command === 'VERSION' && c.plugin === 'weft');
    expect(versions.length).toBeGreaterThan(0);
    for (const v of versions) {
      expect(v.env).toMatchObject({ CNI_NETNS: 'dummy', CNI_IFNAME: 'dummy', CNI_PATH: 'dummy', CNI_CONTAINERID: '' });
      expect(v.cniVersion).toBe('1.0.0');
      expect(v.rc).toBe(0);
      const info = JSON.parse(v.stdout) as { supportedVersions: string[] };
      expect(info.supportedVersions).toEqual(expect.arrayContaining(['0.4.0', '1.0.0']));
    }
    // Every plugin entry of every list in the dir, not only the list in use:
    // weft is in 3 lists, portmap in 2, tuning in 1.
    const asked = (p: string) => rec.calls().filter((c) => c.command === 'VERSION' && c.plugin === p).length;
    expect([asked('portmap') * 3, asked('tuning') * 3]).toEqual([versions.length * 2, versions.length]);
  });

  it('a 0.4.0 conflist gets ADD with cniVersion 0.4.0 and a 0.4.0 result, on the same weft network', () => {
    const c = podman.start(uniqueName('c'), 'weft04', HTTPD);
    const calls = forContainer(rec.calls(), c);
    expect(ofVerb(calls, 'ADD').map((x) => [x.plugin, x.cniVersion, x.rc]), describeCalls(calls)).toEqual([['weft', '0.4.0', 0], ['portmap', '0.4.0', 0]]);
    const { result } = weftAdd(calls);
    expect(result.cniVersion).toBe('0.4.0');
    expect(result.ips[0]).toMatchObject({ version: '4' }); // required before 1.0.0
    const ipC = podman.ip(c, 'weft04');
    expect(result.ips[0].address).toBe(`${ipC}/24`);
    expect(podman.run(['exec', client, 'wget', '-qO-', `http://${ipC}/`])).toBe(PAGE);
  });

  it('podman rm sends DEL with prevResult; weft removes the veth and frees the address', () => {
    const d = podman.start(uniqueName('d'), 'weft', ['sleep', '600']);
    const veth = weftAdd(forContainer(rec.calls(), d)).result.interfaces[0].name;
    expect(host!.links()).toContain(veth);
    expect(allocationOf(d)).toBeDefined();
    podman.run(['rm', '-f', '-t', '0', d]);
    const calls = forContainer(rec.calls(), d);
    const dels = ofVerb(calls, 'DEL');
    expect(dels.map((c) => c.plugin), describeCalls(calls)).toEqual(['portmap', 'weft']);
    for (const del of dels) {
      expect(del).toMatchObject({ hasPrevResult: true, cniVersion: '1.0.0', rc: 0 });
      expect(del.env.CNI_NETNS).toMatch(/^\/run\/netns\//);
    }
    expect(host!.links()).not.toContain(veth);
    expect(allocationOf(d)).toBeUndefined();
  });

  it('podman stop + start: DEL, then a fresh ADD in a new netns under the same id; the container works again', () => {
    const g = podman.start(uniqueName('g'), 'weft', HTTPD);
    const ip1 = podman.ip(g, 'weft');
    podman.run(['stop', '-t', '0', g]);
    expect(allocationOf(g)).toBeUndefined();
    podman.run(['start', g]);
    const calls = forContainer(rec.calls(), g).filter((c) => c.plugin === 'weft' && c.command !== 'VERSION');
    expect(calls.map((c) => [c.command, c.rc]), describeCalls(calls)).toEqual([['ADD', 0], ['DEL', 0], ['ADD', 0]]);
    expect(calls[2].env.CNI_NETNS).not.toBe(calls[0].env.CNI_NETNS);
    const ip2 = podman.ip(g, 'weft');
    expect(ip2).not.toBe(ip1); // round-robin: the address just freed is not handed out again at once
    expect(allocationOf(g)?.ip).toBe(ip2);
    expect(podman.run(['exec', client, 'wget', '-qO-', `http://${ip2}/`])).toBe(PAGE);
    podman.run(['rm', '-f', '-t', '0', g]);
  });

  it('podman run -p: portmap DNATs the host port to the address weft gave (prevResult)', () => {
    const name = uniqueName('p');
    const p = podman.run(['run', '-d', '--pull', 'never', '--name', name, '--network', 'weft', '-p', '18080:80', IMAGE, ...HTTPD]).trim();
    const ip = podman.ip(p, 'weft');
    const portmap = ofVerb(forContainer(rec.calls(), p), 'ADD', ['portmap'])[0];
    expect((portmap.config!.prevResult as { ips: { address: string }[] }).ips[0].address).toBe(`${ip}/24`);
    expect((portmap.config!.runtimeConfig as { portMappings: unknown[] }).portMappings).toEqual([
      expect.objectContaining({ hostPort: 18080, containerPort: 80, protocol: 'tcp' }),
    ]);
    // the host side: its underlay address and its loopback (portmap's snat: true)
    expect(fetchFromHost(`http://${UNDERLAY_IP}:18080/`)).toBe(PAGE);
    expect(fetchFromHost('http://127.0.0.1:18080/')).toBe(PAGE);
    // and another container, through the host's address
    expect(podman.run(['exec', client, 'wget', '-qO-', `http://${UNDERLAY_IP}:18080/`])).toBe(PAGE);
    podman.run(['rm', '-f', '-t', '0', p]);
    expect(allocationOf(p)).toBeUndefined();
  });

  it('a failed ADD (second plugin fails) is followed by DEL without prevResult; weft leaves no veth or address behind', () => {
    const name = uniqueName('e');
    const r = podman.tryRun(['run', '-d', '--pull', 'never', '--name', name, '--network', 'weftbad', IMAGE, 'sleep', '600']);
    expect(r.code).not.toBe(0);
    const id = podman.run(['inspect', '--format', '{{.Id}}', name]).trim();
    const calls = forContainer(rec.calls(), id);
    const seen = calls.filter((c) => c.plugin !== 'loopback').map((c) => [c.command, c.plugin, c.rc === 0]);
    expect(seen, describeCalls(calls)).toEqual([
      ['ADD', 'weft', true],
      ['ADD', 'tuning', false],
      ['DEL', 'tuning', true],
      ['DEL', 'weft', true],
    ]);
    const { result } = weftAdd(calls);
    const [veth, ip] = [result.interfaces[0].name, result.ips[0].address.split('/')[0]];
    const del = ofVerb(calls, 'DEL', ['weft'])[0];
    expect(del.hasPrevResult).toBe(false);
    expect(del.env.CNI_NETNS).toMatch(/^\/run\/netns\//);
    podman.tryRun(['rm', '-f', '-t', '0', name]);

    expect(host!.links()).not.toContain(veth);
    expect(allocationOf(id)).toBeUndefined();
    expect(host!.allocations().map((a) => a.ip)).not.toContain(ip);
    // nothing stuck behind it: the next container gets the next address and works
    const f = podman.start(uniqueName('f'), 'weft', HTTPD);
    expect(podman.ip(f, 'weft')).toBe(nextAddress(ip));
    expect(podman.run(['exec', client, 'wget', '-qO-', `http://${nextAddress(ip)}/`])).toBe(PAGE);
  });
});

describe('containerd 1.6, ctr run --cni, on weft', () => {
  let ctrd: Containerd;

  beforeAll(async () => {
    ctrd = await startContainerd({ dir: join(dir, 'ctr'), cniConfigDir: ctrConf, pluginDir: rec.pluginDir, sandbox: sandbox! });
    ctrd.importImage(busyboxImageArchive());
  }, 120_000);

  afterAll(async () => {
    await ctrd?.close();
  });

  const eth0Ip = (pid: number): string => {
    const addr = JSON.parse(execFileSync('nsenter', ['-t', String(pid), '-n', 'ip', '-j', '-4', 'addr', 'show', 'eth0'], { encoding: 'utf8' })) as {
      addr_info: { local: string }[];
    }[];
    return addr[0].addr_info[0].local;
  };

  it('reachable from the host and from another container; stop sends DEL with empty CNI_NETNS, weft succeeds and frees the address', async () => {
    const a = uniqueName('a');
    const b = uniqueName('b');
    const runA = ctrd.run(a, HTTPD);
    const runB = ctrd.run(b, ['sleep', '600']);
    const ipA = eth0Ip(await ctrd.waitRunning(a));
    const ipB = eth0Ip(await ctrd.waitRunning(b));
    expect(inSubnet(ipA) && inSubnet(ipB), `${ipA} ${ipB} in ${host!.subnet}`).toBe(true);
    expect(fetchFromHost(`http://${ipA}/`)).toBe(PAGE);
    expect(ctrd.ctr(['task', 'exec', '--exec-id', 'wget', b, 'wget', '-qO-', `http://${ipA}/`])).toBe(PAGE);

    const idA = `${CTR_NAMESPACE}-${a}`;
    const addCalls = forContainer(rec.calls(), idA);
    expect(ofVerb(addCalls, 'ADD').map((c) => [c.plugin, c.cniVersion, c.rc]), describeCalls(addCalls)).toEqual([['weft', '1.0.0', 0], ['portmap', '1.0.0', 0]]);
    const { call, result } = weftAdd(addCalls);
    expect(call.env.CNI_NETNS).toMatch(/^\/proc\/\d+\/ns\/net$/);
    expect(result.ips[0].address).toBe(`${ipA}/24`);
    const vethA = result.interfaces[0].name;
    expect(allocationOf(idA)?.ip).toBe(ipA);
    await waitFor(`the endpoint of ${idA} at the controller`, () => endpointOf(idA) !== undefined, 10_000);
    expect(endpointOf(idA)?.ip).toBe(ipA);

    await ctrd.stop(runA);
    const calls = forContainer(rec.calls(), idA);
    const dels = ofVerb(calls, 'DEL');
    expect(dels.map((c) => c.plugin), describeCalls(calls)).toEqual(['portmap', 'weft']);
    for (const d of dels) expect(d).toMatchObject({ hasPrevResult: true, rc: 0, env: expect.objectContaining({ CNI_NETNS: '' }) });
    // weft's DEL finds the host end by name, without the namespace
    expect(host!.links()).not.toContain(vethA);
    expect(allocationOf(idA)).toBeUndefined();
    await waitFor(`the endpoint of ${idA} to go`, () => endpointOf(idA) === undefined, 10_000);
    expect(endpointOf(idA)).toBeUndefined();

    // The next container gets the next address round-robin, not A's and not B's.
    const last = host!.lastHandedOut()!;
    const c = uniqueName('c');
    const runC = ctrd.run(c, HTTPD);
    const ipC = eth0Ip(await ctrd.waitRunning(c));
    expect(ipC).toBe(nextAddress(last));
    expect([ipA, ipB]).not.toContain(ipC);
    expect(ctrd.ctr(['task', 'exec', '--exec-id', 'wget2', b, 'wget', '-qO-', `http://${ipC}/`])).toBe(PAGE);

    await ctrd.stop(runB);
    await ctrd.stop(runC);
    for (const id of [b, c].map((x) => `${CTR_NAMESPACE}-${x}`)) {
      const del = ofVerb(forContainer(rec.calls(), id), 'DEL', ['weft']);
      expect(del.map((d) => d.rc)).toEqual([0]);
      expect(allocationOf(id)).toBeUndefined();
    }
    // ctr never asks for VERSION
    expect(forContainer(rec.calls(), idA).filter((x) => x.command === 'VERSION')).toEqual([]);
  });
});

describe('after both runtimes removed their containers', () => {
  it('the agent holds no allocation, the host no weft veth, the controller no endpoint', async () => {
    expect(host!.allocations()).toEqual([]);
    expect(host!.links().filter((l) => l.startsWith('wv'))).toEqual([]);
    // releases reach the controller through the agent's outbox, after DEL has answered
    await waitFor('no endpoints at the controller', () => host!.endpoints().length === 0, 10_000)
      .catch((e: Error) => expect.fail(`${e.message}\n${host!.logTails()}`));
  });
});

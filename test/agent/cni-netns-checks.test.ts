// What ADD does with a CNI_NETNS that is not a container's network namespace.
// The path comes from the runtime's request, so the agent must never block
// on it (a FIFO would stop its one thread: STATUS, /healthz and heartbeats
// with it), must refuse anything that is not a network namespace, and must
// refuse the host's own namespace, which an ADD would otherwise give a
// container address and default route. Each refusal leaves nothing behind.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCniHandlers, type WeftCniHandlers } from '../../cni-plugin/agent/cni-handlers';
import { openIpamStore, type IpamStore } from '../../cni-plugin/agent/ipam-store';
import type { NetworkAttachment } from '../../cni-plugin/agent/state/types';
import { CniError, type CniRequest } from '../../cni-plugin/cni/types';
import { recordOwnedNetns, uniqueName } from '../helpers/names';
import { createTestNetns, ipJson, removeTestNetns } from '../helpers/netns';
import { GiveUp, waitFor } from '../helpers/wait';
import { callAgent } from './cni-call';

const BLUE: NetworkAttachment = {
  network: 'blue', vni: 1, networkCidr: '10.99.0.0/16', subnet: '10.99.0.0/24', gateway: '10.99.0.1',
  vxlanDevice: 'weft.vx1', bridge: 'weft.br1', mtu: 1450,
};

type IpLink = { ifname: string; linkinfo?: { info_kind?: string } };

describe('CNI_NETNS that is not a container network namespace', () => {
  let hostNs: string;
  let made: string[];
  let dir: string;
  let ipam: IpamStore | undefined;
  let h: WeftCniHandlers;
  let child: ChildProcess | undefined;

  const nsPath = (n: string) => `/run/netns/${n}`;
  const veths = (ns: string) => ipJson<IpLink[]>(ns, ['-d', 'link', 'show']).filter((l) => l.linkinfo?.info_kind === 'veth').map((l) => l.ifname);
  const request = (netns: string, containerId = 'ctr-1'): CniRequest => ({
    command: 'ADD', containerId, netns, ifname: 'eth0', args: {}, path: ['/opt/cni/bin'],
    config: { cniVersion: '1.1.0', name: 'weft', type: 'weft', network: 'blue', agentSocket: '/run/weft/cni.sock', raw: {} },
  });
  const refused = (p: Promise<unknown>) => p.then(() => { throw new Error('ADD succeeded'); }, (e: unknown) => {
    expect(e).toBeInstanceOf(CniError);
    return e as CniError;
  });
  /** What the runner's own namespace has: it must be the same before and after. */
  const ownLinks = () => JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })).map((l: IpLink) => l.ifname).sort();

  beforeEach(() => {
    made = [];
    hostNs = createTestNetns('nh');
    made.push(hostNs);
    execFileSync('ip', ['-n', hostNs, 'link', 'add', 'weft.br1', 'type', 'bridge']);
    execFileSync('ip', ['-n', hostNs, 'addr', 'add', '10.99.0.1/24', 'dev', 'weft.br1']);
    execFileSync('ip', ['-n', hostNs, 'link', 'set', 'weft.br1', 'up']);
    dir = mkdtempSync(join(tmpdir(), 'weft-cni-netns-'));
    ipam = openIpamStore({ path: join(dir, 'agent.db') });
    h = createCniHandlers({ attachment: (n) => (n === 'blue' ? BLUE : undefined), ipam, endpoints: { registered: () => {}, released: () => {} }, hostNetns: nsPath(hostNs) });
  });

  afterEach(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    child = undefined;
    ipam?.close();
    rmSync(dir, { recursive: true, force: true });
    for (const n of made) removeTestNetns(n);
  });

  it('a FIFO is refused at once (4) while STATUS keeps answering: the agent never blocks on the path', async () => {
    ipam!.close();
    ipam = undefined;
    const socketPath = join(dir, 'agent.sock');
    const fifo = join(dir, 'netns-fifo');
    execFileSync('mkfifo', [fifo]);
    child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./cni-agent-worker.ts', import.meta.url)), socketPath, nsPath(hostNs), join(dir, 'agent.db')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('the agent worker to listen', () => {
      if (child!.exitCode !== null) throw new GiveUp(`worker exited (${child!.exitCode})`);
      return out.includes('ready');
    }, 30_000);

    const conf = { cniVersion: '1.1.0', name: 'weft', type: 'weft', network: 'blue', agentSocket: socketPath };
    const env = (command: string, netns = '') => ({ CNI_COMMAND: command, CNI_CONTAINERID: 'ctr-fifo', CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' });
    const t0 = Date.now();
    let settled: { status: number; out: Record<string, unknown> } | undefined;
    const add = callAgent(socketPath, env('ADD', fifo), conf).then((r) => (settled = r));
    // the same thread serves STATUS: it answers only if the ADD did not block it
    const status = await Promise.race([
      callAgent(socketPath, env('STATUS'), conf),
      waitFor('STATUS to answer while the ADD with a FIFO is in progress', () => false, 5000),
    ]);
    expect(status).toEqual({ status: 0, out: {} });
    await waitFor('the ADD with a FIFO to be answered', () => settled, 5000);
    await add;
    console.log(`ADD with a FIFO as CNI_NETNS answered after ${Date.now() - t0} ms`);
    expect(settled!.status).toBe(1);
    expect(settled!.out).toMatchObject({ code: 4, msg: expect.stringContaining(`${fifo} is a FIFO, not a network namespace`) });
    expect(veths(hostNs)).toEqual([]);
  }, 60_000);

  it('a regular file, a directory and /dev/zero are refused (4) and a missing path is unknown (3); nothing is left behind', async () => {
    const file = join(dir, 'file');
    writeFileSync(file, 'not a namespace');
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    for (const [path, what] of [[file, 'a regular file'], [sub, 'a directory'], ['/dev/zero', 'a character device']]) {
      const e = await refused(h.add(request(path)));
      expect({ code: e.cniCode, msg: e.message }).toEqual({ code: 4, msg: expect.stringContaining(`${path} is ${what}, not a network namespace`) });
    }
    const mnt = await refused(h.add(request('/proc/self/ns/mnt')));
    expect({ code: mnt.cniCode, msg: mnt.message }).toEqual({ code: 4, msg: expect.stringContaining('a namespace of another type') });
    const gone = await refused(h.add(request(join(dir, 'no-such-netns'))));
    expect(gone.cniCode).toBe(3);
    expect(veths(hostNs)).toEqual([]);
    expect(ipam!.list()).toEqual([]);
  });

  it("the agent's own namespace, the host namespace of the bridges and init's are refused (4), with nothing created", async () => {
    const before = ownLinks();
    const own = await refused(h.add(request('/proc/self/ns/net')));
    expect({ code: own.cniCode, msg: own.message }).toEqual({ code: 4, msg: expect.stringMatching(/is the agent's own network namespace|is the host's initial network namespace/) });
    const bridges = await refused(h.add(request(nsPath(hostNs))));
    expect({ code: bridges.cniCode, msg: bridges.message }).toEqual({ code: 4, msg: expect.stringContaining(`is the host network namespace ${nsPath(hostNs)}, not a container's`) });
    // PID 1's namespace: refused as the host's, or (where /proc/1 is not ours to read) as unusable; never networked
    const init = await refused(h.add(request('/proc/1/ns/net')));
    expect(init.cniCode).toBe(4);
    expect(init.message).toMatch(/host's (initial )?network namespace|agent's own|cannot open CNI_NETNS \/proc\/1\/ns\/net/);
    // a bind mount of the same namespace under another name is the same namespace
    const alias = uniqueName('na');
    recordOwnedNetns(alias);
    writeFileSync(nsPath(alias), '');
    made.push(alias);
    execFileSync('mount', ['--bind', nsPath(hostNs), nsPath(alias)]);
    const viaAlias = await refused(h.add(request(nsPath(alias))));
    expect(viaAlias.cniCode).toBe(4);

    expect(veths(hostNs)).toEqual([]);
    expect(ipam!.list()).toEqual([]);
    expect(ownLinks()).toEqual(before);
  });

  it('a real container namespace is still networked (through the pinned path)', async () => {
    const c = createTestNetns('nc');
    made.push(c);
    const res = await h.add(request(nsPath(c)));
    expect(res.interfaces?.[1]).toMatchObject({ name: 'eth0', sandbox: nsPath(c) });
    expect(ipam!.list()).toMatchObject([{ netns: nsPath(c), ip: '10.99.0.2' }]);
    await h.check({ ...request(nsPath(c)), command: 'CHECK' });
  });
});

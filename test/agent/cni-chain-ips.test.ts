// Two CNI details runtimes rely on, against the kernel: a requested address
// (runtimeConfig.ips from the "ips" capability, CNI_ARGS IP= as podman with
// one --ip and nerdctl send it) is given or refused with the reason and
// nothing left behind; and when weft is not first in a chain, its result
// keeps what the earlier plugins reported (here the reference loopback
// plugin, run for real in the container's namespace).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCniHandlers, type WeftCniHandlers } from '../../cni-plugin/agent/cni-handlers';
import { openIpamStore, type IpamStore } from '../../cni-plugin/agent/ipam-store';
import type { NetworkAttachment } from '../../cni-plugin/agent/state/types';
import { parseRequest } from '../../cni-plugin/cni/parse';
import { resultJson } from '../../cni-plugin/cni/render';
import { CniError, CNI_ERR } from '../../cni-plugin/cni/types';
import { createTestNetns, ipJson, removeTestNetns } from '../helpers/netns';

const BLUE: NetworkAttachment = {
  network: 'blue', vni: 1, networkCidr: '10.99.0.0/16', subnet: '10.99.0.0/24', gateway: '10.99.0.1',
  vxlanDevice: 'weft.vx1', bridge: 'weft.br1', mtu: 1450,
};
const LOOPBACK = '/usr/lib/cni/loopback';

let hostNs: string;
let made: string[];
let dir: string;
let ipam: IpamStore;
let h: WeftCniHandlers;
let n = 0;

const nsPath = (ns: string) => `/run/netns/${ns}`;
const container = () => {
  const ns = createTestNetns('c');
  made.push(ns);
  return ns;
};
const id = () => `ctr${process.pid}x${++n}`.padEnd(64, '0');
const links = (ns: string) => ipJson<Array<{ ifname: string }>>(ns, ['link', 'show']).map((l) => l.ifname);
const hostVeths = () => links(hostNs).filter((l) => l.startsWith('wv'));

/** An ADD as the runtime sends it: CNI_* environment and the plugin's config on stdin, parsed as the agent parses it. */
function add(ns: string, containerId: string, o: { args?: string; runtimeConfig?: object; prevResult?: object; cniVersion?: string } = {}) {
  const stdin = {
    cniVersion: o.cniVersion ?? '1.0.0', name: 'weft', type: 'weft', network: 'blue', agentSocket: '/run/weft/cni.sock',
    ...(o.runtimeConfig ? { runtimeConfig: o.runtimeConfig } : {}),
    ...(o.prevResult ? { prevResult: o.prevResult } : {}),
  };
  const env: Record<string, string> = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: containerId, CNI_NETNS: nsPath(ns), CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' };
  if (o.args !== undefined) env.CNI_ARGS = o.args;
  return h.add(parseRequest(env, JSON.stringify(stdin)));
}

async function refused(p: Promise<unknown>): Promise<CniError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(CniError);
  return e as CniError;
}

beforeEach(() => {
  made = [];
  hostNs = container();
  execFileSync('ip', ['-n', hostNs, 'link', 'add', 'weft.br1', 'type', 'bridge']);
  execFileSync('ip', ['-n', hostNs, 'addr', 'add', '10.99.0.1/24', 'dev', 'weft.br1']);
  execFileSync('ip', ['-n', hostNs, 'link', 'set', 'weft.br1', 'up']);
  dir = mkdtempSync(join(tmpdir(), 'weft-cni-ips-'));
  ipam = openIpamStore({ path: join(dir, 'agent.db') });
  h = createCniHandlers({
    attachment: (name) => (name === 'blue' ? BLUE : undefined),
    ipam,
    endpoints: { registered: () => {}, released: () => {} },
    hostNetns: nsPath(hostNs),
  });
});

afterEach(async () => {
  await new Promise((r) => setImmediate(r));
  ipam.close();
  rmSync(dir, { recursive: true, force: true });
  for (const ns of made) removeTestNetns(ns);
});

describe('a requested address', () => {
  it('runtimeConfig.ips (bare or CIDR) and CNI_ARGS IP= as podman sends it are given exactly', async () => {
    const [a, b, c] = [container(), container(), container()];
    const ra = await add(a, id(), { runtimeConfig: { ips: ['10.99.0.50/24'] } });
    expect(ra.ips).toEqual([{ address: '10.99.0.50/24', gateway: '10.99.0.1', interface: 1 }]);
    const rb = await add(b, id(), { args: 'IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.99.0.77' });
    expect(rb.ips?.[0].address).toBe('10.99.0.77/24');
    // runtimeConfig wins over CNI_ARGS when a runtime sends both
    const rc = await add(c, id(), { args: 'IP=10.99.0.78', runtimeConfig: { ips: ['10.99.0.79'] } });
    expect(rc.ips?.[0].address).toBe('10.99.0.79/24');
    const addrs = (ns: string) => ipJson<any[]>(ns, ['addr', 'show', 'eth0'])[0].addr_info.filter((x: any) => x.family === 'inet').map((x: any) => x.local);
    expect([addrs(a), addrs(b), addrs(c)]).toEqual([['10.99.0.50'], ['10.99.0.77'], ['10.99.0.79']]);
    // a container that asks for nothing still gets the next free address after the last one handed out by turn
    const d = container();
    expect((await add(d, id())).ips?.[0].address).toBe('10.99.0.2/24');
  });

  it('is refused (103) with the reason when outside the host subnet, the gateway or taken, leaving no address, link or lease behind', async () => {
    const holder = container();
    const holderId = id();
    await add(holder, holderId, { args: 'IP=10.99.0.50' });
    const before = { allocations: ipam.list().map((x) => x.ip), veths: hostVeths() };
    const cases: Array<[object, RegExp]> = [
      [{ args: 'IP=10.99.1.5' }, /^requested address 10\.99\.1\.5 in network "blue": outside this host's subnet 10\.99\.0\.0\/24 \(containers on this host get addresses 10\.99\.0\.2-10\.99\.0\.254\)$/],
      [{ runtimeConfig: { ips: ['10.99.0.1'] } }, /^requested address 10\.99\.0\.1 in network "blue": the gateway of this host's subnet 10\.99\.0\.0\/24$/],
      [{ runtimeConfig: { ips: ['10.99.0.255/24'] } }, /the subnet's network or broadcast address \(usable: 10\.99\.0\.2-10\.99\.0\.254\)$/],
      [{ args: 'IP=10.99.0.50' }, new RegExp(`^requested address 10\\.99\\.0\\.50 in network "blue": taken by container ${holderId.slice(0, 12)} \\(eth0\\)$`)],
      [{ runtimeConfig: { ips: ['fd00::5'] } }, /^runtimeConfig\.ips asks for fd00::5, but network "blue" is IPv4$/],
      [{ runtimeConfig: { ips: ['10.99.0.60', '10.99.0.61'] } }, /weft gives one address per interface and network/],
    ];
    for (const [o, msg] of cases) {
      const ns = container();
      const e = await refused(add(ns, id(), o));
      expect([e.cniCode, e.message], JSON.stringify(o)).toEqual([CNI_ERR.ADDRESS_UNAVAILABLE, expect.stringMatching(msg)]);
      // nothing of the refused ADD exists: no address in the agent DB, no host end, no interface in the container
      expect({ allocations: ipam.list().map((x) => x.ip), veths: hostVeths() }).toEqual(before);
      expect(links(ns)).toEqual(['lo']);
    }
    const bad = await refused(add(container(), id(), { args: 'IP=ten.dot' }));
    expect([bad.cniCode, bad.message]).toEqual([CNI_ERR.INVALID_CONFIG, 'CNI_ARGS IP: "ten.dot" is not an address']);
    expect(ipam.list().map((x) => x.ip)).toEqual(before.allocations);
  });

  it('an ADD retried with the same request gets the same address; asking the same container for another is refused', async () => {
    const ns = container();
    const cid = id();
    const first = await add(ns, cid, { args: 'IP=10.99.0.90' });
    const again = await add(ns, cid, { args: 'IP=10.99.0.90' });
    expect(again.ips).toEqual(first.ips);
    const e = await refused(add(ns, cid, { args: 'IP=10.99.0.91' }));
    expect(e.cniCode).toBe(CNI_ERR.ADDRESS_UNAVAILABLE);
    expect(e.message).toMatch(/already holds 10\.99\.0\.90$/);
    expect(ipam.list().map((x) => x.ip)).toEqual(['10.99.0.90']);
  });
});

describe('weft after another plugin in a chain', () => {
  it("keeps the loopback plugin's interface and addresses first and adds its own, with interface indexes moved", async () => {
    const ns = container();
    const cid = id();
    const lo = spawnSync(LOOPBACK, [], {
      env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: cid, CNI_NETNS: nsPath(ns), CNI_IFNAME: 'lo', CNI_PATH: '/usr/lib/cni' },
      input: JSON.stringify({ cniVersion: '1.0.0', name: 'weft', type: 'loopback' }),
      encoding: 'utf8',
    });
    expect(lo.status, lo.stdout + lo.stderr).toBe(0);
    const prev = JSON.parse(lo.stdout);
    expect(prev.interfaces).toEqual([{ name: 'lo', mac: '00:00:00:00:00:00', sandbox: nsPath(ns) }]);

    const res = await add(ns, cid, { prevResult: prev });
    const out = resultJson(res, '1.0.0') as any;
    // what loopback reported, unchanged and first
    expect(out.interfaces[0]).toEqual(prev.interfaces[0]);
    expect(out.ips.slice(0, prev.ips.length)).toEqual(prev.ips);
    // weft's own: host end and container end after it, the address naming the container end by its new index
    expect(out.interfaces.map((i: any) => i.name)).toEqual(['lo', expect.stringMatching(/^wv[0-9a-f]{12}$/), 'eth0']);
    const mine = out.ips.slice(prev.ips.length);
    expect(mine).toEqual([{ address: '10.99.0.2/24', gateway: '10.99.0.1', interface: 2 }]);
    expect(out.interfaces[mine[0].interface].name).toBe('eth0');
    expect(out.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.99.0.1' }]);
  });
});

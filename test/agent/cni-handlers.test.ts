// The verb handlers against the kernel: a test namespace plays the host (its
// bridge made here with `ip`, as the host network setup would), more test
// namespaces play containers. Nothing runs in the root namespace.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCniHandlers, type WeftCniHandlers } from '../../cni-plugin/agent/cni-handlers';
import { hostVethName } from '../../cni-plugin/agent/host/naming';
import { openIpamStore, type IpamStore } from '../../cni-plugin/agent/ipam-store';
import type { EndpointRecord, NetworkAttachment } from '../../cni-plugin/agent/state/types';
import { startCniServer } from '../../cni-plugin/cni/server';
import { CniError, CNI_ERR, type CniCommand, type CniRequest, type WeftNetConf } from '../../cni-plugin/cni/types';
import { captureLogger } from '../helpers/log';
import { callAgent } from './cni-call';
import { createTestNetns, ipJson, nsExec, removeTestNetns } from '../helpers/netns';

type IpLink = { ifname: string; ifindex: number; mtu: number; address: string; operstate: string; flags: string[]; master?: string; linkinfo?: { info_kind?: string } };
type IpAddr = { ifname: string; addr_info: Array<{ family: string; local: string; prefixlen: number }> };
type IpRoute = { dst: string; gateway?: string; dev: string };

const BLUE: NetworkAttachment = {
  network: 'blue', vni: 1, networkCidr: '10.99.0.0/16', subnet: '10.99.0.0/24', gateway: '10.99.0.1',
  vxlanDevice: 'weft.vx1', bridge: 'weft.br1', mtu: 1450,
};
const RED: NetworkAttachment = {
  network: 'red', vni: 2, networkCidr: '10.98.0.0/16', subnet: '10.98.0.0/24', gateway: '10.98.0.1',
  vxlanDevice: 'weft.vx2', bridge: 'weft.br2', mtu: 1450,
};
// a /29 on blue's bridge: .2 to .6 are the only container addresses
const SMALL: NetworkAttachment = { ...BLUE, network: 'small', subnet: '10.99.0.0/29' };

function thrownAsync(p: Promise<unknown>): Promise<CniError> {
  return p.then(
    () => {
      throw new Error('expected a CniError');
    },
    (e) => {
      expect(e).toBeInstanceOf(CniError);
      return e as CniError;
    },
  );
}

const tick = () => new Promise((r) => setImmediate(r));

describe('CNI handlers', () => {
  let hostNs: string;
  let made: string[];
  let dir: string;
  let ipam: IpamStore;
  let registered: EndpointRecord[];
  let released: EndpointRecord[];
  let attachments: Map<string, NetworkAttachment>;
  let h: WeftCniHandlers;

  const container = () => {
    const n = createTestNetns('c');
    made.push(n);
    return n;
  };
  const nsPath = (n: string) => `/run/netns/${n}`;

  function request(command: CniCommand, netns: string, containerId: string, o: { ifname?: string; network?: string; conf?: Partial<WeftNetConf>; args?: Record<string, string> } = {}): CniRequest {
    const config: WeftNetConf = {
      cniVersion: '1.1.0', name: 'weft', type: 'weft', network: o.network ?? 'blue', agentSocket: '/run/weft/cni.sock', raw: {},
      ...o.conf,
    };
    return { command, containerId, netns, ifname: o.ifname ?? 'eth0', args: o.args ?? {}, path: ['/opt/cni/bin'], config };
  }

  function hostLinks(): IpLink[] {
    return ipJson<IpLink[]>(hostNs, ['-d', 'link', 'show']);
  }
  function hostVeths(): string[] {
    return hostLinks().filter((l) => l.linkinfo?.info_kind === 'veth').map((l) => l.ifname).sort();
  }
  function ctrAddrs(ns: string): string[] {
    return ipJson<IpAddr[]>(ns, ['addr', 'show']).flatMap((l) => l.addr_info.filter((a) => a.family === 'inet').map((a) => `${l.ifname} ${a.local}/${a.prefixlen}`));
  }
  function ctrRoutes(ns: string): string[] {
    return ipJson<IpRoute[]>(ns, ['route', 'show']).map((r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${r.dev}`);
  }

  beforeEach(() => {
    made = [];
    hostNs = container();
    for (const [br, gw] of [['weft.br1', '10.99.0.1/24'], ['weft.br2', '10.98.0.1/24']]) {
      execFileSync('ip', ['-n', hostNs, 'link', 'add', br, 'type', 'bridge']);
      execFileSync('ip', ['-n', hostNs, 'addr', 'add', gw, 'dev', br]);
      execFileSync('ip', ['-n', hostNs, 'link', 'set', br, 'up']);
    }
    dir = mkdtempSync(join(tmpdir(), 'weft-cni-'));
    ipam = openIpamStore({ path: join(dir, 'agent.db') });
    registered = [];
    released = [];
    attachments = new Map([BLUE, RED, SMALL].map((a) => [a.network, a]));
    h = createCniHandlers({
      attachment: (n) => attachments.get(n),
      ipam,
      endpoints: { registered: (ep) => registered.push(ep), released: (ep) => released.push(ep) },
      hostNetns: nsPath(hostNs),
    });
  });

  afterEach(async () => {
    // let deferred endpoint reports land in this test's arrays, not the next one's
    await tick();
    ipam.close();
    rmSync(dir, { recursive: true, force: true });
    for (const n of made) removeTestNetns(n);
  });

  it('ADD creates the pair on the bridge, the address, lo up and a default route, and reports the endpoint', async () => {
    const c = container();
    const res = await h.add(request('ADD', nsPath(c), 'ctr-1', { args: { K8S_POD_NAMESPACE: 'shop', K8S_POD_NAME: 'web-0', 'weft.label.app': 'web' } }));
    const hostName = hostVethName('blue', 'ctr-1', 'eth0');
    expect(hostName).toMatch(/^wv[0-9a-f]{12}$/);

    const hostEnd = hostLinks().find((l) => l.ifname === hostName)!;
    expect(hostEnd).toMatchObject({ master: 'weft.br1', mtu: 1450, linkinfo: { info_kind: 'veth' } });
    expect(hostEnd.flags).toContain('UP');
    const eth0 = ipJson<IpLink[]>(c, ['link', 'show', 'eth0'])[0];
    expect(eth0.mtu).toBe(1450);
    expect(eth0.flags).toContain('UP');
    expect(ipJson<IpLink[]>(c, ['link', 'show', 'lo'])[0].flags).toContain('UP');
    expect(ctrAddrs(c)).toEqual(['lo 127.0.0.1/8', 'eth0 10.99.0.2/24']);
    expect(ctrRoutes(c)).toContain('default via 10.99.0.1 dev eth0');

    expect(res).toEqual({
      cniVersion: '1.1.0',
      interfaces: [
        { name: hostName, mac: expect.stringMatching(/^[0-9a-f:]{17}$/), mtu: 1450 },
        { name: 'eth0', mac: expect.stringMatching(/^[0-9a-f:]{17}$/), mtu: 1450, sandbox: nsPath(c) },
      ],
      ips: [{ address: '10.99.0.2/24', gateway: '10.99.0.1', interface: 1 }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.99.0.1' }],
    });
    // the MACs the runtime is told are the ones the kernel holds
    expect(res.interfaces!.map((i) => i.mac)).toEqual([hostEnd.address, eth0.address]);
    expect(ipam.list()).toMatchObject([{ network: 'blue', ip: '10.99.0.2', containerId: 'ctr-1', ifname: 'eth0', netns: nsPath(c) }]);

    // the report comes after the answer, never inside it
    expect(registered).toEqual([]);
    await tick();
    expect(registered).toEqual([
      { network: 'blue', ip: '10.99.0.2', containerId: 'ctr-1', ifname: 'eth0', labels: { 'k8s.pod.namespace': 'shop', 'k8s.pod.name': 'web-0', app: 'web' } },
    ]);
  });

  it('two containers on the bridge reach each other over TCP', async () => {
    const [a, b] = [container(), container()];
    await h.add(request('ADD', nsPath(a), 'ctr-a'));
    await h.add(request('ADD', nsPath(b), 'ctr-b'));
    expect(ctrAddrs(b)).toContain('eth0 10.99.0.3/24');

    const server = spawn('ip', ['netns', 'exec', a, process.execPath, '-e', `
      require('net').createServer((s) => s.on('data', (d) => s.end('echo:' + d))).listen(7070, '10.99.0.2', () => console.log('listening'));
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        server.on('exit', (code) => reject(new Error(`server exited (${code})`)));
        server.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
      });
      const reply = nsExec(b, process.execPath, ['-e', `
        const s = require('net').connect(7070, '10.99.0.2', () => s.write('hi'));
        let out = ''; s.on('data', (d) => (out += d)); s.on('end', () => process.stdout.write(out));
        s.setTimeout(5000, () => { console.error('timeout'); process.exit(1); });
      `]);
      expect(reply).toBe('echo:hi');
    } finally {
      server.removeAllListeners('exit');
      server.kill('SIGKILL');
    }
  });

  it('a repeated ADD for the same container returns the same address and result without a second pair', async () => {
    const c = container();
    const first = await h.add(request('ADD', nsPath(c), 'ctr-1'));
    const again = await h.add(request('ADD', nsPath(c), 'ctr-1'));
    expect(again).toEqual(first);
    expect(hostVeths()).toEqual([hostVethName('blue', 'ctr-1', 'eth0')]);
    expect(ipam.list()).toHaveLength(1);
  });

  it('a repeated ADD redoes an attachment left half-made (route missing)', async () => {
    const c = container();
    await h.add(request('ADD', nsPath(c), 'ctr-1'));
    execFileSync('ip', ['-n', c, 'route', 'del', 'default']);
    const again = await h.add(request('ADD', nsPath(c), 'ctr-1'));
    expect(again.ips).toEqual([{ address: '10.99.0.2/24', gateway: '10.99.0.1', interface: 1 }]);
    expect(ctrRoutes(c)).toContain('default via 10.99.0.1 dev eth0');
    expect(hostVeths()).toEqual([hostVethName('blue', 'ctr-1', 'eth0')]);
  });

  it('DEL removes the pair and the address, reports it, and a second DEL is fine', async () => {
    const c = container();
    await h.add(request('ADD', nsPath(c), 'ctr-1'));
    await h.del(request('DEL', nsPath(c), 'ctr-1'));
    expect(hostVeths()).toEqual([]);
    expect(ipJson<IpLink[]>(c, ['link', 'show']).map((l) => l.ifname)).toEqual(['lo']);
    expect(ipam.list()).toEqual([]);
    await h.del(request('DEL', nsPath(c), 'ctr-1'));
    await tick();
    expect(released).toEqual([{ network: 'blue', ip: '10.99.0.2', containerId: 'ctr-1', ifname: 'eth0', labels: {} }]);
  });

  it('DEL with an empty CNI_NETNS (containerd) still removes the pair and the address', async () => {
    const c = container();
    await h.add(request('ADD', nsPath(c), 'ctr-1'));
    await h.del(request('DEL', '', 'ctr-1'));
    expect(hostVeths()).toEqual([]);
    expect(ipam.list()).toEqual([]);
  });

  it('DEL after the container namespace was deleted succeeds and frees the address', async () => {
    const c = container();
    await h.add(request('ADD', nsPath(c), 'ctr-1'));
    removeTestNetns(c);
    await h.del(request('DEL', nsPath(c), 'ctr-1'));
    expect(ipam.list()).toEqual([]);
    // the kernel takes the pair down with the namespace, on its own schedule; our DEL must not have depended on it
    await expect.poll(hostVeths, { timeout: 5000 }).toEqual([]);
  });

  it('DEL without any ADD and without prevResult succeeds and does nothing', async () => {
    const c = container();
    await h.del(request('DEL', nsPath(c), 'never-added'));
    await h.del(request('DEL', '', 'never-added', { network: 'no-such-network' }));
    await tick();
    expect(released).toEqual([]);
    expect(hostVeths()).toEqual([]);
  });

  it('ADD refuses an unknown network (7), a missing netns (3) and an empty one (4) before touching anything', async () => {
    const c = container();
    const e1 = await thrownAsync(h.add(request('ADD', nsPath(c), 'x', { network: 'green' })));
    expect(e1.cniCode).toBe(CNI_ERR.INVALID_CONFIG);
    expect(e1.message).toContain('"green"');
    const e2 = await thrownAsync(h.add(request('ADD', '/run/netns/wtc-does-not-exist', 'x')));
    expect(e2.cniCode).toBe(CNI_ERR.UNKNOWN_CONTAINER);
    expect(e2.message).toContain('/run/netns/wtc-does-not-exist');
    const e3 = await thrownAsync(h.add(request('ADD', '', 'x')));
    expect(e3.cniCode).toBe(CNI_ERR.INVALID_ENV);
    expect(e3.message).toContain('CNI_NETNS');
    const e4 = await thrownAsync(h.add(request('ADD', nsPath(c), 'x', { ifname: 'this-name-is-too-long' })));
    expect(e4.cniCode).toBe(CNI_ERR.INVALID_ENV);
    expect(hostVeths()).toEqual([]);
    expect(ipam.list()).toEqual([]);
  });

  it('a failed ADD (the interface name is taken in the container) leaks neither a veth nor an address', async () => {
    const c = container();
    execFileSync('ip', ['-n', c, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'wtcpeer']);
    const e = await thrownAsync(h.add(request('ADD', nsPath(c), 'ctr-1')));
    expect(e.cniCode).toBe(CNI_ERR.INVALID_ENV);
    expect(e.message).toContain('eth0 already exists');
    expect(hostVeths()).toEqual([]);
    expect(ipam.list()).toEqual([]);
    // the container's own interface is left alone
    expect(ipJson<IpLink[]>(c, ['link', 'show']).map((l) => l.ifname).sort()).toEqual(['eth0', 'lo', 'wtcpeer']);
    await tick();
    expect(registered).toEqual([]);
  });

  it('a failed ADD after the pair exists (route clash in the container) undoes the pair and the address', async () => {
    const c = container();
    // a container with its own default route and a route to the whole weft network: ours clashes with the latter
    execFileSync('ip', ['-n', c, 'link', 'add', 'wtcdum', 'type', 'bridge']);
    execFileSync('ip', ['-n', c, 'link', 'set', 'wtcdum', 'up']);
    execFileSync('ip', ['-n', c, 'route', 'add', 'default', 'dev', 'wtcdum']);
    execFileSync('ip', ['-n', c, 'route', 'add', '10.99.0.0/16', 'dev', 'wtcdum']);
    const e = await thrownAsync(h.add(request('ADD', nsPath(c), 'ctr-1')));
    expect(e.cniCode).toBe(CNI_ERR.IO_FAILURE);
    expect(e.message).toContain('EEXIST');
    expect(e.message).toContain('ctr-1');
    expect(hostVeths()).toEqual([]);
    expect(ipJson<IpLink[]>(c, ['link', 'show']).map((l) => l.ifname).sort()).toEqual(['lo', 'wtcdum']);
    expect(ipam.list()).toEqual([]);
    // and the next ADD of another container gets a clean slate, address .2 was returned (round-robin moves on)
    const d = container();
    expect((await h.add(request('ADD', nsPath(d), 'ctr-2'))).ips![0].address).toBe('10.99.0.3/24');
  });

  it('a second weft network in the same container gets a route to its network, not a second default', async () => {
    const c = container();
    await h.add(request('ADD', nsPath(c), 'ctr-1'));
    const res = await h.add(request('ADD', nsPath(c), 'ctr-1', { network: 'red', ifname: 'eth1' }));
    expect(res.routes).toEqual([{ dst: '10.98.0.0/16', gw: '10.98.0.1' }]);
    expect(ctrRoutes(c)).toEqual(expect.arrayContaining(['default via 10.99.0.1 dev eth0', '10.98.0.0/16 via 10.98.0.1 dev eth1']));
    expect(hostLinks().find((l) => l.ifname === hostVethName('red', 'ctr-1', 'eth1'))?.master).toBe('weft.br2');
  });

  it('an ADD of the same ifname on another network fails and leaves the first network\'s pair alone', async () => {
    const c = container();
    await h.add(request('ADD', nsPath(c), 'ctr-1'));
    const e = await thrownAsync(h.add(request('ADD', nsPath(c), 'ctr-1', { network: 'red' })));
    expect(e.cniCode).toBe(CNI_ERR.INVALID_ENV);
    expect(e.message).toContain('eth0 already exists');
    expect(hostVeths()).toEqual([hostVethName('blue', 'ctr-1', 'eth0')]);
    expect(ipam.list().map((a) => a.network)).toEqual(['blue']);
    await h.check(request('CHECK', nsPath(c), 'ctr-1'));
  });

  it('CHECK passes on a good attachment and names what is wrong when the route is gone', async () => {
    const c = container();
    const res = await h.add(request('ADD', nsPath(c), 'ctr-1'));
    await h.check(request('CHECK', nsPath(c), 'ctr-1', { conf: { prevResult: res } }));
    const wrongPrev = await thrownAsync(h.check(request('CHECK', nsPath(c), 'ctr-1', { conf: { prevResult: { ...res, ips: [{ address: '10.99.0.9/24' }] } } })));
    expect(wrongPrev.cniCode).toBe(CNI_ERR.CHECK_MISMATCH);
    expect(wrongPrev.message).toContain('prevResult');

    execFileSync('ip', ['-n', c, 'route', 'del', 'default']);
    const e = await thrownAsync(h.check(request('CHECK', nsPath(c), 'ctr-1', { conf: { prevResult: res } })));
    expect(e.cniCode).toBe(CNI_ERR.CHECK_MISMATCH);
    expect(e.message).toContain('no route via gateway 10.99.0.1');

    execFileSync('ip', ['-n', hostNs, 'link', 'set', hostVethName('blue', 'ctr-1', 'eth0'), 'nomaster']);
    const e2 = await thrownAsync(h.check(request('CHECK', nsPath(c), 'ctr-1')));
    expect(e2.message).toContain('not a port of bridge weft.br1');

    const e3 = await thrownAsync(h.check(request('CHECK', nsPath(c), 'never-added')));
    expect(e3.cniCode).toBe(CNI_ERR.CHECK_MISMATCH);
    expect(e3.message).toContain('no address');
  });

  it('STATUS is ok with a subnet and the bridge up, else code 50 with the reason', async () => {
    await h.status(request('STATUS', '', '', {}));
    attachments.delete('blue');
    const e1 = await thrownAsync(h.status(request('STATUS', '', '')));
    expect(e1.cniCode).toBe(CNI_ERR.NOT_AVAILABLE);
    expect(e1.message).toContain('no subnet');
    attachments.set('blue', BLUE);
    execFileSync('ip', ['-n', hostNs, 'link', 'set', 'weft.br1', 'down']);
    const e2 = await thrownAsync(h.status(request('STATUS', '', '')));
    expect(e2.cniCode).toBe(CNI_ERR.NOT_AVAILABLE);
    expect(e2.message).toContain('weft.br1 is down');
    execFileSync('ip', ['-n', hostNs, 'link', 'del', 'weft.br1']);
    expect((await thrownAsync(h.status(request('STATUS', '', '')))).message).toContain('weft.br1 does not exist');
  });

  it('GC releases and unplugs only this network\'s attachments missing from validAttachments', async () => {
    const [a, b] = [container(), container()];
    await h.add(request('ADD', nsPath(a), 'ctr-a'));
    await h.add(request('ADD', nsPath(b), 'ctr-b'));
    await h.add(request('ADD', nsPath(b), 'ctr-b', { network: 'red', ifname: 'eth1' }));
    // without the runtime's list nothing may go
    await h.gc(request('GC', '', ''));
    expect(ipam.list()).toHaveLength(3);

    await h.gc(request('GC', '', '', { conf: { validAttachments: [{ containerID: 'ctr-a', ifname: 'eth0' }] } }));
    expect(hostVeths()).toEqual([hostVethName('blue', 'ctr-a', 'eth0'), hostVethName('red', 'ctr-b', 'eth1')].sort());
    expect(ipam.list().map((x) => `${x.network}:${x.containerId}/${x.ifname}`)).toEqual(['blue:ctr-a/eth0', 'red:ctr-b/eth1']);
    expect(ctrAddrs(b)).toEqual(['lo 127.0.0.1/8', 'eth1 10.98.0.2/24']);
    await tick();
    expect(released.map((r) => r.containerId)).toEqual(['ctr-b']);
  });

  it('gcOrphans frees allocations whose container namespace and host end are gone, and only those', async () => {
    const [a, b] = [container(), container()];
    await h.add(request('ADD', nsPath(a), 'ctr-a'));
    await h.add(request('ADD', nsPath(b), 'ctr-b'));
    // an agent that crashed between allocating and creating the pair
    ipam.allocate('blue', BLUE.subnet, BLUE.gateway, 'ctr-crashed', 'eth0', { netns: '/run/netns/wtc-long-gone' });
    removeTestNetns(b);
    await expect.poll(hostVeths, { timeout: 5000 }).toEqual([hostVethName('blue', 'ctr-a', 'eth0')]);
    const rep = await h.gcOrphans();
    expect(rep.released.map((r) => r.containerId).sort()).toEqual(['ctr-b', 'ctr-crashed']);
    expect(ipam.list().map((x) => x.containerId)).toEqual(['ctr-a']);
    expect(ctrAddrs(a)).toContain('eth0 10.99.0.2/24');
  });

  it('gcOrphans frees a container whose host end is gone even when its namespace path still opens, and deletes weft host ends no allocation accounts for', async () => {
    const [a, b] = [container(), container()];
    await h.add(request('ADD', nsPath(a), 'ctr-a'));
    await h.add(request('ADD', nsPath(b), 'ctr-b'));
    // ctr's /proc/<pid>/ns/net after the pid went to another process: the path opens, the pair is gone
    execFileSync('ip', ['-n', hostNs, 'link', 'del', hostVethName('blue', 'ctr-b', 'eth0')]);
    // a pair with weft's naming but no allocation (an ADD killed after plumbing, then released), and another tool's pair
    execFileSync('ip', ['-n', hostNs, 'link', 'add', 'wv0123456789ab', 'type', 'veth', 'peer', 'name', 'wtgcpeer']);
    execFileSync('ip', ['-n', hostNs, 'link', 'add', 'wvnotweft', 'type', 'veth', 'peer', 'name', 'wtgcother']);
    const rep = await h.gcOrphans();
    expect(rep.released.map((r) => r.containerId)).toEqual(['ctr-b']);
    expect(rep.deletedLinks).toEqual(['wv0123456789ab']);
    expect(ipam.list().map((x) => x.containerId)).toEqual(['ctr-a']);
    const names = ipJson<IpLink[]>(hostNs, ['link', 'show']).map((l) => l.ifname);
    expect(names).toContain('wvnotweft');
    expect(names).not.toContain('wtgcpeer');
    expect(ctrAddrs(a)).toContain('eth0 10.99.0.2/24');
    // nothing left to do: a second run changes nothing
    expect(await h.gcOrphans()).toEqual({ released: [], deletedLinks: [] });
  });

  it('a /29 runs out after five containers with code 100, and the failed ADD leaks nothing', async () => {
    const ips: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await h.add(request('ADD', nsPath(container()), `ctr-${i}`, { network: 'small' }));
      ips.push(res.ips![0].address);
    }
    expect(ips).toEqual(['10.99.0.2/29', '10.99.0.3/29', '10.99.0.4/29', '10.99.0.5/29', '10.99.0.6/29']);
    const c = container();
    const e = await thrownAsync(h.add(request('ADD', nsPath(c), 'ctr-5', { network: 'small' })));
    expect(e.cniCode).toBe(CNI_ERR.ADDRESSES_EXHAUSTED);
    expect(e.message).toContain('"small"');
    expect(e.message).toContain('10.99.0.0/29');
    expect(hostVeths()).toHaveLength(5);
    expect(ipJson<IpLink[]>(c, ['link', 'show']).map((l) => l.ifname)).toEqual(['lo']);
    expect(ipam.list('small')).toHaveLength(5);
  });

  it('a TypeError inside a handler reaches the runtime as internal error 999 with its message and is logged with its stack', async () => {
    // a dependency with a bug: the attachments it should look in are not there
    const lost: Map<string, NetworkAttachment> | undefined = undefined;
    const broken = createCniHandlers({
      attachment: (n) => lost!.get(n),
      ipam,
      endpoints: { registered: () => {}, released: () => {} },
      hostNetns: nsPath(hostNs),
    });
    const c = container();
    // the handler hands a fault on as it was thrown: it is no I/O failure of the container's
    const fault = await broken.add(request('ADD', nsPath(c), 'ctr-1')).then(() => undefined, (e: unknown) => e);
    expect(fault).toBeInstanceOf(TypeError);
    expect((fault as Error).message).toBe("Cannot read properties of undefined (reading 'get')");

    const { logger, lines } = captureLogger();
    const socketPath = join(dir, 'agent.sock');
    const server = await startCniServer({ socketPath, handlers: broken, logger });
    try {
      const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'ctr-1', CNI_NETNS: nsPath(c), CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };
      const r = await callAgent(socketPath, env, { cniVersion: '1.0.0', name: 'weft', type: 'weft', network: 'blue', agentSocket: socketPath });
      expect(r).toEqual({
        status: 1,
        out: { cniVersion: '1.0.0', code: 999, msg: "internal error in the weft agent: Cannot read properties of undefined (reading 'get')", details: 'TypeError' },
      });
      const logged = lines.filter((l) => l.level === 'error');
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({ msg: 'cni handler failed', command: 'ADD', containerId: 'ctr-1', cniCode: 999, err: { type: 'TypeError', message: (fault as Error).message } });
      // the stack says where: the handler that called the broken dependency
      expect(logged[0].err!.stack).toContain(`TypeError: ${(fault as Error).message}\n`);
      expect(logged[0].err!.stack).toMatch(/at requireAttachment .*cni-plugin\/agent\/cni-handlers\.ts/);
    } finally {
      await server.close();
    }
    expect(hostVeths()).toEqual([]);
    expect(ipam.list()).toEqual([]);
  });

  it('ADD while another writer holds the address database past its busy timeout answers 11 (try again later)', async () => {
    const other = new Database(join(dir, 'agent.db'));
    const impatient = openIpamStore({ path: join(dir, 'agent.db'), busyTimeoutMs: 50 });
    try {
      const busy = createCniHandlers({ attachment: (n) => attachments.get(n), ipam: impatient, endpoints: { registered: () => {}, released: () => {} }, hostNetns: nsPath(hostNs) });
      other.exec('BEGIN IMMEDIATE');
      const c = container();
      const e = await thrownAsync(busy.add(request('ADD', nsPath(c), 'ctr-1')));
      expect(e.cniCode).toBe(CNI_ERR.TRY_AGAIN_LATER);
      expect(e.code).toBe('WEFT_CNI_TRY_AGAIN_LATER');
      expect(e.message).toMatch(/^ADD eth0 of container ctr-1 in network "blue": the agent's address database is busy/);
      expect(e.details).toBe('SQLITE_BUSY');
      other.exec('ROLLBACK');
      // and once the other writer is done, the same ADD goes through
      expect((await busy.add(request('ADD', nsPath(c), 'ctr-1'))).ips).toHaveLength(1);
      await busy.del(request('DEL', nsPath(c), 'ctr-1'));
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
      impatient.close();
    }
  });

  it('labels: runtimeConfig wins over CNI_ARGS, and a throwing endpoint sink does not fail ADD', async () => {
    h = createCniHandlers({
      attachment: (n) => attachments.get(n),
      ipam,
      endpoints: {
        registered: (ep) => {
          registered.push(ep);
          throw new Error('controller away');
        },
        released: () => {},
      },
      hostNetns: nsPath(hostNs),
    });
    const c = container();
    const res = await h.add(request('ADD', nsPath(c), 'ctr-1', {
      args: { 'weft.label.app': 'web', 'weft.label.tier': 'front' },
      conf: { runtimeConfig: { labels: { app: 'api', ignored: 7 } } },
    }));
    expect(res.ips).toHaveLength(1);
    await tick();
    expect(registered[0].labels).toEqual({ app: 'api', tier: 'front' });
  });
});

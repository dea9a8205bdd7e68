// The lab against the real kernel: every claim about the topology is checked
// by sending packets through it, and teardown by listing what the kernel has.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, withLab, type Lab, type LabSpec } from './lab';
import { statePath } from './state';
import { planLab, planLinkNames } from './plan';
import { listNetns } from './run';
import { processAlive } from '../helpers/process';
import { waitFor } from '../helpers/wait';

let seq = 0;
/** Lab names unique to this test process, so parallel runs never meet. */
function labName(): string {
  return `t${process.pid.toString(36)}-${seq++}`;
}

function spec(name: string): LabSpec {
  return { name, datacenters: [{ name: 'dc1', racks: [{ name: 'a', hosts: ['h1', 'h2'] }, { name: 'b', hosts: ['h3'] }] }], controller: true };
}

// Other test files create and remove namespaces and links at the same time,
// so "nothing left" is checked on what could be the lab's: namespaces with
// this process's lab prefix, root links with a lab link name, root veths
// whose peer sits in a lab namespace.
const OUR_PREFIX = `wt-t${process.pid.toString(36)}-`;

function netnsList(): string[] {
  return listNetns().sort();
}

function ourNetns(): string[] {
  return netnsList().filter((n) => n.startsWith(OUR_PREFIX));
}

function rootLinks(): Array<{ ifname: string; link_netnsid?: number; linkinfo?: { info_kind?: string } }> {
  return JSON.parse(execFileSync('ip', ['-j', '-d', 'link', 'show'], { encoding: 'utf8' }));
}

/** Root links that belong to the lab: by name, or a veth peered into one of its namespaces. */
function rootLinksOfLab(lab: Lab): string[] {
  const names = new Set(planLinkNames(lab.plan));
  const ids = new Set(
    (JSON.parse(execFileSync('ip', ['-j', 'netns', 'list'], { encoding: 'utf8' }) || '[]') as Array<{ name: string; id?: number }>)
      .filter((n) => n.name.startsWith(lab.plan.prefix) && n.id !== undefined)
      .map((n) => n.id),
  );
  return rootLinks()
    .filter((l) => names.has(l.ifname) || (l.link_netnsid !== undefined && ids.has(l.link_netnsid)))
    .map((l) => l.ifname);
}


function ping(lab: Lab, netns: string, dst: string, extra: string[] = []) {
  return lab.exec(netns, 'ping', ['-n', '-c', '1', '-W', '2', ...extra, dst], { check: false });
}

function ttlOf(out: string): number {
  const m = /ttl=(\d+)/.exec(out);
  if (!m) throw new Error(`no reply in ping output:\n${out}`);
  return Number(m[1]);
}

const ECHO_SERVER = `
const net = require('node:net');
net.createServer((s) => s.pipe(s)).listen(Number(process.argv[1]), '0.0.0.0', () => console.log('listening'));
`;
// sends N bytes, expects them back, prints how many came back
const ECHO_CLIENT = `
const net = require('node:net');
const [host, port, size] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const payload = Buffer.alloc(size, 7);
let got = 0;
const s = net.connect(port, host, () => s.end(payload));
s.on('data', (d) => { got += d.length; });
s.on('end', () => { console.log(got); });
s.on('error', (e) => { console.error(e.message); process.exit(1); });
setTimeout(() => { console.error('timeout'); process.exit(2); }, 10000).unref();
`;

describe('a lab of two racks, three hosts and a controller', () => {
  let lab: Lab;
  let upMs = 0;

  beforeAll(async () => {
    const t0 = performance.now();
    lab = await createLab(spec(labName()));
    upMs = performance.now() - t0;
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it('comes up quickly and describes its hosts and controller', () => {
    expect(upMs).toBeLessThan(5000);
    expect(lab.hosts.map((h) => [h.name, h.rack, h.datacenter])).toEqual([
      ['h1', 'a', 'dc1'],
      ['h2', 'a', 'dc1'],
      ['h3', 'b', 'dc1'],
    ]);
    for (const h of lab.hosts) {
      const addrs = JSON.parse(lab.exec(h.netns, 'ip', ['-j', '-4', 'addr', 'show', 'dev', 'eth0']).stdout);
      expect(addrs[0].addr_info.map((a: { local: string }) => a.local)).toEqual([h.underlayIp]);
      const def = JSON.parse(lab.exec(h.netns, 'ip', ['-j', 'route', 'show', 'default']).stdout);
      expect(def).toEqual([expect.objectContaining({ gateway: h.gateway, dev: 'eth0' })]);
    }
    expect(lab.controller).toEqual({ netns: expect.stringMatching(/^wt-/), ip: '172.31.0.10' });
    for (const ns of lab.namespaces()) expect(ns.startsWith(`wt-${lab.name}.`)).toBe(true);
    expect(rootLinksOfLab(lab)).toEqual([]);
  });

  it('pings within a rack without an L3 hop and across racks through the router', () => {
    const [h1, h2, h3] = lab.hosts;
    const same = ping(lab, h1.netns, h2.underlayIp);
    expect(same.status).toBe(0);
    expect(ttlOf(same.stdout)).toBe(64);
    const across = ping(lab, h1.netns, h3.underlayIp);
    expect(across.status).toBe(0);
    expect(ttlOf(across.stdout)).toBe(63); // one router decremented it
    expect(lab.exec(h1.netns, 'ip', ['route', 'get', h2.underlayIp]).stdout).not.toContain(' via ');
    expect(lab.exec(h1.netns, 'ip', ['route', 'get', h3.underlayIp]).stdout).toContain(`via ${h1.gateway} dev eth0`);
  });

  it('carries TCP within a rack and across racks, full-size segments included', async () => {
    const [h1, h2, h3] = lab.hosts;
    const server = lab.spawn(h1.netns, process.execPath, ['-e', ECHO_SERVER, '7001']);
    await waitFor('echo server', () => server.output().includes('listening'), 10_000);
    for (const client of [h2, h3]) {
      const r = lab.exec(client.netns, process.execPath, ['-e', ECHO_CLIENT, h1.underlayIp, '7001', String(1 << 20)]);
      expect(r.stdout.trim()).toBe(String(1 << 20));
    }
    await server.stop();
    expect(processAlive(server.pid)).toBe(false);
  });

  it('reaches the controller from every host', () => {
    for (const h of lab.hosts) {
      const r = ping(lab, h.netns, lab.controller!.ip);
      expect(r.status, `${h.name}: ${r.stdout}${r.stderr}`).toBe(0);
      expect(ttlOf(r.stdout)).toBe(62); // rack router, then the WAN router
    }
  });

  it('has no path out: following the routes from any host ends unreachable inside the lab', () => {
    // map every lab address to its namespace, then follow `ip route get` hop by
    // hop without sending a packet towards the outside
    const owner = new Map<string, string>();
    for (const ns of lab.namespaces()) {
      for (const l of JSON.parse(lab.exec(ns, 'ip', ['-j', '-4', 'addr', 'show']).stdout)) {
        for (const a of l.addr_info) owner.set(a.local, ns);
      }
    }
    for (const h of [...lab.hosts, lab.controller!]) {
      for (const dst of ['1.1.1.1', '8.8.8.8', '10.0.0.1', '192.168.1.1']) {
        let ns = h.netns;
        const path = [ns];
        for (;;) {
          const r = lab.exec(ns, 'ip', ['route', 'get', dst], { check: false });
          if (r.status !== 0) {
            expect(r.stderr).toMatch(/unreachable/i);
            break;
          }
          const via = /via (\S+)/.exec(r.stdout)?.[1];
          expect(via, `${dst} from ${ns} leaves without a gateway: ${r.stdout}`).toBeDefined();
          const next = owner.get(via!);
          expect(next, `${dst}: next hop ${via} from ${ns} is not a lab address`).toBeDefined();
          path.push(next!);
          expect(path.length).toBeLessThan(6);
          ns = next!;
        }
        expect(path.every((n) => n.startsWith(`wt-${lab.name}.`))).toBe(true);
      }
    }
  });

  it('keeps the underlay at MTU 1500: every link, and a 1500-byte DF packet across the router', () => {
    for (const ns of lab.namespaces()) {
      for (const l of JSON.parse(lab.exec(ns, 'ip', ['-j', 'link', 'show']).stdout)) {
        if (l.ifname !== 'lo') expect(l.mtu, `${ns}/${l.ifname}`).toBe(1500);
      }
    }
    const [h1, , h3] = lab.hosts;
    expect(ping(lab, h1.netns, h3.underlayIp, ['-M', 'do', '-s', '1472']).status).toBe(0); // 1472 + 8 + 20 = 1500
    const tooBig = ping(lab, h1.netns, h3.underlayIp, ['-M', 'do', '-s', '1473']);
    expect(tooBig.status).not.toBe(0);
    expect(tooBig.stdout + tooBig.stderr).toMatch(/mtu ?= ?1500/i);
  });

  it('carries VXLAN across the router hop with the 1450 overlay MTU', () => {
    const [h1, , h3] = lab.hosts;
    const ends = [
      { h: h1, peer: h3, addr: '10.250.0.1' },
      { h: h3, peer: h1, addr: '10.250.0.2' },
    ];
    for (const e of ends) {
      // no MTU given: the kernel derives it from the underlay device, as weft's 1500 - 50
      lab.exec(e.h.netns, 'ip', ['link', 'add', 'name', 'wtvx', 'type', 'vxlan', 'id', '42', 'dstport', '4789', 'dev', 'eth0', 'local', e.h.underlayIp, 'remote', e.peer.underlayIp]);
      lab.exec(e.h.netns, 'ip', ['addr', 'add', `${e.addr}/24`, 'dev', 'wtvx']);
      lab.exec(e.h.netns, 'ip', ['link', 'set', 'wtvx', 'up']);
      expect(JSON.parse(lab.exec(e.h.netns, 'ip', ['-j', 'link', 'show', 'wtvx']).stdout)[0].mtu).toBe(1450);
    }
    expect(ping(lab, h1.netns, '10.250.0.2', ['-M', 'do', '-s', '1422']).status).toBe(0); // 1450 - 28
    for (const e of ends) lab.exec(e.h.netns, 'ip', ['link', 'del', 'wtvx']);
  });

  it('stops a spawned process together with the children it forked', async () => {
    const p = lab.spawn(lab.hosts[0].netns, 'sh', ['-c', 'sleep 300 & sleep 300 & echo $!; wait']);
    await waitFor('children', () => p.output().trim() !== '', 10_000);
    const child = Number(p.output().trim());
    expect(processAlive(child)).toBe(true);
    const st = await p.stop('SIGTERM', 2000);
    expect(st.signal ?? st.code).toBeTruthy();
    await waitFor('the forked child to die', () => !processAlive(child), 3000);
  });

  it('gives containers empty namespaces of their own, not wired by the lab', () => {
    const path = lab.addContainerNetns('h2', 'c1');
    expect(path).toBe(`/run/netns/wt-${lab.name}.h2.c1`);
    expect(existsSync(path)).toBe(true);
    const links = JSON.parse(execFileSync('ip', ['-n', `wt-${lab.name}.h2.c1`, '-j', 'link', 'show'], { encoding: 'utf8' }));
    expect(links.map((l: { ifname: string }) => l.ifname)).toEqual(['lo']);
    expect(lab.namespaces()).toContain(`wt-${lab.name}.h2.c1`);
  });
});

describe('lab teardown', () => {
  it('leaves no namespace, link, process or record behind, and can run twice', async () => {
    const nsBefore = ourNetns();
    const lab = await createLab(spec(labName()));
    expect(rootLinksOfLab(lab)).toEqual([]); // nothing of the lab ever sits in the root namespace
    const server = lab.spawn(lab.hosts[2].netns, 'sleep', ['300']);
    const container = lab.addContainerNetns(lab.hosts[0], 'c9');
    const grandchild = lab.spawn(container, 'sh', ['-c', 'sleep 300 & echo $!; wait']);
    await waitFor('grandchild', () => grandchild.output().trim() !== '', 10_000);
    const gc = Number(grandchild.output().trim());
    expect(existsSync(statePath(lab.name))).toBe(true);

    const t0 = performance.now();
    const report = await lab.destroy();
    const downMs = performance.now() - t0;
    expect(report.errors).toEqual([]);
    expect(report.strangers).toEqual([]);
    expect(downMs).toBeLessThan(5000);
    expect(ourNetns()).toEqual(nsBefore);
    expect(netnsList().filter((n) => n.startsWith(lab.plan.prefix))).toEqual([]);
    expect(rootLinksOfLab(lab)).toEqual([]);
    for (const pid of [server.pid, grandchild.pid, gc]) await waitFor(`pid ${pid} to exit`, () => !processAlive(pid), 3000);
    expect(existsSync(statePath(lab.name))).toBe(false);
    await lab.destroy(); // idempotent
  });

  it('cleans up after a create that fails halfway, and leaves a namespace it did not make', async () => {
    const name = labName();
    const nsBefore = ourNetns();
    // a namespace already holding the name of the last host: the real kernel refuses the lab there
    const squatter = `wt-${name}.h3`;
    execFileSync('ip', ['netns', 'add', squatter]);
    try {
      await expect(createLab(spec(name))).rejects.toThrow(/netns add/);
      expect(ourNetns()).toEqual([...nsBefore, squatter].sort());
      expect(rootLinksOfLab({ plan: planLab(spec(name)) } as Lab)).toEqual([]);
      expect(existsSync(statePath(name))).toBe(false);
    } finally {
      execFileSync('ip', ['netns', 'del', squatter]);
    }
    expect(ourNetns()).toEqual(nsBefore);
  });

  it('refuses a second lab of the same name while the first is up', async () => {
    await withLab(spec(labName()), async (lab) => {
      await expect(createLab(spec(lab.name))).rejects.toThrow(/exists/);
      expect(ping(lab, lab.hosts[0].netns, lab.hosts[2].underlayIp).status).toBe(0);
    });
  });

  it('is removed by `lab down` from another process, processes included', async () => {
    const nsBefore = ourNetns();
    const lab = await createLab(spec(labName()));
    const sleeper = lab.spawn(lab.hosts[1].netns, 'sleep', ['300']);
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/lab/cli.ts', 'down', lab.name], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    await sleeper.wait();
    expect(processAlive(sleeper.pid)).toBe(false);
    expect(ourNetns()).toEqual(nsBefore);
    await lab.destroy(); // the owner's teardown finds nothing left and does not fail
  });
});

describe('two datacenters', () => {
  it('joins them through the WAN router: three routers between datacenters, one between racks', async () => {
    const twoDc: LabSpec = {
      name: labName(),
      datacenters: [
        { name: 'east', racks: [{ name: 'a', hosts: ['e1'] }, { name: 'b', hosts: ['e2'] }] },
        { name: 'west', racks: [{ name: 'a', hosts: ['w1'] }] },
      ],
      controller: true,
    };
    await withLab(twoDc, (lab) => {
      const [e1, e2, w1] = lab.hosts;
      expect([e1.datacenter, w1.datacenter, w1.rack]).toEqual(['east', 'west', 'a']);
      expect(ttlOf(ping(lab, e1.netns, e2.underlayIp).stdout)).toBe(63);
      const wan = ping(lab, e1.netns, w1.underlayIp);
      expect(wan.status, wan.stdout + wan.stderr).toBe(0);
      expect(ttlOf(wan.stdout)).toBe(61); // east router, WAN router, west router
      for (const h of lab.hosts) expect(ping(lab, h.netns, lab.controller!.ip).status).toBe(0);
      // the WAN router holds routes to every rack of both datacenters and nothing else
      const wanRoutes = JSON.parse(lab.exec(lab.plan.wan, 'ip', ['-j', 'route', 'show']).stdout) as Array<{ dst: string }>;
      expect(wanRoutes.map((r) => r.dst)).not.toContain('default');
    });
  });
});

describe('two labs at once', () => {
  it('coexist with the same addresses, isolated, and removing one leaves the other working', async () => {
    const nsBefore = ourNetns();
    const a = await createLab(spec(labName()));
    try {
      const b = await createLab(spec(labName()));
      try {
        expect(a.hosts[0].underlayIp).toBe(b.hosts[0].underlayIp);
        const server = b.spawn(b.hosts[2].netns, process.execPath, ['-e', ECHO_SERVER, '7002']);
        await waitFor('echo server in lab b', () => server.output().includes('listening'), 10_000);
        // the same address in lab a has no server: the labs do not see each other
        const fromA = a.exec(a.hosts[0].netns, process.execPath, ['-e', ECHO_CLIENT, a.hosts[2].underlayIp, '7002', '10'], { check: false });
        expect(fromA.status).not.toBe(0);
        expect(fromA.stderr).toMatch(/ECONNREFUSED/);
        const fromB = b.exec(b.hosts[0].netns, process.execPath, ['-e', ECHO_CLIENT, b.hosts[2].underlayIp, '7002', '10']);
        expect(fromB.stdout.trim()).toBe('10');
      } finally {
        await b.destroy();
      }
      expect(ping(a, a.hosts[0].netns, a.controller!.ip).status).toBe(0);
    } finally {
      await a.destroy();
    }
    expect(ourNetns()).toEqual(nsBefore);
  });
});

describe('npm run lab', () => {
  it('brings a lab up from a spec file in a process that exits, reports it, and takes it down', () => {
    const name = labName();
    const dir = mkdtempSync(join(tmpdir(), 'wtlab-'));
    const file = join(dir, 'spec.json');
    writeFileSync(file, JSON.stringify(spec(name)));
    const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'test/lab/cli.ts', ...args], { encoding: 'utf8' });
    const nsBefore = ourNetns();
    try {
      // namespaces and links only: lab-up.test.ts covers the weft cluster that `up` builds by default
      const up = cli('up', file, '--no-weft');
      expect(up.status, up.stderr).toBe(0);
      expect(up.stdout).toContain('172.31.2.11');
      // the creating process is gone; the lab is still up and usable
      const pingOut = cli('exec', name, 'h1', 'ping', '-n', '-c', '1', '-W', '2', '172.31.0.10');
      expect(pingOut.status, pingOut.stderr).toBe(0);
      expect(cli('status').stdout).toMatch(new RegExp(`${name}: ready, 7/7 namespaces`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
      const down = cli('down', name);
      expect(down.status, down.stderr).toBe(0);
    }
    expect(ourNetns()).toEqual(nsBefore);
    expect(cli('status').stdout).not.toContain(name);
  });
});

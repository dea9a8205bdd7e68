// A gateway's dataplane for real (wireguard-go: this kernel has no WireGuard
// module): weft.wg0 with its peer, weft.xdc nested in it, the routes and
// entries; a packet from this gateway's bridge address reaches a remote
// gateway's through the tunnel; a second reconcile sends nothing; a new key
// file is picked up; and it all goes when the host stops being a gateway.
// The remote gateway is set up by hand from the dataplane library, under
// test-prefixed names.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../controller/common/log';
import type { RemoteHost, Topology } from '../../cni-plugin/agent/state/types';
import { WG_KEY_FILE } from '../../cni-plugin/agent/state/wireguard-keys';
import { createGateway, type Gateway } from '../../cni-plugin/agent/tunnel/gateway';
import { deriveMtu } from '../../cni-plugin/agent/tunnel/mtu';
import { planTunnel, xdcMacFor } from '../../cni-plugin/agent/tunnel/policy';
import { openHandle, type Handle } from '../../dataplane/netlink/handle';
import { reconcileDevice } from '../../dataplane/wireguard/reconcile';
import { generateKeyPair } from '../../dataplane/wireguard/types';
import { startUserspaceDevice, type UserspaceDevice } from '../../dataplane/wireguard/userspace';
import { uniqueName } from '../helpers/names';
import { ipJson, useTestNetns } from '../helpers/netns';
import { processAlive } from '../helpers/process';
import { requireSystem } from '../helpers/system';
import { waitFor } from '../helpers/wait';

requireSystem([{ pkg: 'wireguard-go', command: 'wireguard-go' }, { pkg: 'iputils-ping', command: 'ping' }]);

const ns = useTestNetns('gw', 2);
let gateway: Gateway | undefined;
let remote: UserspaceDevice | undefined;
let h: Handle | undefined;
let dir: string | undefined;
afterEach(async () => {
  await gateway?.reconcile(undefined).catch(() => {});
  gateway?.close();
  await remote?.stop().catch(() => {});
  h?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  gateway = undefined;
  remote = undefined;
  h = undefined;
  dir = undefined;
});

const ip = (netns: string, ...args: string[]) => execFileSync('ip', ['-n', netns, ...args]);

function hostRec(name: string, dc: string, third: number): RemoteHost {
  return { name, underlayIp: `203.0.113.${third}`, vtepMac: `02:00:00:00:00:${third.toString(16).padStart(2, '0')}`, rack: 'r', datacenter: dc, subnets: { a: `10.244.${third}.0/24` } };
}

function topology(keys: { g1: string; g2: string }): Topology {
  const hosts = [hostRec('g1', 'dc1', 1), hostRec('g2', 'dc2', 2)];
  const dc = (name: string, g: string, key: string, third: number) => ({
    name, listenPort: 51820, mtu: 0, mesh: false, pools: {},
    gateways: [{ host: g, state: 'active' as const, wgPublicKey: key, wanEndpoint: `203.0.113.${third}:51820` }],
    subnets: [{ network: 'a', subnet: `10.244.${third}.0/24`, host: g }],
  });
  return { revision: 3, hosts, vxlanPort: 4789, networks: [{ name: 'a', vni: 1, cidr: '10.244.0.0/16' }], datacenters: [dc('dc1', 'g1', keys.g1, 1), dc('dc2', 'g2', keys.g2, 2)] };
}

/** g1 is weft's gateway under test; g2 the remote one, built by hand the way a weft gateway is. */
async function build() {
  const [g1, g2] = ns();
  const wan = uniqueName('gw');
  ip(g1, 'link', 'add', wan, 'type', 'veth', 'peer', 'name', 'wan0', 'netns', g2);
  ip(g1, 'addr', 'add', '203.0.113.1/24', 'dev', wan);
  ip(g2, 'addr', 'add', '203.0.113.2/24', 'dev', 'wan0');
  ip(g1, 'link', 'set', wan, 'up');
  ip(g2, 'link', 'set', 'wan0', 'up');
  // each gateway's VTEP (tunnel) address and bridge address, as its host network would hold them
  for (const [n, third] of [[g1, 1], [g2, 2]] as const) {
    const d = uniqueName('gd');
    ip(n, 'link', 'add', d, 'type', 'bridge');
    ip(n, 'addr', 'add', `10.244.${third}.0/32`, 'dev', d);
    ip(n, 'addr', 'add', `10.244.${third}.1/32`, 'dev', d);
    ip(n, 'link', 'set', d, 'up');
  }
  const k1 = generateKeyPair();
  const k2 = generateKeyPair();
  dir = mkdtempSync(join(tmpdir(), 'weft-gw-'));
  writeFileSync(join(dir, WG_KEY_FILE), k1.privateKey + '\n', { mode: 0o600 });

  const wg2 = uniqueName('gw');
  const x2 = uniqueName('gx');
  remote = await startUserspaceDevice({ name: wg2, netns: g2, log: silentLogger });
  await reconcileDevice(remote, { privateKey: k2.privateKey, listenPort: 51820, peers: [{ publicKey: k1.publicKey, endpoint: '203.0.113.1:51820', allowedIps: ['10.244.1.0/32'], persistentKeepalive: 25 }] });
  ip(g2, 'link', 'set', wg2, 'up');
  ip(g2, 'route', 'add', '10.244.1.0/32', 'dev', wg2);
  ip(g2, 'link', 'add', x2, 'address', xdcMacFor('g2'), 'type', 'vxlan', 'id', '16777215', 'dstport', '4790', 'local', '10.244.2.0', 'nolearning');
  ip(g2, 'link', 'set', x2, 'mtu', '1390', 'up');
  ip(g2, 'neigh', 'add', '10.244.1.0', 'lladdr', xdcMacFor('g1'), 'dev', x2, 'nud', 'permanent');
  execFileSync('bridge', ['-n', g2, 'fdb', 'append', xdcMacFor('g1'), 'dst', '10.244.1.0', 'dev', x2, 'self', 'permanent']);
  ip(g2, 'route', 'add', '10.244.1.0/24', 'via', '10.244.1.0', 'dev', x2, 'onlink');

  h = openHandle({ netns: g1 });
  gateway = createGateway({ h, netns: g1, stateDir: dir, underlayIp: '203.0.113.1', log: silentLogger, backend: 'userspace' });
  const plan = planTunnel({ topology: topology({ g1: k1.publicKey, g2: k2.publicKey }), self: 'g1', datacenter: 'dc1', attachments: [ATTACHMENT], choices: new Map([['dc2', 'g2']]) });
  return { g1, g2, k1, k2, plan, wg2 };
}

const ATTACHMENT = {
  network: 'a', vni: 1, networkCidr: '10.244.0.0/16', subnet: '10.244.1.0/24', gateway: '10.244.1.1', vxlanDevice: 'weft.vx1', bridge: 'weft.br1', mtu: 1450,
};

const ping = (netns: string, from: string, to: string) => spawnSync('ip', ['netns', 'exec', netns, 'ping', '-c', '1', '-W', '1', '-I', from, to], { encoding: 'utf8' }).status === 0;

describe('gateway dataplane', () => {
  it('builds weft.wg0 and weft.xdc, carries traffic to the remote gateway, sends nothing the second time, and removes it all', async () => {
    const { g1, k2, plan } = await build();
    expect(plan.role).toBe('gateway');
    const first = await gateway!.reconcile(plan.wireguard);
    expect(first!.wireguard.writes).toBe(1);
    expect(first!.mtu).toEqual({ wg: 1440, xdc: 1390, source: 'derived' });

    const links = ipJson<any[]>(g1, ['-d', 'link', 'show']);
    const wg = links.find((l) => l.ifname === 'weft.wg0');
    const xdc = links.find((l) => l.ifname === 'weft.xdc');
    expect(wg).toMatchObject({ mtu: 1440 });
    expect(xdc).toMatchObject({ mtu: 1390, address: xdcMacFor('g1') });
    expect(xdc.linkinfo.info_data).toMatchObject({ id: 16777215, port: 4790, local: '10.244.1.0', learning: false });
    const routes = ipJson<any[]>(g1, ['route', 'show', 'proto', '119']);
    expect(routes).toEqual(expect.arrayContaining([
      expect.objectContaining({ dst: '10.244.2.0', dev: 'weft.wg0' }),
      expect.objectContaining({ dst: '10.244.2.0/24', gateway: '10.244.2.0', dev: 'weft.xdc' }),
    ]));

    // the bridge address of one gateway to the other's, through weft.xdc inside WireGuard
    await waitFor('ping 10.244.1.1 -> 10.244.2.1 through the tunnel', () => ping(g1, '10.244.1.1', '10.244.2.1'), 15_000);
    const peers = await gateway!.peers();
    expect(peers).toEqual([expect.objectContaining({ host: 'g2', datacenter: 'dc2', endpoint: '203.0.113.2:51820' })]);
    expect(peers[0].handshakeAgeSeconds).toBeGreaterThanOrEqual(0);
    expect(peers[0].txBytes).toBeGreaterThan(0);
    expect(k2.publicKey).toBeTruthy();

    // nothing changed: nothing sent, nothing re-keyed
    const second = await gateway!.reconcile(plan.wireguard);
    expect(second!.requests).toBe(0);
    expect(second!.wireguard.writes).toBe(0);

    // no longer a gateway: devices, routes and wireguard-go go
    const pid = Number(spawnSync('ip', ['netns', 'pids', g1], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean)[0]);
    await gateway!.reconcile(undefined);
    expect(ipJson<any[]>(g1, ['link', 'show']).map((l) => l.ifname)).not.toContain('weft.xdc');
    await waitFor('weft.wg0 gone', () => !ipJson<any[]>(g1, ['link', 'show']).some((l) => l.ifname === 'weft.wg0'), 10_000);
    if (pid) await waitFor('wireguard-go gone', () => !processAlive(pid), 10_000);
    expect(ipJson<any[]>(g1, ['route', 'show', 'proto', '119'])).toEqual([]);
  });

  it('reads the key file at every reconcile: a rotated key is set on the device', async () => {
    const { plan } = await build();
    await gateway!.reconcile(plan.wireguard);
    const next = generateKeyPair();
    writeFileSync(join(dir!, WG_KEY_FILE), next.privateKey + '\n', { mode: 0o600 });
    const r = await gateway!.reconcile(plan.wireguard);
    expect(r!.wireguard).toMatchObject({ deviceFields: 1, writes: 1 });
    const again = await gateway!.reconcile(plan.wireguard);
    expect(again!.wireguard.writes).toBe(0);
    expect(readFileSync(join(dir!, WG_KEY_FILE), 'utf8').trim()).toBe(next.privateKey);
  });
});

describe('deriveMtu', () => {
  it('configured, derived from the underlay, lowered to a learned path MTU, never below what carries IPv6', () => {
    expect(deriveMtu(1400, 1500, [])).toEqual({ wg: 1400, xdc: 1350, source: 'configured' });
    expect(deriveMtu(0, 1500, [{ endpoint: 'x', family: 2, linkMtu: 1500 }])).toEqual({ wg: 1440, xdc: 1390, source: 'derived' });
    expect(deriveMtu(0, 1500, [{ endpoint: 'x', family: 10, linkMtu: 1500 }])).toEqual({ wg: 1420, xdc: 1370, source: 'derived' });
    expect(deriveMtu(0, 1500, [{ endpoint: 'x', family: 2, linkMtu: 1500, learned: 1400 }])).toEqual({ wg: 1340, xdc: 1290, source: 'probed' });
    expect(deriveMtu(0, 1500, [{ endpoint: 'x', family: 2, linkMtu: 1500, learned: 600 }]).wg).toBe(1330);
  });
});

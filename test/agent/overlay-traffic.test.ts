// Real packets across the overlay: two "host" namespaces joined by a veth
// (the underlay), each with its host network ensured and the overlay
// reconciled for the other, each with one "container" namespace on its
// bridge. A TCP connection from one container to the other must work, keep
// the container's own source address, and cross the VXLAN devices.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { openHandle, type Handle } from '../../dataplane/netlink/handle';
import { ensureHostNetwork } from '../../cni-plugin/agent/host/host-network';
import { reconcileOverlay } from '../../cni-plugin/agent/host/overlay';
import type { NetworkAttachment, Topology } from '../../cni-plugin/agent/state/types';
import { ipJson, nsExec, useTestNetns } from '../helpers/netns';
import { uniqueName } from '../helpers/names';
import { ip, underlay } from './fixtures';

const PORT = 7000;
const BYTES = 256 * 1024;
// says who it sees, then echoes everything back
const SERVER = `
const srv = require('net').createServer({ allowHalfOpen: true }, (s) => { s.write(s.remoteAddress + '\\n'); s.pipe(s); });
srv.listen(${PORT}, '0.0.0.0', () => console.log('listening'));
`;
const CLIENT = `
const [host, port, bytes] = process.argv.slice(1);
const payload = require('crypto').randomBytes(Number(bytes));
const s = require('net').connect({ host, port: Number(port), allowHalfOpen: true });
const chunks = [];
s.setTimeout(5000, () => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(0); });
s.on('connect', () => s.end(payload));
s.on('data', (d) => chunks.push(d));
s.on('end', () => {
  const all = Buffer.concat(chunks);
  const nl = all.indexOf(10);
  console.log(JSON.stringify({ seen: all.subarray(0, nl).toString(), echoed: all.subarray(nl + 1).equals(payload), length: all.length - nl - 1 }));
  process.exit(0);
});
s.on('error', (e) => { console.log(JSON.stringify({ error: e.code })); process.exit(0); });
`;

const servers: ChildProcess[] = [];
const handles: Handle[] = [];

afterEach(() => {
  for (const s of servers.splice(0)) if (s.pid && s.exitCode === null) process.kill(s.pid, 'SIGKILL');
  for (const h of handles.splice(0)) h.close();
});

/** A container namespace on the host's bridge, the way a CNI ADD would wire it (done with `ip` here). */
function attachContainer(host: string, ctr: string, att: NetworkAttachment, addr: string): void {
  const hostSide = uniqueName('h');
  ip(['-n', host, 'link', 'add', hostSide, 'mtu', String(att.mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ctr]);
  ip(['-n', host, 'link', 'set', hostSide, 'master', att.bridge]);
  ip(['-n', host, 'link', 'set', hostSide, 'up']);
  ip(['-n', ctr, 'addr', 'add', `${addr}/${att.subnet.split('/')[1]}`, 'dev', 'eth0']);
  ip(['-n', ctr, 'link', 'set', 'eth0', 'up']);
  ip(['-n', ctr, 'route', 'add', 'default', 'via', att.gateway]);
}

async function listen(ns: string): Promise<void> {
  // `ip netns exec` execs node in place, so the PID is the server's own
  const p = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  servers.push(p);
  const [line] = (await once(p.stdout!, 'data')) as [Buffer];
  expect(line.toString()).toContain('listening');
}

function vxCounters(ns: string, dev: string): { tx: number; rx: number } {
  const [l] = ipJson<Array<{ stats64: { tx: { bytes: number }; rx: { bytes: number } } }>>(ns, ['-s', 'link', 'show', 'dev', dev]);
  return { tx: l.stats64.tx.bytes, rx: l.stats64.rx.bytes };
}

describe('container to container across the VXLAN overlay', () => {
  const nss = useTestNetns('h', 4);

  it('carries a TCP connection both ways, unmasqueraded, through the VTEPs', async () => {
    const [hostA, hostB, ctrA, ctrB] = nss();
    underlay(hostA, '192.168.90.1/24', { peerNs: hostB, peerCidr: '192.168.90.2/24' });
    const hosts = [
      { name: 'a', ns: hostA, underlayIp: '192.168.90.1', vtepMac: '02:77:00:00:00:0a', subnet: '10.96.1.0/24' },
      { name: 'b', ns: hostB, underlayIp: '192.168.90.2', vtepMac: '02:77:00:00:00:0b', subnet: '10.96.2.0/24' },
    ];
    const topology: Topology = {
      revision: 1,
      hosts: hosts.map((x) => ({ name: x.name, underlayIp: x.underlayIp, vtepMac: x.vtepMac, rack: 'r1', datacenter: 'dc1', subnets: { pods: x.subnet } })),
      networks: [{ name: 'pods', vni: 42, cidr: '10.96.0.0/12' }],
      vxlanPort: 4789,
    };
    const atts = hosts.map((x) => {
      const h = openHandle({ netns: x.ns });
      handles.push(h);
      const [att] = ensureHostNetwork(h, {
        self: { underlayIp: x.underlayIp, vtepMac: x.vtepMac },
        attachments: [{ network: 'pods', vni: 42, networkCidr: '10.96.0.0/12', subnet: x.subnet }],
        vxlanPort: topology.vxlanPort,
      });
      expect(reconcileOverlay(h, topology, x.name, [att])).toMatchObject({ desired: 3, added: 3, failed: 0 });
      return att;
    });
    attachContainer(hostA, ctrA, atts[0], '10.96.1.2');
    attachContainer(hostB, ctrB, atts[1], '10.96.2.2');
    await listen(ctrB);

    const before = { a: vxCounters(hostA, 'weft.vx42'), b: vxCounters(hostB, 'weft.vx42') };
    const out = JSON.parse(nsExec(ctrA, process.execPath, ['-e', CLIENT, '10.96.2.2', String(PORT), String(BYTES)]).trim());
    expect(out).toEqual({ seen: '10.96.1.2', echoed: true, length: BYTES });
    const after = { a: vxCounters(hostA, 'weft.vx42'), b: vxCounters(hostB, 'weft.vx42') };
    // the payload went out of A's VTEP and into B's, and the echo the other way
    expect(after.a.tx - before.a.tx).toBeGreaterThan(BYTES);
    expect(after.b.rx - before.b.rx).toBeGreaterThan(BYTES);
    expect(after.b.tx - before.b.tx).toBeGreaterThan(BYTES);
    expect(after.a.rx - before.a.rx).toBeGreaterThan(BYTES);
  });

  it('stops carrying traffic to a host once it leaves the topology, and carries it again when it returns', async () => {
    const [hostA, hostB, ctrA, ctrB] = nss();
    underlay(hostA, '192.168.90.1/24', { peerNs: hostB, peerCidr: '192.168.90.2/24' });
    const mk = (name: string, underlayIp: string, vtepMac: string, subnet: string) => ({ name, underlayIp, vtepMac, rack: 'r1', datacenter: 'dc1', subnets: { pods: subnet } });
    const a = mk('a', '192.168.90.1', '02:77:00:00:00:0a', '10.96.1.0/24');
    const b = mk('b', '192.168.90.2', '02:77:00:00:00:0b', '10.96.2.0/24');
    const topo = (hosts: ReturnType<typeof mk>[], revision: number): Topology => ({ revision, hosts, networks: [{ name: 'pods', vni: 42, cidr: '10.96.0.0/12' }], vxlanPort: 4789 });
    const hA = openHandle({ netns: hostA });
    const hB = openHandle({ netns: hostB });
    handles.push(hA, hB);
    const ensure = (h: Handle, self: ReturnType<typeof mk>) =>
      ensureHostNetwork(h, { self: { underlayIp: self.underlayIp, vtepMac: self.vtepMac }, attachments: [{ network: 'pods', vni: 42, networkCidr: '10.96.0.0/12', subnet: self.subnets.pods }], vxlanPort: 4789 });
    const attA = ensure(hA, a);
    const attB = ensure(hB, b);
    reconcileOverlay(hA, topo([a, b], 1), 'a', attA);
    reconcileOverlay(hB, topo([a, b], 1), 'b', attB);
    attachContainer(hostA, ctrA, attA[0], '10.96.1.2');
    attachContainer(hostB, ctrB, attB[0], '10.96.2.2');
    await listen(ctrB);
    const call = () => JSON.parse(nsExec(ctrA, process.execPath, ['-e', CLIENT, '10.96.2.2', String(PORT), '1000']).trim());

    expect(call()).toMatchObject({ seen: '10.96.1.2', echoed: true });
    expect(reconcileOverlay(hA, topo([a], 2), 'a', attA)).toMatchObject({ deleted: 3 });
    // without the route the host sends it to its default (none here): unreachable at once, not a hang
    expect(call().error).toMatch(/^(ENETUNREACH|EHOSTUNREACH)$/);
    expect(reconcileOverlay(hA, topo([a, b], 3), 'a', attA)).toMatchObject({ added: 3 });
    expect(call()).toMatchObject({ seen: '10.96.1.2', echoed: true });
  });
});

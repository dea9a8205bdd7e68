// A mesh datacenter (weft datacenter add dc1 --mesh): its hosts' overlay
// traffic among themselves goes inside WireGuard too. Containers on two hosts
// of dc1 reach each other with their own addresses; on dc1's underlay only
// WireGuard runs between hosts, never VXLAN and never a payload in the clear;
// wireguard-go killed on a host drops the traffic instead of sending it in
// the clear, and the agent brings it back; an agent restart remakes nothing
// and loses no packet; dc2 (no mesh) is still reached through the gateways;
// a mesh host's key rotation goes on inside WireGuard; and `weft explain`
// follows the FDB entry's tunnel address into weft.wg0 and its peer, naming
// the removed peer as the break.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { Explanation, Hop } from '../../cni-plugin/agent/explain/verdicts';
import { joinArgs } from '../e2e/cluster';
import { nsExecAsync } from '../e2e/traffic';
import { ipJson } from '../helpers/ip';
import { GiveUp, waitFor } from '../helpers/wait';
import { ping, tcpSend, TCP_SINK } from '../e2e/traffic';
import type { LabHost, LabProcess } from '../lab/lab';
import { WG_KEY_FILE } from '../../cni-plugin/agent/state/wireguard-keys';
import { createTunnelLab, DC1, serve, startPingStream, udpAsk, UDP_ECHO, WG_PORT, type TunnelLab } from './lab';

let t: TunnelLab;
const SECRET = 'weft-mesh-cleartext-marker';
const SECRET_HEX = Buffer.from('meshleak').toString('hex');
const c = (name: string) => t.containers.get(name)!;

/** The overlay's VXLAN source on a host: what weft.vx1 was made with. */
function vxlanLocal(h: LabHost): string | undefined {
  const [l] = ipJson<Array<{ ifindex: number; linkinfo?: { info_data?: { local?: string } } }>>(h.netns, ['-d', 'link', 'show', 'dev', 'weft.vx1']);
  return l?.linkinfo?.info_data?.local;
}
const vxlanIndex = (h: LabHost) => ipJson<Array<{ ifindex: number }>>(h.netns, ['link', 'show', 'dev', 'weft.vx1'])[0]?.ifindex;

/** tcpdump on the host's underlay device (the one its route to `peer` takes): what the datacenter's network sees. */
async function captureUnderlay(h: LabHost, peer: LabHost, tag: string) {
  const [route] = ipJson<Array<{ dev: string }>>(h.netns, ['route', 'get', peer.underlayIp]);
  const file = join(t.dir, `${tag}.pcap`);
  const log = join(t.dir, `${tag}.log`);
  writeFileSync(log, '');
  const p: LabProcess = t.lab.spawn(h.netns, 'tcpdump', ['-i', route.dev, '-nn', '-U', '--immediate-mode', '-s', '2048', '-w', file], { logFile: log });
  await waitFor(`tcpdump on ${h.name} ${route.dev} to listen`, () => {
    if (p.exited) throw new GiveUp(`tcpdump exited: ${readFileSync(log, 'utf8')}`);
    return readFileSync(log, 'utf8').includes('listening on');
  }, 10_000);
  return {
    dev: route.dev,
    async stop(): Promise<{ lines: string[]; raw: Buffer }> {
      await p.stop('SIGINT', 3000);
      const r = spawnSync('tcpdump', ['-r', file, '-nn'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
      if (r.status !== 0) throw new Error(`tcpdump -r ${file}: ${r.stderr}`);
      return { lines: r.stdout.split('\n').filter(Boolean), raw: readFileSync(file) };
    },
  };
}

/** What the datacenter's underlay must never carry between two mesh hosts: VXLAN, a container address, the secret. */
function cleartext(cap: { lines: string[]; raw: Buffer }): string[] {
  const bad = cap.lines.filter((l) => /\.(4789|4790)[ :]/.test(l) || l.includes(' 10.244.'));
  if (cap.raw.includes(Buffer.from(SECRET))) bad.unshift(`"${SECRET}" in the clear`);
  return bad.slice(0, 12);
}

/** UDP between the two hosts' underlay addresses to or from the WireGuard port. */
function wireGuardBetween(lines: string[], a: LabHost, b: LabHost): number {
  const ip = (x: string) => x.replace(/\./g, '\\.');
  const re = new RegExp(`(${ip(a.underlayIp)}|${ip(b.underlayIp)})\\.(\\d+) > (${ip(a.underlayIp)}|${ip(b.underlayIp)})\\.(\\d+): UDP`);
  return lines.filter((l) => {
    const m = re.exec(l);
    return m !== null && m[1] !== m[3] && (Number(m[2]) === WG_PORT || Number(m[4]) === WG_PORT);
  }).length;
}

beforeAll(async () => {
  const t0 = Date.now();
  t = await createTunnelLab({ name: 'tunm', mesh: [DC1] });
  // the mesh is the datacenter's from `datacenter add` on: the hosts' VXLAN devices move to their tunnel addresses
  // before containers come (a container attached before keeps the MTU it got)
  await waitFor('dc1\'s hosts to send VXLAN from their tunnel addresses', () =>
    ['h1', 'g1a', 'g1b'].every((n) => vxlanLocal(t.host(n))?.startsWith('10.244.')), 60_000);
  await t.attach('c1', 'h1');
  await t.attach('c2', 'g1b');
  await t.attach('c3', 'h2');
  for (const [a, b] of [['c1', 'c2'], ['c2', 'c1'], ['c1', 'c3'], ['c3', 'c1']]) await t.waitReach(a, b, 60_000);
  console.log(`mesh lab up in ${Date.now() - t0} ms`);
}, 180_000);
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail' && t) console.log(`${t.diagnose()}\n${t.logs()}`);
});
afterAll(async () => {
  await t?.close();
}, 60_000);

describe('a mesh datacenter', () => {
  it('carries TCP and UDP between its hosts\' containers with their own addresses, inside WireGuard', async () => {
    const [c1, c2] = [c('c1'), c('c2')];
    const [h1, g1b] = [t.host('h1'), t.host('g1b')];
    // the VXLAN source is the host's tunnel address, which weft.wg0 routes to each neighbour
    expect(vxlanLocal(h1)).toMatch(/^10\.244\.\d+\.0$/);
    const routes = ipJson<Array<{ dst: string; dev: string }>>(h1.netns, ['route', 'show', 'dev', 'weft.wg0']).map((r) => r.dst);
    expect(routes).toContain(vxlanLocal(g1b));
    const sink = await serve(t, c2.netns, TCP_SINK, ['5401']);
    const echo = await serve(t, c2.netns, UDP_ECHO, ['5402']);
    const cap = await captureUnderlay(h1, g1b, 'mesh-traffic');
    try {
      const p = await ping(c1.netns, c2.ip, ['-c', '20', '-i', '0.05', '-p', SECRET_HEX]);
      expect(p.received, p.output).toBe(20);
      const tcp = await tcpSend(c1.netns, c2.ip, 5401, 1024 * 1024, 20_000);
      expect(tcp.error).toBeUndefined();
      expect(tcp.server?.sha256).toBe(tcp.sha256);
      expect(tcp.server?.peer, 'TCP source address').toBe(c1.ip);
      expect(await udpAsk(c1.netns, c2.ip, 5402, SECRET)).toEqual({ peer: c1.ip, data: SECRET });
    } finally {
      await sink.stop();
      await echo.stop();
    }
    const seen = await cap.stop();
    expect(cleartext(seen), `on ${h1.name}'s ${cap.dev}`).toEqual([]);
    // and it did cross this link: as WireGuard between the two hosts' underlay addresses
    expect(wireGuardBetween(seen.lines, h1, g1b)).toBeGreaterThan(20);
  });

  it('passes strict reverse-path filtering: the decrypted VXLAN comes from a tunnel address routed back into weft.wg0', async () => {
    const hosts = [t.host('h1'), t.host('g1b')];
    const keys = ['net.ipv4.conf.all.rp_filter', 'net.ipv4.conf.weft/wg0.rp_filter', 'net.ipv4.conf.eth0.rp_filter'];
    const read = (ns: string, k: string) => t.lab.exec(ns, 'sysctl', ['-n', k]).stdout.trim();
    const before = hosts.map((h) => keys.map((k) => read(h.netns, k)));
    try {
      for (const h of hosts) for (const k of keys) t.lab.exec(h.netns, 'sysctl', ['-qw', `${k}=1`]);
      const p = await ping(c('c1').netns, c('c2').ip, ['-c', '10', '-i', '0.05']);
      expect(p.received, p.output).toBe(10);
    } finally {
      hosts.forEach((h, i) => keys.forEach((k, j) => t.lab.exec(h.netns, 'sysctl', ['-qw', `${k}=${before[i][j]}`])));
    }
  });

  it('still reaches another datacenter through the gateways', async () => {
    const p = await ping(c('c1').netns, c('c3').ip, ['-c', '5', '-i', '0.1']);
    expect(p.received, p.output).toBe(5);
  });

  it('drops the traffic when wireguard-go on a host dies, never sends it in the clear, and the agent starts it again', async () => {
    const [h1, g1b] = [t.host('h1'), t.host('g1b')];
    const cap = await captureUnderlay(h1, g1b, 'mesh-wg-killed');
    const stream = startPingStream(c('c1').netns, c('c2').ip, { pattern: SECRET_HEX, intervalS: 0.02 });
    try {
      const pids = t.wireguardPids('h1');
      expect(pids.length).toBeGreaterThan(0);
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      // the agent notices weft.wg0 gone and starts wireguard-go again: traffic resumes
      await waitFor('wireguard-go on h1 again', () => t.wireguardPids('h1').some((p) => !pids.includes(p)), 30_000);
      const seq = stream.lastSeq();
      await waitFor('pings answered again after the restart', () => [...stream.replies.keys()].some((s) => s > seq), 30_000);
    } finally {
      const r = await stream.stop();
      console.log(`while wireguard-go was gone: ${r.transmitted} sent, ${r.received} received, gaps ${JSON.stringify(r.gaps)}`);
    }
    const seen = await cap.stop();
    expect(cleartext(seen), `on ${h1.name}'s ${cap.dev} while wireguard-go was gone`).toEqual([]);
    expect(wireGuardBetween(seen.lines, h1, g1b), `the pings after the restart, inside WireGuard; seen:\n${seen.lines.slice(-20).join('\n')}`).toBeGreaterThan(0);
  });

  it('an agent restart remakes no device and loses no packet', async () => {
    const h1 = t.host('h1');
    const before = vxlanIndex(h1);
    const stream = startPingStream(c('c1').netns, c('c2').ip, { intervalS: 0.05 });
    try {
      await waitFor('pings answered', () => stream.replies.size >= 5, 10_000);
      await t.restartAgent('h1');
      const seq = stream.lastSeq();
      await waitFor('10 replies after the restart', () => [...stream.replies.keys()].filter((q) => q > seq).length >= 10, 10_000);
    } finally {
      // a ping still in flight when the stream stops is not lost
      const r = await stream.stop();
      expect(r.lostBefore, `${r.output}; gaps ${JSON.stringify(r.gaps)}`).toBe(0);
    }
    expect(vxlanIndex(h1), 'weft.vx1 made again').toBe(before);
    expect(vxlanLocal(h1)).toMatch(/^10\.244\.\d+\.0$/);
  });
});

describe('a mesh host\'s key rotation', () => {
  it('gives it a new key its neighbours take up, and traffic goes on inside WireGuard', async () => {
    const h1 = t.host('h1');
    const keyFile = join(t.agents.get('h1')!.stateDir, WG_KEY_FILE);
    const before = readFileSync(keyFile, 'utf8');
    const cap = await captureUnderlay(h1, t.host('g1b'), 'mesh-rotation');
    const s = startPingStream(c('c1').netns, c('c2').ip, { pattern: SECRET_HEX });
    let summary;
    try {
      await waitFor('the ping stream to answer', () => s.replies.size >= 10, 10_000);
      expect(t.admin(['host', 'rotate-key', 'h1'])).toMatch(/key rotation requested/);
      await waitFor('h1 to hold a new key', () => readFileSync(keyFile, 'utf8') !== before, 30_000);
      const seq = s.lastSeq();
      await waitFor('40 replies after the rotation', () => [...s.replies.keys()].filter((q) => q > seq).length >= 40, 20_000);
    } finally {
      summary = await s.stop();
    }
    // a host that is no gateway cannot drain: its neighbours learn its new key through the controller, a handshake's worth of packets later
    console.log(`mesh host rotation: ${summary.transmitted} sent, ${summary.received} received, gaps ${JSON.stringify(summary.gaps)}`);
    expect(summary.lost, summary.output).toBeLessThan(40);
    expect(cleartext(await cap.stop())).toEqual([]);
  });
});

type Report = Explanation & { break: (Hop & { hop: number }) | null };

/** weft explain on h1, in its agent's (or, stopped, its wireguard-go's) mount namespace, where the UAPI socket is. */
async function explain(json = true): Promise<{ status: number; report?: Report; stdout: string }> {
  const a = t.agents.get('h1')!;
  const pid = !a.proc.exited ? a.proc.pid : t.wireguardPids('h1')[0];
  const args = [t.weft, 'explain', c('c1').ip, c('c2').ip, ...joinArgs(t.ctl.agentCommand, t.token).slice(1), '--host-name', 'h1', '--state-dir', a.stateDir, ...(json ? ['--json'] : [])];
  const r = await nsExecAsync(t.host('h1').netns, 'nsenter', [`--mount=/proc/${pid}/ns/mnt`, '--', process.execPath, ...args], { timeoutMs: 30_000 });
  if (json && r.stdout.trim() === '') throw new Error(`weft explain printed nothing (exit ${r.status}): ${r.stderr}`);
  return { status: r.status, stdout: r.stdout, ...(json ? { report: JSON.parse(r.stdout) as Report } : {}) };
}

async function wg(args: string[]): Promise<string> {
  const r = await nsExecAsync(t.host('h1').netns, 'nsenter', [`--mount=/proc/${t.wireguardPids('h1')[0]}/ns/mnt`, '--', 'wg', ...args]);
  if (r.status !== 0) throw new Error(`wg ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

// last: it stops h1's agent and removes a peer by hand
describe('weft explain in a mesh datacenter', () => {
  it("h1 -> g1b: the overlay's FDB entry at g1b's tunnel address, the route into weft.wg0, the peer; then that peer removed is the break", async () => {
    const tunnel = vxlanLocal(t.host('g1b'))!;
    const r = await explain();
    expect(r.status, r.stdout).toBe(0);
    expect(r.report!.hops.map((h) => `${h.kind}@${h.host}`)).toEqual([
      'container@h1', 'veth@h1', 'bridge@h1', 'route@h1', 'vxlan@h1', 'route@h1', 'wireguard@h1', 'underlay@h1', 'host@g1b', 'container@g1b',
    ]);
    const h = r.report!.hops;
    expect(h[4].what).toContain(`FDB dst ${tunnel} (g1b)`);
    expect(h[5].what.startsWith(`ip route get ${tunnel}: dev weft.wg0`), h[5].what).toBe(true);
    expect(h[6].what).toMatch(new RegExp(`^weft\\.wg0: peer g1b \\(key \\S+\\), endpoint ${t.host('g1b').underlayIp.replace(/\./g, '\\.')}:\\d+, allowed IPs ${tunnel.replace(/\./g, '\\.')}/32, last handshake \\d+ s ago$`));
    console.log(`weft explain in a mesh datacenter:\n${(await explain(false)).stdout}`);

    await t.stopAgent('h1');
    const key = (await wg(['show', 'weft.wg0', 'allowed-ips'])).split('\n').find((l) => l.includes(`${tunnel}/32`))!.split('\t')[0];
    await wg(['set', 'weft.wg0', 'peer', key, 'remove']);
    const broken = await explain();
    expect(broken.status, broken.stdout).toBe(1);
    expect(broken.report!.break).toMatchObject({ hop: 7, kind: 'wireguard', host: 'h1', verdict: 'drop' });
    expect(broken.report!.break!.why).toContain(`no WireGuard peer of weft.wg0 has ${tunnel} (g1b's tunnel address) in its allowed IPs`);
  }, 90_000);
});

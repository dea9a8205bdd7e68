// `weft explain` between datacenters, in the two-datacenter tunnel lab (c1 on
// h1 in dc1, c2 on h2 in dc2; g1a, g1b, g2a, g2b gateways with wireguard-go).
// From h1 the path goes to its chosen gateway over the overlay, and that
// gateway's side comes from its agent's report; on the gateway itself
// explain reads weft.xdc, the /32 into weft.wg0 and the WireGuard peer from
// the device; on the remote gateway, the route from weft.xdc into its
// overlay. Then, with the gateway's agent stopped so nothing heals it, its
// WireGuard peer is removed, and then its route into weft.xdc deleted: each
// is the break explain names, exit 1.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Explanation, Hop } from '../../cni-plugin/agent/explain/verdicts';
import { adminCert, joinArgs, type CertFiles } from '../e2e/cluster';
import { nsExecAsync } from '../e2e/traffic';
import { ipJson } from '../lab/run';
import { waitFor } from '../helpers/wait';
import { DC2, type TunnelLab } from '../tunnel/lab';
import { useTunnelLab } from '../tunnel/use-lab';

type Report = Explanation & { break: (Hop & { hop: number }) | null };

let t: TunnelLab;
let admin: CertFiles;
const certDir = mkdtempSync(join(tmpdir(), 'weft-explain-xdc-'));

useTunnelLab('wtexp', (lab) => {
  t = lab;
  admin = adminCert(t.dataDir, certDir);
});

afterAll(() => rmSync(certDir, { recursive: true, force: true }));

/** The mount namespace of the host's agent (or, stopped, of its wireguard-go): where its UAPI socket is. */
function mountNsPid(host: string): number | undefined {
  const a = t.agents.get(host);
  if (a && !a.proc.exited) return a.proc.pid;
  return t.wireguardPids(host)[0];
}

async function explain(host: string, extra: string[] = [], json = true): Promise<{ status: number; report?: Report; stdout: string }> {
  const a = t.agents.get(host)!;
  const [src, dst] = [t.containers.get('c1')!.ip, t.containers.get('c2')!.ip];
  const args = [t.weft, 'explain', src, dst, ...joinArgs(t.ctl.agentCommand, t.token).slice(1), '--host-name', host, '--state-dir', a.stateDir, ...extra, ...(json ? ['--json'] : [])];
  const pid = mountNsPid(host);
  const r = pid
    ? await nsExecAsync(t.host(host).netns, 'nsenter', [`--mount=/proc/${pid}/ns/mnt`, '--', process.execPath, ...args], { timeoutMs: 30_000 })
    : await nsExecAsync(t.host(host).netns, process.execPath, args, { timeoutMs: 30_000 });
  if (json && r.stdout.trim() === '') throw new Error(`weft explain on ${host} printed nothing (exit ${r.status}): ${r.stderr}`);
  return { status: r.status, stdout: r.stdout, ...(json ? { report: JSON.parse(r.stdout) as Report } : {}) };
}

const hops = (r: Report) => r.hops.map((h) => `${h.kind}@${h.host}`);
const withAdmin = () => ['--cert', admin.cert, '--key', admin.key, '--ca', admin.ca];

/** The gateway `from` sends dc2's traffic through, once it has one. */
const chosen = (from: string) => waitFor(`${from} to route dc2 via a gateway`, () => t.chosenGateway(from, DC2) ?? undefined, 20_000);

/** In the gateway's mount namespace: `wg` on its wireguard-go, for what the test checks and breaks. */
async function wgOn(gateway: string, args: string[]): Promise<string> {
  const r = await nsExecAsync(t.host(gateway).netns, 'nsenter', [`--mount=/proc/${mountNsPid(gateway)}/ns/mnt`, '--', 'wg', ...args]);
  if (r.status !== 0) throw new Error(`wg ${args.join(' ')} on ${gateway}: ${r.stderr}`);
  return r.stdout;
}

describe('weft explain between datacenters', () => {
  it('from h1: to its gateway over the overlay, the gateway\'s WireGuard session from its report, the remote gateway, h2', async () => {
    const g = await chosen('h1');
    // the gateway's report comes with its heartbeat: wait until it names its choice and a live session
    let last: Awaited<ReturnType<typeof explain>> | undefined;
    await waitFor('explain from h1 to be complete with the gateway\'s report', async () => {
      last = await explain('h1', withAdmin());
      return last.status === 0 && last.report!.hops.some((h) => h.kind === 'wireguard');
    }, 30_000, 500).catch((e) => {
      throw new Error(`${(e as Error).message}\n${last?.stdout}`, { cause: e });
    });
    const r = last!.report!;
    const remote = r.hops.find((h) => h.kind === 'gateway')!.host;
    expect(hops(r)).toEqual(['container@h1', 'veth@h1', 'bridge@h1', 'route@h1', 'vxlan@h1', 'underlay@h1', `wireguard@${g}`, `gateway@${remote}`, 'host@h2', 'container@h2']);
    expect(['g2a', 'g2b']).toContain(remote);
    expect(r.hops[4].what).toContain(`(${g})`);
    expect(r.hops[6].what).toContain(`weft.xdc via ${remote} (its choice for dc2), weft.wg0 peer ${remote}`);
    expect(r.hops[6].source).toContain(`from ${g}'s report at`);
    // a host certificate sees no reports: the gateway's side is a warning pointing to explain on the gateway
    const plain = await explain('h1');
    expect(plain.status, plain.stdout).toBe(0);
    const warn = plain.report!.hops.find((h) => h.verdict === 'warn')!;
    expect(warn).toMatchObject({ kind: 'tunnel', host: g });
    expect(warn.fix).toContain(`on ${g}`);
    console.log(`weft explain on h1 (dc1) to dc2:\n${(await explain('h1', withAdmin(), false)).stdout}`);
  }, 60_000);

  it('on the gateway: route into weft.xdc, its FDB entry to the remote gateway\'s tunnel address, the /32 into weft.wg0, the peer; on the remote gateway: weft.xdc into its overlay', async () => {
    const g = await chosen('h1');
    const remote = await chosen(g);
    const r = await explain(g);
    expect(r.status, r.stdout).toBe(0);
    expect(hops(r.report!)).toEqual([
      'container@h1', `gateway@${g}`, `route@${g}`, `vxlan@${g}`, `route@${g}`, `wireguard@${g}`, `underlay@${g}`, `gateway@${remote}`, 'host@h2', 'container@h2',
    ]);
    const h = r.report!.hops;
    expect(h[2].what).toMatch(new RegExp(`iif weft\\.vx1: via \\S+ dev weft\\.xdc`));
    // what the kernel and the device hold, named: the FDB entry's address is the remote gateway's tunnel address, in its peer's allowed IPs
    const [fdb] = JSON.parse((await nsExecAsync(t.host(g).netns, 'bridge', ['-j', 'fdb', 'show', 'dev', 'weft.xdc'])).stdout).filter((f: { dst?: string; mac: string }) => f.dst && h[3].what.includes(f.mac));
    expect(h[3].what).toContain(`FDB dst ${fdb.dst} (${remote}'s tunnel address)`);
    expect(h[4].what.startsWith(`ip route get ${fdb.dst}: dev weft.wg0`), h[4].what).toBe(true);
    expect(h[4].what).toContain(`(VXLAN UDP port 4790 to ${fdb.dst} (${remote}), inside WireGuard)`);
    const allowed = await wgOn(g, ['show', 'weft.wg0', 'allowed-ips']);
    const key = allowed.split('\n').find((l) => l.includes(`${fdb.dst}/32`))!.split('\t')[0];
    expect(h[5].what).toContain(`weft.wg0: peer ${remote} (key ${key.slice(0, 8)}`);
    expect(h[5].what).toMatch(/last handshake \d+ s ago/);
    const endpoint = (await wgOn(g, ['show', 'weft.wg0', 'endpoints'])).split('\n').find((l) => l.startsWith(key))!.split('\t')[1];
    expect(h[5].what).toContain(`endpoint ${endpoint}`);
    expect(h[6].what).toContain(`(WireGuard UDP to ${endpoint})`);

    const back = await explain(remote);
    expect(back.status, back.stdout).toBe(0);
    expect(hops(back.report!)).toEqual(['container@h1', `gateway@${remote}`, `route@${remote}`, `vxlan@${remote}`, `underlay@${remote}`, 'host@h2', 'container@h2']);
    expect(back.report!.hops[2].what).toMatch(/iif weft\.xdc: via \S+ dev weft\.vx1/);
    expect(back.report!.hops[3].what).toContain('(h2)');

    // where dst lives: it came through a gateway of dc2, then the overlay; decapsulated on weft.vx1
    const there = await explain('h2');
    expect(there.status, there.stdout).toBe(0);
    expect(hops(there.report!)).toEqual(['container@h1', 'host@h1', 'gateway@h2', 'vxlan@h2', 'route@h2', 'bridge@h2', 'veth@h2', 'container@h2']);
    expect(there.report!.hops[2].what).toBe('from datacenter dc1 through WireGuard to a gateway of dc2 (g2a, g2b), then over the overlay to h2');
  }, 60_000);

  it('with the gateway\'s agent stopped: its WireGuard peer removed, then its route into weft.xdc deleted, each the break', async () => {
    const g = await chosen('h1');
    const remote = await chosen(g);
    const before = (await explain(g)).report!;
    const tunnelAddr = /FDB dst (\S+)/.exec(before.hops[3].what)![1];
    await t.stopAgent(g);
    try {
      const allowed = await wgOn(g, ['show', 'weft.wg0', 'allowed-ips']);
      const key = allowed.split('\n').find((l) => l.includes(`${tunnelAddr}/32`))!.split('\t')[0];
      await wgOn(g, ['set', 'weft.wg0', 'peer', key, 'remove']);
      const r = await explain(g);
      expect(r.status, r.stdout).toBe(1);
      expect(r.report!.break).toMatchObject({ hop: 6, kind: 'wireguard', host: g, verdict: 'drop' });
      expect(r.report!.break!.why).toContain(`no WireGuard peer of weft.wg0 has ${tunnelAddr} (${remote}'s tunnel address) in its allowed IPs`);
      const text = await explain(g, [], false);
      expect(text.stdout).toContain(`BREAK at hop 6 (wireguard on ${g}): no WireGuard peer of weft.wg0 has ${tunnelAddr}`);
      console.log(`weft explain on ${g} with its peer ${remote} removed:\n${text.stdout}`);

      const h2Subnet = ipJson<Array<{ dst: string; dev: string }>>(t.host(g).netns, ['route', 'show', 'proto', '119', 'dev', 'weft.xdc'])
        .find((x) => x.dst.includes('/') && x.dst.split('.').slice(0, 3).join('.') === t.containers.get('c2')!.ip.split('.').slice(0, 3).join('.'))!;
      await nsExecAsync(t.host(g).netns, 'ip', ['route', 'del', h2Subnet.dst, 'dev', 'weft.xdc', 'proto', '119']);
      const hole = await explain(g);
      expect(hole.status, hole.stdout).toBe(1);
      expect(hole.report!.break).toMatchObject({ hop: 3, kind: 'route', host: g, verdict: 'drop' });
      const hasDefault = ipJson<unknown[]>(t.host(g).netns, ['route', 'show', 'default']).length > 0;
      expect(hole.report!.break!.why).toContain(hasDefault ? 'the fail-closed table inet weft_xdc lets it leave only by weft.wg0, weft.xdc' : 'no route');
      if (hasDefault) expect(hole.report!.break!.why).toContain('rule "weft: an IPv4 address of another datacenter leaves only through the tunnel"');
      console.log(`weft explain on ${g} with its route to h2's subnet deleted: ${hole.report!.break!.why}`);
    } finally {
      await t.startAgent(g);
    }
    // the agent puts both back
    await waitFor(`explain on ${g} complete again`, async () => (await explain(g)).status === 0, 30_000, 500);
  }, 90_000);
});

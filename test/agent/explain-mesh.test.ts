// `weft explain` in a mesh datacenter (weft datacenter add dc1 --mesh): a
// host's overlay VXLAN to another host of dc1 goes to that host's tunnel
// address, which routes into weft.wg0. Explain follows the FDB entry's
// address as the kernel routes it, so from h1 to a container on g1b the hops
// are the overlay's, then the route into weft.wg0 and the WireGuard peer read
// from h1's device; with h1's agent stopped and that peer removed, the peer
// is the break.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Explanation, Hop } from '../../cni-plugin/agent/explain/verdicts';
import { joinArgs } from '../e2e/cluster';
import { nsExecAsync } from '../e2e/traffic';
import { ipJson } from '../helpers/ip';
import { waitFor } from '../helpers/wait';
import { createTunnelLab, DC1, type TunnelLab } from '../tunnel/lab';

type Report = Explanation & { break: (Hop & { hop: number }) | null };

let t: TunnelLab;
const vxlanLocal = (host: string) =>
  ipJson<Array<{ linkinfo?: { info_data?: { local?: string } } }>>(t.host(host).netns, ['-d', 'link', 'show', 'dev', 'weft.vx1'])[0]?.linkinfo?.info_data?.local;

beforeAll(async () => {
  t = await createTunnelLab({ name: 'wtexm', mesh: [DC1] });
  await waitFor("dc1's hosts to send VXLAN from their tunnel addresses", () => ['h1', 'g1b'].every((n) => vxlanLocal(n)?.startsWith('10.244.')), 60_000);
  await t.attach('c1', 'h1');
  await t.attach('c2', 'g1b');
  await t.waitReach('c1', 'c2', 60_000);
}, 180_000);
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail' && t) console.log(`${t.diagnose()}\n${t.logs()}`);
});
afterAll(async () => {
  await t?.close();
}, 60_000);

/** weft explain on h1, in its agent's (or, stopped, its wireguard-go's) mount namespace, where the UAPI socket is. */
async function explain(json = true): Promise<{ status: number; report?: Report; stdout: string }> {
  const a = t.agents.get('h1')!;
  const pid = !a.proc.exited ? a.proc.pid : t.wireguardPids('h1')[0];
  const args = [t.weft, 'explain', t.containers.get('c1')!.ip, t.containers.get('c2')!.ip, ...joinArgs(t.ctl.agentCommand, t.token).slice(1), '--host-name', 'h1', '--state-dir', a.stateDir, ...(json ? ['--json'] : [])];
  const r = await nsExecAsync(t.host('h1').netns, 'nsenter', [`--mount=/proc/${pid}/ns/mnt`, '--', process.execPath, ...args], { timeoutMs: 30_000 });
  if (json && r.stdout.trim() === '') throw new Error(`weft explain printed nothing (exit ${r.status}): ${r.stderr}`);
  return { status: r.status, stdout: r.stdout, ...(json ? { report: JSON.parse(r.stdout) as Report } : {}) };
}

async function wg(args: string[]): Promise<string> {
  const r = await nsExecAsync(t.host('h1').netns, 'nsenter', [`--mount=/proc/${t.wireguardPids('h1')[0]}/ns/mnt`, '--', 'wg', ...args]);
  if (r.status !== 0) throw new Error(`wg ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('weft explain in a mesh datacenter', () => {
  it("h1 -> g1b: the overlay's FDB entry at g1b's tunnel address, the route into weft.wg0, the peer; then that peer removed is the break", async () => {
    const tunnel = vxlanLocal('g1b')!;
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

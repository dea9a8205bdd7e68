// `weft doctor`'s verdicts: each area's judge is a pure function of facts,
// checked here for what it passes, warns about and fails, and that every
// warning and failure carries a fix. The kernel test (doctor.test.ts) runs
// the command against a real agent and controller.
import { describe, expect, it } from 'vitest';
import { parseSave } from '../../dataplane/iptables';
import { agentBase, judgeAgent, metricSum, metricValue } from '../../cni-plugin/agent/doctor/agent';
import { judgeCertificate } from '../../cni-plugin/agent/doctor/certificate';
import { judgeClock, skewOf, SKEW_FAIL_MS } from '../../cni-plugin/agent/doctor/clock';
import { splitDoctorArgs } from '../../cni-plugin/agent/doctor/command';
import { hostNetworksOf, judgeController, tidyDetails } from '../../cni-plugin/agent/doctor/controller';
import { exitCodeOf, renderJson, renderText, type Finding, type Verdict } from '../../cni-plugin/agent/doctor/finding';
import { judgeIptables, weftHooks } from '../../cni-plugin/agent/doctor/iptables';
import { evidenceFor, FEATURES, judgeKernel, moduleNames, parseKernelConfig, type KernelFacts } from '../../cni-plugin/agent/doctor/kernel';
import { HOST_VETH_NAME, judgeLinks, type LinksFacts } from '../../cni-plugin/agent/doctor/links';
import { judgeMtu } from '../../cni-plugin/agent/doctor/mtu';
import { judgeOffload } from '../../cni-plugin/agent/doctor/offload';
import { judgeOverlay } from '../../cni-plugin/agent/doctor/overlay';
import { hostVethName } from '../../cni-plugin/agent/host/naming';
import { decideTxChecksum } from '../../cni-plugin/agent/host/checksum-policy';
import type { Credentials } from '../../controller/api/client/credentials';

const verdicts = (fs: Finding[]) => fs.map((f) => `${f.verdict} ${f.area}/${f.check}`);
const only = (fs: Finding[], v: Verdict) => fs.filter((f) => f.verdict === v);

/** Every finding short of a pass says what to do. */
function expectFixes(fs: Finding[]): void {
  for (const f of fs) {
    if (f.verdict === 'pass') expect(f.fix).toBeUndefined();
    else expect(f.fix, `${f.area}/${f.check}: ${f.message}`).toMatch(/\S/);
  }
}

describe('doctor: kernel features', () => {
  const base: KernelFacts = { release: '6.1.0-18-amd64', linkKinds: new Map() };

  it('reads kernel configs and module lists', () => {
    const cfg = parseKernelConfig('CONFIG_VXLAN=m\n# CONFIG_WIREGUARD is not set\nCONFIG_VETH=y\n');
    expect([...cfg]).toEqual([['CONFIG_VXLAN', 'm'], ['CONFIG_VETH', 'y']]);
    expect([...moduleNames('kernel/drivers/net/vxlan/vxlan.ko.xz: kernel/net/ipv4/udp_tunnel.ko.xz\nkernel/net/netfilter/nf_conntrack.ko:\n')])
      .toEqual(['vxlan', 'nf_conntrack']);
  });

  it('takes a device in use, a loaded module, a built-in and a loadable module as present', () => {
    const vx = FEATURES.find((f) => f.check === 'vxlan')!;
    expect(evidenceFor(vx, { ...base, linkKinds: new Map([['vxlan', 'weft.vx1']]) })).toMatchObject({ present: true, how: expect.stringContaining('weft.vx1') });
    expect(evidenceFor(vx, { ...base, loaded: new Set(['vxlan']) })).toMatchObject({ present: true, how: 'module vxlan loaded' });
    expect(evidenceFor(vx, { ...base, config: new Map([['CONFIG_VXLAN', 'y']]) })).toMatchObject({ present: true, how: expect.stringContaining('built into') });
    expect(evidenceFor(vx, { ...base, loadable: new Set(['vxlan']) })).toMatchObject({ present: true, how: expect.stringContaining('not loaded yet') });
    expect(evidenceFor(vx, { ...base, config: new Map() })).toMatchObject({ present: false, how: expect.stringContaining('without CONFIG_VXLAN') });
    expect(evidenceFor(vx, base)).toBeUndefined();
    // only when nothing else tells does a probe in a throwaway namespace count
    expect(evidenceFor(vx, { ...base, probed: new Map([['vxlan', { ok: true }]]) })).toMatchObject({ present: true, how: expect.stringContaining('throwaway namespace') });
    expect(evidenceFor(vx, { ...base, probed: new Map([['vxlan', { ok: false, error: 'EOPNOTSUPP' }]]) })).toMatchObject({ present: false, how: expect.stringContaining('EOPNOTSUPP') });
    expect(evidenceFor(vx, { ...base, config: new Map(), probed: new Map([['vxlan', { ok: true }]]) })).toMatchObject({ present: false });
  });

  it('fails a missing feature, warns when nothing tells, and accepts wireguard-go for WireGuard', () => {
    const all = new Map(['VXLAN', 'BRIDGE', 'VETH', 'NF_TABLES', 'NF_CONNTRACK'].map((c) => [`CONFIG_${c}`, 'm']));
    const good = judgeKernel({ ...base, config: all, configSource: '/boot/config', wireguardGo: '/usr/bin/wireguard-go' });
    expect(only(good, 'pass')).toHaveLength(6);
    expect(good.at(-1)!.message).toContain('wireguard-go');

    const noVxlan = new Map(all);
    noVxlan.delete('CONFIG_VXLAN');
    const bad = judgeKernel({ ...base, config: noVxlan });
    expect(verdicts(bad)).toContain('fail kernel/vxlan');
    expect(bad.find((f) => f.check === 'vxlan')!.fix).toContain('modprobe vxlan');
    expect(verdicts(bad)).toContain('warn kernel/wireguard');
    expect(exitCodeOf(bad)).toBe(1);
    expectFixes(bad);

    const blind = judgeKernel(base);
    expect(only(blind, 'warn')).toHaveLength(6);
    expect(exitCodeOf(blind)).toBe(0);
    expectFixes(blind);
  });
});

describe('doctor: MTU', () => {
  const underlay = { name: 'eth0', mtu: 1500 };

  it('passes devices at underlay − 50 and fails one off it with the command that fixes it', () => {
    const ok = judgeMtu({ underlay, devices: [{ name: 'weft.vx1', kind: 'vxlan', mtu: 1450 }, { name: 'weft.br1', kind: 'bridge', mtu: 1450 }, { name: 'wv0123456789ab', kind: 'veth', mtu: 1450 }] });
    expect(verdicts(ok)).toEqual(['pass mtu/devices']);
    expect(ok[0].message).toContain('1 VXLAN, 1 bridge and 1 container');

    const bad = judgeMtu({ underlay, devices: [{ name: 'weft.vx1', kind: 'vxlan', mtu: 1500 }, { name: 'weft.br1', kind: 'bridge', mtu: 1450 }] });
    expect(verdicts(bad)).toEqual(['fail mtu/weft.vx1', 'pass mtu/devices']);
    expect(bad[0].message).toContain('expected 1450 (eth0 MTU 1500 − 50)');
    expect(bad[0].message).toContain('larger than the underlay carries');
    expect(bad[0].fix).toContain('ip link set dev weft.vx1 mtu 1450');
    expectFixes(bad);
  });

  it('in a mesh datacenter expects room for WireGuard too', () => {
    const mesh = judgeMtu({ underlay, wireGuardOverhead: 60, devices: [{ name: 'weft.vx1', kind: 'vxlan', mtu: 1390 }, { name: 'weft.br1', kind: 'bridge', mtu: 1450 }] });
    expect(verdicts(mesh)).toEqual(['fail mtu/weft.br1', 'pass mtu/devices']);
    expect(mesh[0].message).toContain('expected 1390 (eth0 MTU 1500 − 50 − 60 WireGuard (mesh datacenter))');
    const tooBig = judgeMtu({ underlay, wireGuardOverhead: 60, configured: { mtu: 1450, source: '--mtu' }, devices: [] });
    expect(tooBig[0].message).toContain('carries at most 1390 inside VXLAN inside WireGuard (mesh datacenter)');
  });

  it('follows a configured MTU, and fails one the underlay cannot carry', () => {
    const set = judgeMtu({ underlay, configured: { mtu: 1400, source: '--mtu' }, devices: [{ name: 'weft.vx1', kind: 'vxlan', mtu: 1400 }] });
    expect(verdicts(set)).toEqual(['pass mtu/devices']);
    const tooBig = judgeMtu({ underlay, configured: { mtu: 1480, source: 'the cluster config mtu' }, devices: [] });
    expect(verdicts(tooBig)).toContain('fail mtu/configured');
    expect(tooBig[0].fix).toContain('1450 or less');
    const small = judgeMtu({ underlay: { name: 'eth0', mtu: 1300 }, devices: [] });
    expect(verdicts(small)).toContain('fail mtu/underlay');
    expect(verdicts(judgeMtu({ underlay: { error: 'no route' }, devices: [] }))).toEqual(['fail mtu/underlay']);
  });
});

describe('doctor: checksum offload', () => {
  const needsOff = decideTxChecksum('auto', '5.4.0-150-generic');
  const keepsOn = decideTxChecksum('auto', '6.1.0');

  it('fails offload left on where the kernel needs it off, warns where it was turned off for nothing', () => {
    const on = judgeOffload(needsOff, [{ device: 'weft.vx1', txChecksum: 'on' }]);
    expect(verdicts(on)).toEqual(['fail offload/weft.vx1']);
    expect(on[0].fix).toContain('ethtool -K weft.vx1 tx off');
    expect(verdicts(judgeOffload(needsOff, [{ device: 'weft.vx1', txChecksum: 'off' }]))).toEqual(['pass offload/weft.vx1']);
    expect(verdicts(judgeOffload(keepsOn, [{ device: 'weft.vx1', txChecksum: 'on' }]))).toEqual(['pass offload/weft.vx1']);
    const off = judgeOffload(keepsOn, [{ device: 'weft.vx1', txChecksum: 'off' }]);
    expect(verdicts(off)).toEqual(['warn offload/weft.vx1']);
    expect(verdicts(judgeOffload(needsOff, [{ device: 'weft.vx2', txChecksum: 'unsupported' }, { device: 'weft.vx3', error: 'EPERM' }])))
      .toEqual(['pass offload/weft.vx2', 'warn offload/weft.vx3']);
    expectFixes([...on, ...off]);
  });
});

describe('doctor: iptables jumps', () => {
  const save = (forward: string[], post: string[] = ['-j WEFT-POSTROUTING'], chains = ['WEFT-FORWARD', 'WEFT-POSTROUTING']) => parseSave([
    '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT ACCEPT [0:0]', ...chains.filter((c) => c === 'WEFT-FORWARD').map((c) => `:${c} - [0:0]`),
    ...forward.map((r) => `-A FORWARD ${r}`), 'COMMIT',
    '*nat', ':PREROUTING ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', ...chains.filter((c) => c === 'WEFT-POSTROUTING').map((c) => `:${c} - [0:0]`),
    ...post.map((r) => `-A POSTROUTING ${r}`), 'COMMIT', '',
  ].join('\n'));

  it('hooks FORWARD and POSTROUTING', () => {
    expect(weftHooks().map((h) => `${h.table} ${h.from} ${h.to}`).sort()).toEqual(['filter FORWARD WEFT-FORWARD', 'nat POSTROUTING WEFT-POSTROUTING']);
  });

  it('passes weft jumps at rule 1, fails a missing or pushed-down jump naming what is above it', () => {
    expect(verdicts(judgeIptables(save(['-j WEFT-FORWARD', '-j REJECT']), weftHooks())).sort()).toEqual(['pass iptables/filter FORWARD', 'pass iptables/nat POSTROUTING']);

    const missing = judgeIptables(save(['-j REJECT']), weftHooks());
    expect(verdicts(missing)).toContain('fail iptables/filter FORWARD');
    expect(missing.find((f) => f.check === 'filter FORWARD')!.fix).toContain('iptables -t filter -I FORWARD 1 -j WEFT-FORWARD');

    const below = judgeIptables(save(['-j REJECT --reject-with icmp-host-prohibited', '-j WEFT-FORWARD']), weftHooks());
    const f = below.find((x) => x.check === 'filter FORWARD')!;
    expect(f.verdict).toBe('fail');
    expect(f.message).toContain('rule 2');
    expect(f.message).toContain('-j REJECT --reject-with icmp-host-prohibited');

    expect(verdicts(judgeIptables(save(['-j WEFT-FORWARD'], ['-j WEFT-POSTROUTING'], ['WEFT-POSTROUTING']), weftHooks()))).toContain('fail iptables/filter FORWARD');
    expect(verdicts(judgeIptables(save(['-j WEFT-FORWARD', '-j WEFT-FORWARD']), weftHooks()))).toContain('warn iptables/filter FORWARD');
    expect(verdicts(judgeIptables(save([]), []))).toEqual(['pass iptables/hooks']);
    expect(verdicts(judgeIptables({ error: 'iptables-save: not found' }, weftHooks()))).toEqual(['fail iptables/save']);
    const v6 = judgeIptables(save(['-j REJECT']), weftHooks(6), 6);
    expect(verdicts(v6)).toContain('fail ip6tables/filter FORWARD');
    expect(v6.find((x) => x.check === 'filter FORWARD')!.fix).toContain('ip6tables -t filter -I FORWARD 1 -j WEFT-FORWARD');
    expectFixes([...missing, ...below]);
  });
});

describe('doctor: overlay entries', () => {
  const kernel = { routes: 4, neighs: 4, fdbs: 4 };

  it('passes when the kernel holds exactly what the agent desired and programmed', () => {
    const r = judgeOverlay(kernel, { desired: 12, programmed: 12, reconciles: 3, revision: 40 });
    expect(verdicts(r)).toEqual(['pass overlay/entries']);
    expect(r[0].message).toContain('routes proto weft: 4, neighbours: 4, FDB: 4');
    expect(r[0].message).toContain('revision 40');
  });

  it('fails entries deleted since, left over, or refused by the kernel', () => {
    const gone = judgeOverlay({ ...kernel, routes: 3 }, { desired: 12, programmed: 12, reconciles: 3 });
    expect(verdicts(gone)).toEqual(['fail overlay/entries']);
    expect(gone[0].message).toContain('1 were deleted');
    expect(gone[0].fix).toContain('resync');
    expect(verdicts(judgeOverlay({ ...kernel, fdbs: 6 }, { desired: 12, programmed: 12, reconciles: 3 }))).toEqual(['fail overlay/entries']);
    const refused = judgeOverlay({ ...kernel, routes: 3 }, { desired: 12, programmed: 11, reconciles: 3 });
    expect(verdicts(refused)).toEqual(['fail overlay/programmed', 'fail overlay/entries']);
    expectFixes([...gone, ...refused]);
  });

  it('warns when there is nothing to compare with', () => {
    expect(verdicts(judgeOverlay(kernel, undefined))).toEqual(['warn overlay/entries']);
    expect(verdicts(judgeOverlay(kernel, { desired: 0, reconciles: 0 }))).toEqual(['warn overlay/entries']);
    expect(verdicts(judgeOverlay({ error: 'EPERM' }, undefined))).toEqual(['fail overlay/kernel']);
  });
});

describe('doctor: links', () => {
  const end = hostVethName('default', 'c'.repeat(64), 'eth0');
  const facts: LinksFacts = {
    hostEnds: [end],
    allocations: [{ hostEnd: end, what: 'default/10.244.1.2' }],
    devices: [
      { name: 'weft.vx1', kind: 'vxlan', vni: 1, up: true, ports: 0 },
      { name: 'weft.br1', kind: 'bridge', vni: 1, up: true, ports: 1 },
    ],
    hostNetworks: [{ network: 'default', vni: 1, subnet: '10.244.1.0/24' }],
  };

  it('knows the names hostVethName makes', () => {
    expect(end).toMatch(HOST_VETH_NAME);
    expect('wv12').not.toMatch(HOST_VETH_NAME);
  });

  it('passes host ends with allocations and the devices of the host networks', () => {
    expect(verdicts(judgeLinks(facts))).toEqual(['pass links/host-ends', 'pass links/devices']);
  });

  it('fails a host end without allocation, a missing or down device, and a device of a network the host is not in', () => {
    const stray = 'wv0123456789ab';
    const r = judgeLinks({ ...facts, hostEnds: [end, stray] });
    expect(verdicts(r)).toEqual([`fail links/${stray}`, 'pass links/devices']);
    expect(r[0].fix).toContain(`ip link del ${stray}`);

    expect(verdicts(judgeLinks({ ...facts, hostEnds: [] }))).toEqual(['warn links/allocations', 'pass links/host-ends', 'pass links/devices']);
    expect(verdicts(judgeLinks({ ...facts, devices: [facts.devices[1]] }))).toContain('fail links/weft.vx1');
    expect(verdicts(judgeLinks({ ...facts, devices: [facts.devices[0], { ...facts.devices[1], up: false }] }))).toContain('fail links/weft.br1');

    const extra = judgeLinks({ ...facts, devices: [...facts.devices, { name: 'weft.vx7', kind: 'vxlan', vni: 7, up: true, ports: 0 }, { name: 'weft.br7', kind: 'bridge', vni: 7, up: true, ports: 2 }] });
    expect(verdicts(extra)).toEqual(['pass links/host-ends', 'fail links/weft.vx7', 'warn links/weft.br7']);
    expect(extra[1].fix).toBe('ip link del weft.vx7');
    expectFixes([...r, ...extra]);
  });

  it('warns when the agent DB or the controller cannot say', () => {
    const { hostNetworks: _, ...blind } = facts;
    expect(verdicts(judgeLinks({ ...blind, allocations: { error: 'no agent DB' } }))).toEqual(['warn links/host-ends', 'warn links/devices']);
  });
});

describe('doctor: certificate and clock', () => {
  const hour = 3_600_000;
  const cert = { path: '/var/lib/weft/agent/host.crt', hostName: 'h1', validFrom: 0, validTo: 24 * hour, renewAt: 12 * hour };

  it('passes before the renewal time, warns after it, fails once expired or not yet valid', () => {
    expect(verdicts(judgeCertificate(cert, hour))).toEqual(['pass certificate/expiry']);
    const due = judgeCertificate(cert, 13 * hour);
    expect(verdicts(due)).toEqual(['warn certificate/expiry']);
    expect(due[0].message).toContain('expires in 11h');
    const expired = judgeCertificate(cert, 25 * hour);
    expect(verdicts(expired)).toEqual(['fail certificate/expiry']);
    expect(expired[0].message).toContain('expired 60m ago');
    expect(verdicts(judgeCertificate(cert, -hour))).toEqual(['fail certificate/expiry']);
    expectFixes([...due, ...expired]);
  });

  it('measures skew from the date header within its one-second resolution and the round trip', () => {
    const t = Date.parse('2026-12-07T12:00:00Z');
    expect(skewOf({ date: new Date(t).toUTCString(), sentAt: t + 400, receivedAt: t + 600 })).toEqual({ skewMs: 0, uncertaintyMs: 600 });
    expect(skewOf({ date: 'garbage', sentAt: t, receivedAt: t })).toBeUndefined();

    const at = (skewMs: number) => judgeClock({ date: new Date(t + skewMs).toUTCString(), sentAt: t + 500, receivedAt: t + 500 }, 'ctl:7443');
    expect(verdicts(at(0))).toEqual(['pass clock/skew']);
    expect(verdicts(at(2000))).toEqual(['pass clock/skew']); // within what the header can tell
    const ahead = at(-10_000);
    expect(verdicts(ahead)).toEqual(['warn clock/skew']);
    expect(ahead[0].message).toContain('10.0s ahead of');
    const behind = at(SKEW_FAIL_MS + 60_000);
    expect(verdicts(behind)).toEqual(['fail clock/skew']);
    expect(behind[0].message).toContain('behind');
    expect(verdicts(judgeClock(undefined, 'ctl:7443'))).toEqual(['warn clock/skew']);
    expectFixes([...ahead, ...behind]);
  });
});

describe('doctor: controller', () => {
  const credentials = { credentials: { hostName: 'h1' } as Credentials };
  const topology = {
    revision: 9, vxlanPort: 4789,
    networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/16' }, { name: 'blue', vni: 2, cidr: '10.245.0.0/16' }],
    hosts: [{ name: 'h1', underlayIp: '192.0.2.1', vtepMac: '02:00:00:00:00:01', rack: 'a', datacenter: 'dc1', subnets: { default: '10.244.1.0/24' } }],
  };
  const status = { controller_id: 'c1', leader: true, revision: '9', store: 'sqlite', version: '0.1.0', leader_id: 'c1' } as never;

  it('passes a controller that answers and knows this host; takes the host networks from the topology', () => {
    const r = judgeController(credentials, { server: 'ctl:7443', status, topology }, '/s');
    expect(verdicts(r)).toEqual(['pass controller/credentials', 'pass controller/reachable', 'pass controller/registered']);
    expect(hostNetworksOf(topology, 'h1')).toEqual([{ network: 'default', vni: 1, subnet: '10.244.1.0/24' }]);
    expect(hostNetworksOf(topology, 'h9')).toEqual([]);
  });

  it('fails a host that has not joined, a controller away, a refusal and a host the topology lacks', () => {
    expect(verdicts(judgeController({ missing: '/s/host.crt' }, undefined, '/s'))).toEqual(['fail controller/credentials']);
    const away = judgeController(credentials, { server: 'ctl:7443', error: { code: 'UNAVAILABLE', details: 'No connection established' } }, '/s');
    expect(verdicts(away)).toEqual(['pass controller/credentials', 'fail controller/reachable']);
    expect(away[1].message).toContain('cannot reach the controller at ctl:7443: UNAVAILABLE');
    expect(tidyDetails('No connection established. Last error: Error: connect ECONNREFUSED 172.31.0.10:7443. Resolution note: '))
      .toBe('No connection established. last error: connect ECONNREFUSED 172.31.0.10:7443.');
    const refused = judgeController(credentials, { server: 'ctl:7443', error: { code: 'PERMISSION_DENIED', details: 'revoked' } }, '/s');
    expect(refused[1].fix).toContain('join again');
    const gone = judgeController(credentials, { server: 'ctl:7443', status, topology: { ...topology, hosts: [] } }, '/s');
    expect(verdicts(gone)).toContain('fail controller/registered');
    expectFixes([...away, ...refused, ...gone]);
  });
});

describe('doctor: agent endpoints and the command', () => {
  it('reaches a wildcard listen address over loopback', () => {
    expect(agentBase({ host: '0.0.0.0', port: 7081 })).toBe('http://127.0.0.1:7081');
    expect(agentBase({ host: '::', port: 7081 })).toBe('http://[::1]:7081');
    expect(agentBase({ host: '10.0.0.5', port: 9 })).toBe('http://10.0.0.5:9');
  });

  it('fails an agent that does not answer or is not ready, naming its checks', () => {
    const base = 'http://127.0.0.1:7081';
    expect(verdicts(judgeAgent({ base, healthz: { error: 'ECONNREFUSED' }, readyz: { error: 'ECONNREFUSED' } }))).toEqual(['fail agent/healthz']);
    const ready = { ready: true, checks: { controller: 'connected', networks: 'default=10.244.1.0/24' } };
    expect(verdicts(judgeAgent({ base, healthz: { status: 200, body: 'ok\n' }, readyz: { status: 200, body: JSON.stringify(ready) } })))
      .toEqual(['pass agent/healthz', 'pass agent/readyz']);
    const notReady = judgeAgent({ base, healthz: { status: 200, body: 'ok\n' }, readyz: { status: 503, body: JSON.stringify({ ready: false, checks: { topology: 'waiting for the first snapshot' } }) } });
    expect(verdicts(notReady)).toEqual(['pass agent/healthz', 'fail agent/readyz']);
    expect(notReady[1].message).toContain('waiting for the first snapshot');
    expectFixes(notReady);
  });

  it('reads gauges and sums counters from Prometheus text', () => {
    const text = '# HELP x\nweft_agent_overlay_desired_entries 12\nweft_agent_reconciles_total{trigger="start"} 1\nweft_agent_reconciles_total{trigger="resync"} 4\n';
    expect(metricValue(text, 'weft_agent_overlay_desired_entries')).toBe(12);
    expect(metricValue(text, 'weft_agent_overlay_programmed_entries')).toBeUndefined();
    expect(metricSum(text, 'weft_agent_reconciles_total')).toBe(5);
  });

  it("takes --json and --metrics, and leaves the agent's flags to the agent's loader", () => {
    expect(splitDoctorArgs(['--json', '--server', 'c:7443', '--metrics', '127.0.0.1:9'])).toEqual({ json: true, agentArgv: ['--server', 'c:7443', '--metrics-listen', '127.0.0.1:9'] });
    expect(splitDoctorArgs(['--metrics=127.0.0.1:9']).agentArgv).toEqual(['--metrics-listen=127.0.0.1:9']);
  });

  it('exits 1 on a failure only, and prints the fix under its finding', () => {
    const fs: Finding[] = [
      { area: 'mtu', check: 'weft.vx1', verdict: 'fail', message: 'MTU 1400', fix: 'ip link set dev weft.vx1 mtu 1450' },
      { area: 'clock', check: 'skew', verdict: 'warn', message: 'off', fix: 'ntp' },
      { area: 'kernel', check: 'vxlan', verdict: 'pass', message: 'loaded' },
    ];
    expect(exitCodeOf(fs)).toBe(1);
    expect(exitCodeOf(fs.slice(1))).toBe(0);
    const text = renderText(fs);
    expect(text).toMatch(/^FAIL {2}mtu\/weft\.vx1 +MTU 1400\n +fix: ip link set dev weft\.vx1 mtu 1450\n/);
    expect(text).toContain('1 passed, 1 warnings, 1 failed');
    expect(JSON.parse(renderJson(fs))).toMatchObject({ ok: false, passed: 1, warnings: 1, failed: 1, findings: fs });
  });
});

// `weft doctor` on a lab host: the built command run inside a host namespace
// beside a real agent joined to a real controller (test/e2e/cluster.ts),
// with the agent's own join line (`agent` replaced by `doctor`). On a healthy
// host every finding passes and it exits 0; then the host is broken one way
// at a time (an MTU set by hand, weft's iptables jump deleted, a stray
// container host end, an overlay route deleted, a leftover VXLAN device, the
// agent stopped, the controller stopped) and each is reported as FAIL with
// its fix, exit 1. The agents resync and collect garbage only hourly here,
// so nothing is healed before the doctor looks; each break but the last two
// is undone by hand before the next.
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Finding } from '../../cni-plugin/agent/doctor/finding';
import { probeLinkKinds } from '../../cni-plugin/agent/doctor/kernel-probe';
import { netnsExists } from '../../dataplane/netlink/netns';
import { createLab, type Lab, type LabHost } from '../lab/lab';
import { ipJson } from '../lab/run';
import { waitFor } from '../helpers/wait';
import {
  AGENT_METRICS_PORT, agentPaths, conflistPath, createToken, httpGetIn, installCni, joinArgs, requireBuild, startAgent, startController, tail, WEFT,
  type Agent, type Controller, waitOverlayRoute,
} from '../e2e/cluster';
import { cniAdd, loadConflist, pluginConfig } from '../e2e/cni';
import { nsExecAsync } from '../e2e/traffic';

type Report = { ok: boolean; passed: number; warnings: number; failed: number; findings: Finding[] };

const STRAY = 'wv0123456789ab';

let lab: Lab;
let dir: string;
let ctl: Controller;
let token: string;
const agents = new Map<string, Agent>();

const key = (f: Finding) => `${f.area}/${f.check}`;
const failed = (r: Report) => r.findings.filter((f) => f.verdict === 'fail').map(key).sort();

/** `weft doctor` with the agent's flags inside the host's namespace: exit status, the JSON report, and the text form of the same run's stdout when asked. */
async function doctor(h: LabHost, opts: { json?: boolean } = { json: true }): Promise<{ status: number; report?: Report; stdout: string; stderr: string }> {
  const a = agents.get(h.name)!;
  const args = [
    WEFT, 'doctor', ...joinArgs(ctl.agentCommand, token).slice(1),
    '--host-name', h.name, '--state-dir', a.stateDir, '--metrics', `127.0.0.1:${AGENT_METRICS_PORT}`, ...(opts.json ? ['--json'] : []),
  ];
  const r = await nsExecAsync(h.netns, process.execPath, args, { timeoutMs: 60_000 });
  let report: Report | undefined;
  if (opts.json) {
    try {
      report = JSON.parse(r.stdout) as Report;
    } catch {
      throw new Error(`weft doctor printed no JSON report (exit ${r.status}): ${r.stdout.slice(0, 500)} ${r.stderr.slice(0, 2000)}`);
    }
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ...(report ? { report } : {}) };
}

function finding(r: Report, k: string): Finding {
  const f = r.findings.find((x) => key(x) === k);
  if (!f) throw new Error(`no finding ${k} in ${r.findings.map(key).join(', ')}`);
  return f;
}

const sh = (h: LabHost, cmd: string, args: string[]) => lab.exec(h.netns, cmd, args).stdout;
const mtuOf = (h: LabHost, dev: string) => ipJson<Array<{ mtu: number }>>(h.netns, ['link', 'show', 'dev', dev])[0].mtu;

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'weft-doctor-'));
  lab = await createLab({ name: `doc${process.pid.toString(36)}`, datacenters: [{ name: 'dc1', racks: [{ name: 'a', hosts: ['h1', 'h2'] }] }], controller: true });
  ctl = await startController(lab, join(dir, 'controller'), join(dir, 'controller.log'));
  token = createToken(ctl.dataDir);
  for (const h of lab.hosts) {
    const paths = agentPaths(dir, h);
    installCni(paths, 'default');
    agents.set(h.name, await startAgent(lab, ctl, h, paths, token, { extraArgs: ['--resync-interval', '1h', '--gc-interval', '1h'], debugLog: false }));
  }
  // one container on h1, so there is a host end with its allocation to account for
  const h1 = lab.host('h1');
  const list = loadConflist(conflistPath(agents.get('h1')!.cniConfDir, 'default'));
  await waitFor('h1 ready for containers', async () => {
    try {
      return JSON.parse(await httpGetIn(h1.netns, `http://127.0.0.1:${AGENT_METRICS_PORT}/readyz`)).ready === true;
    } catch {
      return false;
    }
  }, 30_000);
  await cniAdd({
    hostNetns: h1.netns, cniPath: agents.get('h1')!.cniBinDir, containerId: randomBytes(32).toString('hex'),
    netns: lab.addContainerNetns(h1, 'c1'), ifname: 'eth0', config: pluginConfig(list),
  });
  for (const h of lab.hosts) {
    await waitOverlayRoute(h);
    await waitFor(`${h.name}'s agent ready`, async () => {
      try {
        return JSON.parse(await httpGetIn(h.netns, `http://127.0.0.1:${AGENT_METRICS_PORT}/readyz`)).ready === true;
      } catch {
        return false;
      }
    }, 30_000);
  }
}, 180_000);

afterAll(async () => {
  try {
    await lab?.destroy();
  } finally {
    if (dir && !process.env.WEFT_TEST_KEEP_LOGS) rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

describe('the kernel probe of last resort', () => {
  it('creates each kind of device in a namespace of its own and removes the namespace', () => {
    expect(Object.fromEntries(probeLinkKinds(['vxlan', 'bridge', 'veth', 'wireguard']))).toEqual({ vxlan: { ok: true }, bridge: { ok: true }, veth: { ok: true } });
    expect(netnsExists(`weft-doctor-${process.pid}`)).toBe(false);
  });
});

describe('weft doctor on a lab host', () => {
  it('passes every check on a healthy host and exits 0', async () => {
    const h1 = lab.host('h1');
    const r = await doctor(h1);
    const notPassed = r.report!.findings.filter((f) => f.verdict !== 'pass');
    expect(notPassed, `${JSON.stringify(notPassed, null, 2)}\nagent log: ${tail(agents.get('h1')!.logFile)}`).toEqual([]);
    expect(r.status).toBe(0);
    const areas = new Set(r.report!.findings.map((f) => f.area));
    expect([...areas].sort()).toEqual(['agent', 'certificate', 'clock', 'controller', 'iptables', 'kernel', 'links', 'mtu', 'offload', 'overlay']);
    // the overlay compared real numbers: one remote host, one network, so a route, a neighbour and an FDB entry
    expect(finding(r.report!, 'overlay/entries').message).toMatch(/^3 weft entries in the kernel \(routes proto weft: 1, neighbours: 1, FDB: 1\): all 3 the agent desires/);
    expect(finding(r.report!, 'links/host-ends').message).toContain('1 container host end(s), each with its allocation');
    expect(finding(r.report!, 'controller/reachable').message).toContain('answers host h1');

    // the text form: a line per finding, and the count
    const text = await doctor(h1, { json: false });
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^PASS {2}kernel\/vxlan /m);
    expect(text.stdout).toContain(`${r.report!.passed} passed, 0 warnings, 0 failed`);
    console.log(`weft doctor on a healthy lab host:\n${text.stdout}`);
  }, 120_000);

  it('fails a VXLAN device whose MTU was set by hand, with the command that puts it back', async () => {
    const h1 = lab.host('h1');
    const want = mtuOf(h1, 'weft.br1');
    sh(h1, 'ip', ['link', 'set', 'dev', 'weft.vx1', 'mtu', String(want - 100)]);
    try {
      const r = await doctor(h1);
      expect(r.status).toBe(1);
      expect(failed(r.report!)).toEqual(['mtu/weft.vx1']);
      const f = finding(r.report!, 'mtu/weft.vx1');
      expect(f.message).toContain(`MTU ${want - 100}, expected ${want}`);
      expect(f.fix).toContain(`ip link set dev weft.vx1 mtu ${want}`);
    } finally {
      sh(h1, 'ip', ['link', 'set', 'dev', 'weft.vx1', 'mtu', String(want)]);
    }
  }, 60_000);

  it("fails when weft's FORWARD jump is gone or pushed below another rule", async () => {
    const h1 = lab.host('h1');
    sh(h1, 'iptables', ['-t', 'filter', '-D', 'FORWARD', '-j', 'WEFT-FORWARD']);
    try {
      const r = await doctor(h1);
      expect(r.status).toBe(1);
      expect(failed(r.report!)).toEqual(['iptables/filter FORWARD']);
      expect(finding(r.report!, 'iptables/filter FORWARD').message).toContain('no jump from FORWARD to WEFT-FORWARD');
      expect(finding(r.report!, 'iptables/filter FORWARD').fix).toContain('iptables -t filter -I FORWARD 1 -j WEFT-FORWARD');

      // below someone's REJECT
      sh(h1, 'iptables', ['-t', 'filter', '-A', 'FORWARD', '-j', 'WEFT-FORWARD']);
      sh(h1, 'iptables', ['-t', 'filter', '-I', 'FORWARD', '1', '-j', 'REJECT']);
      const below = await doctor(h1);
      expect(below.status).toBe(1);
      expect(finding(below.report!, 'iptables/filter FORWARD').message).toMatch(/rule 2 of filter FORWARD, below "-j REJECT/);
    } finally {
      lab.exec(h1.netns, 'iptables', ['-t', 'filter', '-D', 'FORWARD', '-j', 'REJECT'], { check: false });
      lab.exec(h1.netns, 'iptables', ['-t', 'filter', '-D', 'FORWARD', '-j', 'WEFT-FORWARD'], { check: false });
      sh(h1, 'iptables', ['-t', 'filter', '-I', 'FORWARD', '1', '-j', 'WEFT-FORWARD']);
    }
    expect(failed((await doctor(h1)).report!)).toEqual([]);
  }, 90_000);

  it('fails a container host end that no allocation accounts for', async () => {
    const h1 = lab.host('h1');
    // at the overlay MTU, so that only the missing allocation is wrong with it
    sh(h1, 'ip', ['link', 'add', STRAY, 'mtu', String(mtuOf(h1, 'weft.br1')), 'type', 'veth', 'peer', 'name', `${STRAY}p`]);
    try {
      const r = await doctor(h1);
      expect(r.status).toBe(1);
      expect(failed(r.report!)).toEqual([`links/${STRAY}`]);
      expect(finding(r.report!, `links/${STRAY}`).fix).toContain(`ip link del ${STRAY}`);
    } finally {
      lab.exec(h1.netns, 'ip', ['link', 'del', STRAY], { check: false });
    }
  }, 60_000);

  it("fails an overlay route deleted since the agent's reconcile", async () => {
    const h1 = lab.host('h1');
    const [route] = ipJson<Array<{ dst: string; gateway: string; dev: string }>>(h1.netns, ['route', 'show', 'proto', '119']);
    sh(h1, 'ip', ['route', 'del', route.dst, 'proto', '119']);
    try {
      const r = await doctor(h1);
      expect(r.status).toBe(1);
      expect(failed(r.report!)).toEqual(['overlay/entries']);
      expect(finding(r.report!, 'overlay/entries').message).toMatch(/^2 weft entries in the kernel .*, but the agent desires 3 .*: 1 were deleted/);
      expect(finding(r.report!, 'overlay/entries').fix).toContain('resync');
    } finally {
      sh(h1, 'ip', ['route', 'replace', route.dst, 'via', route.gateway, 'dev', route.dev, 'onlink', 'proto', '119']);
    }
  }, 60_000);

  it('fails a weft device of a network the host is not in', async () => {
    const h1 = lab.host('h1');
    sh(h1, 'ip', ['link', 'add', 'weft.vx9', 'mtu', String(mtuOf(h1, 'weft.br1')), 'type', 'vxlan', 'id', '9', 'dstport', '4789']);
    try {
      const r = await doctor(h1);
      expect(r.status).toBe(1);
      expect(failed(r.report!)).toEqual(['links/weft.vx9']);
      expect(finding(r.report!, 'links/weft.vx9').fix).toBe('ip link del weft.vx9');
    } finally {
      lab.exec(h1.netns, 'ip', ['link', 'del', 'weft.vx9'], { check: false });
    }
  }, 60_000);

  it('fails an agent that is down, and still checks the rest', async () => {
    const h2 = lab.host('h2');
    await agents.get('h2')!.proc.stop('SIGTERM');
    const r = await doctor(h2);
    expect(r.status).toBe(1);
    expect(failed(r.report!)).toEqual(['agent/healthz']);
    expect(finding(r.report!, 'agent/healthz').message).toContain('ECONNREFUSED');
    expect(finding(r.report!, 'agent/healthz').fix).toContain('start the agent');
    // what does not need the agent is still judged
    expect(finding(r.report!, 'controller/reachable').verdict).toBe('pass');
    expect(finding(r.report!, 'mtu/devices').verdict).toBe('pass');
    expect(finding(r.report!, 'overlay/entries').verdict).toBe('warn');
  }, 60_000);

  it('fails a controller that is down, naming the address it cannot reach', async () => {
    const h2 = lab.host('h2');
    await ctl.proc.stop('SIGTERM');
    const r = await doctor(h2);
    expect(r.status).toBe(1);
    expect(failed(r.report!)).toEqual(['agent/healthz', 'controller/reachable']);
    const f = finding(r.report!, 'controller/reachable');
    expect(f.message).toContain(`cannot reach the controller at ${ctl.server}: UNAVAILABLE`);
    expect(f.fix).toContain('weft-controller');
    expect(finding(r.report!, 'clock/skew').verdict).toBe('warn');
    // the certificate is read from the state dir, controller or not
    expect(finding(r.report!, 'certificate/expiry').verdict).toBe('pass');

    const text = await doctor(h2, { json: false });
    expect(text.status).toBe(1);
    expect(text.stdout).toMatch(/^FAIL {2}controller\/reachable +cannot reach the controller at .*\n +fix: check that the controller runs/m);
    console.log(`weft doctor with the agent and the controller down:\n${text.stdout}`);
  }, 60_000);
});

// Gateway failover, judged by probes through the tunnel: a gateway that is
// up but no longer forwarding (black-holed: its forward hook drops
// everything, every process alive) is replaced within 3 s at the 99th
// percentile of ten tries, alternating between the two datacenters; a
// gateway killed with SIGKILL (agent and wireguard-go) likewise. An
// established TCP connection carries on across all of it, and the WAN shows
// nothing but WireGuard throughout.
import { beforeAll, describe, expect, it } from 'vitest';
import type { LabProcess } from '../lab/lab';
import { waitFor } from '../helpers/wait';
import { readJsonLog } from '../e2e/traffic';
import {
  checkWan, DC1, DC2, lastJson, resumeAfter, serve, startPingStream, TCP_ECHO, TCP_STREAM, type PingStream, type TunnelLab,
} from './lab';
import { useTunnelLab } from './use-lab';

let t: TunnelLab;
let echo: LabProcess;
let stream: LabProcess;
const SECRET_HEX = Buffer.from('tun2leak').toString('hex');
const SECRET = 'tun2leaktun2leak';
const TRIES = 10;
const LIMIT_MS = 3000;

const c = (name: string) => t.containers.get(name)!;

useTunnelLab('tun2', (lab) => {
  t = lab;
});

// one TCP connection for the whole file: it must survive every failover below
beforeAll(async () => {
  echo = await serve(t, c('c2').netns, TCP_ECHO, ['5401']);
  stream = t.lab.spawn(c('c1').netns, process.execPath, ['-e', TCP_STREAM, c('c2').ip, '5401']);
  await waitFor('the TCP stream to connect', () => stream.output().includes('"connected":true'), 10_000);
}, 30_000);

/** The TCP stream is still connected, in order, and its echoes catch up with what it sends. */
async function expectStreamAlive(what: string): Promise<void> {
  const before = lastJson(stream.output());
  expect(stream.exited, `${what}: TCP stream client exited: ${stream.output().slice(-500)}`).toBe(false);
  await waitFor(`${what}: the TCP stream to echo 20 lines more than it had sent`, () => {
    const now = lastJson(stream.output());
    if (now?.error || now?.closed) throw new Error(`TCP stream broke: ${JSON.stringify(now)}`);
    return now && now.echoed >= (before?.sent ?? 0) + 20;
  }, 15_000);
  const now = lastJson(stream.output());
  expect(now.error, `${what}: ${JSON.stringify(now)}`).toBeNull();
  expect(now.closed).toBe(false);
}

/** The outage a disruption at `since` caused in the ping stream, once traffic is back. */
async function outage(s: PingStream, since: number, what: string): Promise<{ resumeMs: number; lost: number }> {
  return waitFor(`${what}: replies after an outage`, () => {
    const r = resumeAfter(s, since);
    if (r) return r;
    // no loss at all after 4 s of replies: the disruption did not touch the path
    const latest = Math.max(0, ...s.replies.values());
    return latest - since > 4000 ? { resumeMs: 0, lost: 0 } : null;
  }, 20_000, 50);
}

/** The agents' gateway and probe decisions in a time window, one line each, in time order. */
function choicesBetween(from: number, to: number): string {
  const lines: Array<[number, string]> = [];
  for (const a of t.agents.values()) {
    for (const l of readJsonLog(a.logFile)) {
      if (l.time < from || l.time > to || !/gateway|probe/.test(String(l.msg))) continue;
      const { level: _l, time, pid: _p, host: _h, part: _pa, msg, ...rest } = l;
      lines.push([time, `${new Date(time).toISOString().slice(11, 23)} ${a.host.name}: ${msg} ${JSON.stringify(rest).slice(0, 300)}`]);
    }
  }
  return lines.sort((x, y) => x[0] - y[0]).map((x) => x[1]).join('\n');
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.ceil((p / 100) * xs.length) - 1];

describe('gateway failover', () => {
  it(`replaces a black-holed gateway within ${LIMIT_MS} ms (p99 of ${TRIES} tries, both datacenters), the TCP stream surviving`, async () => {
    const cap = await t.capture('wan-blackhole');
    const s = startPingStream(c('c1').netns, c('c2').ip, { pattern: SECRET_HEX });
    const results: Array<{ gateway: string; since: number; resumeMs: number; lost: number }> = [];
    try {
      await waitFor('the ping stream to answer', () => s.replies.size >= 10, 10_000);
      for (let i = 0; i < TRIES; i++) {
        // even tries: the dc1 gateway h1 sends through; odd: the dc2 gateway h2 sends the replies through
        const [from, remote] = i % 2 === 0 ? ['h1', DC2] : ['h2', DC1];
        const gw = t.chosenGateway(from, remote);
        expect(gw, `try ${i}: ${from} has a gateway towards ${remote}`).toBeTruthy();
        const since = Date.now();
        const undo = t.blackHole(gw!);
        let r;
        try {
          r = await outage(s, since, `try ${i} (${gw} black-holed)`);
          await waitFor(`try ${i}: ${from} to move off ${gw}`, () => t.chosenGateway(from, remote) !== gw, 10_000);
        } finally {
          undo();
        }
        results.push({ gateway: gw!, since, ...r });
        // steady again before the next try: 10 replies in a row
        const seq = s.lastSeq();
        await waitFor(`try ${i}: 10 replies after the black hole is lifted`, () => [...s.replies.keys()].filter((q) => q > seq).length >= 10, 10_000);
      }
    } finally {
      await s.stop();
    }
    const ms = results.map((r) => r.resumeMs);
    console.log(`black-hole failover: ${JSON.stringify(results)}; p50 ${pct(ms, 50)} ms, p99 ${pct(ms, 99)} ms`);
    // a slow try: what every agent decided meanwhile, so the reason is in the failure
    for (const r of results.filter((x) => x.resumeMs > LIMIT_MS)) console.log(`slow try (${r.gateway}, ${r.resumeMs} ms):\n${choicesBetween(r.since - 500, r.since + r.resumeMs + 500)}`);
    // each try really cut the path it meant to cut
    expect(results.filter((r) => r.lost === 0).map((r) => r.gateway)).toEqual([]);
    expect(pct(ms, 99)).toBeLessThanOrEqual(LIMIT_MS);
    await expectStreamAlive('after the black holes');
    const { packets, violations } = await checkWan(t, cap, [SECRET]);
    expect(violations).toEqual([]);
    expect(packets).toBeGreaterThan(100);
  }, 180_000);

  it(`replaces a gateway killed with SIGKILL (agent and wireguard-go) within ${LIMIT_MS} ms, the TCP stream surviving`, async () => {
    const cap = await t.capture('wan-kill');
    const s = startPingStream(c('c1').netns, c('c2').ip, { pattern: SECRET_HEX });
    const results: Array<{ gateway: string; resumeMs: number; lost: number }> = [];
    try {
      await waitFor('the ping stream to answer', () => s.replies.size >= 10, 10_000);
      for (const [from, remote] of [['h1', DC2], ['h2', DC1]] as const) {
        const gw = t.chosenGateway(from, remote);
        expect(gw, `${from} has a gateway towards ${remote}`).toBeTruthy();
        const since = Date.now();
        await t.killGateway(gw!);
        const r = await outage(s, since, `${gw} killed`);
        results.push({ gateway: gw!, ...r });
        await expectStreamAlive(`after killing ${gw}`);
        // the gateway comes back (a new agent starts a new wireguard-go) and is a candidate again
        await t.startAgent(gw!);
        await waitFor(`${gw}'s wireguard-go to run again`, () => t.wireguardPids(gw!).length === 1, 20_000);
        const seq = s.lastSeq();
        await waitFor(`10 replies after ${gw} is back`, () => [...s.replies.keys()].filter((q) => q > seq).length >= 10, 10_000);
      }
    } finally {
      await s.stop();
    }
    console.log(`kill -9 failover: ${JSON.stringify(results)}`);
    expect(results.filter((r) => r.lost === 0).map((r) => r.gateway)).toEqual([]);
    expect(Math.max(...results.map((r) => r.resumeMs))).toBeLessThanOrEqual(LIMIT_MS);
    await expectStreamAlive('after the kills');
    const { violations } = await checkWan(t, cap, [SECRET]);
    expect(violations).toEqual([]);
  }, 120_000);

  it('ends with the TCP stream intact and in order', async () => {
    await expectStreamAlive('at the end');
    await stream.stop();
    const last = lastJson(stream.output());
    expect(last.error).toBeNull();
    expect(last.echoed).toBeGreaterThan(100);
    await echo.stop();
  });
});

// Containers in two datacenters reach each other through the gateways'
// WireGuard tunnel: TCP and UDP, with the client's own address seen by the
// server; on the WAN only WireGuard between gateway endpoints (and the
// agents' TLS to the controller); every agent restarted under a steady ping
// stream without losing one packet; and a 4 MiB transfer over a WAN path
// whose MTU is 1280.
import { describe, expect, it } from 'vitest';
import { ipBatch, nsRun } from '../lab/run';
import { ping, tcpSend, TCP_SINK } from '../e2e/traffic';
import { waitFor } from '../helpers/wait';
import {
  checkWan, FAIL_CLOSED_TABLE, serve, startPingStream, udpAsk, UDP_ECHO, type TunnelLab,
} from './lab';
import { useTunnelLab } from './use-lab';

let t: TunnelLab;
const MIB = 1024 * 1024;
/** In every payload the tests send, so the capture can look for it in the clear. */
const SECRET = 'weft-tun1-cleartext-marker';
const SECRET_HEX = Buffer.from('tun1leak').toString('hex');

const c = (name: string) => t.containers.get(name)!;

useTunnelLab('tun1', (lab) => {
  t = lab;
});

describe('containers across datacenters', () => {
  it('reach each other by address over TCP and UDP, the server seeing the client container\'s own address', async () => {
    const [c1, c2] = [c('c1'), c('c2')];
    const sinks = [await serve(t, c1.netns, TCP_SINK, ['5301']), await serve(t, c2.netns, TCP_SINK, ['5301'])];
    const echoes = [await serve(t, c1.netns, UDP_ECHO, ['5302']), await serve(t, c2.netns, UDP_ECHO, ['5302'])];
    try {
      for (const [from, to] of [[c1, c2], [c2, c1]]) {
        const tcp = await tcpSend(from.netns, to.ip, 5301, 64 * 1024, 10_000);
        expect(tcp.error, `${from.name} -> ${to.name} TCP`).toBeUndefined();
        expect(tcp.server?.bytes).toBe(64 * 1024);
        expect(tcp.server?.sha256).toBe(tcp.sha256);
        expect(tcp.server?.peer, 'TCP source address').toBe(from.ip);
        const udp = await udpAsk(from.netns, to.ip, 5302, `hello from ${from.name}`);
        expect(udp, `${from.name} -> ${to.name} UDP`).toEqual({ peer: from.ip, data: `hello from ${from.name}` });
      }
    } finally {
      for (const p of [...sinks, ...echoes]) await p.stop();
    }
  });

  it('puts nothing on the WAN but WireGuard between gateway endpoints and the agents\' TLS to the controller', async () => {
    const [c1, c2] = [c('c1'), c('c2')];
    const sink = await serve(t, c2.netns, TCP_SINK, ['5303']);
    const echo = await serve(t, c2.netns, UDP_ECHO, ['5304']);
    const cap = await t.capture('wan-traffic');
    try {
      const p = await ping(c1.netns, c2.ip, ['-c', '20', '-i', '0.05', '-p', SECRET_HEX]);
      expect(p.received, p.output).toBe(20);
      const tcp = await tcpSend(c1.netns, c2.ip, 5303, 256 * 1024, 10_000);
      expect(tcp.server?.sha256).toBe(tcp.sha256);
      expect(await udpAsk(c1.netns, c2.ip, 5304, SECRET)).toEqual({ peer: c1.ip, data: SECRET });
    } finally {
      await sink.stop();
      await echo.stop();
    }
    const { packets, violations } = await checkWan(t, cap, [SECRET, 'tun1leaktun1leak']);
    expect(violations).toEqual([]);
    // the capture saw the traffic (as WireGuard), so an empty violation list means something
    expect(packets).toBeGreaterThan(40);
  });

  it('restarting every agent, one after another, loses no packet of a steady ping stream, keeps inet weft_xdc while it is down and leaks nothing onto the WAN', async () => {
    const [c1, c2] = [c('c1'), c('c2')];
    const cap = await t.capture('wan-restart');
    const stream = startPingStream(c1.netns, c2.ip, { pattern: SECRET_HEX });
    let summary;
    try {
      await waitFor('the ping stream to get replies', () => stream.replies.size >= 10, 10_000);
      for (const h of ['h1', 'g1a', 'g1b', 'g2a', 'g2b', 'h2']) {
        await t.stopAgent(h);
        // the drop rules stay while no agent runs
        expect(nsRun(t.host(h).netns, 'nft', ['list', 'table', 'inet', FAIL_CLOSED_TABLE], { check: false }).status, `${h}: ${FAIL_CLOSED_TABLE} with the agent stopped`).toBe(0);
        await t.startAgent(h);
      }
      // the stream keeps answering after the last restart
      const seq = stream.lastSeq();
      await waitFor('40 more replies after the last restart', () => [...stream.replies.keys()].filter((s) => s > seq).length >= 40, 20_000);
    } finally {
      summary = await stream.stop();
    }
    console.log(`agent restarts: ${summary.transmitted} sent, ${summary.received} received, gaps ${JSON.stringify(summary.gaps)}`);
    expect(summary.transmitted).toBeGreaterThan(50);
    expect(summary.gaps, summary.output).toEqual([]);
    expect(summary.lost).toBe(0);
    const { violations } = await checkWan(t, cap, ['tun1leaktun1leak']);
    expect(violations).toEqual([]);
  }, 120_000);

  it('moves 4 MiB container to container, both ways, over a WAN path with MTU 1280', async () => {
    const [c1, c2] = [c('c1'), c('c2')];
    const r2 = t.lab.plan.routers.find((r) => r.datacenter === 'dc2')!;
    const setMtu = (mtu: number) => {
      ipBatch(r2.netns, [`link set ${r2.wanIf} mtu ${mtu}`]);
      ipBatch(t.lab.plan.wan, [`link set ${r2.peerIf} mtu ${mtu}`]);
    };
    setMtu(1280);
    const sinks = [await serve(t, c1.netns, TCP_SINK, ['5305']), await serve(t, c2.netns, TCP_SINK, ['5305'])];
    try {
      for (const [from, to] of [[c1, c2], [c2, c1]]) {
        const r = await tcpSend(from.netns, to.ip, 5305, 4 * MIB, 60_000);
        console.log(`4 MiB ${from.name} -> ${to.name} over MTU 1280: ${JSON.stringify({ ms: r.ms, error: r.error })}`);
        expect(r.error, `${from.name} -> ${to.name}`).toBeUndefined();
        expect(r.server?.bytes).toBe(4 * MIB);
        expect(r.server?.sha256).toBe(r.sha256);
      }
    } finally {
      for (const p of sinks) await p.stop();
      setMtu(1500);
    }
  }, 150_000);
});

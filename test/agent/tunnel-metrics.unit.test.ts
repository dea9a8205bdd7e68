// weft_tunnel_* metrics and the heartbeat's tunnel report, from a tunnel
// source: counters the chooser and the device keep are carried by their
// increase, and a device that started again counts on from its new values.
import { describe, expect, it } from 'vitest';
import { createAgentMetrics } from '../../cni-plugin/agent/metrics';
import type { TunnelSummary } from '../../cni-plugin/agent/state/tunnel';

function summary(o: Partial<TunnelSummary> = {}): TunnelSummary {
  return {
    role: 'gateway', datacenter: 'dc1', wgMtu: 1440, xdcMtu: 1390, mtuSource: 'derived', keySince: 1,
    paths: [{ datacenter: 'dc2', chosen: 'g2b', lastOkAt: 5, consecutiveMisses: 0, failovers: 2, rttMs: 1.5 }],
    peers: [{ host: 'g2b', datacenter: 'dc2', endpoint: '203.0.113.2:51820', handshakeAgeSeconds: 12, rxBytes: 1000, txBytes: 2000 }],
    ...o,
  };
}

const value = (text: string, line: string) => {
  const m = text.split('\n').find((l) => l.startsWith(line + ' '));
  return m === undefined ? undefined : Number(m.slice(line.length + 1));
};

describe('tunnel metrics', () => {
  it('reports role, active gateway, failovers, RTT, peers, MTU and drops; carries counters across a device restart', async () => {
    const m = createAgentMetrics({ hostName: 'g1a', version: 't', outboxPending: () => 0 });
    expect(m.heartbeatReport().tunnel).toBeUndefined();
    let s = summary();
    m.setTunnel({ summary: () => s, dropped: () => ({ remote: 7, vxlan: 1 }) });
    let text = await m.registry.metrics();
    expect(value(text, 'weft_tunnel_role{role="gateway"}')).toBe(1);
    expect(value(text, 'weft_tunnel_role{role="host"}')).toBe(0);
    expect(value(text, 'weft_tunnel_active_gateway{datacenter="dc2",gateway="g2b"}')).toBe(1);
    expect(value(text, 'weft_tunnel_failovers_total{datacenter="dc2"}')).toBe(2);
    expect(value(text, 'weft_tunnel_probe_rtt_seconds{datacenter="dc2"}')).toBe(0.0015);
    expect(value(text, 'weft_tunnel_peer_handshake_age_seconds{peer="g2b"}')).toBe(12);
    expect(value(text, 'weft_tunnel_peer_bytes_total{peer="g2b",direction="tx"}')).toBe(2000);
    expect(value(text, 'weft_tunnel_mtu{device="weft.wg0",source="derived"}')).toBe(1440);
    expect(value(text, 'weft_tunnel_mtu{device="weft.xdc",source="derived"}')).toBe(1390);
    expect(value(text, 'weft_tunnel_dropped_packets{rule="remote"}')).toBe(7);
    expect(value(text, 'weft_tunnel_dropped_packets{rule="vxlan"}')).toBe(1);

    // a failover and a wireguard-go that started again (its counters back to small numbers)
    s = summary({ paths: [{ ...summary().paths[0], chosen: 'g2a', failovers: 3 }], peers: [{ ...summary().peers[0], txBytes: 500 }] });
    text = await m.registry.metrics();
    expect(value(text, 'weft_tunnel_failovers_total{datacenter="dc2"}')).toBe(3);
    expect(value(text, 'weft_tunnel_active_gateway{datacenter="dc2",gateway="g2a"}')).toBe(1);
    expect(value(text, 'weft_tunnel_active_gateway{datacenter="dc2",gateway="g2b"}')).toBeUndefined();
    expect(value(text, 'weft_tunnel_peer_bytes_total{peer="g2b",direction="tx"}')).toBe(2500);
    expect(m.heartbeatReport().tunnel).toEqual(s);
  });
});

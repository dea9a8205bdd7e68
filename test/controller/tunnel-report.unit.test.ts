// The agent's tunnel summary as its heartbeat carries it: whole numbers where
// the proto has them, "never" kept as -1, cut to what the controller accepts,
// so whatever the agent measured, its heartbeat is never refused for it.
import { describe, expect, it } from 'vitest';
import { checkTunnelReport } from '../../controller/api/validate';
import { tunnelReportOf } from '../../cni-plugin/agent/sync/controller';
import type { TunnelSummary } from '../../cni-plugin/agent/state/tunnel';
import { tunnelRecordOf, tunnelReportMessage } from '../../controller/service/tunnel-view';
import { decodeTunnelReport } from '../../controller/registry/tunnel-reports';

const summary = (n: { paths: number; peers: number }): TunnelSummary => ({
  role: 'gateway', datacenter: 'dc1', wgMtu: 1420, xdcMtu: 1370, mtuSource: 'probed', keySince: 1_700_000_000_000.7,
  paths: Array.from({ length: n.paths }, (_, i) => ({ datacenter: `d${i}`, chosen: i % 2 ? '' : `g${i}`, lastOkAt: 5.5, consecutiveMisses: 2, failovers: 1, rttMs: 0.25 })),
  peers: Array.from({ length: n.peers }, (_, i) => ({
    host: `p${i}`, datacenter: 'dc2', endpoint: i % 2 ? '[fd00::1]:51820' : '203.0.113.1:51820', handshakeAgeSeconds: i % 3 ? 12.4 : -1, rxBytes: 1e3, txBytes: 2.5,
  })),
});

describe('the heartbeat\'s tunnel report', () => {
  it('rounds and bounds the agent\'s numbers so the controller takes the report', () => {
    const r = tunnelReportOf(summary({ paths: 2, peers: 3 }));
    expect(checkTunnelReport(r, 'tunnel')).toBeUndefined();
    expect(r.key_since_unix_ms).toBe(1_700_000_000_001);
    expect(r.paths[0]).toEqual({ datacenter: 'd0', chosen: 'g0', last_ok_unix_ms: 6, consecutive_misses: 2, failovers: 1, rtt_ms: 0.25 });
    expect(r.peers.map((p) => p.handshake_age_seconds)).toEqual([-1, 12, 12]);
    expect(r.peers[2].tx_bytes).toBe(3);
    // NaN and negative counters read as 0, not as a refused heartbeat
    const odd = tunnelReportOf({ ...summary({ paths: 1, peers: 1 }), wgMtu: Number.NaN, keySince: -5 });
    expect([odd.wg_mtu, odd.key_since_unix_ms]).toEqual([0, 0]);
    expect(checkTunnelReport(odd, 'tunnel')).toBeUndefined();
  });

  it('cuts paths and peers to what one report may hold', () => {
    const r = tunnelReportOf(summary({ paths: 70, peers: 1100 }));
    expect([r.paths.length, r.peers.length]).toEqual([64, 1024]);
    expect(checkTunnelReport(r, 'tunnel')).toBeUndefined();
  });

  it('reads back as sent through the registry record', () => {
    const r = tunnelReportOf(summary({ paths: 2, peers: 2 }));
    expect(tunnelReportMessage(decodeTunnelReport(JSON.parse(JSON.stringify(tunnelRecordOf(r))))!)).toEqual(r);
    // a hand-edited record reads as what it can
    expect(decodeTunnelReport({ role: 'x', paths: 'no', peers: [{ host: 'h', handshakeAgeSeconds: 'soon' }] })).toMatchObject({
      role: 'host', paths: [], peers: [{ host: 'h', handshakeAgeSeconds: -1, rxBytes: 0 }],
    });
    expect(decodeTunnelReport(null)).toBeUndefined();
  });
});

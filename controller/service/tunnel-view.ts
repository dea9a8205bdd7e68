// What an operator sees of the tunnels between datacenters (ListTunnels:
// `weft datacenter list`, `weft status`), joined from the datacenter records,
// the host records (keys) and what each agent last reported with a heartbeat
// (registry/tunnel-reports.ts). Pure: the handler reads, this builds.
//
// Nothing here is measured by the controller: a gateway whose agent has not
// reported shows as such, and a pair of datacenters no host reported a path
// for shows no choices, rather than a guess.
import type { DatacenterRecord } from '../registry/datacenters';
import type { HostRecord, HostReport } from '../registry/hosts';
import type { TunnelPeerRecord, TunnelReportRecord } from '../registry/tunnel-reports';
import type * as pb from '../api/proto';

/** How much of a public key `weft datacenter list` shows: enough to tell keys apart, and to see one change. */
export const KEY_FINGERPRINT_CHARS = 8;

export const keyFingerprint = (publicKey: string): string => publicKey.slice(0, KEY_FINGERPRINT_CHARS);

export type TunnelFacts = {
  datacenters: DatacenterRecord[];
  hosts: Map<string, HostRecord>;
  reports: Map<string, HostReport>;
  /** ms since the epoch, the answering controller's clock. */
  now: number;
};

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function tunnelPeerMessage(p: TunnelPeerRecord): pb.TunnelPeer {
  return {
    host: p.host, datacenter: p.datacenter, endpoint: p.endpoint, handshake_age_seconds: p.handshakeAgeSeconds,
    rx_bytes: p.rxBytes, tx_bytes: p.txBytes,
  };
}

export function tunnelReportMessage(t: TunnelReportRecord): pb.TunnelReport {
  return {
    role: t.role, datacenter: t.datacenter,
    paths: t.paths.map((p) => ({
      datacenter: p.datacenter, chosen: p.chosen, last_ok_unix_ms: p.lastOkAt, consecutive_misses: p.consecutiveMisses,
      failovers: p.failovers, rtt_ms: p.rttMs,
    })),
    peers: t.peers.map(tunnelPeerMessage),
    wg_mtu: t.wgMtu, xdc_mtu: t.xdcMtu, mtu_source: t.mtuSource, key_since_unix_ms: t.keySince,
  };
}

/** A heartbeat's tunnel report as the registry keeps it; null (none) keeps none. */
export function tunnelRecordOf(t: pb.TunnelReport | null): TunnelReportRecord | undefined {
  if (!t) return undefined;
  return {
    role: t.role === 'gateway' ? 'gateway' : 'host',
    datacenter: t.datacenter,
    paths: t.paths.map((p) => ({
      datacenter: p.datacenter, chosen: p.chosen, lastOkAt: p.last_ok_unix_ms, consecutiveMisses: p.consecutive_misses,
      failovers: p.failovers, rttMs: p.rtt_ms,
    })),
    peers: t.peers.map((p) => ({
      host: p.host, datacenter: p.datacenter, endpoint: p.endpoint, handshakeAgeSeconds: p.handshake_age_seconds,
      rxBytes: p.rx_bytes, txBytes: p.tx_bytes,
    })),
    wgMtu: t.wg_mtu, xdcMtu: t.xdc_mtu, mtuSource: t.mtu_source, keySince: t.key_since_unix_ms,
  };
}

/** A handshake age as it was at `reportedAt`, carried forward to `now`; -1 (none) stays. */
function agedSeconds(age: number, reportedAt: number, now: number): number {
  return age < 0 ? -1 : age + Math.max(0, Math.floor((now - reportedAt) / 1000));
}

export function tunnelView(f: TunnelFacts): pb.ListTunnelsResponse {
  const datacenters = [...f.datacenters].sort((a, b) => cmp(a.name, b.name));
  const out: pb.DatacenterTunnels[] = datacenters.map((dc) => ({
    name: dc.name,
    gateways: dc.gateways.map((g): pb.GatewayTunnels => {
      const h = f.hosts.get(g.host);
      const key = h && h.datacenter === dc.name ? h.wgPublicKey : '';
      const report = f.reports.get(g.host);
      const t = report?.tunnel;
      return {
        host: g.host,
        state: g.state,
        key_fingerprint: keyFingerprint(key),
        reported: t !== undefined,
        reported_at_unix_ms: t ? report!.reportedAt : 0,
        key_since_unix_ms: t?.keySince ?? 0,
        peers: (t?.peers ?? [])
          .map((p) => ({ ...tunnelPeerMessage(p), handshake_age_seconds: agedSeconds(p.handshakeAgeSeconds, report!.reportedAt, f.now) }))
          .sort((a, b) => cmp(a.host, b.host)),
      };
    }),
  }));

  // Every ordered pair of declared datacenters, plus any pair a host reported a path for.
  const pairs = new Map<string, pb.TunnelPathSummary>();
  const pair = (from: string, to: string) => {
    const k = `${from}\0${to}`;
    let p = pairs.get(k);
    if (!p) pairs.set(k, (p = { from, to, chosen: {}, failovers: 0, hosts: 0 }));
    return p;
  };
  for (const a of datacenters) for (const b of datacenters) if (a.name !== b.name) pair(a.name, b.name);
  for (const [name, report] of f.reports) {
    const host = f.hosts.get(name);
    if (!host || !report.tunnel) continue; // a report outlives no host (deleteHost removes both); this one is mid-delete
    const from = host.datacenter || report.tunnel.datacenter;
    if (!from) continue;
    for (const path of report.tunnel.paths) {
      if (path.datacenter === from) continue;
      const p = pair(from, path.datacenter);
      p.chosen[path.chosen] = (p.chosen[path.chosen] ?? 0) + 1;
      p.failovers += path.failovers;
      p.hosts += 1;
    }
  }
  const paths = [...pairs.values()].sort((a, b) => cmp(a.from, b.from) || cmp(a.to, b.to));
  return { datacenters: out, paths, now_unix_ms: f.now };
}

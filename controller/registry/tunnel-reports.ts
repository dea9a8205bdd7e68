// What an agent last said about its tunnels between datacenters, kept inside
// its host report (/weft/host-status/<name>, hosts.ts HostReport): the
// gateway it chose towards each remote datacenter, its WireGuard peers'
// handshakes and bytes, its MTUs and since when its key is in use. For
// operators (`weft datacenter list`, `weft status`); nothing is programmed
// from it. Read back defensively: a hand-edited record reads as what it can.
import { num, str } from './json';

export type TunnelPathRecord = {
  datacenter: string;
  chosen: string;
  /** ms since the epoch by the agent's clock; 0: never. */
  lastOkAt: number;
  consecutiveMisses: number;
  failovers: number;
  rttMs: number;
};

export type TunnelPeerRecord = {
  host: string;
  datacenter: string;
  endpoint: string;
  /** -1: no handshake yet. */
  handshakeAgeSeconds: number;
  rxBytes: number;
  txBytes: number;
};

export type TunnelReportRecord = {
  role: 'host' | 'gateway';
  datacenter: string;
  paths: TunnelPathRecord[];
  peers: TunnelPeerRecord[];
  wgMtu: number;
  xdcMtu: number;
  mtuSource: string;
  /** ms since the epoch; 0: unknown. */
  keySince: number;
};

const obj = (v: unknown): Record<string, unknown> | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
const list = (v: unknown): Record<string, unknown>[] => (Array.isArray(v) ? v.map(obj).filter((x): x is Record<string, unknown> => x !== undefined) : []);

export function decodeTunnelReport(v: unknown): TunnelReportRecord | undefined {
  const r = obj(v);
  if (!r) return undefined;
  const handshake = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : -1);
  return {
    role: r.role === 'gateway' ? 'gateway' : 'host',
    datacenter: str(r.datacenter),
    paths: list(r.paths).map((p) => ({
      datacenter: str(p.datacenter), chosen: str(p.chosen), lastOkAt: num(p.lastOkAt),
      consecutiveMisses: num(p.consecutiveMisses), failovers: num(p.failovers), rttMs: num(p.rttMs),
    })),
    peers: list(r.peers).map((p) => ({
      host: str(p.host), datacenter: str(p.datacenter), endpoint: str(p.endpoint),
      handshakeAgeSeconds: handshake(p.handshakeAgeSeconds), rxBytes: num(p.rxBytes), txBytes: num(p.txBytes),
    })),
    wgMtu: num(r.wgMtu),
    xdcMtu: num(r.xdcMtu),
    mtuSource: str(r.mtuSource),
    keySince: num(r.keySince),
  };
}

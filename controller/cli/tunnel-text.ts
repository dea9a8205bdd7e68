// How the tunnels between datacenters read in `weft datacenter list` and
// `weft status`: what the agents reported (ListTunnels), never a guess; a
// gateway or a pair of datacenters nobody reported on says "no report".
import type { GatewayTunnels, ListTunnelsResponse, TunnelPathSummary } from '../api/proto';

/** "42s", "3m12s", "never" (no handshake yet). */
export function handshakeAge(seconds: number): string {
  if (seconds < 0) return 'never';
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${seconds % 60 ? `${seconds % 60}s` : ''}`;
  return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60) ? `${Math.floor((seconds % 3600) / 60)}m` : ''}`;
}

/** A gateway's peers and the age of their last handshake: "h9 5s, h10 never"; "no report" when its agent sent none. */
export function peerHandshakes(g: GatewayTunnels | undefined): string {
  if (!g || !g.reported) return 'no report';
  if (g.peers.length === 0) return 'no peers';
  return g.peers.map((p) => `${p.host} ${handshakeAge(p.handshake_age_seconds)}`).join(', ');
}

/** Which gateway the hosts chose, most chosen first: "h1 ×3, h2 ×1"; "none answering" for hosts with no choice. */
export function choices(p: TunnelPathSummary): string {
  if (p.hosts === 0) return 'no report';
  return Object.entries(p.chosen)
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0))
    .map(([gw, n]) => `${gw || 'none answering'} ×${n}`)
    .join(', ');
}

/** One row per ordered pair of datacenters: FROM, TO, CHOSEN, HOSTS, FAILOVERS. */
export function pathRows(t: Pick<ListTunnelsResponse, 'paths'>): string[][] {
  const rows = [['FROM', 'TO', 'ACTIVE (GATEWAY ×HOSTS)', 'REPORTING', 'FAILOVERS']];
  for (const p of t.paths) rows.push([p.from, p.to, choices(p), String(p.hosts), p.hosts === 0 ? '-' : String(p.failovers)]);
  return rows;
}

/** `weft status`'s line for one pair: "dc1 -> dc2  via h1 ×3, h2 ×1; 2 failovers" or "dc1 -> dc2  no report". */
export function pathLine(p: TunnelPathSummary): string {
  if (p.hosts === 0) return `${p.from} -> ${p.to}  no report`;
  return `${p.from} -> ${p.to}  via ${choices(p)}; ${p.failovers} failover${p.failovers === 1 ? '' : 's'}`;
}

// The topology page on the metrics port: datacenters, racks and hosts with
// their heartbeat health, each datacenter's gateways, and the tunnels between
// datacenters as the hosts report them. GET /topology.json is the data,
// GET /topology the page.
//
// The page is rendered here, on the server, and complete without JavaScript;
// a small inline script swaps in a fresh rendering of the same markup
// (/topology?part=main) every 2 s. One renderer means escaping lives in one
// place: every string a host sent (names, racks, versions, gateways it
// chose) goes through `esc` before it reaches markup.
//
// What it shows is what `weft hosts` and `weft datacenter list` show, with no
// key but an 8-character public-key fingerprint and no token. The metrics port
// is unauthenticated, so whoever reaches it sees the cluster's layout; it binds
// where the operator said (--metrics-listen, loopback by default).
import { randomBytes } from 'node:crypto';
import { listDatacenters } from '../registry/datacenters';
import { listHostReports, listHosts } from '../registry/hosts';
import { loadClusterConfig } from '../ipam/cluster-config';
import { readHostStatuses } from '../service/cluster-view';
import { tunnelView } from '../service/tunnel-view';
import type { Store } from '../store/types';

export type TopologyHost = {
  name: string;
  /** alive | stale | expired, as `weft hosts` says (service/cluster-view.ts hostHealth). */
  health: string;
  heartbeatAgeMs: number;
  agentVersion: string;
  underlayIp: string;
  subnets: Array<{ network: string; subnet: string }>;
  gateway: boolean;
  /** The gateway this host chose towards each remote datacenter, as it last reported. */
  paths: Array<{ datacenter: string; chosen: string; rttMs: number }>;
};

export type TopologyGateway = {
  host: string;
  /** active | draining */
  state: string;
  keyFingerprint: string;
  reported: boolean;
  /** Its WireGuard peers (other datacenters' gateways) with the handshake age carried forward to now; -1: none yet. */
  peers: Array<{ host: string; datacenter: string; handshakeAgeSeconds: number }>;
};

export type TopologyDatacenter = {
  name: string;
  /** false: hosts name it but no datacenter record exists (single-site clusters: ""). */
  declared: boolean;
  gateways: TopologyGateway[];
  racks: Array<{ name: string; hosts: TopologyHost[] }>;
};

export type TopologyTunnel = {
  from: string;
  to: string;
  /** Gateway -> how many hosts of `from` chose it; "" counts hosts with no gateway answering. */
  chosen: Record<string, number>;
  hosts: number;
  failovers: number;
  /** Youngest handshake between a gateway of `from` and one of `to`, in seconds; -1: none. */
  handshakeAgeSeconds: number;
};

export type Topology = {
  nowUnixMs: number;
  revision: number;
  leaseTtlSeconds: number;
  datacenters: TopologyDatacenter[];
  tunnels: TopologyTunnel[];
};

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Reads everything the page shows, now. */
export async function readTopology(store: Store, now: () => number = Date.now): Promise<Topology> {
  const statuses = await readHostStatuses({ store, loadConfig: loadClusterConfig, now });
  const [{ datacenters }, records, reports] = [await listDatacenters(store), await listHosts(store), await listHostReports(store)];
  const tunnels = tunnelView({ datacenters, hosts: new Map(records.map((h) => [h.name, h])), reports, now: statuses.now_unix_ms });
  return buildTopology({
    nowUnixMs: statuses.now_unix_ms,
    revision: statuses.revision,
    leaseTtlSeconds: statuses.lease_ttl_seconds,
    hosts: statuses.hosts.map((s) => ({
      name: s.host!.name,
      rack: s.host!.rack,
      datacenter: s.host!.datacenter,
      health: s.health,
      heartbeatAgeMs: s.heartbeat_age_ms,
      agentVersion: s.reported_agent_version || s.host!.agent_version,
      underlayIp: s.host!.underlay_ip,
      subnets: s.host!.subnets.map((x) => ({ network: x.network, subnet: x.subnet })),
      paths: (s.tunnel?.paths ?? []).map((p) => ({ datacenter: p.datacenter, chosen: p.chosen, rttMs: p.rtt_ms })),
    })),
    datacenters: tunnels.datacenters.map((d) => ({
      name: d.name,
      gateways: d.gateways.map((g) => ({
        host: g.host, state: g.state, keyFingerprint: g.key_fingerprint, reported: g.reported,
        peers: g.peers.map((p) => ({ host: p.host, datacenter: p.datacenter, handshakeAgeSeconds: p.handshake_age_seconds })),
      })),
    })),
    paths: tunnels.paths.map((p) => ({ from: p.from, to: p.to, chosen: { ...p.chosen }, hosts: p.hosts, failovers: p.failovers })),
  });
}

export type TopologyFacts = {
  nowUnixMs: number;
  revision: number;
  leaseTtlSeconds: number;
  hosts: Array<Omit<TopologyHost, 'gateway'> & { rack: string; datacenter: string }>;
  datacenters: Array<{ name: string; gateways: TopologyGateway[] }>;
  paths: Array<Omit<TopologyTunnel, 'handshakeAgeSeconds'>>;
};

/** Groups hosts by datacenter and rack and joins the gateways' handshakes onto the tunnels. Pure. */
export function buildTopology(f: TopologyFacts): Topology {
  const dcs = new Map<string, TopologyDatacenter>();
  for (const d of [...f.datacenters].sort((a, b) => cmp(a.name, b.name))) {
    dcs.set(d.name, { name: d.name, declared: true, gateways: d.gateways, racks: [] });
  }
  const gatewayHosts = new Set(f.datacenters.flatMap((d) => d.gateways.map((g) => g.host)));
  for (const h of [...f.hosts].sort((a, b) => cmp(a.datacenter, b.datacenter) || cmp(a.rack, b.rack) || cmp(a.name, b.name))) {
    let dc = dcs.get(h.datacenter);
    if (!dc) dcs.set(h.datacenter, (dc = { name: h.datacenter, declared: false, gateways: [], racks: [] }));
    let rack = dc.racks.find((r) => r.name === h.rack);
    if (!rack) dc.racks.push((rack = { name: h.rack, hosts: [] }));
    const { rack: _r, datacenter: _d, ...rest } = h;
    rack.hosts.push({ ...rest, gateway: gatewayHosts.has(h.name) });
  }
  const datacenters = [...dcs.values()].sort((a, b) => cmp(a.name, b.name));
  for (const d of datacenters) d.racks.sort((a, b) => cmp(a.name, b.name));

  const tunnels = f.paths.map((p): TopologyTunnel => {
    let youngest = -1;
    for (const g of dcs.get(p.from)?.gateways ?? []) {
      for (const peer of g.peers) {
        if (peer.datacenter !== p.to || peer.handshakeAgeSeconds < 0) continue;
        if (youngest < 0 || peer.handshakeAgeSeconds < youngest) youngest = peer.handshakeAgeSeconds;
      }
    }
    return { ...p, handshakeAgeSeconds: youngest };
  });
  return { nowUnixMs: f.nowUnixMs, revision: f.revision, leaseTtlSeconds: f.leaseTtlSeconds, datacenters, tunnels };
}

// ---- rendering ----

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text and attribute values alike: every character that could end either is replaced. */
export function esc(v: unknown): string {
  return String(v).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** Health -> the box's fill. Also what the screenshot test looks for: keep them in sync. */
export const HEALTH_COLORS: Record<string, string> = {
  alive: '#2da44e',
  stale: '#d4a72c',
  expired: '#cf222e',
};
const UNKNOWN_COLOR = '#8c959f';

function age(seconds: number): string {
  if (seconds < 0) return 'never';
  if (seconds < 120) return `${seconds} s ago`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)} min ago`;
  return `${Math.floor(seconds / 3600)} h ago`;
}

const dcLabel = (name: string) => (name === '' ? '(no datacenter)' : name);
const rackLabel = (name: string) => (name === '' ? '(no rack)' : name);

function hostBox(h: TopologyHost): string {
  const color = HEALTH_COLORS[h.health] ?? UNKNOWN_COLOR;
  const subnets = h.subnets.map((s) => `${esc(s.network)} ${esc(s.subnet)}`).join('<br>') || 'no subnet';
  const paths = h.paths.length
    ? `<div class="paths">${h.paths.map((p) => `&rarr; ${esc(p.datacenter)} via ${p.chosen ? esc(p.chosen) : '<em>none answering</em>'}`).join('<br>')}</div>`
    : '';
  return (
    `<div class="host" data-host="${esc(h.name)}" data-health="${esc(h.health)}" style="background:${color}">` +
    `<div class="name">${esc(h.name)}${h.gateway ? ' <span class="tag">gateway</span>' : ''}</div>` +
    `<div>${esc(h.health)}, heard ${esc(age(Math.floor(h.heartbeatAgeMs / 1000)))}</div>` +
    `<div>${esc(h.underlayIp)}</div><div>agent ${esc(h.agentVersion || '?')}</div>` +
    `<div class="subnets">${subnets}</div>${paths}</div>`
  );
}

function gatewayRows(d: TopologyDatacenter): string {
  if (d.gateways.length === 0) return '';
  const rows = d.gateways.map((g) => {
    const peers = g.peers.length
      ? g.peers.map((p) => `${esc(p.host)} (${esc(p.datacenter)}): handshake ${esc(age(p.handshakeAgeSeconds))}`).join('<br>')
      : g.reported ? 'no peers' : 'not reported';
    return `<tr><td>${esc(g.host)}</td><td class="state-${esc(g.state)}">${esc(g.state)}</td><td><code>${esc(g.keyFingerprint || '-')}</code></td><td>${peers}</td></tr>`;
  });
  return `<table class="gateways"><caption>Gateways</caption><tr><th>host</th><th>state</th><th>key</th><th>peers</th></tr>${rows.join('')}</table>`;
}

function datacenterSection(d: TopologyDatacenter): string {
  const racks = d.racks.length
    ? d.racks
      .map((r) => `<div class="rack"><h3>rack ${esc(rackLabel(r.name))}</h3><div class="hosts">${r.hosts.map(hostBox).join('')}</div></div>`)
      .join('')
    : '<p>no hosts</p>';
  return (
    `<section class="dc" data-dc="${esc(d.name)}"><h2>${esc(dcLabel(d.name))}${d.declared ? '' : ' <small>(not declared)</small>'}</h2>` +
    `${gatewayRows(d)}<div class="racks">${racks}</div></section>`
  );
}

function tunnelTable(t: Topology): string {
  if (t.tunnels.length === 0) return '';
  const rows = t.tunnels.map((p) => {
    const chosen = Object.entries(p.chosen)
      .sort(([a], [b]) => cmp(a, b))
      .map(([gw, n]) => `${gw ? esc(gw) : '<em>none answering</em>'}: ${n} host${n === 1 ? '' : 's'}`)
      .join('<br>');
    return (
      `<tr data-from="${esc(p.from)}" data-to="${esc(p.to)}"><td>${esc(dcLabel(p.from))} &rarr; ${esc(dcLabel(p.to))}</td>` +
      `<td>${chosen || 'no host reported'}</td><td>${esc(age(p.handshakeAgeSeconds))}</td><td>${p.failovers}</td></tr>`
    );
  });
  return (
    '<table class="tunnels"><caption>Tunnels between datacenters</caption>' +
    '<tr><th>path</th><th>carried by (as hosts report)</th><th>gateway handshake</th><th>failovers</th></tr>' +
    `${rows.join('')}</table>`
  );
}

/** The part the page refreshes: everything below the title. */
export function renderTopologyMain(t: Topology): string {
  const hosts = t.datacenters.flatMap((d) => d.racks.flatMap((r) => r.hosts));
  const count = (h: string) => hosts.filter((x) => x.health === h).length;
  const legend = Object.entries(HEALTH_COLORS)
    .map(([h, c]) => `<span class="swatch" style="background:${c}"></span>${esc(h)} ${count(h)}`)
    .join(' ');
  const sections = t.datacenters.length ? t.datacenters.map(datacenterSection).join('') : '<p>No hosts have joined yet.</p>';
  return (
    `<p class="summary">${hosts.length} host${hosts.length === 1 ? '' : 's'}: ${legend} &middot; store revision ${t.revision} &middot; ` +
    `lease TTL ${t.leaseTtlSeconds} s &middot; as of <time>${esc(new Date(t.nowUnixMs).toISOString())}</time></p>` +
    `<div class="dcs">${sections}</div>${tunnelTable(t)}`
  );
}

const STYLE = `
body{font:14px/1.35 system-ui,sans-serif;margin:16px;background:#fff;color:#1f2328}
h1{font-size:20px;margin:0 0 8px}h2{font-size:17px;margin:0 0 8px}h3{font-size:14px;margin:8px 0 4px}
.dcs{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:16px}
.dc{border:2px solid #d0d7de;border-radius:6px;padding:10px}
.hosts{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px}
.host{color:#fff;border-radius:4px;padding:6px 8px;min-height:90px;font-size:12px;overflow-wrap:anywhere}
.host .name{font-weight:600;font-size:13px}.tag{background:#0006;border-radius:3px;padding:0 4px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top}
caption{text-align:left;font-weight:600}.state-draining{color:#9a6700;font-weight:600}
.swatch{display:inline-block;width:10px;height:10px;margin:0 3px 0 6px}
#stale{color:#cf222e}
`;

/** The whole page; `nonce` admits the one inline script under the page's Content-Security-Policy. */
export function renderTopologyPage(t: Topology, nonce: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>weft topology</title>
<meta name="viewport" content="width=device-width">
<noscript><meta http-equiv="refresh" content="5"></noscript>
<style>${STYLE}</style></head>
<body><h1>weft topology <small id="stale"></small></h1>
<main id="main">${renderTopologyMain(t)}</main>
<script nonce="${esc(nonce)}">
(function () {
  var main = document.getElementById('main'), note = document.getElementById('stale'), n = 0;
  function tick() {
    fetch('topology?part=main', { cache: 'no-store' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.text(); })
      .then(function (html) { main.innerHTML = html; main.setAttribute('data-refreshes', String(++n)); note.textContent = ''; })
      .catch(function (e) { note.textContent = '(not updating: ' + e.message + ')'; })
      .then(function () { setTimeout(tick, 2000); });
  }
  setTimeout(tick, 2000);
})();
</script></body></html>
`;
}

export const TOPOLOGY_PATHS: ReadonlySet<string> = new Set(['/topology', '/topology.json']);

export type PageResponse = { status: number; headers: Record<string, string>; body: string };

/**
 * The answer to GET /topology, /topology?part=main and /topology.json. The
 * page's policy lets it run its own script and fetch from this origin, and
 * nothing else: no external resource, no framing.
 */
export async function topologyResponse(store: Store, path: string, query: string): Promise<PageResponse> {
  const t = await readTopology(store);
  if (path === '/topology.json') {
    return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(t) + '\n' };
  }
  const html = { 'content-type': 'text/html; charset=utf-8', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' };
  if (new URLSearchParams(query).get('part') === 'main') return { status: 200, headers: html, body: renderTopologyMain(t) };
  const nonce = randomBytes(16).toString('base64');
  return {
    status: 200,
    headers: {
      ...html,
      'content-security-policy':
        `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'unsafe-inline'; connect-src 'self'; ` +
        "img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    },
    body: renderTopologyPage(t, nonce),
  };
}

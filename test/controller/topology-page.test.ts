// The topology page of a real controller, looked at by a real browser: hosts
// of two datacenters join and heartbeat with their certificates (reporting
// the gateways they chose), headless Chromium takes a screenshot of
// /topology, and the test reads the pixels. Every host's box is green; one
// host stops heartbeating, and a later screenshot shows its box red.
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEALTH_COLORS, type Topology } from '../../controller/daemon/topology-page';
import { saveClusterConfig } from '../../controller/ipam';
import { clientCredentials, issueClientCert, loadCa } from '../../controller/pki';
import { openSqliteStore } from '../../controller/store/sqlite';
import { waitFor } from '../helpers/wait';
import { type Client, type Daemon, call, client, httpGet, killAllDaemons, readCa, startDaemon, weft } from './daemon-process';
import { colourCount, decodePng, hexColor, regionOf } from './topology-page-png';

let tmp: string;
let d: Daemon;
const clients: Client[] = [];
const hosts = new Map<string, Client>();
let beating = new Set<string>();
let beat: NodeJS.Timeout | undefined;

// dc1: a gateway and two hosts in two racks; dc2: a gateway and a host.
const LAYOUT = [
  { name: 'gw1', dc: 'dc1', rack: 'r1' }, { name: 'h1a', dc: 'dc1', rack: 'r1' }, { name: 'h1b', dc: 'dc1', rack: 'r2' },
  { name: 'gw2', dc: 'dc2', rack: 'r1' }, { name: 'h2a', dc: 'dc2', rack: 'r1' },
];
const other = (dc: string) => (dc === 'dc1' ? 'dc2' : 'dc1');
const gatewayOf = (dc: string) => (dc === 'dc1' ? 'gw1' : 'gw2');

/** What each agent would report: hosts chose their own datacenter's gateway, gateways the remote one, and see it as a peer. */
function tunnelReport(h: (typeof LAYOUT)[number]) {
  const gw = h.name.startsWith('gw');
  return {
    role: gw ? 'gateway' : 'host', datacenter: h.dc,
    paths: [{ datacenter: other(h.dc), chosen: gw ? gatewayOf(other(h.dc)) : gatewayOf(h.dc), last_ok_unix_ms: Date.now(), consecutive_misses: 0, failovers: 0, rtt_ms: 0.4 }],
    peers: gw ? [{ host: gatewayOf(other(h.dc)), datacenter: other(h.dc), endpoint: '192.168.50.9:51820', handshake_age_seconds: 3, rx_bytes: 10, tx_bytes: 20 }] : [],
    wg_mtu: gw ? 1420 : 0, xdc_mtu: 1420, mtu_source: 'derived', key_since_unix_ms: 0,
  };
}

async function heartbeats(): Promise<void> {
  await Promise.all(LAYOUT.filter((h) => beating.has(h.name)).map((h) =>
    call(hosts.get(h.name)!, 'Heartbeat', { name: h.name, agent_version: 'test-1', tunnel: tunnelReport(h) }).catch(() => undefined)));
}

const topology = async (): Promise<Topology> => JSON.parse((await httpGet(d.metricsPort, '/topology.json')).body);
const healthOf = (t: Topology) =>
  Object.fromEntries(t.datacenters.flatMap((dc) => dc.racks.flatMap((r) => r.hosts.map((h) => [h.name, h.health]))));

/** Runs headless Chromium on the page with `extra` arguments; resolves with its stdout. */
async function chromium(extra: string[]): Promise<string> {
  const args = [
    '--headless=new', '--disable-gpu', '--no-first-run', '--no-default-browser-check', '--disable-extensions', '--disable-dev-shm-usage',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars',
    `--user-data-dir=${join(tmp, 'chromium-profile')}`, '--window-size=1200,800', ...extra,
    // The browser's sandbox needs user namespaces it cannot have as root.
    ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
    `http://127.0.0.1:${d.metricsPort}/topology`,
  ];
  const env = { ...process.env };
  delete env.DBUS_SESSION_BUS_ADDRESS;
  const child = spawn('chromium', args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`chromium exited ${code}: ${stderr}`);
  return stdout;
}

/** Headless Chromium's screenshot of the page, decoded. */
async function screenshot(file: string) {
  await chromium([`--screenshot=${file}`]);
  return decodePng(readFileSync(file));
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'weft-topo-page-'));
  const dataDir = join(tmp, 'data');
  mkdirSync(dataDir, { mode: 0o700 });
  // A 5 s lease TTL: a host silent for 5 s shows as expired.
  const pre = openSqliteStore(join(dataDir, 'weft.db'));
  await saveClusterConfig(pre, { networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/16', hostPrefixLength: 24 }], leaseTtlSeconds: 5 });
  await pre.close();
  d = await startDaemon({ dataDir });

  const ca = await loadCa(dataDir);
  const adminCert = await issueClientCert(ca, { host: 'admin', ttlDays: 1 });
  const admin = client(d.grpcPort, clientCredentials({ caPem: ca.certPem, certPem: adminCert.certPem, keyPem: adminCert.keyPem! }));
  clients.push(admin);
  const anon = client(d.grpcPort, clientCredentials({ caPem: readCa(dataDir) }));
  clients.push(anon);
  await Promise.all(LAYOUT.map(async (h, i) => {
    const token = JSON.parse((await weft(['token', 'create', '--data-dir', dataDir, '--json'])).stdout).token;
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const j = await call(anon, 'Join', { token, host_name: h.name, public_key_pem: publicKey.export({ type: 'spki', format: 'pem' }) });
    const c = client(d.grpcPort, clientCredentials({
      caPem: readCa(dataDir), certPem: j.certificate_pem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    }));
    clients.push(c);
    hosts.set(h.name, c);
    await call(c, 'RegisterHost', {
      name: h.name, underlay_ip: `192.168.50.${i + 1}`, vtep_mac: `02:00:00:00:50:0${i + 1}`, rack: h.rack, datacenter: h.dc,
      wg_public_key: randomBytes(32).toString('base64'), agent_version: 'test-1', networks: [],
    });
  }));
  for (const dc of ['dc1', 'dc2']) {
    await call(admin, 'CreateDatacenter', { name: dc, gateways: [{ host: gatewayOf(dc), wan_endpoint: '' }], allow_single_gateway: true });
  }
  beating = new Set(LAYOUT.map((h) => h.name));
  await heartbeats();
  beat = setInterval(() => void heartbeats(), 1000);
}, 60_000);

afterAll(async () => {
  clearInterval(beat);
  for (const c of clients) c.close();
  await killAllDaemons();
  rmSync(tmp, { recursive: true, force: true });
});

describe('the topology page in a browser', () => {
  it('serves the data, the page under a strict policy, and the fragment the page refreshes itself with', async () => {
    const t = await topology();
    expect(t.datacenters.map((dc) => [dc.name, dc.gateways.map((g) => [g.host, g.state]), dc.racks.map((r) => r.name)])).toEqual([
      ['dc1', [['gw1', 'active']], ['r1', 'r2']],
      ['dc2', [['gw2', 'active']], ['r1']],
    ]);
    expect(healthOf(t)).toEqual({ gw1: 'alive', h1a: 'alive', h1b: 'alive', gw2: 'alive', h2a: 'alive' });
    // Which gateway carries dc1 -> dc2, as dc1's hosts report it, and the gateways' handshake.
    expect(t.tunnels.find((p) => p.from === 'dc1')).toMatchObject({ to: 'dc2', chosen: { gw1: 2, gw2: 1 }, hosts: 3 });
    expect(t.tunnels.find((p) => p.from === 'dc1')!.handshakeAgeSeconds).toBeGreaterThanOrEqual(3);
    const page = await httpGet(d.metricsPort, '/topology');
    expect(page.status).toBe(200);
    expect(page.body).toContain('<section class="dc" data-dc="dc2">');
    expect((await httpGet(d.metricsPort, '/topology?part=main')).body).toMatch(/^<p class="summary">5 hosts:/);
  });

  it('refreshes itself in the browser: its script runs under the page\'s policy and swaps in fresh markup', async () => {
    // Virtual time runs the page's 2 s timer at once; the DOM is dumped after 5 s of it.
    const dom = await chromium(['--dump-dom', '--virtual-time-budget=5000']);
    expect(Number(/<main id="main" data-refreshes="(\d+)">/.exec(dom)?.[1])).toBeGreaterThanOrEqual(1);
    expect(dom).toContain('<small id="stale"></small>'); // no "(not updating: ...)"
    expect(dom).toContain('data-host="h2a"');
  }, 60_000);

  it('shows every host green, then a host that stopped heartbeating red', async () => {
    const green = hexColor(HEALTH_COLORS.alive!);
    const red = hexColor(HEALTH_COLORS.expired!);
    const first = await screenshot(join(tmp, 'alive.png'));
    expect([first.width, first.height]).toEqual([1200, 800]);
    expect(colourCount(first)).toBeGreaterThan(4); // not blank: white, text, borders, green boxes
    const g1 = regionOf(first, green);
    // Five boxes of at least 140 x 80 pixels each, less their white text.
    expect(g1.pixels).toBeGreaterThan(5 * 140 * 80 * 0.6);
    expect(regionOf(first, red).pixels).toBeLessThan(300); // the legend's swatch at most

    beating.delete('h1b');
    await waitFor('h1b expired on the page', async () => healthOf(await topology()).h1b === 'expired', 15_000, 250);
    const second = await screenshot(join(tmp, 'expired.png'));
    const r = regionOf(second, red);
    // One solid red box of host size; the legend's 10 x 10 swatch sits above it.
    expect(r.pixels).toBeGreaterThan(140 * 80 * 0.6);
    const g2 = regionOf(second, green);
    expect(g1.pixels - g2.pixels).toBeGreaterThan(140 * 80 * 0.5);
    expect(Math.abs((g1.pixels - g2.pixels) - (r.pixels - regionOf(first, red).pixels))).toBeLessThan(0.15 * r.pixels);
    // The others are still alive.
    expect(healthOf(await topology())).toMatchObject({ gw1: 'alive', h1a: 'alive', gw2: 'alive', h2a: 'alive' });
  }, 60_000);
});

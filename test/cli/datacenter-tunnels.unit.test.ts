// The tunnels as operators see them, in-process against a real controller
// (TLS, the admin certificate from the CA in --data-dir): `weft datacenter
// list` with key fingerprints, peers' handshakes and the gateway each pair of
// datacenters goes through, "no report" where no agent said; `weft status`
// with one line per pair; `weft host rotate-key` raising the generation.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostCommand, statusCommand } from '../../controller/cli/cluster-commands';
import { datacenterCommand } from '../../controller/cli/datacenter-commands';
import { choices, handshakeAge, pathLine, peerHandshakes } from '../../controller/cli/tunnel-text';
import { createDatacenter } from '../../controller/registry/datacenters';
import { encodeHostReport, putHost } from '../../controller/registry/hosts';
import { hostStatusKey } from '../../controller/registry/keys';
import type { TunnelReportRecord } from '../../controller/registry/tunnel-reports';
import { type Cluster, type RunningController, startCluster } from '../agent/controller-fixture';
import { runCommand } from './run-command';

let cluster: Cluster;
let ctl: RunningController;

const key = (n: number) => Buffer.alloc(32, n).toString('base64');

const tunnel = (role: 'host' | 'gateway', dc: string, paths: Array<[string, string, number]>, peers: Array<[string, number]> = []): TunnelReportRecord => ({
  role, datacenter: dc, wgMtu: 0, xdcMtu: 0, mtuSource: 'none', keySince: 0,
  paths: paths.map(([datacenter, chosen, failovers]) => ({ datacenter, chosen, lastOkAt: 0, consecutiveMisses: 0, failovers, rttMs: 1 })),
  peers: peers.map(([host, age]) => ({ host, datacenter: 'dc2', endpoint: '203.0.113.7:51820', handshakeAgeSeconds: age, rxBytes: 1, txBytes: 1 })),
});

beforeAll(async () => {
  cluster = await startCluster();
  ctl = await cluster.startController();
  // dc1: gateways h1, h2 and hosts h3, h4; dc2: gateways h7, h8; dc3: gateways h5, h6, nobody reports there
  const hosts = [['h1', 1, 'dc1'], ['h2', 2, 'dc1'], ['h3', 3, 'dc1'], ['h4', 4, 'dc1'], ['h7', 7, 'dc2'], ['h8', 8, 'dc2'], ['h5', 5, 'dc3'], ['h6', 6, 'dc3']] as const;
  for (const [name, n, dc] of hosts) {
    await putHost(cluster.store, {
      name, underlayIp: `192.168.1.${n}`, vtepMac: `02:00:00:00:00:0${n}`, rack: 'r1', datacenter: dc, wgPublicKey: key(n), agentVersion: 'test', lastHeartbeat: Date.now(),
    });
  }
  for (const [dc, a, b] of [['dc1', 'h1', 'h2'], ['dc2', 'h7', 'h8'], ['dc3', 'h5', 'h6']]) {
    await createDatacenter(cluster.store, { name: dc, gateways: [{ host: a, wanEndpoint: '' }, { host: b, wanEndpoint: '' }], listenPort: 51820, mtu: 0, mesh: false, allowSingleGateway: false });
  }
  const now = Date.now();
  const reports: Array<[string, TunnelReportRecord]> = [
    ['h1', tunnel('gateway', 'dc1', [['dc2', 'h7', 0], ['dc3', 'h5', 0]], [['h7', 3], ['h8', -1]])],
    ['h2', tunnel('gateway', 'dc1', [['dc2', 'h7', 2], ['dc3', 'h5', 0]])],
    ['h3', tunnel('host', 'dc1', [['dc2', 'h1', 1], ['dc3', 'h1', 0]])],
    ['h4', tunnel('host', 'dc1', [['dc2', '', 0], ['dc3', 'h2', 0]])],
  ];
  for (const [name, t] of reports) await cluster.store.put(hostStatusKey(name), encodeHostReport({ name, agentVersion: 'test', tunnel: t, reportedAt: now }));
});
afterAll(async () => {
  await cluster?.close();
});

const at = () => ['--server', ctl.address, '--data-dir', join(cluster.dir, 'ca')];

describe('tunnel text', () => {
  it('says ages, handshakes and choices briefly, and "no report" where nobody reported', () => {
    expect([-1, 0, 59, 60, 61, 3599, 3600, 7260].map(handshakeAge)).toEqual(['never', '0s', '59s', '1m', '1m1s', '59m59s', '1h', '2h1m']);
    expect(peerHandshakes(undefined)).toBe('no report');
    expect(peerHandshakes({ host: 'h7', state: 'active', key_fingerprint: '', reported: false, reported_at_unix_ms: 0, key_since_unix_ms: 0, peers: [] })).toBe('no report');
    expect(peerHandshakes({ host: 'h7', state: 'active', key_fingerprint: '', reported: true, reported_at_unix_ms: 1, key_since_unix_ms: 0, peers: [] })).toBe('no peers');
    const p = { from: 'dc1', to: 'dc2', chosen: { h7: 2, h1: 1, '': 1 }, failovers: 3, hosts: 4 };
    expect(choices(p)).toBe('h7 ×2, none answering ×1, h1 ×1');
    expect(pathLine(p)).toBe('dc1 -> dc2  via h7 ×2, none answering ×1, h1 ×1; 3 failovers');
    expect(pathLine({ from: 'dc2', to: 'dc1', chosen: {}, failovers: 0, hosts: 0 })).toBe('dc2 -> dc1  no report');
  });
});

describe('against a controller', () => {
  it('weft datacenter list shows fingerprints, peers\' handshakes and the gateway every pair of datacenters goes through', async () => {
    const r = await runCommand(datacenterCommand, ['list', ...at()]);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    const cells = (l: string) => l.trim().split(/ {2,}/);
    expect(cells(lines[1])).toEqual(['dc1', '4', '51820', 'auto', 'no', 'h1', 'active', '192.168.1.1:51820', key(1).slice(0, 8), expect.stringMatching(/^h7 \d+s, h8 never$/)]);
    expect(cells(lines[2])).toEqual(['h2', 'active', '192.168.1.2:51820', key(2).slice(0, 8), 'no peers']);
    expect(cells(lines[3])).toEqual(['dc2', '2', '51820', 'auto', 'no', 'h7', 'active', '192.168.1.7:51820', key(7).slice(0, 8), 'no report']);
    const paths = lines.slice(lines.findIndex((l) => l.startsWith('FROM'))).map(cells);
    expect(paths).toEqual([
      ['FROM', 'TO', 'ACTIVE (GATEWAY ×HOSTS)', 'REPORTING', 'FAILOVERS'],
      ['dc1', 'dc2', 'h7 ×2, none answering ×1, h1 ×1', '4', '3'],
      ['dc1', 'dc3', 'h5 ×2, h1 ×1, h2 ×1', '4', '0'],
      ['dc2', 'dc1', 'no report', '0', '-'],
      ['dc2', 'dc3', 'no report', '0', '-'],
      ['dc3', 'dc1', 'no report', '0', '-'],
      ['dc3', 'dc2', 'no report', '0', '-'],
    ]);
    const json = JSON.parse((await runCommand(datacenterCommand, ['list', '--json', ...at()])).out);
    expect(json.tunnels.paths[0]).toEqual({ from: 'dc1', to: 'dc2', chosen: { h7: 2, '': 1, h1: 1 }, failovers: 3, hosts: 4 });
    expect(json.tunnels.datacenters[0].gateways[0]).toMatchObject({ host: 'h1', state: 'active', key_fingerprint: key(1).slice(0, 8), reported: true });
    expect(json.datacenters.map((d: { name: string }) => d.name)).toEqual(['dc1', 'dc2', 'dc3']);
  });

  it('weft status adds one line per pair of datacenters', async () => {
    const r = await runCommand(statusCommand, at());
    expect(r.code, r.err).toBe(0);
    const lines = r.out.split('\n').filter((l) => l.startsWith('tunnel'));
    expect(lines).toEqual([
      'tunnel       dc1 -> dc2  via h7 ×2, none answering ×1, h1 ×1; 3 failovers',
      'tunnel       dc1 -> dc3  via h5 ×2, h1 ×1, h2 ×1; 0 failovers',
      'tunnel       dc2 -> dc1  no report',
      'tunnel       dc2 -> dc3  no report',
      'tunnel       dc3 -> dc1  no report',
      'tunnel       dc3 -> dc2  no report',
    ]);
    expect(JSON.parse((await runCommand(statusCommand, ['--json', ...at()])).out).tunnels).toHaveLength(6);
  });

  it('weft host rotate-key asks named hosts or all of them, and refuses bad use before connecting', async () => {
    const one = await runCommand(hostCommand, ['rotate-key', 'h7', ...at()]);
    expect(one, one.err).toMatchObject({ code: 0, out: 'h7: key rotation requested (generation 1); its agent rotates when it sees it\n' });
    const all = JSON.parse((await runCommand(hostCommand, ['rotate-key', '--all', '--json', ...at()])).out);
    expect(all.hosts.map((h: { host: string; wg_key_rotation: number }) => `${h.host}=${h.wg_key_rotation}`)).toEqual([
      'h1=1', 'h2=1', 'h3=1', 'h4=1', 'h5=1', 'h6=1', 'h7=2', 'h8=1',
    ]);
    expect(JSON.parse((await cluster.store.get('/weft/hosts/h7'))!.value).wgKeyRotation).toBe(2);
    const ghost = await runCommand(hostCommand, ['rotate-key', 'ghost', ...at()]);
    expect(ghost.code).toBe(1);
    expect(ghost.err).toMatch(/^weft host rotate-key: .*NOT_FOUND: host: "ghost" is not registered/);
    for (const [argv, msg] of [[[], /give the hosts whose WireGuard keys to rotate, or --all/], [['h1', '--all'], /give host names or --all, not both/], [['Bad'], /HOST: "Bad" is not a valid name/]] as const) {
      const r = await runCommand(hostCommand, ['rotate-key', ...argv, ...at()]);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toMatch(msg);
    }
    expect((await runCommand(hostCommand, ['rotate-key', '--help'])).out).toMatch(/^usage: weft host rotate-key HOST/);
  });
});

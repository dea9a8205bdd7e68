// `weft status`, `weft hosts` (`weft host list`) and `weft endpoints`
// in-process against a real controller (TLS, the admin certificate made from
// the CA in --data-dir), with real agents' clients joined to it: one sends
// heartbeats carrying its metrics' last reconcile summary, which must reach
// `weft hosts`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointsCommand, formatSpan, hostCommand, hostsCommand, placements, statusCommand, statusText } from '../../controller/cli/cluster-commands';
import { channelCredentials, joinCluster } from '../../controller/api/client/credentials';
import { type AgentClient, type HostRegistration, connectAgentClient } from '../../cni-plugin/agent/sync/controller';
import { type HeartbeatLoop, runHeartbeats } from '../../cni-plugin/agent/sync/heartbeat';
import { createAgentMetrics } from '../../cni-plugin/agent/metrics';
import type { ReconcileResult } from '../../cni-plugin/agent/host/overlay';
import { waitFor } from '../helpers/wait';
import { type Cluster, type RunningController, startCluster } from '../agent/controller-fixture';
import { runCommand } from './run-command';

let cluster: Cluster;
let ctl: RunningController;
let stateRoot: string;
const clients: AgentClient[] = [];
let beats: HeartbeatLoop | undefined;

const CONTAINER = 'c0ffee'.repeat(10) + 'abcd';

function registration(n: number, rack: string, datacenter: string): HostRegistration {
  return {
    underlayIp: `192.168.7.${n}`, vtepMac: `02:00:00:00:07:${n.toString(16).padStart(2, '0')}`, rack, datacenter,
    wgPublicKey: '', agentVersion: '0.1.0', networks: [],
  };
}

async function agent(name: string): Promise<AgentClient> {
  const creds = await joinCluster({ server: ctl.address, token: await cluster.token(), hostName: name, caCertHash: cluster.pin, stateDir: join(stateRoot, name) });
  const client = connectAgentClient({ server: ctl.address, credentials: channelCredentials(creds), hostName: name, backoff: { initialMs: 50, maxMs: 400 } });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  stateRoot = mkdtempSync(join(tmpdir(), 'weft-cluster-cli-'));
  cluster = await startCluster();
  ctl = await cluster.startController();
});
afterAll(async () => {
  await beats?.stop();
  for (const c of clients) c.close();
  await cluster?.close();
  if (stateRoot) rmSync(stateRoot, { recursive: true, force: true });
});

const run = runCommand;

/** A table's cells, cut at the offsets where the header's columns start (cells may hold spaces: "in 4s"). */
function cells(out: string): string[][] {
  const lines = out.trimEnd().split('\n');
  const starts = [...lines[0].matchAll(/\S+/g)].map((m) => m.index!);
  return lines.map((l) => starts.map((st, i) => l.slice(st, starts[i + 1]).trim()));
}

const at = () => ['--server', ctl.address, '--data-dir', join(cluster.dir, 'ca')];

describe('flags', () => {
  it('exits 2 naming the bad flag, before connecting', async () => {
    const cases: Array<[(a: string[]) => Promise<number>, string[], RegExp]> = [
      [hostsCommand, ['--bogus'], /^weft hosts: .*--bogus/],
      [hostCommand, ['list', '--bogus'], /^weft host list: .*--bogus/],
      [statusCommand, ['--jsno'], /^weft status: .*--jsno/],
      [endpointsCommand, ['--network', 'Not A Net'], /^weft endpoints: --network: "Not A Net" is not/],
      [endpointsCommand, ['--host', '-h1-'], /^weft endpoints: --host: /],
      [endpointsCommand, ['--network'], /^weft endpoints: .*--network/],
      [hostsCommand, ['extra'], /^weft hosts: /],
      // nothing listens there: a usage error must come before any connection is tried
      [hostsCommand, ['--server', 'not a server'], /^weft hosts: --server: "not a server" is not host:port/],
      [statusCommand, ['--cert', '/nonexistent.pem', '--server', '127.0.0.1:1'], /^weft status: --cert and --key go together/],
    ];
    for (const [cmd, argv, msg] of cases) {
      const r = await run(cmd, argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err, argv.join(' ')).toMatch(msg);
      expect(r.out).toBe('');
    }
  });

  it('formats spans and groups hosts by place', () => {
    expect([0, 999, 42_000, 192_000, 3_600_000, 7_500_000, 90_000_000, 86_400_000].map(formatSpan)).toEqual(['0s', '0s', '42s', '3m12s', '1h', '2h5m', '1d1h', '1d']);
    const hs = (dc: string, rack: string, health: string) => ({ host: { datacenter: dc, rack } as never, health, heartbeat_age_ms: 0, overlay: null, tunnel: null, reported_agent_version: '', reported_at_unix_ms: 0 });
    expect(placements([hs('dc2', 'r1', 'alive'), hs('dc1', 'r2', 'expired'), hs('dc1', 'r2', 'stale'), hs('dc1', 'r2', 'alive'), hs('', '', 'alive')])).toEqual([
      { datacenter: '', rack: '', hosts: 1, alive: 1, stale: 0, expired: 0 },
      { datacenter: 'dc1', rack: 'r2', hosts: 3, alive: 1, stale: 1, expired: 1 },
      { datacenter: 'dc2', rack: 'r1', hosts: 1, alive: 1, stale: 0, expired: 0 },
    ]);
  });

  it('prints the status of a controller that cannot list hosts with its own host count', () => {
    const status = {
      controller_id: 'c1', leader: false, leader_id: 'c2', revision: 7, store: 'etcd', hosts: 3, leases: 3, endpoints: 0, services: 0, version: '0.1.0', datacenters: 1,
    };
    const text = statusText(status, [], 3);
    expect(text).toMatch(/^leader +c2$/m);
    expect(text).toMatch(/^hosts +3$/m);
    expect(text).not.toMatch(/DATACENTER/);
    expect(statusText({ ...status, leader_id: '' }, [])).toMatch(/^leader +none known$/m);
  });
});

describe('against a controller with two agents', () => {
  it('shows hosts with the overlay summary the agent reported, endpoints and the status per rack', async () => {
    expect((await run(hostsCommand, at())).out).toMatch(/^no hosts/);

    const a1 = await agent('cli-h1');
    const reg1 = registration(1, 'r1', 'dc1');
    const registered = await a1.registerHost(reg1);
    const a2 = await agent('cli-h2');
    await a2.registerHost(registration(2, 'r2', 'dc2'));

    // the agent's metrics record a reconcile (12 desired, one route refused, one host skipped); its heartbeats carry it
    const metrics = createAgentMetrics({ hostName: 'cli-h1', version: '0.9.0', outboxPending: () => 0 });
    const result: ReconcileResult = {
      desired: 12, added: 11, replaced: 0, deleted: 0, failed: 1, requests: 12, durationMs: 3,
      errors: [{ action: 'add', kind: 'route', entry: {} as never, error: new Error('EEXIST') }],
      skipped: [{ host: 'cli-h2', network: 'default', reason: 'no VTEP' }],
    };
    metrics.reconciled('start', result, registered.revision);
    beats = runHeartbeats({ client: a1, registration: reg1, registered, report: metrics.heartbeatReport });

    const row = await waitFor('weft hosts to show the reported overlay', async () => {
      const r = await run(hostsCommand, at());
      return r.code === 0 && r.out.split('\n').find((l) => l.startsWith('cli-h1') && l.includes('11/12'));
    }, { ms: 10_000 });
    const hosts = await run(hostsCommand, at());
    const lines = hosts.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME +RACK +DATACENTER +HEALTH +UNDERLAY +VTEP-MAC +SUBNETS +LEASE-ENDS +VERSION +HEARTBEAT +PROGRAMMED +FAILED$/);
    expect(lines).toHaveLength(3);
    expect(row).toBeTruthy();
    const [, h1, h2] = cells(hosts.out);
    expect(h1).toEqual([
      'cli-h1', 'r1', 'dc1', 'alive', '192.168.7.1', '02:00:00:00:07:01', expect.stringMatching(/^default=10\.244\.\d+\.0\/24$/),
      expect.stringMatching(/^in \ds$/), '0.9.0', expect.stringMatching(/^\ds ago$/), '11/12', '1',
    ]);
    // h2 has sent no heartbeat report: its registered version, no overlay summary
    expect(h2).toEqual(['cli-h2', 'r2', 'dc2', 'alive', '192.168.7.2', '02:00:00:00:07:02', expect.any(String), expect.any(String), '0.1.0', expect.any(String), '-', '-']);
    // aligned: every column starts at the same offset in every line
    for (const l of lines.slice(1)) expect(l.indexOf('192.168.7.')).toBe(lines[0].indexOf('UNDERLAY'));

    const json = JSON.parse((await run(hostsCommand, ['--json', ...at()])).out);
    expect(json[0]).toMatchObject({
      name: 'cli-h1', rack: 'r1', datacenter: 'dc1', agent_version: '0.9.0', health: 'alive',
      overlay: { desired: 12, programmed: 11, failed: 1, skipped: 1, topology_revision: registered.revision },
    });
    expect(json[0].overlay.reconciled_at_unix_ms).toBeGreaterThan(Date.now() - 60_000);
    // weft host list is the same view
    const viaHostList = JSON.parse((await run(hostCommand, ['list', '--json', ...at()])).out);
    expect(viaHostList.map((h: { name: string; overlay: unknown }) => [h.name, h.overlay])).toEqual(json.map((h: { name: string; overlay: unknown }) => [h.name, h.overlay]));

    // endpoints
    const subnet = registered.subnets.find((s) => s.network === 'default')!.subnet;
    const ip = subnet.replace(/\.0\/24$/, '.7');
    await a1.registerEndpoint({ network: 'default', ip, containerId: CONTAINER, labels: { tier: 'fe', app: 'web' }, ifname: 'eth0' });
    const eps = await run(endpointsCommand, ['--host', 'cli-h1', ...at()]);
    expect(eps.code, eps.err).toBe(0);
    expect(cells(eps.out)).toEqual([
      ['CONTAINER', 'NETWORK', 'ADDRESS', 'HOST', 'INTERFACE', 'LABELS'],
      [CONTAINER.slice(0, 12), 'default', ip, 'cli-h1', 'eth0', 'app=web,tier=fe'],
    ]);
    expect((await run(endpointsCommand, ['--host', 'cli-h2', ...at()])).out).toBe('no endpoints\n');
    expect(JSON.parse((await run(endpointsCommand, ['--network', 'default', '--json', ...at()])).out)).toEqual([
      { network: 'default', ip, container_id: CONTAINER, host: 'cli-h1', labels: { app: 'web', tier: 'fe' }, ifname: 'eth0' },
    ]);

    // status: the answering controller leads (no election in the fixture), hosts per datacenter and rack
    const st = await run(statusCommand, at());
    expect(st.code, st.err).toBe(0);
    expect(st.out).toMatch(/^controller +test-0$/m);
    expect(st.out).toMatch(/^leader +test-0 \(this controller\)$/m);
    expect(st.out).toMatch(/^hosts +2 \(2 alive, 0 stale, 0 expired\)$/m);
    expect(st.out).toMatch(/^endpoints +1$/m);
    expect(st.out).toMatch(/^datacenters +0$/m);
    expect(cells(st.out.split('\n\n')[1])).toEqual([
      ['DATACENTER', 'RACK', 'HOSTS', 'ALIVE', 'STALE', 'EXPIRED'],
      ['dc1', 'r1', '1', '1', '0', '0'],
      ['dc2', 'r2', '1', '1', '0', '0'],
    ]);
    const stJson = JSON.parse((await run(statusCommand, ['--json', ...at()])).out);
    expect(stJson).toMatchObject({ leader: true, leader_id: 'test-0', hosts: 2, endpoints: 1, placements: [{ datacenter: 'dc1', rack: 'r1', alive: 1 }, { datacenter: 'dc2', rack: 'r2', alive: 1 }] });
  });
});

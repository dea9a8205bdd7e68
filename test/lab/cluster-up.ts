// A running weft cluster on a netns lab, for `npm run lab -- up`: the
// operator's steps in order, each one a phase with its elapsed time.
//
//   controller   `weft controller` in the controller namespace, a join token
//   agents       `weft install-cni` into each host's own CNI dirs, then the
//                printed join command on every host; ready once CNI STATUS
//                answers (the host has registered and holds its subnet)
//   datacenters  with two datacenters or more, `weft datacenter add` naming
//                each one's gateways (the spec's, else its first two hosts)
//   containers   one container namespace per host, attached by CNI ADD as a
//                runtime does
//   ingress      with an edge host: an outside client linked to the edge,
//                `weft service create demo`, a demo HTTP server in one
//                container labelled app=demo, `weft ingress` on the edge
//
// Everything it starts is a lab process (its record lets `lab down` stop it
// from another process); every file is under one directory per lab, named in
// a record beside it so `status` and `down` find the cluster again.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import {
  adminCert, agentPaths, AGENT_METRICS_PORT, cleanEnv, conflistPath, createToken, installCni, joinArgs, requireBuild, ROOT, startController, tail, WEFT,
  weftCli, type AgentPaths,
} from '../e2e/cluster';
import { cniAdd, execCni, loadConflist, pluginConfig } from '../e2e/cni';
import { addOutsideClient, CLIENT_IP, EDGE_IP } from '../ingress/lab';
import { GiveUp, waitFor } from '../helpers/wait';
import { clusterLayout, type ClusterSpec } from './cluster-spec';
import type { Lab, LabHost, LabProcess } from './lab';
import type { MatrixEndpoint, ServiceProbe } from './matrix';
import { ipBatch, nsRun } from './run';

/** Not under /run: the CNI plugin is executed from the hosts' bin dirs, and /run may be noexec. */
export const CLUSTER_ROOT = '/var/tmp/weft-lab';
export const CONTAINER = 'c';
export const NETWORK = 'default';
export const DEMO_SERVICE = 'demo';
export const DEMO_PORT = 8080;
export const INGRESS_METRICS_PORT = 7090;

export interface ClusterHost {
  name: string;
  netns: string;
  datacenter: string;
  rack: string;
  underlayIp: string;
  agentLog: string;
  gateway: boolean;
}

export interface ClusterRecord {
  name: string;
  dir: string;
  server: string;
  dataDir: string;
  controllerNetns: string;
  controllerLog: string;
  hosts: ClusterHost[];
  containers: MatrixEndpoint[];
  gateways: Record<string, string[]>;
  ingress: (ServiceProbe & { edge: string; log: string; backend: string }) | null;
}

export function clusterDir(name: string): string {
  return join(CLUSTER_ROOT, name);
}

const recordPath = (name: string) => join(clusterDir(name), 'cluster.json');

export function readClusterRecord(name: string): ClusterRecord | null {
  try {
    return JSON.parse(readFileSync(recordPath(name), 'utf8')) as ClusterRecord;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

export function removeClusterDir(name: string): void {
  rmSync(clusterDir(name), { recursive: true, force: true });
}

export type Progress = (phase: string, what: string) => void;

/** The demo service's backend: answers every request with its host's name. */
const DEMO_JS = `
const name = process.argv[1];
require('http').createServer((req, res) => res.end(name + '\\n')).listen(Number(process.argv[2]), '0.0.0.0', () => console.log('listening'));
`;

export async function upCluster(lab: Lab, spec: ClusterSpec, progress: Progress): Promise<ClusterRecord> {
  requireBuild();
  const layout = clusterLayout(spec);
  const dir = clusterDir(lab.name);
  // the lab's name was free, so whatever an earlier lab of that name left here is stale
  removeClusterDir(lab.name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const gatewayHosts = new Set([...layout.gateways.values()].flat());
  const manyDcs = layout.gateways.size > 0;

  // ---- controller
  const dataDir = join(dir, 'controller');
  const ctl = await startController(lab, dataDir, join(dir, 'controller.log'));
  const token = createToken(dataDir);
  progress('controller', `${ctl.server}, store in ${dataDir}`);

  // ---- agents
  const paths = new Map<string, AgentPaths>();
  const cniConfig = (h: LabHost) => pluginConfig(loadConflist(conflistPath(paths.get(h.name)!.cniConfDir, NETWORK)));
  await Promise.all(
    lab.hosts.map(async (h) => {
      const p = agentPaths(dir, h);
      paths.set(h.name, p);
      installCni(p, NETWORK);
      // With gateways, each host gets its own /run/wireguard and /run/weft (wireguard-go's UAPI socket
      // path is the same on every gateway, and they all share this machine's mounts otherwise).
      const prefix = manyDcs ? ['nsenter', `--mount=/proc/${(await mountHolder(lab, h, dir)).pid}/ns/mnt`, '--'] : [];
      const argv = [
        ...prefix, process.execPath, WEFT, ...joinArgs(ctl.agentCommand, token),
        '--host-name', h.name, '--rack', h.rack, '--datacenter', h.datacenter,
        '--state-dir', p.stateDir, '--cni-socket', p.socket, '--metrics-listen', `127.0.0.1:${AGENT_METRICS_PORT}`,
      ];
      const proc = lab.spawn(h.netns, argv[0], argv.slice(1), { env: cleanEnv(), logFile: p.logFile, cwd: ROOT });
      await waitFor(`the agent on ${h.name} to answer CNI STATUS`, async () => {
        if (proc.exited) throw new GiveUp(`the agent on ${h.name} exited; log tail: ${tail(p.logFile)}`);
        if (!existsSync(p.socket)) return false;
        const r = await execCni({ hostNetns: h.netns, cniPath: p.cniBinDir, command: 'STATUS', config: cniConfig(h) });
        return r.code === 0;
      }, 60_000);
    }),
  );
  progress('agents', `${lab.hosts.length} joined and ready (${lab.hosts.map((h) => h.name).join(' ')})`);

  // ---- datacenters and gateways: named once their hosts have registered
  for (const [dc, gws] of layout.gateways) {
    const args = ['datacenter', 'add', dc, '--gateways', gws.join(','), ...(gws.length < 2 ? ['--allow-single-gateway'] : []), '--server', ctl.server, '--data-dir', dataDir];
    const r = nsRun(lab.controller!.netns, process.execPath, [WEFT, ...args], { env: cleanEnv(), check: false });
    if (r.status !== 0) throw new Error(`weft ${args.join(' ')}: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  if (manyDcs) progress('datacenters', [...layout.gateways].map(([dc, g]) => `${dc} gateways ${g.join(',')}`).join('; '));

  // ---- one test container per host
  const backendHost = layout.edge ? pickBackend(lab, layout.edge) : null;
  const containers: MatrixEndpoint[] = await Promise.all(
    lab.hosts.map(async (h) => {
      const netnsPath = lab.addContainerNetns(h, CONTAINER);
      const labels = { lab: lab.name, host: h.name, ...(h.name === backendHost ? { app: DEMO_SERVICE } : {}) };
      const res = await cniAdd({
        hostNetns: h.netns, cniPath: paths.get(h.name)!.cniBinDir, containerId: `${lab.name}-${h.name}-${CONTAINER}`, netns: netnsPath, ifname: 'eth0',
        config: cniConfig(h), args: Object.entries(labels).map(([k, v]) => `weft.label.${k}=${v}`).join(';'),
      });
      const netns = netnsPath.replace('/run/netns/', '');
      ipBatch(netns, ['link set lo up']);
      return { host: h.name, datacenter: h.datacenter, netns, ip: String(res.ips[0].address).split('/')[0] };
    }),
  );
  progress('containers', containers.map((c) => `${c.host} ${c.ip}`).join(', '));

  // ---- ingress on the edge
  let ingress: ClusterRecord['ingress'] = null;
  if (layout.edge && backendHost) {
    ingress = await startIngress(lab, layout.edge, backendHost, containers, { dir, server: ctl.server, dataDir });
    progress('ingress', `weft ingress on ${layout.edge} at ${EDGE_IP}, service ${DEMO_SERVICE} -> ${backendHost}:${DEMO_PORT}, client ${CLIENT_IP}`);
  }

  const record: ClusterRecord = {
    name: lab.name, dir, server: ctl.server, dataDir, controllerNetns: lab.controller!.netns, controllerLog: ctl.logFile,
    hosts: lab.hosts.map((h) => ({
      name: h.name, netns: h.netns, datacenter: h.datacenter, rack: h.rack, underlayIp: h.underlayIp, agentLog: paths.get(h.name)!.logFile, gateway: gatewayHosts.has(h.name),
    })),
    containers,
    gateways: Object.fromEntries(layout.gateways),
    ingress,
  };
  writeFileSync(recordPath(lab.name), JSON.stringify(record, null, 2) + '\n');
  return record;
}

/** The demo backend: a host other than the edge, in the edge's datacenter when there is one. */
function pickBackend(lab: Lab, edge: string): string | null {
  const dc = lab.host(edge).datacenter;
  const others = lab.hosts.filter((h) => h.name !== edge);
  return (others.find((h) => h.datacenter === dc) ?? others[0])?.name ?? null;
}

/** A process that holds a mount namespace of the host's own, with private /run/wireguard and /run/weft. */
async function mountHolder(lab: Lab, h: LabHost, dir: string): Promise<LabProcess> {
  const log = join(dir, h.name, 'mounts.log');
  const script = [
    'set -e',
    'mkdir -p /run/wireguard /run/weft',
    'mount -t tmpfs -o mode=0755 wt-wg /run/wireguard',
    'mount -t tmpfs -o mode=0755 wt-run /run/weft',
    'echo ready',
    'exec sleep infinity',
  ].join('\n');
  // a slave of this machine's mounts, so container namespaces made later under /run/netns show in it
  const p = lab.spawn(h.netns, 'unshare', ['--mount', '--propagation', 'slave', '--', 'sh', '-c', script], { logFile: log });
  await waitFor(`the mount namespace of ${h.name}`, () => {
    if (p.exited) throw new GiveUp(`the mount namespace holder of ${h.name} exited: ${readFileSync(log, 'utf8')}`);
    return existsSync(log) && readFileSync(log, 'utf8').includes('ready');
  }, 10_000, 25);
  return p;
}

async function startIngress(
  lab: Lab, edgeName: string, backendHost: string, containers: MatrixEndpoint[], c: { dir: string; server: string; dataDir: string },
): Promise<NonNullable<ClusterRecord['ingress']>> {
  const edge = lab.host(edgeName);
  const clientNetns = addOutsideClient(lab, edge);
  const backend = containers.find((x) => x.host === backendHost)!;
  const demoLog = join(c.dir, 'demo.log');
  const demo = lab.spawn(backend.netns, process.execPath, ['-e', DEMO_JS, backendHost, String(DEMO_PORT)], { env: cleanEnv(), logFile: demoLog });
  await waitFor('the demo server to listen', () => {
    if (demo.exited) throw new GiveUp(`the demo server exited: ${tail(demoLog)}`);
    return existsSync(demoLog) && readFileSync(demoLog, 'utf8').includes('listening');
  }, 15_000);

  const admin = ['--server', c.server, '--data-dir', c.dataDir];
  const svc = nsRun(lab.controller!.netns, process.execPath, [
    WEFT, 'service', 'create', DEMO_SERVICE, '--port', `80:${DEMO_PORT}/http`, '--selector', `app=${DEMO_SERVICE}`, ...admin,
  ], { env: cleanEnv(), check: false });
  if (svc.status !== 0) throw new Error(`weft service create ${DEMO_SERVICE}: ${svc.stderr.trim() || svc.stdout.trim()}`);

  const line = weftCli(['token', 'create', '--role', 'ingress', '--ttl', '24h', '--data-dir', c.dataDir]).trim().split('\n').pop() ?? '';
  if (!line.startsWith('weft ingress ')) throw new Error(`unexpected ingress join line: ${line}`);
  const log = join(c.dir, 'ingress.log');
  const proc = lab.spawn(edge.netns, process.execPath, [
    WEFT, ...line.split(/\s+/).slice(1), '--name', edge.name, '--rack', edge.rack, '--datacenter', edge.datacenter,
    '--state-dir', join(c.dir, 'ingress'), '--listen-address', EDGE_IP, '--metrics-listen', `127.0.0.1:${INGRESS_METRICS_PORT}`,
  ], { env: cleanEnv(), logFile: log, cwd: ROOT });
  await waitFor('the ingress to be ready (/readyz)', async () => {
    if (proc.exited) throw new GiveUp(`weft ingress exited: ${tail(log)}`);
    const r = spawnSync('ip', ['netns', 'exec', edge.netns, process.execPath, '-e',
      `fetch('http://127.0.0.1:${INGRESS_METRICS_PORT}/readyz').then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))`], { timeout: 10_000 });
    return r.status === 0;
  }, 30_000);
  return { service: DEMO_SERVICE, clientNetns, clientIp: CLIENT_IP, url: `http://${EDGE_IP}/`, edge: edge.name, log, backend: backendHost };
}

/** wireguard-go runs detached from the agent that started it (a restarted agent adopts it): found by name in the lab's host namespaces. */
export function wireguardPids(netns: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', netns], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return r.stdout.split('\n').filter(Boolean).map(Number).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'wireguard-go';
    } catch {
      return false;
    }
  });
}

/** How to use a lab that is up: where things are, and the commands that reach them. */
export function usage(r: ClusterRecord): string {
  const h = r.hosts[0];
  const c = r.containers[1] ?? r.containers[0];
  const admin = `ip netns exec ${r.controllerNetns} node ${WEFT}`;
  const lines = [
    'use it:',
    `  # from ${r.containers[0].host}'s test container`,
    `  ip netns exec ${r.containers[0].netns} ping ${c.ip}`,
    `  # a host's own view (also: npm run lab -- exec ${r.name} ${h.name} CMD)`,
    `  ip netns exec ${h.netns} ip -d link show weft.vx1`,
    '  # the admin CLI against the lab\'s controller (status, hosts, endpoints, service, datacenter, ...)',
    `  ${admin} hosts --server ${r.server} --data-dir ${r.dataDir}`,
    `  # the path of a packet, hop by hop, read on ${h.name}`,
    `  ip netns exec ${h.netns} node ${WEFT} explain ${r.containers[0].ip} ${c.ip} --server ${r.server} --state-dir ${join(r.dir, h.name, 'state')}`,
  ];
  if (r.ingress) {
    lines.push(
      '  # the outside client, through the ingress',
      `  ip netns exec ${r.ingress.clientNetns} node -e "fetch('${r.ingress.url}').then(async (x) => console.log(await x.text()))"`,
    );
  }
  lines.push(
    `logs: ${r.controllerLog}, ${join(r.dir, '<host>', 'agent.log')}${r.ingress ? `, ${r.ingress.log}` : ''}`,
    `again: npm run lab -- status ${r.name}    remove: npm run lab -- down ${r.name}`,
  );
  return lines.join('\n');
}

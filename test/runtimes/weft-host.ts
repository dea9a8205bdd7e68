// One weft host inside a runtime sandbox: the sandbox's network namespace is
// the host. A real `weft controller` (loopback, temp data dir) and a real
// `weft agent` joined to it with a bootstrap token run inside it, so the
// bridge, VXLAN device, iptables rules and forwarding sysctl the agent sets
// up live in the sandbox and vanish with it.
//
// The underlay: the agent needs an address of its own that is not loopback
// (the VXLAN device is bound to the device holding it, and the controller
// records it for other hosts). With one host nothing ever crosses the
// underlay, so a veth pair with both ends in the host namespace (this
// kernel has no dummy device), one end holding a TEST-NET-1 address, is all
// it takes: the other end is the "wire", with nothing on it. The controller
// listens on loopback and the agent is told its underlay
// address with --underlay-ip (auto-detection would pick 127.0.0.1, which
// the agent rightly refuses).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { cleanEnv, createToken, joinArgs, tail, WEFT, ROOT } from '../e2e/cluster';
import { readJsonLog } from '../e2e/traffic';
import { GiveUp, waitFor } from '../helpers/wait';
import type { Sandbox } from './sandbox';

export const UNDERLAY_DEV = 'wtul0';
const UNDERLAY_PEER = 'wtul1';
export const UNDERLAY_IP = '192.0.2.1';
const CONTROLLER = '127.0.0.1:7443';
const BRIDGE = 'weft.br1'; // the default network, VNI 1

export interface AgentAllocation {
  network: string;
  ip: string;
  containerId: string;
  ifname: string;
  netns: string | null;
}

export interface WeftHost {
  dataDir: string;
  stateDir: string;
  socket: string;
  controllerLog: string;
  agentLog: string;
  /** The default network's subnet this host leased, e.g. 10.244.0.0/24, and its gateway. */
  subnet: string;
  gateway: string;
  /** The agent DB's allocations, read through a read-only connection. */
  allocations(): AgentAllocation[];
  /** The controller's endpoint records (its SQLite store, read-only): what the agent reported through its outbox. */
  endpoints(): Array<{ network: string; ip: string; containerId: string; host: string; labels: Record<string, string> }>;
  /** The last address the agent handed out in `network` (its round-robin cursor). */
  lastHandedOut(network?: string): string | undefined;
  /** Names of the links in the host namespace. */
  links(): string[];
  logTails(): string;
  close(): Promise<void>;
}

interface Daemon {
  proc: ChildProcess;
  exited: Promise<void>;
}

function startDaemon(sandbox: Sandbox, args: string[], logFile: string): Daemon {
  const fd = openSync(logFile, 'a');
  const [nsenter, ...prefix] = sandbox.prefix();
  // pdeathsig: a test process that dies does not leave the daemon behind.
  const proc = spawn(nsenter, [...prefix, 'setpriv', '--pdeathsig', 'TERM', '--', process.execPath, WEFT, ...args], {
    stdio: ['ignore', fd, fd],
    env: cleanEnv(),
    cwd: ROOT,
  });
  closeSync(fd);
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  return { proc, exited };
}

async function stopDaemon(d: Daemon | undefined): Promise<void> {
  if (!d || d.proc.exitCode !== null || d.proc.signalCode !== null) return;
  d.proc.kill('SIGTERM');
  const t = setTimeout(() => d.proc.kill('SIGKILL'), 5000);
  await d.exited;
  clearTimeout(t);
}

/** Starts controller and agent in the sandbox; files go under `dir`. The agent's CNI socket is `socket`. */
export async function startWeftHost(sandbox: Sandbox, dir: string, socket: string): Promise<WeftHost> {
  const dataDir = join(dir, 'controller');
  const stateDir = join(dir, 'agent');
  const controllerLog = join(dir, 'controller.log');
  const agentLog = join(dir, 'agent.log');
  mkdirSync(dir, { recursive: true });
  const ip = (args: string[]) => sandbox.exec('ip', args);
  ip(['link', 'add', UNDERLAY_DEV, 'type', 'veth', 'peer', 'name', UNDERLAY_PEER]);
  ip(['addr', 'add', `${UNDERLAY_IP}/24`, 'dev', UNDERLAY_DEV]);
  ip(['link', 'set', UNDERLAY_PEER, 'up']);
  ip(['link', 'set', UNDERLAY_DEV, 'up']);

  let controller: Daemon | undefined;
  let agent: Daemon | undefined;
  let gw: { local: string; prefixlen: number } | undefined;
  const logTails = () => `controller: ${tail(controllerLog)}\nagent: ${tail(agentLog)}`;
  const close = async () => {
    await stopDaemon(agent);
    await stopDaemon(controller);
  };
  try {
    controller = startDaemon(sandbox, ['controller', '--data-dir', dataDir, '--listen', CONTROLLER, '--metrics-listen', '127.0.0.1:7080'], controllerLog);
    const c = controller;
    const joinLine = await waitFor(
      'the controller to print the join command',
      () => {
        if (c.proc.exitCode !== null) throw new GiveUp(`the controller exited: ${tail(controllerLog)}`);
        return readJsonLog(controllerLog).find((l) => typeof l.agentCommand === 'string');
      },
      30_000,
      100,
    );
    agent = startDaemon(
      sandbox,
      [
        ...joinArgs(joinLine.agentCommand as string, createToken(dataDir)),
        '--host-name', 'wtrthost', '--rack', 'r1', '--datacenter', 'dc1', '--underlay-ip', UNDERLAY_IP,
        '--state-dir', stateDir, '--cni-socket', socket, '--metrics-listen', '127.0.0.1:7081', '--log-level', 'debug',
      ],
      agentLog,
    );
    const a = agent;
    // The socket listens only after the host network (bridge, gateway) is ensured.
    await waitFor(
      'the agent to serve its CNI socket',
      () => {
        if (a.proc.exitCode !== null) throw new GiveUp(`the agent exited: ${tail(agentLog)}`);
        return existsSync(socket);
      },
      30_000,
      100,
    );
    const addrs = JSON.parse(ip(['-j', '-4', 'addr', 'show', 'dev', BRIDGE])) as { addr_info: { local: string; prefixlen: number }[] }[];
    gw = addrs[0]?.addr_info[0];
    if (!gw) throw new Error(`bridge ${BRIDGE} has no address: ${logTails()}`);
  } catch (e) {
    await close();
    throw e;
  }
  const octets = gw.local.split('.');
  const subnet = `${octets.slice(0, 3).join('.')}.0/${gw.prefixlen}`;

  const db = join(stateDir, 'agent.db');
  const query = <T>(sql: string, file = db): T[] => {
    const d = new Database(file, { readonly: true, fileMustExist: true });
    try {
      return d.prepare(sql).all() as T[];
    } finally {
      d.close();
    }
  };
  return {
    dataDir, stateDir, socket, controllerLog, agentLog, subnet, gateway: gw.local,
    allocations: () =>
      query<{ network: string; ip: string; container_id: string; ifname: string; netns: string | null }>(
        'SELECT network, ip, container_id, ifname, netns FROM ipam_allocations ORDER BY created_at',
      ).map((r) => ({ network: r.network, ip: r.ip, containerId: r.container_id, ifname: r.ifname, netns: r.netns })),
    endpoints: () =>
      query<{ value: string }>(`SELECT value FROM kv WHERE key LIKE '/weft/endpoints/%' ORDER BY key`, join(dataDir, 'weft.db')).map(
        (r) => JSON.parse(r.value) as { network: string; ip: string; containerId: string; host: string; labels: Record<string, string> },
      ),
    lastHandedOut: (network = 'default') =>
      query<{ network: string; last_ip: string }>('SELECT network, last_ip FROM ipam_cursors').find((r) => r.network === network)?.last_ip,
    links: () => (JSON.parse(ip(['-j', 'link', 'show'])) as { ifname: string }[]).map((l) => l.ifname),
    logTails,
    close,
  };
}


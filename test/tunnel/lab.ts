// Two datacenters in a netns lab, for the tests of traffic between them:
//
//   dc1 (rack a): g1a, g1b (gateways), h1      dc2 (rack b): g2a, g2b (gateways), h2
//   each datacenter's router hangs off the WAN router; the controller sits on
//   the management segment behind the WAN router too.
//
// Every host runs `weft agent` in its own mount namespace (a holder process
// with private tmpfs on /run/wireguard and /run/weft; a slave of the
// machine's mounts, so container namespaces made later under /run/netns show): wireguard-go's UAPI
// socket is /var/run/wireguard/weft.wg0.sock on every gateway, and four
// gateways on one machine would otherwise fight over one path. The mount
// namespace outlives the agent, so a restarted agent finds the wireguard-go
// its predecessor started, as on a real host.
//
// Helpers for what the tests do to it: a capture on the WAN router's
// datacenter-facing links, a steady ping stream with per-sequence timestamps,
// black-holing a gateway (its forwarding dropped while every process stays
// up), kill -9 of a gateway (its agent and its wireguard-go, by PID), agent
// restarts, and a reboot-like cold start.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, type Lab, type LabHost, type LabProcess } from '../lab/lab';
import { ipBatch, ipJson, nsRun } from '../lab/run';
import {
  AGENT_METRICS_PORT, agentPaths, cleanEnv, conflistPath, GRPC_PORT, joinArgs, METRICS_PORT, ROOT, tail, type AgentPaths, type Controller,
} from '../e2e/cluster';
import { readJsonLog } from '../e2e/traffic';
import { cniAdd, execCni, loadConflist, pluginConfig } from '../e2e/cni';
import { nsExecAsync, type AsyncResult } from '../e2e/traffic';
import { startHolder } from '../runtimes/sandbox';
import { GiveUp, waitFor } from '../helpers/wait';

export const DC1 = 'dc1';
export const DC2 = 'dc2';
export const GATEWAYS: Record<string, string[]> = { [DC1]: ['g1a', 'g1b'], [DC2]: ['g2a', 'g2b'] };
/** WireGuard's listen port: the datacenter default. */
export const WG_PORT = 51820;
export const VXLAN_PORTS = [4789, 4790];
/** Every weft network's pool the lab uses (the default network). */
export const POOL_PREFIX = '10.244.';
export const FAIL_CLOSED_TABLE = 'weft_xdc';

export type TunnelContainer = { name: string; host: LabHost; netns: string; netnsPath: string; ip: string };

export type TunnelAgent = AgentPaths & { host: LabHost; proc: LabProcess };

export type TunnelLab = {
  lab: Lab;
  /** this lab's own copy of dist/weft.mjs (a build running meanwhile cannot pull it away) */
  weft: string;
  /** `weft ARGS` in the controller's namespace against this lab's controller (admin commands) */
  admin(args: string[]): string;
  dir: string;
  /** replaced by restartController */
  ctl: Controller;
  dataDir: string;
  token: string;
  agents: Map<string, TunnelAgent>;
  containers: Map<string, TunnelContainer>;
  host(name: string): LabHost;
  isGateway(name: string): boolean;
  /** weft agent on the host, in its mount namespace; waitSocket false: return at once (cold-start polling) */
  startAgent(name: string, opts?: { waitSocket?: boolean }): Promise<TunnelAgent>;
  /** SIGTERM (or the given signal) to the agent; resolves once it has exited */
  stopAgent(name: string, signal?: NodeJS.Signals): Promise<void>;
  restartAgent(name: string): Promise<TunnelAgent>;
  stopController(): Promise<void>;
  /** the controller again on the same data dir */
  restartController(): Promise<void>;
  /** a container on the host, attached by CNI ADD as a runtime does */
  attach(name: string, host: string): Promise<TunnelContainer>;
  /** wireguard-go processes inside the host's network namespace */
  wireguardPids(host: string): number[];
  /** kill -9 of a gateway: its agent and its wireguard-go, by PID */
  killGateway(name: string): Promise<void>;
  /** drop everything the gateway forwards (its processes stay up); returns the undo */
  blackHole(name: string): () => void;
  /** the gateway `from` currently sends traffic for `remoteDc` through (from its kernel routes) */
  chosenGateway(from: string, remoteDc: string): string | null;
  /** start a capture on the WAN router's links towards the datacenters */
  capture(tag: string): Promise<WanCapture>;
  /** the agents' and the controller's log tails, for a failed test */
  logs(): string;
  /** per host: weft links, routes into the pools, whether the fail-closed table is there, wireguard-go's peers */
  diagnose(): string;
  /** wait until `from` pings `to` (containers); on timeout the error carries diagnose() and the logs */
  waitReach(from: string, to: string, ms: number): Promise<void>;
  close(): Promise<void>;
};

export type TunnelLabOptions = {
  name: string;
  /** extra `weft agent` arguments for every host */
  agentArgs?: string[];
  /** the agents' --log-level (default debug; a benchmark runs them at production's info) */
  logLevel?: string;
  /** containers to attach at start: name -> host */
  containers?: Record<string, string>;
  /** datacenters made with --mesh: their hosts' traffic among themselves goes inside WireGuard too */
  mesh?: string[];
};

type Holder = { child: ChildProcess; pid: number };

/**
 * A copy of dist/ for one lab, under node_modules/.cache so the bundle's
 * packages still resolve. dist/ is rebuilt (emptied, then written) by any
 * `npm run build`; a lab that runs for minutes must not start a process in
 * that window. The copy is checked complete: every chunk a bundle file
 * imports is there.
 */
function snapshotDist(labName: string): string {
  const dir = join(ROOT, 'node_modules', '.cache', `weft-tunnel-${labName}-${process.pid}`);
  for (let attempt = 0; ; attempt++) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    if (existsSync(join(ROOT, 'dist'))) cpSync(join(ROOT, 'dist'), dir, { recursive: true });
    const files = new Set(readdirSync(dir));
    const missing = ['weft.mjs', 'weft.proto', 'weft-cni'].filter((f) => !files.has(f));
    for (const f of files) {
      if (!f.endsWith('.mjs')) continue;
      for (const m of readFileSync(join(dir, f), 'utf8').matchAll(/["']\.\/([\w.-]+\.mjs)["']/g)) if (!files.has(m[1])) missing.push(m[1]);
    }
    if (missing.length === 0) return dir;
    if (attempt >= 50) throw new Error(`dist/ stays incomplete (missing ${missing.join(', ')}): run npm run build first (npm test does)`);
    // a build is writing dist/ right now: it takes a few seconds
    execFileSync('sleep', ['0.2']);
  }
}

export async function createTunnelLab(o: TunnelLabOptions): Promise<TunnelLab> {
  const dir = mkdtempSync(join(tmpdir(), `weft-${o.name}-`));
  const distCopy = snapshotDist(o.name);
  const WEFT = join(distCopy, 'weft.mjs');
  const weftHere = (args: string[]) => execFileSync(process.execPath, [WEFT, ...args], { env: cleanEnv(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const lab = await createLab({
    name: o.name,
    datacenters: [
      { name: DC1, racks: [{ name: 'a', hosts: [...GATEWAYS[DC1], 'h1'] }] },
      { name: DC2, racks: [{ name: 'b', hosts: [...GATEWAYS[DC2], 'h2'] }] },
    ],
    controller: true,
  });
  const holders = new Map<string, Holder>();
  const agents = new Map<string, TunnelAgent>();
  const containers = new Map<string, TunnelContainer>();
  const blackHoles = new Set<string>();
  const captures: WanCapture[] = [];
  const dataDir = join(dir, 'controller');
  let closed = false;

  const host = (name: string) => lab.host(name);
  const isGateway = (name: string) => Object.values(GATEWAYS).some((g) => g.includes(name));

  const wireguardPids = (name: string): number[] => {
    const pids = spawnSync('ip', ['netns', 'pids', host(name).netns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
    return pids.filter((p) => {
      try {
        return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'wireguard-go';
      } catch {
        return false;
      }
    });
  };

  const close = async () => {
    if (closed) return;
    closed = true;
    for (const c of captures) await c.stop().catch(() => undefined);
    await Promise.all([...agents.values()].map((a) => a.proc.stop('SIGTERM', 3000).catch(() => undefined)));
    // wireguard-go runs detached from the agent that started it (it must outlive a restart): stop it by PID
    for (const h of lab.hosts) for (const p of wireguardPids(h.name)) killPid(p, 'SIGKILL');
    for (const h of holders.values()) {
      h.child.stdin?.end();
      h.child.kill('SIGKILL');
    }
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
    rmSync(distCopy, { recursive: true, force: true });
  };

  const startController = async (): Promise<Controller> => {
    const c = lab.controller!;
    const logFile = join(dir, 'controller.log');
    const proc = lab.spawn(
      c.netns, process.execPath,
      [WEFT, 'controller', '--data-dir', dataDir, '--listen', `${c.ip}:${GRPC_PORT}`, '--metrics-listen', `${c.ip}:${METRICS_PORT}`],
      { env: cleanEnv(), logFile, cwd: ROOT },
    );
    const line = await waitFor('the controller to print the join command', () => {
      if (proc.exited) throw new GiveUp(`controller exited early; log tail: ${tail(logFile)}`);
      return readJsonLog(logFile).find((l) => typeof l.agentCommand === 'string' && l.pid === proc.pid);
    }, 30_000);
    return { proc, dataDir, logFile, server: `${c.ip}:${GRPC_PORT}`, agentCommand: line.agentCommand as string };
  };

  const installCni = (paths: AgentPaths) => {
    weftHere([
      'install-cni', '--bin-dir', paths.cniBinDir, '--conf-dir', paths.cniConfDir, '--network', 'default', '--name', 'weft-default',
      '--socket', paths.socket, '--cni-version', '1.1.0', '--priority', '10',
    ]);
    if (!existsSync(conflistPath(paths.cniConfDir, 'default'))) throw new Error(`weft install-cni wrote no conflist in ${paths.cniConfDir}`);
  };

  try {
    const ctl = await startController();
    const token = (JSON.parse(weftHere(['token', 'create', '--ttl', '1h', '--data-dir', dataDir, '--json'])) as { token: string }).token;
    let current = ctl;

    // one mount namespace per host, for its whole life
    for (const h of lab.hosts) {
      const script = [
        'set -e',
        'mkdir -p /run/wireguard /run/weft',
        'mount -t tmpfs -o mode=0755 wt-wg /run/wireguard',
        'mount -t tmpfs -o mode=0755 wt-run /run/weft',
        'echo ready',
        'exec cat >/dev/null',
      ].join('\n');
      const child = await startHolder(['ip', 'netns', 'exec', h.netns, 'unshare', '--mount', '--propagation', 'slave', '--', 'sh', '-c', script], `mount namespace of ${h.name}`);
      holders.set(h.name, { child, pid: child.pid! });
    }

    const startAgent = async (name: string, so: { waitSocket?: boolean } = {}): Promise<TunnelAgent> => {
      const h = host(name);
      const paths = agentPaths(dir, h);
      installCni(paths);
      const holder = holders.get(name)!;
      const proc = lab.spawn(
        h.netns,
        'nsenter',
        [
          `--mount=/proc/${holder.pid}/ns/mnt`, '--', process.execPath, WEFT, ...joinArgs(current.agentCommand, token),
          '--host-name', h.name, '--rack', h.rack, '--datacenter', h.datacenter,
          '--state-dir', paths.stateDir, '--cni-socket', paths.socket,
          '--metrics-listen', `127.0.0.1:${AGENT_METRICS_PORT}`, '--log-level', o.logLevel ?? 'debug', ...(o.agentArgs ?? []),
        ],
        { env: cleanEnv(), logFile: paths.logFile, cwd: ROOT },
      );
      const a: TunnelAgent = { host: h, proc, ...paths };
      agents.set(name, a);
      if (so.waitSocket !== false) {
        await waitFor(`agent on ${name} to answer CNI STATUS`, async () => {
          if (proc.exited) throw new GiveUp(`agent on ${name} exited; log tail: ${tail(paths.logFile)}`);
          const r = await execCni({ hostNetns: h.netns, cniPath: paths.cniBinDir, command: 'STATUS', config: cniConfig(paths) });
          if (r.code !== 0) throw new Error(`STATUS exited ${r.code}: ${r.stdout.trim()} ${r.stderr.trim()}`);
          return true;
        }, 60_000);
      }
      return a;
    };

    const stopAgent = async (name: string, signal: NodeJS.Signals = 'SIGTERM') => {
      const a = agents.get(name);
      if (!a) return;
      if (signal === 'SIGKILL') killPid(a.proc.pid, 'SIGKILL');
      // the agent alone: stop() signals its process group, which wireguard-go (detached) is not in
      await a.proc.stop(signal, 5000);
    };

    await Promise.all(lab.hosts.map((h) => startAgent(h.name)));

    // the operator names the gateways once their hosts have registered
    for (const dc of [DC1, DC2]) {
      const r = nsRun(lab.controller!.netns, process.execPath, [WEFT, 'datacenter', 'add', dc, '--gateways', GATEWAYS[dc].join(','), ...(o.mesh?.includes(dc) ? ['--mesh'] : []), '--server', ctl.server, '--data-dir', dataDir], {
        env: cleanEnv(), check: false,
      });
      if (r.status !== 0) throw new Error(`weft datacenter add ${dc}: ${r.stderr.trim() || r.stdout.trim()}`);
    }

    const attach = async (name: string, hostName: string): Promise<TunnelContainer> => {
      const h = host(hostName);
      const a = agents.get(hostName)!;
      const netnsPath = lab.addContainerNetns(h, name);
      const result = await cniAdd({
        hostNetns: h.netns, cniPath: a.cniBinDir, containerId: `${o.name}-${name}-${Date.now()}`, netns: netnsPath, ifname: 'eth0', config: cniConfig(a),
      });
      const c: TunnelContainer = { name, host: h, netns: netnsPath.replace('/run/netns/', ''), netnsPath, ip: String(result.ips[0].address).split('/')[0] };
      containers.set(name, c);
      return c;
    };

    const admin = (args: string[]) =>
      nsRun(lab.controller!.netns, process.execPath, [WEFT, ...args, '--server', current.server, '--data-dir', dataDir], { env: cleanEnv() }).stdout;

    const t: TunnelLab = {
      weft: WEFT, admin,
      lab, dir, ctl, dataDir, token, agents, containers, host, isGateway, startAgent, stopAgent,
      async restartAgent(name) {
        await stopAgent(name);
        return startAgent(name);
      },
      attach,
      async stopController() {
        await current.proc.stop('SIGTERM', 5000);
      },
      async restartController() {
        current = await startController();
        t.ctl = current;
      },
      wireguardPids,
      async killGateway(name) {
        const a = agents.get(name);
        const pids = [...(a && !a.proc.exited ? [a.proc.pid] : []), ...wireguardPids(name)];
        for (const p of pids) killPid(p, 'SIGKILL');
        if (a) await a.proc.wait();
        await waitFor(`wireguard-go of ${name} to be gone`, () => wireguardPids(name).length === 0, 5000);
      },
      blackHole(name) {
        const ns = host(name).netns;
        const table = `${o.name}_blackhole`;
        // before anything else weft has on the hook, so nothing it does can let a packet through
        nsRun(ns, 'nft', ['-f', '-'], {
          input: `table inet ${table} {\n chain drop_forwarded { type filter hook forward priority -400; policy drop; }\n}\n`,
        });
        blackHoles.add(name);
        return () => {
          if (!blackHoles.delete(name)) return;
          nsRun(ns, 'nft', ['delete', 'table', 'inet', table], { check: false });
        };
      },
      chosenGateway(from, remoteDc) {
        return chosenGateway(t, from, remoteDc);
      },
      async capture(tag) {
        const c = await startWanCapture(lab, join(dir, `${tag}`));
        captures.push(c);
        return c;
      },
      logs() {
        const parts = [`controller: ${tail(current.logFile, 10)}`];
        // error stacks make tails long: the start of each is what tells
        for (const a of agents.values()) parts.push(`${a.host.name}: ${tail(a.logFile, 25).split(' | ').map((l) => l.slice(0, 400)).join(' | ').slice(0, 4000)}`);
        return parts.join('\n');
      },
      diagnose() {
        return lab.hosts.map((h) => {
          const links = ipJson<any[]>(h.netns, ['link', 'show']).map((l) => `${l.ifname}(${l.mtu},${l.operstate})`).filter((n) => n.startsWith('weft.')).join(' ');
          const routes = poolRoutes(h.netns).map((r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${r.dev}`).join('; ');
          const table = nsRun(h.netns, 'nft', ['list', 'table', 'inet', FAIL_CLOSED_TABLE], { check: false });
          const counters = table.status === 0 ? (table.stdout.match(/counter packets \d+ bytes \d+[^\n]*/g) ?? []).filter((l) => !/packets 0 /.test(l)).join(' | ') : 'NO TABLE';
          let wg = '';
          const holder = holders.get(h.name);
          if (holder && (isGateway(h.name) || o.mesh?.includes(h.datacenter))) {
            const r = nsRun(h.netns, 'nsenter', [`--mount=/proc/${holder.pid}/ns/mnt`, '--', 'wg', 'show', 'weft.wg0'], { check: false });
            wg = (r.stdout || r.stderr).replace(/\s+/g, ' ').replace(/private key: \S+/, 'private key: (hidden)');
          }
          return `${h.name}: links ${links}\n  routes ${routes}\n  ${FAIL_CLOSED_TABLE}: ${counters}\n  wg: ${wg}`;
        }).join('\n');
      },
      async waitReach(from, to, ms) {
        const [a, b] = [containers.get(from)!, containers.get(to)!];
        try {
          await waitFor(`${from} (${a.host.datacenter}) to reach ${to} (${b.host.datacenter})`, async () => (await nsExecAsync(a.netns, 'ping', ['-n', '-c', '1', '-W', '1', b.ip])).status === 0, ms);
        } catch (e) {
          throw new Error(`${(e as Error).message}\n${t.diagnose()}\n${t.logs()}`, { cause: e });
        }
      },
      close,
    };
    routeLeaksAcrossWan(t);
    for (const [name, h] of Object.entries(o.containers ?? {})) await attach(name, h);
    return t;
  } catch (e) {
    const logs = [...agents.values()].map((a) => `${a.host.name}: ${tail(a.logFile, 15)}`).join('\n');
    await close();
    throw new Error(`${(e as Error).message}\n${logs}`, { cause: e });
  }
}

function cniConfig(paths: AgentPaths): Record<string, unknown> {
  return pluginConfig(loadConflist(conflistPath(paths.cniConfDir, 'default')));
}

function killPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

/**
 * The lab's routers know only underlay prefixes, so a container's packet that
 * escaped the tunnel by a host's default route would die at its datacenter's
 * router, unseen, and a leak test could not fail. Here the underlay carries
 * container subnets too (each datacenter router to its hosts, the WAN router
 * to the datacenter routers), as a routed network would: an escaped packet
 * crosses the WAN, where the capture sees it.
 */
export function routeLeaksAcrossWan(t: TunnelLab): void {
  const wanCmds: string[] = [];
  for (const r of t.lab.plan.routers) {
    const cmds = [`route replace ${POOL_PREFIX}0.0/16 via ${r.peerIp}`];
    for (const h of t.lab.hosts.filter((x) => x.datacenter === r.datacenter)) {
      for (const subnet of hostSubnets(t, [h.name])) {
        cmds.push(`route replace ${subnet} via ${h.underlayIp}`);
        wanCmds.push(`route replace ${subnet} via ${r.ip}`);
      }
    }
    ipBatch(r.netns, cmds);
  }
  ipBatch(t.lab.plan.wan, wanCmds);
}

// ---- which gateway carries traffic ------------------------------------------------

/** weft's routes in a host namespace whose destination is in a weft pool. */
export function poolRoutes(netns: string): Array<{ dst: string; gateway?: string; dev?: string }> {
  return ipJson<Array<{ dst: string; gateway?: string; dev?: string }>>(netns, ['route', 'show']).filter((r) => r.dst.startsWith(POOL_PREFIX));
}

/** The subnets the hosts have (from the bridges their agents made). */
function hostSubnets(t: TunnelLab, hosts: string[]): string[] {
  return hosts
    .map((h) => t.host(h))
    .flatMap((h) => ipJson<any[]>(h.netns, ['route', 'show', 'proto', 'kernel']).filter((r) => String(r.dst).startsWith(POOL_PREFIX) && String(r.dev).startsWith('weft.br')).map((r) => r.dst as string));
}

/**
 * On a non-gateway host: the local gateway whose VTEP address its route to
 * the remote datacenter's subnets points at. On a gateway: the remote gateway
 * whose VTEP address its route into weft.xdc points at.
 */
export function chosenGateway(t: TunnelLab, from: string, remoteDc: string): string | null {
  const remote = new Set(hostSubnets(t, t.lab.hosts.filter((h) => h.datacenter === remoteDc).map((h) => h.name)));
  const route = poolRoutes(t.host(from).netns).find((r) => remote.has(r.dst) && r.gateway);
  if (!route) return null;
  const candidates = t.isGateway(from) ? GATEWAYS[remoteDc] : GATEWAYS[t.host(from).datacenter];
  for (const g of candidates) {
    const addrs = ipJson<any[]>(t.host(g).netns, ['addr', 'show']).flatMap((l) => (l.addr_info ?? []).map((a: any) => a.local as string));
    if (addrs.includes(route.gateway!)) return g;
  }
  return null;
}

// ---- WAN capture -------------------------------------------------------------------

export type CapturedPacket = { line: string; iface: string };

export type WanCapture = {
  /** stop tcpdump (idempotent) and return every packet line, read back with tcpdump -r -nn */
  stop(): Promise<CapturedPacket[]>;
  /** the raw pcap bytes of every interface (for payload searches) */
  raw(): Buffer;
};

/** One tcpdump per datacenter-facing link of the WAN router, each into its own pcap. */
export async function startWanCapture(lab: Lab, base: string): Promise<WanCapture> {
  const ifaces = lab.plan.routers.map((r) => r.peerIf);
  const procs = ifaces.map((iface) => {
    const file = `${base}.${iface}.pcap`;
    const log = `${base}.${iface}.log`;
    writeFileSync(log, '');
    const p = lab.spawn(lab.plan.wan, 'tcpdump', ['-i', iface, '-nn', '-U', '--immediate-mode', '-s', '2048', '-w', file], { logFile: log });
    return { iface, file, log, p };
  });
  for (const c of procs) {
    await waitFor(`tcpdump on ${c.iface} to listen`, () => {
      if (c.p.exited) throw new GiveUp(`tcpdump on ${c.iface} exited: ${readFileSync(c.log, 'utf8')}`);
      return readFileSync(c.log, 'utf8').includes('listening on');
    }, 10_000);
  }
  let result: CapturedPacket[] | null = null;
  return {
    async stop() {
      if (result) return result;
      for (const c of procs) await c.p.stop('SIGINT', 3000);
      result = [];
      for (const c of procs) {
        const r = spawnSync('tcpdump', ['-r', c.file, '-nn', '-v'], { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
        if (r.status !== 0) throw new Error(`tcpdump -r ${c.file}: ${r.stderr}`);
        // -v puts the IP header on one line and the rest on the next: join them
        const lines: string[] = [];
        for (const l of r.stdout.split('\n')) {
          if (!l) continue;
          if (/^\d\d:\d\d:\d\d\./.test(l)) lines.push(l);
          else if (lines.length) lines[lines.length - 1] += ' ' + l.trim();
        }
        result.push(...lines.map((line) => ({ line, iface: c.iface })));
      }
      return result;
    },
    raw() {
      return Buffer.concat(procs.map((c) => readFileSync(c.file)));
    },
  };
}

export type WanRules = {
  /** gateways' underlay addresses: WireGuard UDP must run between two of them, port 51820 */
  gatewayIps: string[];
  /** the controller's address and port: agents' TLS, TCP only */
  controller: { ip: string; port: number };
  /** addresses of the lab's routers, which may send ICMP errors (need to frag) about WireGuard packets */
  routerIps: string[];
  /** strings that must never be on the wire in the clear */
  secrets?: string[];
};

/**
 * Every packet the capture saw that is not allowed on the WAN: anything but
 * WireGuard UDP between gateway endpoints, TCP to or from the controller's
 * port, ARP and IPv6 link-local chatter of the lab's own links, and ICMP
 * errors (need to frag, port unreachable) about WireGuard packets between
 * gateways. A container (pool) address or
 * a VXLAN port anywhere in a line is always a violation.
 */
export function wanViolations(packets: CapturedPacket[], rules: WanRules): string[] {
  const gw = new Set(rules.gatewayIps);
  const bad: string[] = [];
  for (const { line, iface } of packets) {
    const why = classify(line, gw, rules);
    if (why) bad.push(`${iface}: ${why}: ${line.slice(0, 300)}`);
  }
  return bad;
}

function classify(line: string, gw: Set<string>, rules: WanRules): string | null {
  if (line.includes(POOL_PREFIX)) return 'container address';
  if (/\.(4789|4790)[ :]/.test(line)) return 'VXLAN port';
  if (/ ARP, /.test(line)) return null;
  // the lab links' own IPv6 link-local chatter (router solicitations, neighbour discovery)
  if (/ IP6 .*?[ )]fe80::[0-9a-f:]+ > (ff02::|fe80::)/.test(line)) return null;
  // IP header: "IP (tos ..., proto UDP (17), length 176) 172.31.1.11.51820 > 172.31.2.11.51820: UDP, length 148"
  const m = /\) (\d+\.\d+\.\d+\.\d+)(?:\.(\d+))? > (\d+\.\d+\.\d+\.\d+)(?:\.(\d+))?: (.*)$/.exec(line);
  if (!m) return 'unparsed';
  const [, src, sport, dst, dport, rest] = m;
  const proto = /proto (\w+)/.exec(line)?.[1];
  if (proto === 'UDP') {
    if (gw.has(src) && gw.has(dst) && Number(sport) === WG_PORT && Number(dport) === WG_PORT) return null;
    return 'UDP other than WireGuard between gateways';
  }
  if (proto === 'TCP') {
    const c = rules.controller;
    if ((dst === c.ip && Number(dport) === c.port) || (src === c.ip && Number(sport) === c.port)) return null;
    return 'TCP not to the controller';
  }
  if (proto === 'ICMP') {
    // an ICMP error about a WireGuard packet between gateways (a router's "need to frag", a gateway whose
    // wireguard-go is gone answering "port unreachable"): it quotes only the start of ciphertext
    const quoted = /(\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+)/.exec(rest);
    const aboutWireGuard = quoted && gw.has(quoted[1]) && gw.has(quoted[3]) && Number(quoted[2]) === WG_PORT && Number(quoted[4]) === WG_PORT;
    if (aboutWireGuard && (rules.routerIps.includes(src) || gw.has(src)) && /need to frag|udp port \d+ unreachable/.test(rest)) return null;
  }
  return `${proto ?? 'unknown'} not allowed`;
}

/** The default rules for a tunnel lab: its gateways, its controller, its routers. */
export function wanRules(t: TunnelLab, secrets: string[] = []): WanRules {
  return {
    gatewayIps: Object.values(GATEWAYS).flat().map((g) => t.host(g).underlayIp),
    controller: { ip: t.lab.controller!.ip, port: Number(t.ctl.server.split(':')[1]) },
    routerIps: [
      ...t.lab.plan.routers.flatMap((r) => [r.ip, r.peerIp, ...r.racks.map((k) => k.gateway)]),
      t.lab.plan.controller!.gateway,
    ],
    secrets,
  };
}

/** Violations plus any secret found in the raw capture. */
export async function checkWan(t: TunnelLab, cap: WanCapture, secrets: string[] = []): Promise<{ packets: number; violations: string[] }> {
  const packets = await cap.stop();
  const violations = wanViolations(packets, wanRules(t, secrets));
  const raw = cap.raw();
  for (const s of secrets) if (raw.includes(Buffer.from(s))) violations.unshift(`secret "${s}" seen in the clear on the WAN`);
  // the first few say what leaked; thousands of lines would bury it
  const shown = violations.length > 12 ? [...violations.slice(0, 12), `... and ${violations.length - 12} more`] : violations;
  return { packets: packets.length, violations: shown };
}

// ---- steady ping stream -------------------------------------------------------------

export type PingStream = {
  /** replies so far: seq -> reception time (ms since the epoch) */
  replies: Map<number, number>;
  /** highest sequence number sent so far (from "no answer yet" and replies) */
  lastSeq(): number;
  /**
   * Stop and return the summary ping printed. `lost` counts every ping without a reply, the last ones
   * still in flight when stopped too; `lostBefore` only those older than the newest reply.
   */
  stop(): Promise<{ transmitted: number; received: number; lost: number; lostBefore: number; gaps: Array<[number, number]>; output: string }>;
};

/**
 * ping -D -O -i 0.05 from a container: every reply's timestamp, kept as
 * they come, so a test can tell when traffic stopped and when it resumed.
 * A payload pattern marks the packets for the WAN capture's payload search.
 */
export function startPingStream(netns: string, dst: string, opts: { intervalS?: number; pattern?: string; size?: number } = {}): PingStream {
  const args = ['netns', 'exec', netns, 'ping', '-n', '-D', '-O', '-i', String(opts.intervalS ?? 0.05), '-W', '1'];
  if (opts.pattern) args.push('-p', opts.pattern);
  if (opts.size) args.push('-s', String(opts.size));
  args.push(dst);
  const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const replies = new Map<number, number>();
  let maxSeq = 0;
  let out = '';
  let buf = '';
  child.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
    buf += b.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) {
      const m = /^\[(\d+\.\d+)\] .*icmp_seq=(\d+)/.exec(l);
      if (!m) continue;
      const seq = Number(m[2]);
      maxSeq = Math.max(maxSeq, seq);
      if (!l.includes('no answer yet')) replies.set(seq, Math.round(Number(m[1]) * 1000));
    }
  });
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  process.once('exit', () => {
    if (child.exitCode === null) killPid(-child.pid!, 'SIGKILL');
  });
  return {
    replies,
    lastSeq: () => maxSeq,
    async stop() {
      if (child.exitCode === null) killPid(-child.pid!, 'SIGINT');
      await exited;
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
      const transmitted = m ? Number(m[1]) : 0;
      const received = m ? Number(m[2]) : 0;
      const gaps: Array<[number, number]> = [];
      let start = -1;
      for (let s = 1; s <= transmitted; s++) {
        if (!replies.has(s)) {
          if (start < 0) start = s;
        } else if (start >= 0) {
          gaps.push([start, s - 1]);
          start = -1;
        }
      }
      if (start >= 0) gaps.push([start, transmitted]);
      const newest = Math.max(0, ...replies.keys());
      const lostBefore = gaps.reduce((n, [a, b]) => n + Math.max(0, Math.min(b, newest) - a + 1), 0);
      return { transmitted, received, lost: transmitted - received, lostBefore, gaps, output: out.split('\n').slice(-4).join('\n') };
    },
  };
}

/**
 * The time from `since` to the first reply after the outage that began at
 * `since`: the first reply whose predecessor was lost. 0 when nothing was
 * lost after `since`.
 */
export function resumeAfter(s: PingStream, since: number): { resumeMs: number; lost: number } | null {
  const seqs = [...s.replies.keys()].sort((a, b) => a - b);
  const firstAfter = seqs.find((q) => s.replies.get(q)! >= since);
  if (firstAfter === undefined) return null;
  let lost = 0;
  for (let i = 0; i < seqs.length; i++) {
    const q = seqs[i];
    if (s.replies.get(q)! < since) continue;
    const prev = i > 0 ? seqs[i - 1] : 0;
    if (q - prev > 1) {
      lost = q - prev - 1;
      return { resumeMs: s.replies.get(q)! - since, lost };
    }
  }
  return null;
}

// ---- small traffic servers ----------------------------------------------------------

/** UDP echo: answers every datagram with JSON {peer, data}. */
export const UDP_ECHO = `
const s = require('dgram').createSocket('udp4');
s.on('message', (m, r) => s.send(JSON.stringify({ peer: r.address, data: m.toString() }), r.port, r.address));
s.bind(Number(process.argv[1]), '0.0.0.0', () => console.log('listening'));
`;

/** Sends one datagram, prints the answer (or {error:'timeout'}). Retries every 200 ms until the deadline. */
export const UDP_ASK = `
const s = require('dgram').createSocket('udp4');
const [host, port, text, ms] = process.argv.slice(1);
const t = setInterval(() => s.send(text, Number(port), host), 200);
s.send(text, Number(port), host);
s.on('message', (m) => { console.log(m.toString()); process.exit(0); });
setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(0); }, Number(ms));
`;

/** Sends its text to host:port every 100 ms until stopped. */
export const UDP_SPRAY = `
const s = require('dgram').createSocket('udp4');
const [host, port, text] = process.argv.slice(1);
s.on('error', () => {});
setInterval(() => s.send(text, Number(port), host), 100);
`;

/** TCP echo, line by line. */
export const TCP_ECHO = `
require('net').createServer((c) => { c.on('error', () => {}); c.pipe(c); }).listen(Number(process.argv[1]), '0.0.0.0', () => console.log('listening'));
`;

/**
 * One long-lived TCP connection: writes a numbered line every 50 ms and checks
 * the echoes come back in order. Prints {sent, echoed, error?} as JSON lines
 * every 100 lines and on SIGTERM.
 */
export const TCP_STREAM = `
const [host, port] = process.argv.slice(1);
let sent = 0, echoed = 0, error = null, buf = '', closed = false;
const s = require('net').connect({ host, port: Number(port) });
const report = () => console.log(JSON.stringify({ sent, echoed, error, closed }));
s.on('connect', () => { setInterval(() => { if (!closed) s.write(++sent + '\\n'); }, 50); console.log(JSON.stringify({ connected: true })); });
s.on('data', (d) => { buf += d; const parts = buf.split('\\n'); buf = parts.pop(); for (const p of parts) { if (Number(p) !== echoed + 1) error = error || 'out of order: ' + p + ' after ' + echoed; echoed = Number(p); } });
s.on('error', (e) => { error = error || e.code || e.message; report(); });
s.on('close', () => { closed = true; report(); });
process.on('SIGTERM', () => { report(); process.exit(0); });
setInterval(report, 1000);
`;

/** Last JSON line a process printed. */
export function lastJson(text: string): any {
  const lines = text.trim().split('\n').filter((l) => l.startsWith('{'));
  return lines.length ? JSON.parse(lines[lines.length - 1]) : null;
}

/** A node one-liner in a namespace, as a lab process; resolves once it printed "listening". */
export async function serve(t: TunnelLab, netns: string, script: string, args: string[]): Promise<LabProcess> {
  const p = t.lab.spawn(netns, process.execPath, ['-e', script, ...args]);
  await waitFor(`server in ${netns} to listen`, () => {
    if (p.exited) throw new GiveUp(`server exited: ${p.output()}`);
    return p.output().includes('listening');
  }, 10_000);
  return p;
}

export async function udpAsk(netns: string, host: string, port: number, text: string, ms = 5000): Promise<any> {
  const r: AsyncResult = await nsExecAsync(netns, process.execPath, ['-e', UDP_ASK, host, String(port), text, String(ms)], { timeoutMs: ms + 10_000 });
  return lastJson(r.stdout);
}


// A weft cluster inside a netns lab, driven through the operator's commands:
// `weft controller` in the lab's controller namespace, `weft network add`,
// `weft token create` and `weft admin-cert` against its data dir, and
// `weft agent` with the join command the controller prints, one per host
// namespace. Every process is a lab process (stopped with the lab); every
// file lives under one temp dir the caller removes.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab, LabHost, LabProcess } from '../lab/lab';
import { GiveUp, waitFor } from '../helpers/wait';
import { ipJson } from '../helpers/ip';
import { nsExecAsync, readJsonLog } from './traffic';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WEFT = join(ROOT, 'dist', 'weft.mjs');
export const GRPC_PORT = 7443;
export const METRICS_PORT = 7080;
export const AGENT_METRICS_PORT = 7081;

export function requireBuild(): void {
  for (const f of ['weft.mjs', 'weft.proto', 'weft-cni']) {
    if (!existsSync(join(ROOT, 'dist', f))) throw new Error(`dist/${f} is missing: run npm run build first (npm test does)`);
  }
}

/** The environment without WEFT_* settings of the machine running the tests. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WEFT_'))), ...extra };
}

/** A `weft` subcommand that only touches files (token, network, admin-cert): run here, in the root namespace. */
export function weftCli(args: string[]): string {
  return execFileSync(process.execPath, [WEFT, ...args], { env: cleanEnv(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Like weftCli, for a command expected to fail: exit status and both streams. */
export function weftCliResult(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [WEFT, ...args], { env: cleanEnv(), encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export type Controller = {
  proc: LabProcess;
  dataDir: string;
  logFile: string;
  /** host:port agents dial */
  server: string;
  /** `weft agent --server ... --token <token> --ca-cert-hash sha256:...` as the controller printed it */
  agentCommand: string;
};

export async function startController(lab: Lab, dataDir: string, logFile: string): Promise<Controller> {
  const c = lab.controller;
  if (!c) throw new Error('the lab has no controller namespace');
  const proc = lab.spawn(
    c.netns,
    process.execPath,
    [WEFT, 'controller', '--data-dir', dataDir, '--listen', `${c.ip}:${GRPC_PORT}`, '--metrics-listen', `${c.ip}:${METRICS_PORT}`],
    { env: cleanEnv(), logFile, cwd: ROOT },
  );
  const line = await waitFor(
    'the controller to print the join command',
    () => {
      if (proc.exited) throw new GiveUp(`controller exited early; log tail: ${tail(logFile)}`);
      return readJsonLog(logFile).find((l) => typeof l.agentCommand === 'string' && l.pid === proc.pid);
    },
    30_000,
  );
  return { proc, dataDir, logFile, server: `${c.ip}:${GRPC_PORT}`, agentCommand: line.agentCommand as string };
}

/** Restart on the same data dir (same CA, same store). */
export async function restartController(lab: Lab, ctl: Controller): Promise<Controller> {
  return startController(lab, ctl.dataDir, ctl.logFile);
}

export function createToken(dataDir: string): string {
  return (JSON.parse(weftCli(['token', 'create', '--ttl', '1h', '--data-dir', dataDir, '--json'])) as { token: string }).token;
}

export type Agent = AgentPaths & {
  host: LabHost;
  proc: LabProcess;
};

export type AgentPaths = { stateDir: string; socket: string; logFile: string; cniBinDir: string; cniConfDir: string };

/** Per host: agent state, socket and log, and the host's own CNI bin and conf dirs (never the machine's /opt/cni/bin, /etc/cni/net.d). */
export function agentPaths(base: string, host: LabHost): AgentPaths {
  const dir = join(base, host.name);
  mkdirSync(dir, { recursive: true });
  return {
    stateDir: join(dir, 'state'), socket: join(dir, 'agent.sock'), logFile: join(dir, 'agent.log'),
    cniBinDir: join(dir, 'cni', 'bin'), cniConfDir: join(dir, 'cni', 'net.d'),
  };
}

const cniPriority = (network: string) => (network === 'default' ? 10 : 20);

/** Where installCni puts the conflist of `network` in `confDir`. */
export function conflistPath(confDir: string, network: string): string {
  return join(confDir, `${cniPriority(network)}-weft-${network}.conflist`);
}

/**
 * `weft install-cni` for one network into the host's CNI dirs, CNI 1.1.0
 * (STATUS, GC); returns the conflist's path. The default network keeps the
 * default priority; others go after it, as install-cni requires.
 */
export function installCni(paths: AgentPaths, network: string): string {
  const name = `weft-${network}`;
  const priority = cniPriority(network);
  weftCli([
    'install-cni', '--bin-dir', paths.cniBinDir, '--conf-dir', paths.cniConfDir, '--network', network, '--name', name,
    '--socket', paths.socket, '--cni-version', '1.1.0', '--priority', String(priority),
  ]);
  const conflist = conflistPath(paths.cniConfDir, network);
  if (!existsSync(conflist) || !existsSync(join(paths.cniBinDir, 'weft'))) throw new Error(`weft install-cni wrote no ${conflist} or ${paths.cniBinDir}/weft`);
  return conflist;
}

/** The join command the controller printed, token filled in: the arguments after `weft` (`agent --server ...`). */
export function joinArgs(agentCommand: string, token: string): string[] {
  const args = agentCommand.replace('<token>', token).split(/\s+/);
  if (args[0] !== 'weft' || args[1] !== 'agent') throw new Error(`unexpected join command: ${agentCommand}`);
  return args.slice(1);
}

export type AgentOptions = {
  /** appended to the command line */
  extraArgs?: string[];
  /** false: the default log level, as in production (default true: debug) */
  debugLog?: boolean;
};

/**
 * `weft agent` in the host's namespace, started with the controller's join
 * command (token filled in) plus this host's name, rack, datacenter and
 * paths. Resolves once its CNI socket answers.
 */
export async function startAgent(lab: Lab, ctl: Controller, host: LabHost, paths: AgentPaths, token: string, opts: AgentOptions = {}): Promise<Agent> {
  const proc = lab.spawn(
    host.netns,
    process.execPath,
    [
      WEFT, ...joinArgs(ctl.agentCommand, token),
      '--host-name', host.name, '--rack', host.rack, '--datacenter', host.datacenter,
      '--state-dir', paths.stateDir, '--cni-socket', paths.socket,
      '--metrics-listen', `127.0.0.1:${AGENT_METRICS_PORT}`, ...(opts.debugLog === false ? [] : ['--log-level', 'debug']),
      ...(opts.extraArgs ?? []),
    ],
    { env: cleanEnv(), logFile: paths.logFile, cwd: ROOT },
  );
  await waitFor(
    `agent on ${host.name} to serve its CNI socket`,
    () => {
      if (proc.exited) throw new GiveUp(`agent on ${host.name} exited; log tail: ${tail(paths.logFile)}`);
      return existsSync(paths.socket);
    },
    30_000,
  );
  return { host, proc, ...paths };
}

/** The last lines of a process log, JSON lines shortened to their message (and error). */
export function tail(logFile: string, n = 15): string {
  let text = '';
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return '(no log)';
  }
  return text
    .split('\n')
    .filter(Boolean)
    .slice(-n)
    .map((line) => {
      try {
        const l = JSON.parse(line) as Record<string, unknown>;
        return `${String(l.msg)}${l.err ? ` (${typeof l.err === 'string' ? l.err : JSON.stringify(l.err)})` : ''}`;
      } catch {
        return line;
      }
    })
    .join(' | ');
}

/** An HTTP GET made from inside a namespace with Node's fetch (curl is not among the test's system packages). */
export async function httpGetIn(netns: string, url: string): Promise<string> {
  const script = 'fetch(process.argv[1], { signal: AbortSignal.timeout(3000) }).then(async (r) => { process.stdout.write(await r.text()); process.exit(r.ok ? 0 : 1); }, (e) => { console.error(e.message); process.exit(1); })';
  const r = await nsExecAsync(netns, process.execPath, ['-e', script, url], { timeoutMs: 10_000 });
  if (r.status !== 0) throw new Error(`GET ${url} in ${netns}: ${r.stderr.trim() || r.stdout.slice(0, 200)}`);
  return r.stdout;
}

/** The agent's Prometheus text, read inside its host namespace. */
export async function agentMetrics(host: LabHost): Promise<string> {
  return httpGetIn(host.netns, `http://127.0.0.1:${AGENT_METRICS_PORT}/metrics`);
}

/** A metric's value by name and exact label string ('' for none). */
export function metric(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

export type CertFiles = { ca: string; cert: string; key: string };

/** `weft admin-cert` into dir. */
export function adminCert(dataDir: string, dir: string): CertFiles {
  weftCli(['admin-cert', '--out', dir, '--data-dir', dataDir, '--ttl-days', '1']);
  return { ca: join(dir, 'ca.crt'), cert: join(dir, 'admin.crt'), key: join(dir, 'admin.key') };
}

/** A host's own credentials, from its agent's state dir. */
export function hostCert(stateDir: string): CertFiles {
  return { ca: join(stateDir, 'ca.crt'), cert: join(stateDir, 'host.crt'), key: join(stateDir, 'host.key') };
}

export type CallResult = { ok: true; res: any } | { ok: false; code: string; details: string };

/** One gRPC call to the controller made from inside `netns` (the root namespace cannot reach the lab). */
export async function grpcCall(netns: string, server: string, certs: CertFiles, method: string, req: unknown): Promise<CallResult> {
  const r = await nsExecAsync(
    netns,
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'test', 'e2e', 'grpc-call.ts'), server, certs.ca, certs.cert, certs.key, method, JSON.stringify(req)],
    { timeoutMs: 30_000 },
  );
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as CallResult;
  } catch {
    throw new Error(`grpc-call ${method} printed no result (exit ${r.status}): ${r.stdout} ${r.stderr}`);
  }
}

/** Until the host's agent routes another host's subnet over weft.vx1 (its first overlay reconcile is done). */
export async function waitOverlayRoute(host: LabHost, ms = 30_000): Promise<void> {
  await waitFor(`${host.name} to route the other host's subnet`, () => ipJson<Array<{ dev: string }>>(host.netns, ['route', 'show', 'proto', '119']).some((r) => r.dev === 'weft.vx1'), ms);
}

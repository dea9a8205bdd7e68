// A real weft cluster inside a lab, for the benchmarks that measure what a
// runtime sees: `weft controller` in the lab's controller namespace, one
// `weft agent` per chosen host (joined with a bootstrap token and the join
// command the controller prints, as an operator would; both started by
// test/e2e/cluster.ts), and the CNI shim exec'd with the environment and
// stdin a runtime gives it, from inside the host's namespace.
//
// Everything the cluster writes lives in the dir it is given (benchDir in
// interruptible.ts); processes are started with lab.spawn, so the lab's
// teardown stops them.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { withNetns } from '../../../dataplane/netlink/netns';
import { agentPaths, createToken, ROOT, startAgent, startController, WEFT, type Agent } from '../../e2e/cluster';
import { SHIM } from '../../e2e/cni';
import { GiveUp, waitFor } from '../../helpers/wait';
import type { Lab, LabHost, LabProcess } from '../../lab/lab';

export { SHIM };
export const REF_CNI_DIR = '/usr/lib/cni';
/** The network a fresh controller creates (controller/ipam/cluster-config.ts): VNI 1, so weft.vx1 and weft.br1. */
export const WEFT_NETWORK = 'default';
export const WEFT_VXLAN = 'weft.vx1';
export const WEFT_BRIDGE = 'weft.br1';

export type Cluster = { dir: string; controller: LabProcess; agents: Map<string, Agent> };

export function requireBuild(): void {
  for (const f of [WEFT, SHIM]) if (!existsSync(f)) throw new Error(`${f} is missing: run npm run build (npm run bench does)`);
}

const tail = (file: string, n = 4000) => (existsSync(file) ? readFileSync(file, 'utf8').slice(-n) : '(no log)');

export async function startCluster(lab: Lab, hosts: LabHost[], dir: string): Promise<Cluster> {
  requireBuild();
  // the controller as an operator starts it; its start-up log carries the join command with the CA pin
  const controller = await startController(lab, join(dir, 'controller'), join(dir, 'controller.log'));
  // default log level and resync interval: the agent as it runs in production
  const started = await Promise.all(hosts.map((host) =>
    startAgent(lab, controller, host, agentPaths(dir, host), createToken(controller.dataDir), { debugLog: false })));
  const agents = new Map(started.map((a) => [a.host.name, a]));
  // ready = the CNI STATUS verb (1.1.0 and later) succeeds through the shim: socket up, subnet leased, bridge made
  for (const a of agents.values()) {
    await waitFor(`agent on ${a.host.name} to be ready`, () => {
      if (a.proc.exited) throw new GiveUp(`agent on ${a.host.name} exited:\n${tail(a.logFile)}`);
      return cniExec(a.host.netns, SHIM, { command: 'STATUS', cniPath: shimPath() }, weftConf(a.socket, '1.1.0')).status === 0;
    }, 30_000, 50).catch((e: Error) => {
      throw e instanceof GiveUp ? e : new Error(`${e.message}\n${tail(a.logFile)}`);
    });
  }
  return { dir, controller: controller.proc, agents };
}

/** CNI_PATH for weft: where a runtime would find the shim (installed as `weft`), then the reference plugins. */
export function shimPath(): string {
  return `${join(ROOT, 'dist')}:${REF_CNI_DIR}`;
}

/** The network config a runtime hands the weft plugin (single-plugin form). */
export function weftConf(socket: string, cniVersion = '1.0.0'): string {
  return JSON.stringify({ cniVersion, name: 'weft', type: 'weft', network: WEFT_NETWORK, agentSocket: socket });
}

export type CniCall = { command: 'ADD' | 'DEL' | 'CHECK' | 'STATUS'; containerId?: string; netns?: string; ifname?: string; cniPath: string };
export type CniOutcome = { ms: number; status: number; stdout: string; stderr: string };

/**
 * Exec a CNI plugin as a runtime does: from the host's network namespace, the
 * CNI_* variables and a minimal PATH as the only environment, the config on
 * stdin. The clock covers fork, exec, the plugin's work and its exit.
 */
export function cniExec(hostNetns: string, binary: string, call: CniCall, conf: string): CniOutcome {
  const env: Record<string, string> = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: call.command, CNI_PATH: call.cniPath };
  if (call.containerId) env.CNI_CONTAINERID = call.containerId;
  if (call.netns) env.CNI_NETNS = call.netns;
  if (call.ifname) env.CNI_IFNAME = call.ifname;
  return withNetns(hostNetns, () => {
    const t0 = performance.now();
    const r = spawnSync(binary, [], { env, input: conf, encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
    const ms = performance.now() - t0;
    if (r.error) throw r.error;
    return { ms, status: r.status ?? 128, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  });
}

// A netns lab with the built controller and two `weft agent` processes (one
// rack, so the hosts reach each other without a router), for tests that
// break the kernel state under a running agent and watch it heal. Everything
// lives in the lab's namespaces and goes with lab.destroy(), also after a
// failed test.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { caCertHash } from '../../controller/api/client/credentials';
import { createLab, type Lab, type LabHost, type LabProcess } from '../lab/lab';
import { ipJson } from '../lab/run';
import { GiveUp, waitFor } from '../helpers/wait';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const WEFT = join(ROOT, 'dist', 'weft.mjs');
const CONTROLLER_PORT = 7443;
const AGENT_METRICS = '127.0.0.1:7081';

export type LogLine = { level: number; msg: string; time: number; [k: string]: unknown };

export type FaultHost = { host: LabHost; dir: string; log: string; agent: LabProcess };

export type FaultLab = {
  lab: Lab;
  hosts: FaultHost[];
  /** Run a command inside a host's namespace (tests may use ip, iptables, bridge to break and to check). */
  sh(h: FaultHost, cmd: string, args: string[]): string;
  logLines(h: FaultHost): LogLine[];
  /** One agent metric's value, or undefined when absent. */
  metric(h: FaultHost, name: string): number | undefined;
  /** Routes, permanent neighbours and FDB entries weft keeps on a host's weft.vx1: what "the overlay is back" compares. */
  overlay(h: FaultHost): string;
  /** Starts the host's agent again with the same flags (after it was killed); h.agent becomes the new process. */
  restartAgent(h: FaultHost): LabProcess;
  /** The controller's data dir (its SQLite store is there). */
  controllerDir: string;
  destroy(): Promise<void>;
};

export type FaultLabOptions = {
  /** Flags added to every agent's command line, e.g. ['--gc-interval', '1s']. */
  agentArgs?: string[];
};

export function logLinesOf(path: string): LogLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
}

const HTTP_GET = `
fetch(process.argv[1], { signal: AbortSignal.timeout(2000) }).then(
  async (r) => process.stdout.write(await r.text()),
  () => process.stdout.write(''),
);
`;

/** A lab named `name` with a controller and agents on h1, h2 resyncing every `resync`. */
export async function startFaultLab(name: string, resync: string, opts: FaultLabOptions = {}): Promise<FaultLab> {
  if (!existsSync(WEFT)) throw new Error('dist/weft.mjs missing: run npm run build');
  const tmp = mkdtempSync(join(tmpdir(), `weft-fault-${name}-`));
  const lab = await createLab({ name, datacenters: [{ name: 'dc1', racks: [{ name: 'a', hosts: ['h1', 'h2'] }] }], controller: true });
  const hosts: FaultHost[] = [];
  const destroy = async () => {
    await lab.destroy();
    // WEFT_TEST_KEEP_LOGS=1 keeps the agents' and monitors' logs for a look after a failure
    if (!process.env.WEFT_TEST_KEEP_LOGS) rmSync(tmp, { recursive: true, force: true });
  };
  try {
    const ctl = lab.controller!;
    const server = `${ctl.ip}:${CONTROLLER_PORT}`;
    const ctlDir = join(tmp, 'controller');
    const ctlLog = join(tmp, 'controller.log');
    lab.spawn(ctl.netns, process.execPath, [WEFT, 'controller', '--data-dir', ctlDir, '--listen', server, '--metrics-listen', '127.0.0.1:7080'], { logFile: ctlLog, cwd: ROOT });
    await waitFor('the controller to listen', () => logLinesOf(ctlLog).some((l) => l.msg === 'controller listening'), 30_000);
    const pin = caCertHash(readFileSync(join(ctlDir, 'ca.crt'), 'utf8'));
    const token = JSON.parse(lab.exec(ctl.netns, process.execPath, [WEFT, 'token', 'create', '--data-dir', ctlDir, '--json']).stdout).token as string;
    const agentArgs = (host: LabHost, dir: string) => [
      WEFT, 'agent', '--server', server, '--token', token, '--ca-cert-hash', pin, '--host-name', host.name,
      '--rack', host.rack, '--datacenter', host.datacenter, '--state-dir', join(dir, 'state'), '--cni-socket', join(dir, 'agent.sock'),
      '--metrics-listen', AGENT_METRICS, '--resync-interval', resync, '--log-level', 'debug', ...(opts.agentArgs ?? []),
    ];
    for (const host of lab.hosts) {
      const dir = join(tmp, host.name);
      mkdirSync(dir);
      const log = join(dir, 'agent.log');
      const agent = lab.spawn(host.netns, process.execPath, agentArgs(host, dir), { logFile: log, cwd: ROOT });
      hosts.push({ host, dir, log, agent });
    }
    const restartAgent = (h: FaultHost) => (h.agent = lab.spawn(h.host.netns, process.execPath, agentArgs(h.host, h.dir), { logFile: h.log, cwd: ROOT }));
    const sh = (h: FaultHost, cmd: string, args: string[]) => lab.exec(h.host.netns, cmd, args).stdout;
    const metric = (h: FaultHost, m: string) => {
      const body = lab.exec(h.host.netns, process.execPath, ['-e', HTTP_GET, `http://${AGENT_METRICS}/metrics`], { check: false }).stdout;
      const line = body.split('\n').find((l) => l.startsWith(`${m} `) || l.startsWith(`${m}{`));
      return line === undefined ? undefined : Number(line.split(' ').pop());
    };
    const overlay = (h: FaultHost) => {
      const ns = h.host.netns;
      const routes = ipJson<Array<{ dst: string; gateway: string; dev: string }>>(ns, ['route', 'show', 'proto', '119']).map((r) => `${r.dst} via ${r.gateway} dev ${r.dev}`);
      const neighs = ipJson<Array<{ dst: string; lladdr: string }>>(ns, ['neigh', 'show', 'dev', 'weft.vx1', 'nud', 'permanent']).map((n) => `${n.dst} ${n.lladdr}`);
      const fdbs = lab.exec(ns, 'bridge', ['fdb', 'show', 'dev', 'weft.vx1'], { check: false }).stdout.split('\n').filter((l) => l.includes(' dst ') && l.includes('permanent'));
      return JSON.stringify({ routes: routes.sort(), neighs: neighs.sort(), fdbs: fdbs.map((l) => l.trim()).sort() });
    };
    for (const h of hosts) {
      await waitFor(`${h.host.name}'s agent to route its peer's subnet`, () => {
        if (h.agent.exited) throw new GiveUp(`agent on ${h.host.name} exited:\n${readFileSync(h.log, 'utf8').slice(-3000)}`);
        return ipJson<Array<{ dev: string }>>(h.host.netns, ['route', 'show', 'proto', '119']).some((r) => r.dev === 'weft.vx1');
      }, 40_000);
    }
    return { lab, hosts, sh, logLines: (h) => logLinesOf(h.log), metric, overlay, restartAgent, controllerDir: ctlDir, destroy };
  } catch (e) {
    await destroy();
    throw e;
  }
}

/** The gateway on a host's weft.br1: pinging it from the other host crosses the overlay both ways. */
export function gatewayOf(f: FaultLab, h: FaultHost): string {
  const addrs = ipJson<Array<{ addr_info: Array<{ local: string; family: string }> }>>(h.host.netns, ['addr', 'show', 'dev', 'weft.br1']);
  return addrs[0].addr_info.find((a) => a.family === 'inet')!.local;
}

/** One ping over the overlay; true when it is answered. */
export function pings(f: FaultLab, from: FaultHost, to: string): boolean {
  return f.lab.exec(from.host.netns, 'ping', ['-c1', '-W1', to], { check: false }).status === 0;
}

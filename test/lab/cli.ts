// npm run lab -- up [spec.json] | down <name> | status [name] | exec <name> <host> <cmd> [args...]
// A lab brought up here outlives this process; its record under
// /run/weft-lab lets `down` remove it from any later process, and the
// cluster's record (cluster-up.ts) lets `status` measure it again.
import { readFileSync } from 'node:fs';
import { createLab, type Lab } from './lab';
import { DEFAULT_SPEC, labPrefix, planLab } from './plan';
import { listNetns, netnsExists } from './run';
import { listStates, readState } from './state';
import { destroyLabByName, warnAboutLeftovers } from './teardown';
import { spawnSync } from 'node:child_process';
import { processAlive } from '../helpers/process';
import { clusterDir, readClusterRecord, removeClusterDir, upCluster, usage, wireguardPids, type ClusterRecord } from './cluster-up';
import type { ClusterSpec } from './cluster-spec';
import { formatMatrix, matrixOk, measureMatrix } from './matrix';

const USAGE = `usage: npm run lab -- <command>
  up [spec.json] [--settle S] [--no-weft]
                                 build a lab and a weft cluster on it, print the connectivity matrix
                                 (default spec: ${DEFAULT_SPEC.name}, 2 racks, 3 hosts, controller); failing cells are
                                 probed again for S seconds (default 15); --no-weft: namespaces and links only
  status [name]                  list labs recorded in /run/weft-lab; measure each cluster's matrix again
  down <name>                    remove the lab and everything it started
  exec <name> <host> <cmd> ...   run a command on a lab host ("controller" for the controller)
exit status of up and status: 0, or 3 when a cell of the matrix failed (the lab stays up)`;

/** A cell that failed: the lab is up, but something in it does not pass traffic. */
const EXIT_MATRIX_FAILED = 3;

interface UpArgs {
  specFile?: string;
  settleMs: number;
  weft: boolean;
}

function parseUp(args: string[]): UpArgs {
  const o: UpArgs = { settleMs: 15_000, weft: true };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--no-weft') o.weft = false;
    else if (a === '--settle') {
      const s = Number(args[++i]);
      if (!Number.isFinite(s) || s < 0) throw new Error(`--settle needs a number of seconds\n${USAGE}`);
      o.settleMs = s * 1000;
    } else if (a.startsWith('-')) throw new Error(`unknown flag ${a}\n${USAGE}`);
    else if (o.specFile) throw new Error(`one spec file only\n${USAGE}`);
    else o.specFile = a;
  }
  return o;
}

async function up(args: string[]): Promise<number> {
  const o = parseUp(args);
  const spec: ClusterSpec = o.specFile ? JSON.parse(readFileSync(o.specFile, 'utf8')) : DEFAULT_SPEC;
  const t0 = performance.now();
  const phase = (name: string, what: string) => {
    console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${name.padEnd(12)} ${what}`);
  };
  const lab = await createLab(spec, { persistent: true });
  const dcs = spec.datacenters.length;
  phase('namespaces', `${lab.namespaces().length} for lab ${lab.name}: ${lab.hosts.length} hosts in ${dcs} datacenter${dcs > 1 ? 's' : ''}${lab.controller ? ', controller' : ''}, routers, fabric`);
  // interrupted while building: the record still names everything made so far
  process.once('SIGINT', () => {
    console.error(`\ninterrupted; remove what was built with: npm run lab -- down ${lab.name}`);
    process.exit(130);
  });
  if (!o.weft) {
    // the name was free: files an earlier cluster of that name left are stale
    removeClusterDir(lab.name);
    printHosts(lab);
    console.log(`remove with: npm run lab -- down ${lab.name}`);
    return 0;
  }
  let record: ClusterRecord;
  try {
    record = await upCluster(lab, spec, phase);
  } catch (e) {
    stopWireguard(lab.hosts.map((h) => h.netns));
    await lab.destroy();
    console.error(`lab ${lab.name}: the cluster did not come up; its namespaces and processes are removed, its logs kept in ${clusterDir(lab.name)}`);
    throw e;
  }
  const m = await matrixOf(record, o.settleMs);
  phase('matrix', `${record.containers.length} containers, ${record.containers.length * (record.containers.length - 1)} pairs${record.ingress ? ' and the service' : ''}`);
  console.log(m.text);
  printHosts(lab);
  console.log(usage(record));
  return m.code;
}

function printHosts(lab: Lab): void {
  for (const h of lab.hosts) console.log(`  ${h.name.padEnd(12)} ${h.underlayIp.padEnd(14)} ${h.datacenter}/${h.rack}  ip netns exec ${h.netns} ...`);
  if (lab.controller) console.log(`  ${'controller'.padEnd(12)} ${lab.controller.ip.padEnd(14)} mgmt    ip netns exec ${lab.controller.netns} ...`);
}

async function matrixOf(r: ClusterRecord, settleMs: number): Promise<{ text: string; code: number }> {
  const m = await measureMatrix(r.containers, {
    settleMs,
    service: r.ingress ? { service: r.ingress.service, clientNetns: r.ingress.clientNetns, clientIp: r.ingress.clientIp, url: r.ingress.url } : null,
  });
  return { text: formatMatrix(m), code: matrixOk(m) ? 0 : EXIT_MATRIX_FAILED };
}

/** wireguard-go outlives its agent on purpose; in a lab being removed it is the lab's, stopped by PID. */
function stopWireguard(namespaces: string[]): void {
  for (const ns of namespaces) {
    for (const pid of wireguardPids(ns)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
      }
    }
  }
}

async function down(name: string | undefined): Promise<number> {
  if (!name) throw new Error('down needs a lab name (see: npm run lab -- status)');
  const t0 = performance.now();
  // every namespace of the lab, recorded or not: a lost record must not leave wireguard-go holding one
  stopWireguard(listNetns().filter((n) => n.startsWith(labPrefix(name))));
  const report = await destroyLabByName(name);
  warnAboutLeftovers(name, report);
  if (report.errors.length === 0) removeClusterDir(name);
  console.log(`lab ${name}: removed ${report.removed.length} namespaces in ${Math.round(performance.now() - t0)} ms`);
  return report.errors.length ? 1 : 0;
}

async function status(name: string | undefined): Promise<number> {
  const states = listStates().filter((s) => !name || s.name === name);
  if (states.length === 0) {
    console.log(name ? `no lab ${name}` : 'no labs');
    return name ? 1 : 0;
  }
  let code = 0;
  for (const s of states) {
    const present = s.namespaces.filter(netnsExists).length;
    const owner = s.persistent ? 'persistent' : `owner pid ${s.ownerPid}${processAlive(s.ownerPid) ? '' : ' (dead)'}`;
    console.log(`${s.name}: ${s.ready ? 'ready' : 'incomplete'}, ${present}/${s.namespaces.length} namespaces, ${s.processes.length} processes, ${owner}, since ${s.createdAt}`);
    const r = s.persistent ? readClusterRecord(s.name) : null;
    if (r && present === s.namespaces.length) {
      const m = await matrixOf(r, 2000);
      console.log(m.text);
      code = Math.max(code, m.code);
    }
  }
  return code;
}

function exec(name: string | undefined, host: string | undefined, argv: string[]): number {
  const state = name ? readState(name) : null;
  if (!state || !host || argv.length === 0) throw new Error(`exec needs a recorded lab, a host and a command\n${USAGE}`);
  const plan = planLab(state.spec);
  const netns = host === 'controller' ? plan.controller?.netns : plan.hosts.find((h) => h.name === host)?.netns;
  if (!netns) throw new Error(`lab ${name} has no host "${host}"`);
  const r = spawnSync('ip', ['netns', 'exec', netns, ...argv], { stdio: 'inherit' });
  return r.status ?? 1;
}

async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  switch (cmd) {
    case 'up':
      return up(rest);
    case 'down':
      return down(rest[0]);
    case 'status':
      return status(rest[0]);
    case 'exec':
      return exec(rest[0], rest[1], rest.slice(2));
    default:
      console.error(USAGE);
      return cmd ? 2 : 0;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error(`lab: ${(e as Error).message}`);
    process.exit(1);
  },
);

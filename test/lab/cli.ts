// npm run lab -- up [spec.json] | down <name> | status | exec <name> <host> <cmd> [args...]
// A lab brought up here outlives this process; its record under
// /run/weft-lab lets `down` remove it from any later process.
import { readFileSync } from 'node:fs';
import { createLab } from './lab';
import { DEFAULT_SPEC, planLab, type LabSpec } from './plan';
import { netnsExists } from './run';
import { listStates, readState } from './state';
import { destroyLabByName, warnAboutLeftovers } from './teardown';
import { spawnSync } from 'node:child_process';
import { processAlive } from '../helpers/process';

const USAGE = `usage: npm run lab -- <command>
  up [spec.json]                 build a lab (default: ${DEFAULT_SPEC.name}, 2 racks, 3 hosts, controller)
  down <name>                    remove the lab and everything it started
  status                         list labs recorded in /run/weft-lab
  exec <name> <host> <cmd> ...   run a command on a lab host ("controller" for the controller)`;


async function up(specFile?: string): Promise<void> {
  const spec: LabSpec = specFile ? JSON.parse(readFileSync(specFile, 'utf8')) : DEFAULT_SPEC;
  const t0 = performance.now();
  const lab = await createLab(spec, { persistent: true });
  const ms = Math.round(performance.now() - t0);
  console.log(`lab ${lab.name} up in ${ms} ms`);
  for (const h of lab.hosts) console.log(`  ${h.name.padEnd(12)} ${h.underlayIp.padEnd(14)} ${h.datacenter}/${h.rack}  ip netns exec ${h.netns} ...`);
  if (lab.controller) console.log(`  ${'controller'.padEnd(12)} ${lab.controller.ip.padEnd(14)} mgmt    ip netns exec ${lab.controller.netns} ...`);
  console.log(`remove with: npm run lab -- down ${lab.name}`);
}

async function down(name: string | undefined): Promise<number> {
  if (!name) throw new Error('down needs a lab name (see: npm run lab -- status)');
  const t0 = performance.now();
  const report = await destroyLabByName(name);
  warnAboutLeftovers(name, report);
  console.log(`lab ${name}: removed ${report.removed.length} namespaces in ${Math.round(performance.now() - t0)} ms`);
  return report.errors.length ? 1 : 0;
}

function status(): void {
  const states = listStates();
  if (states.length === 0) {
    console.log('no labs');
    return;
  }
  for (const s of states) {
    const present = s.namespaces.filter(netnsExists).length;
    const owner = s.persistent ? 'persistent' : `owner pid ${s.ownerPid}${processAlive(s.ownerPid) ? '' : ' (dead)'}`;
    console.log(`${s.name}: ${s.ready ? 'ready' : 'incomplete'}, ${present}/${s.namespaces.length} namespaces, ${s.processes.length} processes, ${owner}, since ${s.createdAt}`);
  }
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
      await up(rest[0]);
      return 0;
    case 'down':
      return down(rest[0]);
    case 'status':
      status();
      return 0;
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

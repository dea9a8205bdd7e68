// The README's "Running a cluster", run as written: its shell blocks are read
// from README.md and every `weft` command in them is run on lab machines (a
// controller and two hosts in different racks, each with its own network,
// mount and UTS namespace, so default paths and host names are the
// machine's own). The agent runs exactly the join command `weft token create`
// printed, plus the README's own --rack/--datacenter flags; a container on
// each host is attached by exec'ing the plugin and conflist that `weft
// install-cni` installed, as a runtime does, and the two ping each other.
// A command the README adds to those blocks that this test does not know how
// to run fails the test, so the README cannot drift from the product.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caCertHash } from '../../controller/api/client/trust';
import { createLab, type Lab, type LabHost } from '../lab/lab';
import type { LabProcess } from '../lab/procs';
import { GiveUp, waitFor } from '../helpers/wait';
import { requireBuild, tail } from './cluster';
import { cniAdd, pluginConfig, type Conflist } from './cni';
import { startMachine, type Machine } from './machine';
import { printedLineWithPlace, readmeCommands, weftOnPath, words } from './readme';
import { ping } from './traffic';

const SPEC = {
  name: 'rdm',
  datacenters: [{ name: 'dc1', racks: [{ name: 'r1', hosts: ['h1'] }, { name: 'r2', hosts: ['h2'] }] }],
  controller: true,
};

let lab: Lab;
let dir: string;
const machines = new Map<string, Machine>();
let pathEnv: NodeJS.ProcessEnv;

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'wtrdm-'));
  pathEnv = weftOnPath(dir);
  lab = await createLab(SPEC);
}, 120_000);

afterAll(async () => {
  for (const m of machines.values()) m.close();
  await lab?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 120_000);

/** Runs a README command on a machine and returns stdout; throws with both streams on failure. */
function on(m: Machine, argv: string[]): string {
  try {
    return execFileSync('ip', ['netns', 'exec', m.netns, ...m.enter(), ...argv], { env: pathEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  } catch (e) {
    const x = e as { status: number; stdout: string; stderr: string };
    throw new Error(`on ${m.name}: ${argv.join(' ')} exited ${x.status}:\n${x.stdout}${x.stderr}`);
  }
}

function daemon(m: Machine, argv: string[], logFile: string): LabProcess {
  return lab.spawn(m.netns, m.enter()[0], [...m.enter().slice(1), ...argv], { env: pathEnv, logFile, cwd: dir });
}

describe('README: Running a cluster', () => {
  it('works as written: controller, token, join in two racks, install-cni, a container on each, ping', async () => {
    const [controllerBlock, hostBlock, ...more] = readmeCommands('Running a cluster');
    expect(more, 'the section has two shell blocks: the controller host, then every host').toEqual([]);
    expect(controllerBlock.length).toBeGreaterThan(0);
    expect(hostBlock.length).toBeGreaterThan(0);

    const h1 = lab.host('h1');
    const h2 = lab.host('h2');
    // Container namespaces exist before the machines start, so their /run/netns mounts are visible inside.
    const containers = new Map<string, string>([h1, h2].map((h) => [h.name, lab.addContainerNetns(h, 'c')]));
    const ctl = await startMachine('ctl', lab.controller!.netns, join(dir, 'ctl'));
    machines.set('ctl', ctl);
    for (const h of [h1, h2]) machines.set(h.name, await startMachine(h.name, h.netns, join(dir, h.name)));

    // ---- on the controller host ----
    let joinCommand: string | undefined;
    const procs: LabProcess[] = [];
    for (const line of controllerBlock) {
      const argv = words(line);
      expect(argv[0], line).toBe('weft');
      if (argv[1] === 'controller') {
        const log = join(dir, 'controller.log');
        const p = daemon(ctl, argv, log);
        procs.push(p);
        await waitFor('the controller to serve', () => {
          if (p.exited) throw new GiveUp(`controller exited: ${tail(log)}`);
          try {
            return on(ctl, ['weft', 'status', '--json']);
          } catch {
            return '';
          }
        }, 60_000);
      } else if (argv[1] === 'token' && argv[2] === 'create') {
        joinCommand = on(ctl, argv).trim();
      } else if (argv[1] === 'network' && argv[2] === 'add') {
        expect(on(ctl, argv)).toMatch(/^added network /);
      } else {
        throw new Error(`README command this test does not know how to check: ${line}`);
      }
    }
    expect(joinCommand, 'the controller block creates a token').toBeDefined();
    // The printed line is the README's join command with the blanks filled in, pointing at an address hosts reach.
    // the pin of the CA in the data dir the README's controller line names
    const controllerArgv = words(controllerBlock.find((l) => words(l)[1] === 'controller')!);
    const pin = caCertHash(on(ctl, ['cat', join(controllerArgv[controllerArgv.indexOf('--data-dir') + 1], 'ca.crt')]));
    expect(joinCommand).toMatch(new RegExp(`^weft agent --server ${lab.controller!.ip.replace(/\./g, '\\.')}:7443 --token [a-z0-9]{6}\\.[a-z0-9]{16} --ca-cert-hash ${pin}$`));

    // ---- on every host ----
    for (const h of [h1, h2]) {
      const m = machines.get(h.name)!;
      for (const line of hostBlock) {
        const argv = words(line);
        expect(argv[0], line).toBe('weft');
        if (argv[1] === 'agent') {
          const log = join(dir, `${h.name}-agent.log`);
          const p = daemon(m, printedLineWithPlace(argv, joinCommand!, h), log);
          procs.push(p);
          await waitFor(`the agent on ${h.name} to serve its CNI socket`, () => {
            if (p.exited) throw new GiveUp(`agent on ${h.name} exited: ${tail(log)}`);
            try {
              on(m, ['test', '-S', '/run/weft/agent.sock']);
              return true;
            } catch {
              return false;
            }
          }, 60_000);
        } else if (argv[1] === 'install-cni') {
          on(m, argv);
        } else {
          throw new Error(`README command this test does not know how to check: ${line}`);
        }
      }
    }

    // Both hosts registered under their own names, in their racks.
    await waitFor('both hosts to be registered', () => JSON.parse(on(ctl, ['weft', 'status', '--json'])).hosts === 2, 30_000);

    // ---- a container on each host, attached as a runtime does with what install-cni wrote ----
    const ips = new Map<string, string>();
    for (const h of [h1, h2]) {
      const m = machines.get(h.name)!;
      const list = JSON.parse(on(m, ['cat', '/etc/cni/net.d/10-weft.conflist'])) as Conflist;
      const res = await cniAdd({
        hostNetns: h.netns, wrap: m.enter(), cniPath: '/opt/cni/bin', containerId: `readme-${h.name}`,
        netns: containers.get(h.name)!, ifname: 'eth0', config: pluginConfig(list),
      });
      ips.set(h.name, String(res.ips[0].address).split('/')[0]);
    }
    const c = (h: LabHost) => containers.get(h.name)!.replace('/run/netns/', '');
    await waitFor('h1 container to reach h2 container', async () => (await ping(c(h1), ips.get('h2')!, ['-c', '1', '-W', '1'])).received === 1, 30_000);
    const r = await ping(c(h2), ips.get('h1')!, ['-c', '5', '-i', '0.2', '-W', '1']);
    expect(r.loss, r.output).toBe(0);

    for (const p of procs.reverse()) expect((await p.stop('SIGTERM', 10_000)).code).toBe(0);
  }, 300_000);
});

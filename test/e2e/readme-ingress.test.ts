// The README's "Exposing services (ingress)", run as written: its shell
// blocks are read from README.md and every `weft` command in them is run on
// lab machines (each with its own network, mount and UTS namespace, so
// default paths, the controller's data dir and host names are the
// machine's own). The cluster under it is made with the README's "Running a
// cluster" commands: the controller, a host token, and the agent join line
// plus install-cni on an edge host (rack r1) and a backend host (rack r2).
//
// Then, as the README has it: `weft service …` and `weft token create --role
// ingress` on the controller machine, with the admin identity its data dir
// gives; on the edge, exactly the `weft ingress` line the token printed plus
// the README's --rack/--datacenter. What proves it: a container labelled
// app=web (CNI_ARGS weft.label.app=web, attached through the conflist
// install-cni wrote, as a runtime does) serving HTTP on 8080 is reached
// through the edge's port 80 from an outside client whose one link goes to
// the edge; the ingress checks it on /healthz; a container labelled app=dns
// answers UDP on 53 through the edge's port 53; `weft service list` shows
// both services with their ports, selectors and one backend each.
//
// A command the README adds to the section that this test does not know how
// to run fails the test, so the README cannot drift from the product.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { INGRESS_DEFAULTS } from '../../ingress/config';
import { GiveUp, waitFor } from '../helpers/wait';
import { BACKEND_JS, EDGE_IP, addOutsideClient, httpIn, tcpWhoIn, udpWhoIn } from '../ingress/lab';
import { createLab, type Lab } from '../lab/lab';
import type { LabProcess } from '../lab/procs';
import { ipBatch } from '../lab/run';
import { cleanEnv, requireBuild, tail } from './cluster';
import { cniAdd, pluginConfig, type Conflist } from './cni';
import { startMachine, type Machine } from './machine';
import { printedLineWithPlace, readmeCommands, runOn, weftOnPath, words } from './readme';

const LAB = `rdi${process.pid.toString(36)}`;
const SPEC = {
  name: LAB,
  datacenters: [{ name: 'dc1', racks: [{ name: 'r1', hosts: ['edge'] }, { name: 'r2', hosts: ['h2'] }] }],
  controller: true,
};

let lab: Lab;
let dir: string;
let env: NodeJS.ProcessEnv;
const machines = new Map<string, Machine>();
const procs: Array<{ what: string; proc: LabProcess; log?: string }> = [];

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'wtrdi-'));
  env = weftOnPath(dir);
  lab = await createLab(SPEC);
}, 120_000);

afterEach((ctx) => {
  if (ctx.task.result?.state !== 'fail') return;
  for (const p of procs) if (p.log) console.log(`${p.what} log tail: ${tail(p.log, 20)}`);
});

afterAll(async () => {
  for (const m of machines.values()) m.close();
  await lab?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 120_000);

function daemon(what: string, m: Machine, argv: string[]): LabProcess {
  const log = join(dir, `${what}.log`);
  const proc = lab.spawn(m.netns, m.enter()[0], [...m.enter().slice(1), ...argv], { env, logFile: log, cwd: dir });
  procs.push({ what, proc, log });
  return proc;
}

/** Waits until `check` resolves to anything but false (a command that succeeds), giving up at once (with its log) if the daemon exits. */
async function served(what: string, p: LabProcess, check: () => Promise<unknown>, ms = 60_000): Promise<void> {
  await waitFor(what, async () => {
    if (p.exited) throw new GiveUp(`${what}: the process exited: ${tail(procs.find((x) => x.proc === p)?.log ?? '')}`);
    try {
      return (await check()) !== false;
    } catch {
      return false;
    }
  }, ms);
}

/** `weft service list`'s table as objects keyed by its header (columns start where their heading does). */
function parseTable(text: string): Array<Record<string, string>> {
  const [head, ...rows] = text.trimEnd().split('\n');
  const cols = [...head.matchAll(/\S+/g)].map((m) => ({ name: m[0], at: m.index! }));
  return rows.map((r) => Object.fromEntries(cols.map((c, i) => [c.name, r.slice(c.at, cols[i + 1]?.at).trim()])));
}

type ReadmeService = {
  name: string;
  ports: Array<{ port: number; target: number; protocol: 'tcp' | 'udp' | 'http' }>;
  selector: Record<string, string>;
  healthPath?: string;
  affinity?: string;
  rackPolicy?: string;
  hostnames: string[];
  pathPrefix?: string;
};

/** A README `weft service create NAME …` line: what its container must serve and how to reach it. */
function readmeService(line: string): ReadmeService {
  const argv = words(line);
  const svc: ReadmeService = { name: argv[3], ports: [], selector: {}, hostnames: [] };
  for (let i = 4; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--proxy-protocol') continue; // the test container reads a PROXY header when one comes
    i++;
    if (flag === '--port') {
      const m = /^(\d+)(?::(\d+))?(?:\/(tcp|udp|http))?$/.exec(value ?? '');
      if (!m) throw new Error(`--port ${value} in the README is not PORT[:TARGET][/tcp|udp|http]: ${line}`);
      svc.ports.push({ port: Number(m[1]), target: Number(m[2] ?? m[1]), protocol: (m[3] ?? 'tcp') as 'tcp' | 'udp' | 'http' });
    } else if (flag === '--selector') {
      for (const kv of value.split(',')) svc.selector[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
    } else if (flag === '--health-path') svc.healthPath = value;
    else if (flag === '--affinity') svc.affinity = value;
    else if (flag === '--rack-policy') svc.rackPolicy = value;
    else if (flag === '--hostname') svc.hostnames.push(value);
    else if (flag === '--path-prefix') svc.pathPrefix = value;
    else throw new Error(`README service flag this test does not know how to check: ${flag} in ${line}`);
  }
  return svc;
}

/** The test container's ports for a service: HTTP on the http port's target, TCP and UDP echo on the tcp/udp port's. */
function backendPorts(svc: ReadmeService): { httpPort: number; echoPort: number } {
  const httpPort = svc.ports.find((p) => p.protocol === 'http')?.target ?? 8080;
  const echoPort = svc.ports.find((p) => p.protocol !== 'http')?.target ?? 9000;
  if (httpPort === echoPort || new Set(svc.ports.map((p) => `${p.protocol === 'http' ? 'tcp' : p.protocol}/${p.target}`)).size < svc.ports.length) {
    throw new Error(`the test container cannot serve ${svc.name}'s ports: ${JSON.stringify(svc.ports)}`);
  }
  return { httpPort, echoPort };
}

describe('README: Exposing services (ingress)', () => {
  it('works as written: services on the controller, the printed ingress line on the edge, a labelled container reached from outside', async () => {
    const [clusterCtl, clusterHost] = readmeCommands('Running a cluster');
    const [serviceBlock, edgeBlock, ...more] = readmeCommands('Exposing services (ingress)');
    expect(more, 'the section has two shell blocks: the controller host, then the edge host').toEqual([]);
    expect(serviceBlock?.length).toBeGreaterThan(0);
    expect(edgeBlock?.length).toBeGreaterThan(0);

    // What the README's `weft service create` lines ask for: one labelled container per service serves it.
    const services = serviceBlock.filter((l) => words(l)[1] === 'service' && words(l)[2] === 'create').map(readmeService);
    expect(services.some((svc) => svc.ports.some((p) => p.protocol === 'http')), 'the README exposes an HTTP service').toBe(true);

    const edge = lab.host('edge');
    const h2 = lab.host('h2');
    // Namespaces exist before the machines start, so their /run/netns mounts are visible inside.
    const containerNs = new Map(services.map((svc) => [svc.name, lab.addContainerNetns(h2, `svc-${svc.name}`)]));
    // the outside client's one link goes to the edge: not the lab underlay, not a weft host
    const client = addOutsideClient(lab, edge);

    const ctl = await startMachine('ctl', lab.controller!.netns, join(dir, 'ctl'));
    machines.set('ctl', ctl);
    for (const h of [edge, h2]) machines.set(h.name, await startMachine(h.name, h.netns, join(dir, h.name)));

    // ---- the cluster, with the README's "Running a cluster" commands (its own test checks the rest of them) ----
    const controllerLine = clusterCtl.find((l) => words(l)[1] === 'controller');
    const tokenLine = clusterCtl.find((l) => words(l)[1] === 'token' && words(l)[2] === 'create');
    expect(controllerLine && tokenLine, 'Running a cluster starts a controller and creates a token').toBeTruthy();
    const controller = daemon('controller', ctl, words(controllerLine!));
    await served('the controller to serve', controller, () => runOn(ctl, ['weft', 'status', '--json'], env));
    const joinCommand = (await runOn(ctl, words(tokenLine!), env)).trim();
    expect(joinCommand).toMatch(/^weft agent --server \S+ --token \S+ --ca-cert-hash sha256:[0-9a-f]{64}$/);
    // both hosts at once, each running the host block in order
    await Promise.all([edge, h2].map(async (h) => {
      const m = machines.get(h.name)!;
      for (const line of clusterHost) {
        const argv = words(line);
        if (argv[1] === 'agent') {
          const agent = daemon(`${h.name}-agent`, m, [...words(joinCommand), '--rack', h.rack, '--datacenter', h.datacenter]);
          await served(`the agent on ${h.name} to serve its CNI socket`, agent, () => runOn(m, ['test', '-S', '/run/weft/agent.sock'], env));
        } else if (argv[1] === 'install-cni') {
          await runOn(m, argv, env);
        }
      }
    }));
    await waitFor('both hosts to be registered', async () => JSON.parse(await runOn(ctl, ['weft', 'status', '--json'], env)).hosts === 2, 30_000);

    // ---- labelled containers on h2, attached as a runtime does with what install-cni wrote ----
    const backendJs = join(dir, 'backend.cjs');
    writeFileSync(backendJs, BACKEND_JS);
    const m2 = machines.get('h2')!;
    const conflist = JSON.parse(await runOn(m2, ['cat', '/etc/cni/net.d/10-weft.conflist'], env)) as Conflist;
    const ips = new Map<string, string>();
    for (const svc of services) {
      const netnsPath = containerNs.get(svc.name)!;
      // as the README labels a container: CNI_ARGS='weft.label.app=web'
      const args = Object.entries(svc.selector).map(([k, v]) => `weft.label.${k}=${v}`).join(';');
      const res = await cniAdd({
        hostNetns: h2.netns, wrap: m2.enter(), cniPath: '/opt/cni/bin', containerId: randomBytes(32).toString('hex'),
        netns: netnsPath, ifname: 'eth0', config: pluginConfig(conflist), args,
      });
      const netns = netnsPath.replace('/run/netns/', '');
      ipBatch(netns, ['link set lo up']);
      const p = lab.spawn(netns, process.execPath, [backendJs, JSON.stringify({ name: svc.name, ...backendPorts(svc) })], { env: cleanEnv() });
      procs.push({ what: `${svc.name} container`, proc: p });
      await waitFor(`the ${svc.name} container's servers to listen`, () => {
        if (p.exited) throw new GiveUp(`${svc.name} container's server exited: ${p.output()}`);
        return p.output().includes('"ready":true');
      }, 15_000);
      ips.set(svc.name, String(res.ips[0].address).split('/')[0]);
    }

    // ---- on the controller host: the README's service and token commands ----
    const created = new Set<string>();
    let listLine: string | undefined;
    let ingressLine: string | undefined;
    for (const line of serviceBlock) {
      const argv = words(line);
      expect(argv[0], line).toBe('weft');
      if (argv[1] === 'service' && argv[2] === 'create') {
        const out = await runOn(ctl, argv, env);
        expect(out, line).toMatch(new RegExp(`^service ${argv[3]}: `));
        created.add(argv[3]);
      } else if (argv[1] === 'service' && argv[2] === 'list') {
        listLine = line;
        const rows = parseTable(await runOn(ctl, argv, env));
        // every service created above it, listed
        expect(rows.map((r) => r.NAME).sort(), line).toEqual([...created].sort());
      } else if (argv[1] === 'token' && argv[2] === 'create' && argv.includes('--role') && argv[argv.indexOf('--role') + 1] === 'ingress') {
        ingressLine = (await runOn(ctl, argv, env)).trim();
      } else {
        throw new Error(`README command this test does not know how to check: ${line}`);
      }
    }
    expect(listLine, 'the README lists the services').toBeDefined();
    expect(ingressLine, 'the README creates an ingress token').toBeDefined();
    // the printed line: the agent's server and CA pin, an ingress token
    const server = words(joinCommand)[words(joinCommand).indexOf('--server') + 1];
    const pin = words(joinCommand)[words(joinCommand).indexOf('--ca-cert-hash') + 1];
    expect(ingressLine).toBe(ingressLine!.split('\n')[0]);
    expect(ingressLine).toMatch(new RegExp(`^weft ingress --server ${server.replace(/\./g, '\\.')} --token [a-z0-9]{6}\\.[a-z0-9]{16} --ca-cert-hash ${pin}$`));

    // ---- on the edge host: the printed line plus its place ----
    const mEdge = machines.get('edge')!;
    for (const line of edgeBlock) {
      const argv = words(line);
      expect(argv[0], line).toBe('weft');
      if (argv[1] === 'ingress') {
        const ingress = daemon('ingress', mEdge, printedLineWithPlace(argv, ingressLine!, edge));
        await served('the ingress to be ready (/readyz)', ingress, async () => (await httpIn(edge.netns, `http://${INGRESS_DEFAULTS.metricsListen}/readyz`)).status === 200);
      } else {
        throw new Error(`README command this test does not know how to check: ${line}`);
      }
    }

    // ---- from outside, through the edge: every port of every service reaches that service's container ----
    for (const svc of services) {
      const ip = ips.get(svc.name)!;
      for (const p of svc.ports) {
        if (p.protocol === 'http') {
          const path = `${svc.pathPrefix ?? ''}/hello`;
          const host = svc.hostnames[0]?.replace(/^\*\./, 'www.');
          const a = await waitFor(`${svc.name} to answer HTTP on the edge's port ${p.port}`, async () => {
            const r = await httpIn(client, `http://${EDGE_IP}:${p.port}${path}`, host ? { headers: { host } } : {});
            return r.status === 200 && r.json?.name === svc.name && r;
          }, 30_000);
          expect([a.json.path, a.json.server, a.headers['x-backend']]).toEqual([path, `${ip}:${p.target}`, svc.name]);
        } else {
          const transport = p.protocol; // narrowed to tcp | udp here, which the closure below does not see
          const r = await waitFor(`${svc.name} to answer ${transport.toUpperCase()} on the edge's port ${p.port}`, async () => {
            const j = await (transport === 'udp' ? udpWhoIn : tcpWhoIn)(client, EDGE_IP, p.port, `to ${svc.name}`);
            return j.name === svc.name && j;
          }, 30_000);
          expect([r.echo, r.server ?? `${ip}:${p.target}`]).toEqual([`to ${svc.name}`, `${ip}:${p.target}`]);
        }
      }
      if (svc.healthPath) {
        // the ingress checks the container over HTTP on that path (a TCP check never asks for it); read at the container, from the edge host
        expect(svc.healthPath, 'the test container serves its health check on /healthz').toBe('/healthz');
        await waitFor(`the ingress to check ${svc.name} on ${svc.healthPath}`, async () => {
          const st = await httpIn(edge.netns, `http://${ip}:${backendPorts(svc).httpPort}/_stats`);
          return st.status === 200 && st.json?.health > 0;
        }, 30_000);
      }
    }

    // ---- the README's list line: every service with its ports, selector, rack policy and one backend ----
    const rows = await waitFor('weft service list to show one backend for each service', async () => {
      const r = parseTable(await runOn(ctl, words(listLine!), env));
      return r.length === services.length && r.every((x) => x.BACKENDS === '1') && r;
    }, 30_000);
    expect(Object.keys(rows[0])).toEqual(expect.arrayContaining(['NAME', 'PORTS', 'SELECTOR', 'RACK-POLICY', 'AFFINITY', 'ROUTE', 'BACKENDS']));
    for (const svc of services) {
      const row = rows.find((r) => r.NAME === svc.name);
      expect(row, `${svc.name} listed`).toBeDefined();
      expect([row!.PORTS, row!.SELECTOR, row!['RACK-POLICY']]).toEqual([
        svc.ports.map((p) => `${p.port}${p.target !== p.port ? `:${p.target}` : ''}/${p.protocol}`).join(','),
        Object.entries(svc.selector).map(([k, v]) => `${k}=${v}`).join(','),
        svc.rackPolicy ?? 'prefer-local', // the README's default
      ]);
      if (svc.affinity) expect(row!.AFFINITY).toBe(svc.affinity);
    }

    // every daemon the README started stops cleanly
    for (const p of [...procs].reverse()) {
      if (p.log) expect((await p.proc.stop('SIGTERM', 35_000)).code, p.what).toBe(0);
    }
  }, 300_000);
});

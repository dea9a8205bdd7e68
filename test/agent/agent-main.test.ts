// `weft agent` as a real process, end to end in a netns lab: the built
// controller in the lab's controller namespace; two hosts in one rack, each
// running `weft agent` joined with a bootstrap token and the CA pin, with the
// CNI plugin installed by `weft install-cni` into temp dirs. Containers are
// attached by exec'ing the installed plugin inside the host namespace with
// the environment and stdin a runtime gives it, and talk TCP across the
// VXLAN overlay. Restarting an agent must not touch the overlay (zero
// netlink requests on its first reconcile) nor break a live connection.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caCertHash } from '../../controller/api/client/credentials';
import { createLab, type Lab, type LabHost, type LabProcess } from '../lab/lab';
import { ipJson } from '../lab/run';
import { GiveUp, waitFor } from '../helpers/wait';
import { duplicateJsonKeys } from '../helpers/log';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const WEFT = join(ROOT, 'dist', 'weft.mjs');
const CONTROLLER_PORT = 7443;
const AGENT_METRICS = '127.0.0.1:7081';
const TCP_PORT = 5000;

type LogLine = { level: number; msg: string; [k: string]: unknown };

type HostCtx = {
  host: LabHost;
  dir: string;
  bin: string;
  conf: string;
  socket: string;
  state: string;
  log: string;
  agent?: LabProcess;
};

/** Round trips the stream client has reported so far. */
function roundTrips(streamLog: string): number {
  const counts = [...readFileSync(streamLog, 'utf8').matchAll(/^round trips (\d+)$/gm)];
  return counts.length === 0 ? 0 : Number(counts[counts.length - 1][1]);
}

function logLines(path: string): LogLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => {
    // a key twice in one line (the agent's base "host" and a call's own) is kept or dropped differently by each log shipper
    expect(duplicateJsonKeys(l), l).toEqual([]);
    return JSON.parse(l) as LogLine;
  });
}

describe('weft agent in a lab', () => {
  let lab: Lab;
  let tmp: string;
  let ctlDir: string;
  let ctlLog: string;
  let server: string;
  let controller: LabProcess;
  const controllerArgs = () => [WEFT, 'controller', '--data-dir', ctlDir, '--listen', server, '--metrics-listen', '127.0.0.1:7080'];
  const hosts: HostCtx[] = [];
  /** netns: the path the runtime passes as CNI_NETNS; ns: its name, for lab.exec/spawn. */
  const containers: Array<{ name: string; host: HostCtx; netns: string; ns: string; ip?: string; result?: unknown }> = [];

  // Node's fetch inside the host namespace (curl is not among the test's system packages): body, newline, status.
  const curl = (h: HostCtx, path: string) =>
    lab.exec(h.host.netns, process.execPath, ['-e', HTTP_GET, `http://${AGENT_METRICS}${path}`], { check: false });
  const metric = (h: HostCtx, name: string): number | undefined => {
    const body = curl(h, '/metrics').stdout;
    const line = body.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line === undefined ? undefined : Number(line.split(' ').pop());
  };

  function agentArgs(h: HostCtx, token: string, pin: string): string[] {
    return [
      WEFT, 'agent', '--server', server, '--token', token, '--ca-cert-hash', pin, '--host-name', h.host.name,
      '--rack', h.host.rack, '--datacenter', h.host.datacenter, '--state-dir', h.state, '--cni-socket', h.socket,
      '--metrics-listen', AGENT_METRICS, '--resync-interval', '2s', '--log-level', 'debug',
    ];
  }

  /** The plugin's stdin as a runtime builds it from the conflist: the plugin entry plus name and cniVersion. */
  function pluginConf(h: HostCtx, extra: object = {}): string {
    const list = JSON.parse(readFileSync(join(h.conf, '10-weft.conflist'), 'utf8'));
    return JSON.stringify({ cniVersion: list.cniVersion, name: list.name, ...list.plugins[0], ...extra });
  }

  function cni(h: HostCtx, command: string, id: string, netns: string, extra: object = {}) {
    return lab.exec(h.host.netns, join(h.bin, 'weft'), [], {
      check: false,
      input: pluginConf(h, extra),
      env: { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: h.bin },
    });
  }

  let token = '';
  let pin = '';

  beforeAll(async () => {
    if (!existsSync(WEFT) || !existsSync(join(ROOT, 'dist', 'weft-cni'))) throw new Error('dist/weft.mjs or dist/weft-cni missing: run npm run build');
    tmp = mkdtempSync(join(tmpdir(), 'weft-agent-main-'));
    lab = await createLab({ name: 'agm', datacenters: [{ name: 'dc1', racks: [{ name: 'a', hosts: ['h1', 'h2'] }] }], controller: true });
    const ctl = lab.controller!;
    server = `${ctl.ip}:${CONTROLLER_PORT}`;
    ctlDir = join(tmp, 'controller');
    ctlLog = join(tmp, 'controller.log');
    controller = lab.spawn(ctl.netns, process.execPath, controllerArgs(), { logFile: ctlLog, cwd: ROOT });
    await waitFor('the controller to listen', () => logLines(ctlLog).some((l) => l.msg === 'controller listening'));
    pin = caCertHash(readFileSync(join(ctlDir, 'ca.crt'), 'utf8'));
    token = JSON.parse(lab.exec(ctl.netns, process.execPath, [WEFT, 'token', 'create', '--data-dir', ctlDir, '--json']).stdout).token;
    for (const host of lab.hosts) {
      const dir = join(tmp, host.name);
      hosts.push({ host, dir, bin: join(dir, 'bin'), conf: join(dir, 'net.d'), socket: join(dir, 'agent.sock'), state: join(dir, 'state'), log: join(dir, 'agent.log') });
    }
  }, 60_000);

  afterAll(async () => {
    await lab?.destroy();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }, 30_000);

  it('install-cni writes the plugin and conflist atomically, idempotently, and refuses what it cannot do', () => {
    for (const h of hosts) {
      const first = lab.exec(h.host.netns, process.execPath, [WEFT, 'install-cni', '--bin-dir', h.bin, '--conf-dir', h.conf, '--socket', h.socket]);
      expect(first.stdout).toContain(`wrote ${join(h.bin, 'weft')}`);
      expect(statSync(join(h.bin, 'weft')).mode & 0o777).toBe(0o755);
      expect(readFileSync(join(h.bin, 'weft')).equals(readFileSync(join(ROOT, 'dist', 'weft-cni')))).toBe(true);
      const list = JSON.parse(readFileSync(join(h.conf, '10-weft.conflist'), 'utf8'));
      expect(list).toMatchObject({ cniVersion: '1.0.0', name: 'weft', plugins: [{ type: 'weft', network: 'default', agentSocket: h.socket }] });
      const again = lab.exec(h.host.netns, process.execPath, [WEFT, 'install-cni', '--bin-dir', h.bin, '--conf-dir', h.conf, '--socket', h.socket]);
      expect(again.stdout).toBe(`unchanged ${join(h.bin, 'weft')}\nunchanged ${join(h.conf, '10-weft.conflist')}\n`);
    }
    const h = hosts[0];
    // portmap is looked for in the bin dir and /usr/lib/cni (Debian's containernetworking-plugins)
    const pm = lab.exec(h.host.netns, process.execPath, [WEFT, 'install-cni', '--bin-dir', h.bin, '--conf-dir', join(h.dir, 'pm.d'), '--socket', h.socket, '--with-portmap'], { check: false });
    if (existsSync('/usr/lib/cni/portmap')) {
      expect(pm.status).toBe(0);
      expect(JSON.parse(readFileSync(join(h.dir, 'pm.d', '10-weft.conflist'), 'utf8')).plugins[1]).toMatchObject({ type: 'portmap', capabilities: { portMappings: true } });
      expect(pm.stderr).toContain('/usr/lib/cni');
    } else {
      expect(pm.status).toBe(1);
      expect(pm.stderr).toContain('no portmap plugin');
    }
    // a conf dir that cannot be created: a clear error, exit 1, nothing left behind
    const blocker = join(h.dir, 'not-a-dir');
    writeFileSync(blocker, 'x');
    const bad = lab.exec(h.host.netns, process.execPath, [WEFT, 'install-cni', '--bin-dir', join(h.dir, 'bin2'), '--conf-dir', join(blocker, 'net.d')], { check: false });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/cannot write weft network config in .*not-a-dir\/net\.d/);
    const flag = lab.exec(h.host.netns, process.execPath, [WEFT, 'install-cni', '--cni-version', '0.1.0'], { check: false });
    expect(flag.status).toBe(2);
    expect(flag.stderr).toContain('--cni-version');
  });

  it('bad agent flags exit 2 naming the flag, before touching anything', () => {
    const h = hosts[0];
    for (const [args, named] of [
      [['--server', server, '--mtu', '70000'], '--mtu'],
      [['--server', server, '--frobnicate'], '--frobnicate'],
      [['--server', 'no-port'], '--server'],
      [['--server', server, '--ca-cert-hash', 'sha1:abc'], '--ca-cert-hash'],
      [['--server', server, '--resync-interval', 'soon'], '--resync-interval'],
      [['--server', server, '--host-name', 'Not_A_Name'], '--host-name'],
    ] as Array<[string[], string]>) {
      const r = lab.exec(h.host.netns, process.execPath, [WEFT, 'agent', '--state-dir', join(h.dir, 'never'), ...args], { check: false });
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(named);
    }
    expect(existsSync(join(h.dir, 'never'))).toBe(false);
    const env = lab.exec(h.host.netns, process.execPath, [WEFT, 'agent'], { check: false, env: { WEFT_SERVER: server, WEFT_LOG_LEVEL: 'loud' } });
    expect(env.status).toBe(2);
    expect(env.stderr).toContain('WEFT_LOG_LEVEL');
  });

  it('agents join with a token, register and build weft.vx1 and weft.br1', async () => {
    for (const h of hosts) h.agent = lab.spawn(h.host.netns, process.execPath, agentArgs(h, token, pin), { logFile: h.log, cwd: ROOT });
    for (const h of hosts) {
      await waitFor(`${h.host.name} ready`, () => {
        if (h.agent!.exited) throw new GiveUp(`agent on ${h.host.name} exited:\n${readFileSync(h.log, 'utf8').slice(-3000)}`);
        return curl(h, '/readyz').stdout.endsWith('\n200');
      }, 30_000);
      expect(existsSync(join(h.state, 'host.crt'))).toBe(true);
      const links = ipJson<Array<{ ifname: string; linkinfo?: { info_kind: string; info_data?: { id?: number; local?: string } }; mtu: number }>>(h.host.netns, ['-d', 'link', 'show']);
      const vx = links.find((l) => l.ifname === 'weft.vx1');
      const br = links.find((l) => l.ifname === 'weft.br1');
      expect(vx?.linkinfo).toMatchObject({ info_kind: 'vxlan', info_data: { id: 1, local: h.host.underlayIp } });
      expect(vx?.mtu).toBe(1450);
      expect(br?.linkinfo?.info_kind).toBe('bridge');
      // the preflight ran and said so, one line per check
      expect(logLines(h.log).filter((l) => String(l.msg).startsWith('preflight ')).length).toBeGreaterThanOrEqual(5);
    }
    // each host routes the other's subnet over the overlay
    for (const [a, b] of [[hosts[0], hosts[1]], [hosts[1], hosts[0]]]) {
      const other = ipJson<Array<{ local: string; dev: string }>>(b.host.netns, ['addr', 'show', 'dev', 'weft.br1']);
      expect(other.length).toBe(1);
      await waitFor(`${a.host.name} routes ${b.host.name}'s subnet`, () =>
        ipJson<Array<{ dst: string; dev: string }>>(a.host.netns, ['route', 'show', 'proto', '119']).some((r) => r.dev === 'weft.vx1'));
    }
  }, 60_000);

  it('containers attached through the installed CNI plugin reach each other over TCP across the VXLAN', async () => {
    for (const [i, h] of hosts.entries()) {
      const name = `c${i + 1}`;
      const netns = lab.addContainerNetns(h.host, name);
      const r = cni(h, 'ADD', `ctr-${name}`, netns);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      const result = JSON.parse(r.stdout);
      expect(result.cniVersion).toBe('1.0.0');
      containers.push({ name, host: h, netns, ns: basename(netns), ip: result.ips[0].address.split('/')[0], result });
    }
    const [c1, c2] = containers;
    expect(c1.ip).not.toBe(c2.ip);
    const out = await tcpOnce(c1.ns, c2.ns, c2.ip!);
    expect(out).toBe('echo:hello from c1');
    // CHECK as a runtime would after ADD: with the ADD's result as prevResult
    const chk = cni(c1.host, 'CHECK', 'ctr-c1', c1.netns, { prevResult: c1.result });
    expect(chk.status, chk.stdout).toBe(0);
  }, 60_000);

  it('/metrics shows desired and programmed overlay entries, CNI requests and the connection', () => {
    for (const h of hosts) {
      // one remote host: its route, neighbour and FDB entry
      expect(metric(h, 'weft_agent_overlay_desired_entries')).toBe(3);
      expect(metric(h, 'weft_agent_overlay_programmed_entries')).toBe(3);
      expect(metric(h, 'weft_agent_controller_connection{state="connected"}')).toBe(1);
      expect(metric(h, 'weft_agent_topology_revision')).toBeGreaterThan(0);
      expect(metric(h, 'weft_agent_endpoint_outbox_pending')).toBe(0);
      expect(metric(h, 'weft_agent_reconcile_errors_total') ?? 0).toBe(0);
    }
    expect(metric(hosts[0], 'weft_agent_cni_requests_total{verb="ADD",result="ok"}')).toBe(1);
    expect(metric(hosts[0], 'weft_agent_cni_requests_total{verb="CHECK",result="ok"}')).toBe(1);
    expect(curl(hosts[0], '/healthz').stdout).toBe('ok\n\n200');
  });

  it('a restarted agent leaves the overlay untouched (zero requests on its first reconcile) and a live connection keeps working', async () => {
    const [c1, c2] = containers;
    const h2 = hosts[1];
    const stopFile = join(tmp, 'stop-streaming');
    const echo = await startEchoServer(c2.ns, c2.ip!, TCP_PORT + 1);
    const streamLog = join(tmp, 'stream.log');
    const stream = lab.spawn(c1.ns, process.execPath, ['-e', STREAM_CLIENT, c2.ip!, String(TCP_PORT + 1), stopFile], { logFile: streamLog });
    await waitFor('the stream to flow', () => readFileSync(streamLog, 'utf8').includes('flowing'));
    const routesBefore = ipJson(h2.host.netns, ['route', 'show', 'proto', '119']);
    const neighBefore = ipJson(h2.host.netns, ['neigh', 'show', 'dev', 'weft.vx1', 'nud', 'permanent']);

    const st = await h2.agent!.stop('SIGTERM', 8000);
    expect(st.code).toBe(0);
    expect(logLines(h2.log).some((l) => l.msg === 'stopped')).toBe(true);
    // the dataplane stays while the agent is away, and the connection goes on through it
    expect(ipJson(h2.host.netns, ['route', 'show', 'proto', '119'])).toEqual(routesBefore);
    const awayFrom = roundTrips(streamLog);
    await waitFor('10 more round trips with the agent stopped', () => roundTrips(streamLog) >= awayFrom + 10);

    const before = logLines(h2.log).length;
    h2.agent = lab.spawn(h2.host.netns, process.execPath, agentArgs(h2, token, pin), { logFile: h2.log, cwd: ROOT });
    const first = await waitFor('the first reconcile after restart', () => logLines(h2.log).slice(before).find((l) => String(l.msg).startsWith('first overlay reconcile')), 30_000);
    expect(first.requests).toBe(0);
    expect(first.desired).toBe(3);
    await waitFor('h2 ready again', () => curl(h2, '/readyz').stdout.endsWith('\n200'), 15_000);
    expect(metric(h2, 'weft_agent_overlay_requests_total')).toBe(0);
    expect(metric(h2, 'weft_agent_overlay_programmed_entries')).toBe(3);
    expect(ipJson(h2.host.netns, ['route', 'show', 'proto', '119'])).toEqual(routesBefore);
    expect(ipJson(h2.host.netns, ['neigh', 'show', 'dev', 'weft.vx1', 'nud', 'permanent'])).toEqual(neighBefore);
    // a periodic resync (every 2 s here) also finds nothing to do
    await waitFor('a resync', () => (metric(h2, 'weft_agent_reconciles_total{trigger="resync"}') ?? 0) >= 1, 10_000);
    expect(metric(h2, 'weft_agent_overlay_requests_total')).toBe(0);

    writeFileSync(stopFile, '');
    const streamed = await stream.wait();
    const text = readFileSync(streamLog, 'utf8');
    expect(streamed.code, text).toBe(0);
    expect(text).toMatch(/done \d+ round trips/);
    expect(Number(/done (\d+)/.exec(text)![1])).toBeGreaterThan(20);
    // and a new connection works too
    expect(await tcpOnce(c1.ns, c2.ns, c2.ip!)).toBe('echo:hello from c1');
    await echo.stop();

  }, 80_000);

  it('restarted while the controller is away, an agent serves CNI from its last registration and leaves the overlay alone until the controller returns', async () => {
    const [, c2] = containers;
    const h1 = hosts[0];
    const routesBefore = ipJson(h1.host.netns, ['route', 'show', 'proto', '119']);
    expect(routesBefore.length).toBe(1);
    expect((await controller.stop('SIGTERM', 8000)).code).toBe(0);
    expect((await h1.agent!.stop('SIGTERM', 8000)).code).toBe(0);

    const before = logLines(h1.log).length;
    h1.agent = lab.spawn(h1.host.netns, process.execPath, agentArgs(h1, token, pin), { logFile: h1.log, cwd: ROOT });
    await waitFor('the agent to start from its cached registration', () =>
      logLines(h1.log).slice(before).some((l) => String(l.msg).startsWith('controller unreachable: starting from the last registration')), 20_000);
    await waitFor('the CNI socket', () => logLines(h1.log).slice(before).some((l) => l.msg === 'CNI socket listening'), 10_000);
    // a new container starts and reaches the other host over the overlay the agent did not touch
    const netns = lab.addContainerNetns(h1.host, 'c3');
    const add = cni(h1, 'ADD', 'ctr-c3', netns);
    expect(add.status, add.stdout).toBe(0);
    containers.push({ name: 'c3', host: h1, netns, ns: basename(netns), ip: JSON.parse(add.stdout).ips[0].address.split('/')[0] });
    expect(await tcpOnce(basename(netns), c2.ns, c2.ip!)).toBe('echo:hello from c1');
    // not ready (no topology yet), no reconcile, routes as they were
    expect(curl(h1, '/readyz').stdout.endsWith('\n503')).toBe(true);
    expect(metric(h1, 'weft_agent_reconciles_total{trigger="start"}') ?? 0).toBe(0);
    expect(metric(h1, 'weft_agent_controller_connection{state="connected"}')).toBe(0);
    expect(ipJson(h1.host.netns, ['route', 'show', 'proto', '119'])).toEqual(routesBefore);

    // the controller returns: register, snapshot, and a first reconcile that finds nothing to change
    const ctlBefore = logLines(ctlLog).length;
    controller = lab.spawn(lab.controller!.netns, process.execPath, controllerArgs(), { logFile: ctlLog, cwd: ROOT });
    await waitFor('the controller to listen again', () => logLines(ctlLog).slice(ctlBefore).some((l) => l.msg === 'controller listening'));
    const first = await waitFor('the first reconcile once the controller is back', () =>
      logLines(h1.log).slice(before).find((l) => String(l.msg).startsWith('first overlay reconcile')), 30_000);
    expect(first.requests).toBe(0);
    await waitFor('h1 ready again', () => curl(h1, '/readyz').stdout.endsWith('\n200'), 15_000);
    expect(metric(h1, 'weft_agent_overlay_programmed_entries')).toBe(3);
    expect(ipJson(h1.host.netns, ['route', 'show', 'proto', '119'])).toEqual(routesBefore);
    // the endpoint registered while the controller was away was queued and delivered
    await waitFor('the outbox to drain', () => metric(h1, 'weft_agent_endpoint_outbox_pending') === 0, 15_000);
  }, 80_000);

  it('DEL through the plugin releases every container, idempotently', () => {
    for (const c of containers) {
      expect(cni(c.host, 'DEL', `ctr-${c.name}`, c.netns).status).toBe(0);
      expect(cni(c.host, 'DEL', `ctr-${c.name}`, c.netns).status).toBe(0);
      expect(ipJson(c.ns, ['link', 'show']).map((l: { ifname: string }) => l.ifname)).toEqual(['lo']);
    }
    expect(metric(hosts[0], 'weft_agent_cni_requests_total{verb="DEL",result="ok"}')).toBe(4);
  });

  // Echo server in one container, a one-shot client in another.
  /** Resolves once the server listens (it says so on stdout). */
  async function startEchoServer(netns: string, ip: string, port: number): Promise<LabProcess> {
    const srv = lab.spawn(netns, process.execPath, ['-e', ECHO_SERVER, ip, String(port)]);
    await waitFor(`the echo server on ${ip}:${port}`, () => {
      if (srv.exited) throw new GiveUp(`the echo server on ${ip}:${port} exited: ${srv.output()}`);
      return srv.output().includes('listening');
    }, 10_000);
    return srv;
  }

  async function tcpOnce(clientNs: string, serverNs: string, ip: string): Promise<string> {
    const srv = await startEchoServer(serverNs, ip, TCP_PORT);
    try {
      const r = lab.exec(clientNs, process.execPath, ['-e', ONE_SHOT_CLIENT, ip, String(TCP_PORT), 'hello from c1'], { check: false, timeoutMs: 10_000 });
      if (r.status !== 0) throw new Error(`TCP client failed: ${r.stderr}`);
      return r.stdout.trim();
    } finally {
      await srv.stop();
    }
  }
});

const HTTP_GET = `
fetch(process.argv[1], { signal: AbortSignal.timeout(2000) }).then(
  async (r) => process.stdout.write((await r.text()) + '\\n' + r.status),
  () => process.stdout.write('\\n000'),
);
`;

const ECHO_SERVER = `
const net = require('node:net');
const [ip, port] = process.argv.slice(1);
net.createServer((s) => { s.on('data', (d) => s.write('echo:' + d)); s.on('error', () => {}); }).listen(Number(port), ip, () => console.log('listening'));
`;

const ONE_SHOT_CLIENT = `
const net = require('node:net');
const [ip, port, msg] = process.argv.slice(1);
const s = net.connect(Number(port), ip, () => s.write(msg));
s.setTimeout(5000, () => { console.error('timeout'); process.exit(1); });
s.on('data', (d) => { process.stdout.write(String(d)); s.end(); });
s.on('error', (e) => { console.error(e.code || e.message); process.exit(1); });
`;

// One connection, a round trip every 50 ms, its count printed every 10; any error or a reply slower than 2 s fails it.
const STREAM_CLIENT = `
const net = require('node:net');
const fs = require('node:fs');
const [ip, port, stopFile] = process.argv.slice(1);
let n = 0, sent = 0, timer;
const s = net.connect(Number(port), ip, () => { console.log('flowing'); tick(); });
function tick() {
  if (fs.existsSync(stopFile)) { console.log('done ' + n + ' round trips'); s.end(); process.exit(0); }
  sent = Date.now(); s.write('x' + n);
  timer = setTimeout(() => { console.log('reply late after ' + n); process.exit(1); }, 2000);
}
s.on('data', () => { clearTimeout(timer); n++; if (n % 10 === 0) console.log('round trips ' + n); setTimeout(tick, 50); });
s.on('error', (e) => { console.log('error ' + (e.code || e.message) + ' after ' + n); process.exit(1); });
s.on('close', () => { console.log('closed after ' + n); process.exit(1); });
`;

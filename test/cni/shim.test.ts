// The compiled shim exec'd exactly as a runtime execs a plugin (CNI_* in the
// environment, the config on stdin), against a real agent socket served by
// startCniServer with small handlers that record what they were given.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CniHandlers } from '../../cni-plugin/cni/types';
import { startCniServer, type CniServer } from '../../cni-plugin/cni/server';
import { CNI_ERR, CniError, SUPPORTED_VERSIONS, type CniRequest, type CniResult } from '../../cni-plugin/cni/types';
import type { Logger } from '../../controller/common/log';
import { captureLogger } from '../helpers/log';
import { waitFor } from '../helpers/wait';

const ROOT = join(__dirname, '..', '..');
const SHIM = join(ROOT, 'dist', 'weft-cni');
const SOURCE = join(ROOT, 'cni-plugin', 'shim', 'weft.c');

/** Builds dist/weft-cni when missing or older than its source; renamed into place so parallel runs never exec a half-written file. */
function buildShim(): void {
  if (existsSync(SHIM) && statSync(SHIM).mtimeMs >= statSync(SOURCE).mtimeMs) return;
  const tmp = `${SHIM}.${process.pid}`;
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', tmp, SOURCE], { stdio: 'pipe' });
  renameSync(tmp, SHIM);
}

/**
 * Connections accepted and still open by unix socket servers in `inDir`: each shows in /proc/net/unix
 * under the name the server bound (the agent binds a private name, then renames it into place).
 */
function serverConnections(inDir: string): number {
  return readFileSync('/proc/net/unix', 'utf8').split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[5] === '03' && f[7]?.startsWith(`${inDir}/`)).length;
}

type Run = { code: number | null; stdout: string; stderr: string; json: Record<string, unknown> | undefined };

/** Execs the shim the way libcni does: a fresh environment of the runtime's own plus CNI_*, config on stdin. */
function shim(env: Record<string, string>, stdin: string | Buffer): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(SHIM, [], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...env }, stdio: 'pipe' });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    // The shim refuses oversized stdin without reading all of it: the runtime's write then fails, as it would in Go.
    child.stdin.on('error', () => {});
    child.on('close', (code) => {
      const stdout = Buffer.concat(out).toString('utf8');
      let json: Record<string, unknown> | undefined;
      try {
        json = stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr: Buffer.concat(err).toString('utf8'), json });
    });
    child.stdin.end(stdin);
  });
}

type Call = { req: CniRequest; at: number };

/**
 * Handlers that record each request and answer like a minimal plugin. With
 * `holdUntilConcurrent`, a request stays in its handler until that many
 * requests have been in the handlers at once (then none waits any more), so
 * a test of concurrency does not depend on how fast the shims arrive;
 * `delayMs` keeps each one in the handler a little longer on top.
 */
function recordingHandlers(opts: { delayMs?: number; holdUntilConcurrent?: number; gate?: Promise<void> } = {}) {
  const calls: Call[] = [];
  const active = new Map<string, number>();
  let overlapSeen = false;
  let concurrent = 0;
  let maxConcurrent = 0;
  const track = async (req: CniRequest): Promise<void> => {
    calls.push({ req, at: Date.now() });
    const n = (active.get(req.containerId) ?? 0) + 1;
    active.set(req.containerId, n);
    if (n > 1) overlapSeen = true;
    concurrent++;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    try {
      const enough = opts.holdUntilConcurrent ?? 0;
      if (enough > 1) await waitFor(`${enough} requests in the handlers at once`, () => maxConcurrent >= enough, 10_000, 5);
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      if (opts.gate) await opts.gate;
    } finally {
      concurrent--;
      active.set(req.containerId, (active.get(req.containerId) ?? 1) - 1);
    }
  };
  const handlers: CniHandlers = {
    add: async (req): Promise<CniResult> => {
      await track(req);
      return {
        cniVersion: req.config.cniVersion,
        interfaces: [{ name: req.ifname, mac: '02:42:0a:f4:03:07', mtu: 1450, sandbox: req.netns }],
        ips: [
          { address: '10.244.3.7/24', gateway: '10.244.3.1', interface: 0 },
          { address: 'fd00:244:3::7/64', gateway: 'fd00:244:3::1', interface: 0 },
        ],
        routes: [{ dst: '0.0.0.0/0', gw: '10.244.3.1', mtu: 1450 }],
        dns: { nameservers: ['10.244.0.10'] },
      };
    },
    del: track,
    check: track,
    status: track,
    gc: track,
  };
  return {
    handlers,
    calls,
    get overlapSeen() {
      return overlapSeen;
    },
    get maxConcurrent() {
      return maxConcurrent;
    },
  };
}

let dir: string;
let servers: CniServer[] = [];

function conf(extra: Record<string, unknown> = {}, version = '1.1.0'): string {
  return JSON.stringify({ cniVersion: version, name: 'weftnet', type: 'weft', agentSocket: sockPath(), ...extra });
}
const sockPath = (): string => join(dir, 'agent.sock');
const addEnv = (id = 'c0ffee01'): Record<string, string> => ({
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: id,
  CNI_NETNS: '/var/run/netns/cni-1234',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin:/usr/lib/cni',
});

async function serve(handlers: CniHandlers, extra: { maxConcurrent?: number; logger?: Logger } = {}): Promise<CniServer> {
  const s = await startCniServer({ socketPath: sockPath(), handlers, ...extra });
  servers.push(s);
  return s;
}

beforeAll(() => buildShim());

afterEach(async () => {
  for (const s of servers) await s.close();
  servers = [];
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const made: string[] = [];
function freshDir(): void {
  dir = mkdtempSync(join(tmpdir(), 'weft-shim-'));
  made.push(dir);
}

afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

describe('without an agent', () => {
  beforeAll(() => freshDir());

  it('answers VERSION itself, with the dummy environment podman passes', async () => {
    const r = await shim(
      { CNI_COMMAND: 'VERSION', CNI_CONTAINERID: 'dummy', CNI_NETNS: 'dummy', CNI_IFNAME: 'dummy', CNI_PATH: '/usr/lib/cni' },
      JSON.stringify({ cniVersion: '1.0.0' }),
    );
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ cniVersion: '1.1.0', supportedVersions: [...SUPPORTED_VERSIONS] });
  });

  it('reports code 11 naming the socket when nothing is there', async () => {
    freshDir();
    const r = await shim(addEnv(), conf({}, '0.4.0'));
    expect(r.code).toBe(1);
    expect(r.json).toEqual({
      cniVersion: '0.4.0',
      code: CNI_ERR.TRY_AGAIN_LATER,
      msg: `weft agent is not reachable at ${sockPath()}`,
      details: 'No such file or directory',
    });
  });

  it('reports code 11 for a stale socket a crashed agent left, and a new agent replaces it', async () => {
    freshDir();
    // A real crash: the listener is SIGKILLed and never unlinks its socket.
    const child = spawn(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(sockPath())}, () => console.log('up'))`,
    ]);
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(statSync(sockPath()).isSocket()).toBe(true);

    const r = await shim(addEnv(), conf());
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 11, details: 'Connection refused' });

    const rec = recordingHandlers();
    await serve(rec.handlers);
    const ok = await shim(addEnv(), conf());
    expect(ok.code).toBe(0);
    expect(rec.calls).toHaveLength(1);
  });

  it('refuses a missing or unknown CNI_COMMAND with code 4', async () => {
    const missing = await shim({ CNI_CONTAINERID: 'x', CNI_NETNS: '/n', CNI_IFNAME: 'eth0' }, conf());
    expect(missing.code).toBe(1);
    expect(missing.json).toEqual({ cniVersion: '1.1.0', code: 4, msg: 'CNI_COMMAND is not set' });
    const unknown = await shim({ ...addEnv(), CNI_COMMAND: 'ATTACH' }, conf({}, '1.0.0'));
    expect(unknown.code).toBe(1);
    expect(unknown.json).toMatchObject({ cniVersion: '1.0.0', code: 4 });
    expect(String(unknown.json?.msg)).toContain('"ATTACH"');
  });

  it('refuses an agentSocket the agent would refuse, without dialing it', async () => {
    for (const [agentSocket, msg] of [
      ['agent.sock', 'agentSocket must be an absolute path'],
      ['', 'agentSocket must be an absolute path'],
      [`/${'a'.repeat(120)}`, 'agentSocket is longer than a unix socket path may be'],
    ]) {
      const r = await shim(addEnv(), conf({ agentSocket }));
      expect(r.code).toBe(1);
      expect(r.json).toMatchObject({ code: CNI_ERR.INVALID_CONFIG, msg });
    }
  });

  it('refuses stdin over 1 MiB with code 5 without contacting the agent', async () => {
    freshDir();
    const rec = recordingHandlers();
    await serve(rec.handlers);
    const big = conf({ padding: 'x'.repeat(1024 * 1024) });
    const r = await shim(addEnv(), big);
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ cniVersion: '1.1.0', code: CNI_ERR.IO_FAILURE });
    expect(rec.calls).toHaveLength(0);
  });

  it('gives up with code 11 when the agent accepts but never answers', async () => {
    freshDir();
    const held: Array<import('node:net').Socket> = [];
    const mute: Server = createServer((s) => held.push(s));
    await new Promise<void>((r) => mute.listen(sockPath(), r));
    try {
      const r = await shim({ ...addEnv(), WEFT_CNI_TIMEOUT_MS: '300' }, conf());
      expect(r.code).toBe(1);
      expect(r.json).toMatchObject({ code: 11, msg: `weft agent at ${sockPath()} did not answer`, details: 'no reply before the timeout' });
    } finally {
      for (const s of held) s.destroy();
      await new Promise((r) => mute.close(r));
    }
  });

  it('reports code 11 when the agent closes the connection without a reply', async () => {
    freshDir();
    const rude: Server = createServer((s) => s.destroy());
    await new Promise<void>((r) => rude.listen(sockPath(), r));
    try {
      const r = await shim(addEnv(), conf());
      expect(r.code).toBe(1);
      expect(r.json).toMatchObject({ code: 11, msg: `weft agent at ${sockPath()} did not answer` });
    } finally {
      await new Promise((r) => rude.close(r));
    }
  });
});

describe('through the agent', () => {
  beforeAll(() => freshDir());

  it('creates the socket 0600 in a 0700 directory it creates, and refuses to start twice', async () => {
    freshDir();
    const nested = join(dir, 'run', 'weft', 'agent.sock');
    const s = await startCniServer({ socketPath: nested, handlers: recordingHandlers().handlers });
    servers.push(s);
    expect(statSync(nested).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'run', 'weft')).mode & 0o777).toBe(0o700);
    await expect(startCniServer({ socketPath: nested, handlers: recordingHandlers().handlers })).rejects.toThrow(
      /already listening/,
    );
    writeFileSync(join(dir, 'plain'), 'not a socket');
    await expect(
      startCniServer({ socketPath: join(dir, 'plain'), handlers: recordingHandlers().handlers }),
    ).rejects.toThrow(/not a socket/);
    await s.close();
    servers = [];
    expect(existsSync(nested)).toBe(false);
  });

  it('ADD returns the 1.1.0 shape and passes env and config through', async () => {
    freshDir();
    const rec = recordingHandlers();
    await serve(rec.handlers);
    const r = await shim(
      { ...addEnv('abc123'), CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=web;K8S_POD_NAME=api-0' },
      conf({ network: 'blue', mtu: 1400, capabilities: { portMappings: true } }),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.json).toEqual({
      cniVersion: '1.1.0',
      interfaces: [{ name: 'eth0', mac: '02:42:0a:f4:03:07', mtu: 1450, sandbox: '/var/run/netns/cni-1234' }],
      ips: [
        { address: '10.244.3.7/24', gateway: '10.244.3.1', interface: 0 },
        { address: 'fd00:244:3::7/64', gateway: 'fd00:244:3::1', interface: 0 },
      ],
      routes: [{ dst: '0.0.0.0/0', gw: '10.244.3.1', mtu: 1450 }],
      dns: { nameservers: ['10.244.0.10'] },
    });
    const req = rec.calls[0].req;
    expect(req).toMatchObject({
      command: 'ADD',
      containerId: 'abc123',
      netns: '/var/run/netns/cni-1234',
      ifname: 'eth0',
      args: { IgnoreUnknown: '1', K8S_POD_NAMESPACE: 'web', K8S_POD_NAME: 'api-0' },
      path: ['/opt/cni/bin', '/usr/lib/cni'],
    });
    expect(req.config).toMatchObject({ network: 'blue', mtu: 1400, agentSocket: sockPath() });
    expect(req.config.raw).toEqual({ capabilities: { portMappings: true } });
  });

  it('ADD returns the 0.4.0 and 1.0.0 shapes when the config asks for them', async () => {
    freshDir();
    await serve(recordingHandlers().handlers);
    const v04 = await shim(addEnv(), conf({}, '0.4.0'));
    expect(v04.code).toBe(0);
    expect(v04.json?.cniVersion).toBe('0.4.0');
    expect(v04.json?.ips).toEqual([
      { version: '4', address: '10.244.3.7/24', gateway: '10.244.3.1', interface: 0 },
      { version: '6', address: 'fd00:244:3::7/64', gateway: 'fd00:244:3::1', interface: 0 },
    ]);
    expect(v04.json?.interfaces).toEqual([{ name: 'eth0', mac: '02:42:0a:f4:03:07', sandbox: '/var/run/netns/cni-1234' }]);
    const v10 = await shim(addEnv(), conf({}, '1.0.0'));
    expect(v10.code).toBe(0);
    expect((v10.json?.ips as Array<Record<string, unknown>>)[0]).not.toHaveProperty('version');
    expect(v10.json?.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.244.3.1' }]);
  });

  it('DEL with an empty CNI_NETNS and no prevResult succeeds with no output', async () => {
    freshDir();
    const rec = recordingHandlers();
    await serve(rec.handlers);
    const r = await shim({ ...addEnv(), CNI_COMMAND: 'DEL', CNI_NETNS: '' }, conf());
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(rec.calls[0].req).toMatchObject({ command: 'DEL', netns: '' });
    expect(rec.calls[0].req.config.prevResult).toBeUndefined();
  });

  it('DEL with the prevResult podman passes hands it to the handler parsed', async () => {
    freshDir();
    const rec = recordingHandlers();
    await serve(rec.handlers);
    const prevResult = {
      cniVersion: '0.4.0',
      interfaces: [{ name: 'eth0', sandbox: '/run/netns/x' }],
      ips: [{ version: '4', address: '10.244.3.7/24', gateway: '10.244.3.1', interface: 0 }],
    };
    const r = await shim({ ...addEnv(), CNI_COMMAND: 'DEL' }, conf({ prevResult }, '0.4.0'));
    expect(r.code).toBe(0);
    expect(rec.calls[0].req.config.prevResult).toEqual({
      cniVersion: '0.4.0',
      interfaces: [{ name: 'eth0', sandbox: '/run/netns/x' }],
      ips: [{ address: '10.244.3.7/24', gateway: '10.244.3.1', interface: 0 }],
    });
  });

  it('CHECK, STATUS and GC reach their handlers', async () => {
    freshDir();
    const rec = recordingHandlers();
    await serve(rec.handlers);
    const prevResult = { cniVersion: '1.1.0', ips: [{ address: '10.244.3.7/24' }] };
    const check = await shim({ ...addEnv(), CNI_COMMAND: 'CHECK' }, conf({ prevResult }));
    const status = await shim({ CNI_COMMAND: 'STATUS', CNI_PATH: '/usr/lib/cni' }, conf());
    const gc = await shim(
      { CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' },
      conf({ 'cni.dev/valid-attachments': [{ containerID: 'keep1', ifname: 'eth0' }] }),
    );
    for (const r of [check, status, gc]) {
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('');
    }
    expect(rec.calls.map((c) => c.req.command)).toEqual(['CHECK', 'STATUS', 'GC']);
    expect(rec.calls[2].req.config.validAttachments).toEqual([{ containerID: 'keep1', ifname: 'eth0' }]);
  });

  it('answers every refused request with the spec code and the field named, calling no handler', async () => {
    freshDir();
    const rec = recordingHandlers();
    await serve(rec.handlers);
    const cases: Array<{ env: Record<string, string>; stdin: string; code: number; msg: RegExp; version?: string }> = [
      // Not shaped like an object: the shim cannot know the socket and answers itself.
      { env: addEnv(), stdin: '{"cniVersion":', code: 6, msg: /not a JSON object/ },
      { env: addEnv(), stdin: '', code: 6, msg: /not a JSON object/ },
      { env: addEnv(), stdin: '[1]', code: 6, msg: /not a JSON object/ },
      // Shaped like one, but only the agent's full decoder sees the error.
      { env: addEnv(), stdin: conf().replace(/}$/, ',"x":tru}'), code: 6, msg: /not valid JSON/, version: '1.1.0' },
      { env: addEnv(), stdin: conf({ name: undefined }), code: 7, msg: /^name /, version: '1.1.0' },
      { env: addEnv(), stdin: conf({ name: '-bad' }), code: 7, msg: /^name "-bad"/ },
      { env: addEnv(), stdin: conf({ type: 'bridge' }), code: 7, msg: /^type "bridge"/ },
      { env: addEnv(), stdin: conf({ cniVersion: 'one' }), code: 7, msg: /^cniVersion "one"/ },
      { env: addEnv(), stdin: conf({ cniVersion: '2.0.0' }), code: 1, msg: /incompatible CNI version "2.0.0"/ },
      { env: addEnv(), stdin: conf({ mtu: 67 }), code: 7, msg: /^mtu 67 .*between 68 and 65535/ },
      { env: addEnv(), stdin: conf({ network: 'Blue!' }), code: 7, msg: /^network "Blue!"/ },
      { env: { ...addEnv(), CNI_NETNS: '' }, stdin: conf(), code: 4, msg: /^CNI_NETNS is required for ADD/ },
      { env: { ...addEnv(), CNI_CONTAINERID: '' }, stdin: conf(), code: 4, msg: /^CNI_CONTAINERID is required/ },
      { env: { ...addEnv(), CNI_IFNAME: 'a-very-long-ifname' }, stdin: conf(), code: 4, msg: /^CNI_IFNAME .*15 bytes/ },
      { env: { ...addEnv(), CNI_IFNAME: '..' }, stdin: conf(), code: 4, msg: /^CNI_IFNAME "\.\."/ },
      { env: { ...addEnv(), CNI_IFNAME: 'eth/0' }, stdin: conf(), code: 4, msg: /^CNI_IFNAME "eth\/0"/ },
      { env: { ...addEnv(), CNI_ARGS: 'A=1;oops' }, stdin: conf(), code: 4, msg: /^CNI_ARGS: invalid pair "oops"/ },
      { env: { ...addEnv(), CNI_COMMAND: 'DEL', CNI_IFNAME: '' }, stdin: conf(), code: 4, msg: /^CNI_IFNAME is required for DEL/ },
      { env: { ...addEnv(), CNI_COMMAND: 'CHECK' }, stdin: conf(), code: 7, msg: /^prevResult is required for CHECK/ },
      { env: { ...addEnv(), CNI_COMMAND: 'CHECK' }, stdin: conf({}, '0.3.1'), code: 1, msg: /CHECK needs cniVersion 0.4.0/ },
      { env: { CNI_COMMAND: 'GC' }, stdin: conf(), code: 7, msg: /valid-attachments is required for GC/ },
      { env: { CNI_COMMAND: 'STATUS' }, stdin: conf({}, '1.0.0'), code: 1, msg: /STATUS needs cniVersion 1.1.0/ },
    ];
    for (const c of cases) {
      const r = await shim(c.env, c.stdin);
      expect(r.code, c.msg.source).toBe(1);
      expect(r.json?.code, c.msg.source).toBe(c.code);
      expect(String(r.json?.msg), c.msg.source).toMatch(c.msg);
      if (c.version) expect(r.json?.cniVersion).toBe(c.version);
    }
    expect(rec.calls).toHaveLength(0);
  });

  it("prints a handler's CniError as is and exits 1", async () => {
    freshDir();
    await serve({
      ...recordingHandlers().handlers,
      add: async () => {
        throw new CniError(CNI_ERR.INVALID_CONFIG, 'network "blue" is not configured', 'configured: default');
      },
    });
    const r = await shim(addEnv(), conf({}, '1.0.0'));
    expect(r.code).toBe(1);
    expect(r.json).toEqual({
      cniVersion: '1.0.0',
      code: 7,
      msg: 'network "blue" is not configured',
      details: 'configured: default',
    });
  });

  it('answers an unexpected exception as internal error 999 with its message, logs its stack, and keeps serving', async () => {
    freshDir();
    let n = 0;
    const { logger, lines } = captureLogger();
    await serve(
      {
        ...recordingHandlers().handlers,
        add: async () => {
          n++;
          if (n === 1) throw new TypeError('cannot read properties of undefined');
          throw Object.assign(new Error('EACCES: permission denied, open /var/lib/weft/ipam'), {
            code: 'EACCES',
            syscall: 'open',
          });
        },
      },
      { logger },
    );
    const first = await shim(addEnv(), conf());
    expect(first.code).toBe(1);
    expect(first.json).toEqual({
      cniVersion: '1.1.0',
      code: CNI_ERR.INTERNAL,
      msg: 'internal error in the weft agent: cannot read properties of undefined',
      details: 'TypeError',
    });
    const fault = lines.find((l) => l.msg === 'cni handler failed');
    expect(fault).toMatchObject({ level: 'error', command: 'ADD', containerId: 'c0ffee01', cniCode: 999, err: { type: 'TypeError', message: 'cannot read properties of undefined' } });
    expect(fault!.err!.stack).toMatch(/^TypeError: cannot read properties of undefined\n\s+at .*shim\.test\.ts/);
    // a failed system call is a known condition: I/O failure, logged as a refusal
    const second = await shim(addEnv(), conf());
    expect(second.json).toMatchObject({ code: CNI_ERR.IO_FAILURE, details: 'open: EACCES' });
    expect(lines.filter((l) => l.msg === 'cni request refused')).toMatchObject([{ level: 'warn', cniCode: 5, err: { code: 'WEFT_CNI_IO_FAILURE' } }]);
  });

  it('runs requests for different containers concurrently, never two for one container', async () => {
    freshDir();
    const rec = recordingHandlers({ holdUntilConcurrent: 2, delayMs: 40 });
    await serve(rec.handlers, { maxConcurrent: 4 });
    const runs: Array<Promise<Run>> = [];
    for (let i = 0; i < 8; i++) {
      // Each container gets an ADD and a DEL fired at the same moment.
      runs.push(shim(addEnv(`ctr${i}`), conf()));
      runs.push(shim({ ...addEnv(`ctr${i}`), CNI_COMMAND: 'DEL' }, conf()));
    }
    const results = await Promise.all(runs);
    expect(results.map((r) => r.code)).toEqual(Array(16).fill(0));
    expect(rec.calls).toHaveLength(16);
    expect(rec.overlapSeen).toBe(false);
    expect(rec.maxConcurrent).toBeGreaterThan(1);
    expect(rec.maxConcurrent).toBeLessThanOrEqual(4);
  });

  it('holds container verbs back while GC runs', async () => {
    freshDir();
    const order: string[] = [];
    await serve({
      ...recordingHandlers().handlers,
      async gc() {
        order.push('gc:start');
        // GC ends only once the DEL's shim is connected to the agent (each connection the server accepted is a
        // line with the socket's path in /proc/net/unix): the DEL arrives while GC runs.
        await waitFor('the DEL to connect while GC runs', () => serverConnections(dir) >= 2, 10_000, 5);
        order.push('gc:end');
      },
      async del() {
        order.push('del:start');
        order.push('del:end');
      },
    });
    const gc = shim({ CNI_COMMAND: 'GC' }, conf({ 'cni.dev/valid-attachments': [] }));
    await waitFor('GC to start', () => order.includes('gc:start'), 10_000, 5);
    const del = shim({ ...addEnv(), CNI_COMMAND: 'DEL' }, conf());
    expect((await gc).code).toBe(0);
    expect((await del).code).toBe(0);
    expect(order).toEqual(['gc:start', 'gc:end', 'del:start', 'del:end']);
  });

  it('answers malformed frames with code 6 and never hangs on a silent client', async () => {
    freshDir();
    const rec = recordingHandlers();
    const s = await startCniServer({ socketPath: sockPath(), handlers: rec.handlers, readTimeoutMs: 200 });
    servers.push(s);
    const raw = (bytes: Buffer, endAfter: boolean): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        const c = createConnection(sockPath());
        const got: Buffer[] = [];
        c.on('data', (b) => got.push(b));
        c.on('error', reject);
        c.on('close', () => resolve(Buffer.concat(got)));
        c.write(bytes);
        if (endAfter) c.end();
      });
    const decode = (b: Buffer) => ({
      magic: b.subarray(0, 4).toString(),
      status: b.readUInt32BE(4),
      body: JSON.parse(b.subarray(12, 12 + b.readUInt32BE(8)).toString()) as Record<string, unknown>,
    });
    const garbage = decode(await raw(Buffer.from('GET / HTTP/1.1\r\n\r\n'), false));
    expect(garbage).toMatchObject({ magic: 'WCN1', status: 1, body: { code: 6 } });
    const started = Date.now();
    const silent = decode(await raw(Buffer.from('WCN1\0\0'), false));
    expect(silent.body).toMatchObject({ code: 6, msg: 'request not received in full within 200 ms' });
    expect(Date.now() - started).toBeLessThan(5000);
    const cut = decode(await raw(Buffer.from('WCN1\0\0\0\x10CNI_COMMAND'), true));
    expect(cut.body).toMatchObject({ code: 6, msg: 'request ended before it was complete' });
    const huge = Buffer.alloc(12);
    huge.write('WCN1');
    huge.writeUInt32BE(0, 4);
    huge.writeUInt32BE(64 * 1024 * 1024, 8);
    expect(decode(await raw(huge, false)).body).toMatchObject({ code: 5 });
    expect(rec.calls).toHaveLength(0);
    // Still serving.
    expect((await shim(addEnv(), conf())).code).toBe(0);
  });

  it('close() lets a running request answer, then removes the socket', async () => {
    freshDir();
    let open: () => void = () => {};
    const rec = recordingHandlers({ gate: new Promise<void>((r) => (open = r)) });
    const s = await startCniServer({ socketPath: sockPath(), handlers: rec.handlers });
    const pending = shim(addEnv(), conf());
    // close while the request is held in its handler, then let it answer
    await waitFor('the request in its handler', () => rec.calls.length === 1, 10_000, 5);
    const closing = s.close();
    open();
    await closing;
    expect(existsSync(sockPath())).toBe(false);
    expect((await pending).code).toBe(0);
    const after = await shim(addEnv(), conf());
    expect(after.json).toMatchObject({ code: 11 });
  });
});

// The CNI path under generated input: a real `weft controller` and a real
// `weft agent` in a lab (the agent in its host namespace, joined with a
// token), and fast-check generating configs and environments — valid ones,
// near misses and junk: CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS (missing,
// relative, a FIFO, a regular file, a directory, /proc/1/ns/net, the host's
// own, a real container namespace, a deleted one), CNI_IFNAME, CNI_ARGS with
// K8S_POD_* and weft.label.*, CNI_PATH, prevResult, runtimeConfig and
// capabilities, huge strings, non-UTF-8 bytes, deep nesting.
//
// Every call must end in success or a CNI error object on stdout with one of
// the spec's codes (never the agent's INTERNAL, never a crash or a hang: each
// call has a deadline). Every successful ADD is DELeted afterwards, and then
// the host namespace must hold exactly the links, addresses and iptables/nft
// rules it held before, the agent's DB no allocation, the controller no
// endpoint, the container namespaces nothing but lo, and the agent must
// still answer STATUS and a clean ADD/DEL.
//
// Split: SHIM_RUNS inputs (600) are exec'd through the shim as
// a runtime execs it (half dist/weft-cni, half the same source built with
// ASan and UBSan); SOCKET_RUNS more (9,400) are framed as the shim frames them and
// written to the agent's socket directly (cheaper, and the only way to send
// non-UTF-8 environment bytes, which a process environment built by Node
// cannot carry). Both run CONCURRENCY requests at once. Seeds are fixed and
// printed; WEFT_FUZZ_SEED overrides them, WEFT_FUZZ_SHIM_RUNS and
// WEFT_FUZZ_SOCKET_RUNS the counts.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netnsDelete } from '../../dataplane/netlink/netns';
import {
  adminCert, agentPaths, createToken, grpcCall, requireBuild, ROOT, startAgent, startController,
  type Agent, type CertFiles, type Controller,
} from '../e2e/cluster';
import { SHIM } from '../e2e/cni';
import { createLab, type Lab, type LabHost } from '../lab/lab';
import { uniqueName } from '../helpers/names';
import { GiveUp, waitFor } from '../helpers/wait';

const BASE_SEED = Number(process.env.WEFT_FUZZ_SEED ?? 0x5eedc41);
const SHIM_SEED = BASE_SEED;
const SOCKET_SEED = BASE_SEED + 1;
const SHIM_RUNS = Number(process.env.WEFT_FUZZ_SHIM_RUNS ?? 600);
const SOCKET_RUNS = Number(process.env.WEFT_FUZZ_SOCKET_RUNS ?? 9_400);
/** Longer than any honest answer: a call still running after this is a hang. */
const CALL_DEADLINE_MS = 15_000;
/** Requests in flight at once, as several containers starting on one node. */
const CONCURRENCY = 6;
const NETWORK = 'default';

/** Codes the spec defines and weft's own refusals; INTERNAL (999) is a fault, never an answer. */
const ALLOWED_CODES = new Set([1, 2, 3, 4, 5, 6, 7, 11, 50, 51, 100, 101]);
const VERBS = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'];

type Input = { env: Record<string, string | Buffer | undefined>; stdin: Buffer };
type Reply = { status: number; stdout: string };
type Attachment = { containerId: string; ifname: string; network: string };

describe('CNI fuzz: shim and agent socket against a real agent', () => {
  let lab: Lab;
  let host: LabHost;
  let tmp: string;
  let controller: Controller;
  let agent: Agent;
  let admin: CertFiles;
  let containers: string[] = [];
  const files: Record<string, string> = {};
  const added = new Map<string, Attachment>();
  let before: HostState;
  let sanitizedShim = '';
  let launcher: Launcher;
  let logStart = 0;

  beforeAll(async () => {
    requireBuild();
    launcher = startLauncher();
    tmp = mkdtempSync(join(tmpdir(), 'weft-fuzz-cni-'));
    lab = await createLab({ name: uniqueName('fz').slice(2), datacenters: [{ name: 'dc1', racks: [{ name: 'a', hosts: ['h1'] }] }], controller: true });
    host = lab.host('h1');
    controller = await startController(lab, join(tmp, 'controller'), join(tmp, 'controller.log'));
    agent = await startAgent(lab, controller, host, agentPaths(tmp, host), createToken(controller.dataDir), { debugLog: false });
    await waitFor('the agent to answer STATUS through the shim', async () => {
      if (agent.proc.exited) throw new GiveUp(`agent exited: ${readFileSync(agent.logFile, 'utf8').slice(-3000)}`);
      return (await execShim({ CNI_COMMAND: 'STATUS' }, Buffer.from(conf()))).status === 0;
    }, 30_000);
    admin = adminCert(controller.dataDir, join(tmp, 'admin'));
    containers = [0, 1, 2].map((i) => lab.addContainerNetns(host, `c${i}`));
    const gone = lab.addContainerNetns(host, 'gone');
    netnsDelete(gone.slice('/run/netns/'.length));
    files.deleted = gone;
    // the same source built with AddressSanitizer and UBSan: a memory or UB fault in the shim's
    // scanner becomes a failing exit status instead of going unnoticed
    sanitizedShim = join(tmp, 'weft-cni-asan');
    execFileSync('cc', ['-O1', '-g', '-fno-omit-frame-pointer', '-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-Wall', '-Wextra', '-Werror', '-o', sanitizedShim, join(ROOT, 'cni-plugin', 'shim', 'weft.c')], { stdio: 'pipe' });
    files.fifo = join(tmp, 'fifo');
    execFileSync('mkfifo', [files.fifo]);
    files.regular = join(tmp, 'regular');
    writeFileSync(files.regular, 'not a namespace\n');
    files.dir = join(tmp, 'dir');
    mkdirSync(files.dir);
    files.hostNs = `/run/netns/${host.netns}`;
    files.agentNs = `/proc/${agent.proc.pid}/ns/net`;
    before = hostState(host.netns);
    logStart = statSync(agent.logFile).size; // what the agent logs from here on is the fuzz's doing
    console.log(`CNI fuzz seeds: shim ${SHIM_SEED} (${SHIM_RUNS} runs), socket ${SOCKET_SEED} (${SOCKET_RUNS} runs); WEFT_FUZZ_SEED=<n> reproduces`);
  }, 90_000);

  afterAll(async () => {
    launcher?.stop();
    await lab?.destroy();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  function conf(extra: Record<string, unknown> = {}): string {
    return JSON.stringify({ cniVersion: '1.1.0', name: 'weft', type: 'weft', network: NETWORK, agentSocket: agent.socket, ...extra });
  }

  // ---- arbitraries ----

  const junkString = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.constant(''),
    fc.constantFrom('x'.repeat(70_000), '\u0000', 'a\nb', '../../etc', '🙂'.repeat(20)),
  );
  const containerId = fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: 7 }).map((i) => `fz${i}`) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: junkString },
    { weight: 1, arbitrary: fc.constantFrom('-lead', '.dot', 'a'.repeat(300), 'sp ace', 'x/y') },
  );
  const netns = () =>
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...containers) },
      { weight: 1, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.constantFrom('', 'netns/x', 'relative', files.fifo, files.regular, files.dir, '/proc/1/ns/net', files.deleted, files.hostNs, files.agentNs, '/dev/null', '/proc/self/ns/net', '/run/netns/', '/proc/1/ns/mnt') },
      { weight: 1, arbitrary: junkString },
    );
  const ifname = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('eth0', 'net1', 'eth1') },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: fc.constantFrom('', '.', '..', 'a/b', 'x:y', 'tab\there', 'éééééééé', 'abcdefghijklmnop', 'lo', 'weft.br1', 'weft.vx1') },
    { weight: 1, arbitrary: junkString },
  );
  const k8sArgs = fc
    .record({ ns: fc.oneof(fc.constant('shop'), junkString), name: fc.oneof(fc.constant('web-0'), junkString), uid: fc.oneof(fc.uuid(), junkString) })
    .map((r) => `IgnoreUnknown=1;K8S_POD_NAMESPACE=${r.ns};K8S_POD_NAME=${r.name};K8S_POD_INFRA_CONTAINER_ID=x;K8S_POD_UID=${r.uid}`);
  const cniArgs = fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: k8sArgs },
    { weight: 1, arbitrary: fc.array(fc.tuple(fc.oneof(fc.constantFrom('weft.label.app', 'weft.label.', 'K8S_POD_NAME', 'weft.label.' + 'k'.repeat(300)), junkString), junkString), { maxLength: 5 }).map((kv) => kv.map(([k, v]) => `${k}=${v}`).join(';')) },
    { weight: 1, arbitrary: fc.constantFrom('=x', ';;;', 'novalue', 'a=b=c;', ';K8S_POD_NAME=' + 'p'.repeat(5000)) },
    { weight: 1, arbitrary: junkString },
  );
  const cniPath = fc.oneof(fc.constant(undefined), fc.constantFrom('/opt/cni/bin', '/opt/cni/bin:/usr/lib/cni', ':::', ''), junkString);
  const command = fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom(...VERBS) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constantFrom('', 'add', 'ADD ', 'DELETE', 'VERSION\n') },
    { weight: 1, arbitrary: junkString },
  );

  const version = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom('1.1.0', '1.0.0', '0.4.0', '0.3.1', '0.3.0') },
    { weight: 2, arbitrary: fc.constantFrom('0.1.0', '0.2.0', '2.0.0', '1.1', '01.1.0', '1.1.0-rc1', 1.1, null, undefined) },
    { weight: 1, arbitrary: fc.anything({ maxDepth: 1 }) },
  );
  const ipConf = fc.record(
    { address: fc.oneof(fc.constantFrom('10.244.0.2/24', '10.244.0.2', 'fd00::1/64', '1.2.3.4/33', '/24', ''), fc.anything({ maxDepth: 1 })), gateway: fc.oneof(fc.constantFrom('10.244.0.1', '', 'nope'), fc.anything({ maxDepth: 0 })), interface: fc.oneof(fc.integer({ min: -2, max: 3 }), fc.anything({ maxDepth: 0 })) },
    { requiredKeys: [] },
  );
  const prevResult = fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constant(null) },
    {
      weight: 3,
      arbitrary: fc.record(
        {
          cniVersion: version,
          interfaces: fc.array(fc.record({ name: fc.oneof(fc.constant('eth0'), junkString), mac: fc.oneof(fc.constant('02:00:00:00:00:01'), fc.anything({ maxDepth: 0 })), mtu: fc.oneof(fc.integer({ min: -1, max: 70_000 }), fc.anything({ maxDepth: 0 })), sandbox: fc.anything({ maxDepth: 0 }) }, { requiredKeys: [] }), { maxLength: 3 }),
          ips: fc.oneof(fc.array(ipConf, { maxLength: 3 }), fc.anything({ maxDepth: 1 })),
          routes: fc.oneof(fc.array(fc.record({ dst: fc.oneof(fc.constantFrom('0.0.0.0/0', '::/0', 'x'), fc.anything({ maxDepth: 0 })), gw: fc.anything({ maxDepth: 0 }), mtu: fc.anything({ maxDepth: 0 }), priority: fc.oneof(fc.integer(), fc.constant(2 ** 40)) }, { requiredKeys: [] }), { maxLength: 2 }), fc.anything({ maxDepth: 1 })),
          dns: fc.oneof(fc.record({ nameservers: fc.anything({ maxDepth: 1 }), domain: fc.anything({ maxDepth: 0 }), search: fc.array(fc.string()), options: fc.anything({ maxDepth: 1 }) }, { requiredKeys: [] }), fc.anything({ maxDepth: 1 })),
        },
        { requiredKeys: [] },
      ),
    },
    { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) },
  );
  const labelsObject = fc.dictionary(fc.oneof(fc.constantFrom('app', 'k8s.pod.name', 'tier', 'a'.repeat(300), ''), junkString), fc.oneof(fc.constantFrom('web', ''), junkString, fc.anything({ maxDepth: 0 })), { maxKeys: 4 });
  const runtimeConfig = fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: fc.record({ labels: fc.oneof(labelsObject, fc.anything({ maxDepth: 1 })), portMappings: fc.anything({ maxDepth: 2 }), ips: fc.anything({ maxDepth: 1 }) }, { requiredKeys: [] }) },
    { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) },
  );
  const attachments = fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: fc.array(fc.record({ containerID: fc.oneof(containerId, fc.anything({ maxDepth: 0 })), ifname: fc.oneof(ifname, fc.anything({ maxDepth: 0 })) }, { requiredKeys: [] }), { maxLength: 4 }) },
    { weight: 1, arbitrary: fc.anything({ maxDepth: 1 }) },
  );
  const config = () =>
    fc.record(
      {
        cniVersion: version,
        name: fc.oneof({ weight: 6, arbitrary: fc.constant('weft') }, { weight: 1, arbitrary: fc.constantFrom('', '-x', 'a b', 'k8s-pod-network') }, { weight: 1, arbitrary: fc.anything({ maxDepth: 0 }) }),
        type: fc.oneof({ weight: 8, arbitrary: fc.constant('weft') }, { weight: 1, arbitrary: fc.constantFrom('bridge', 'Weft', '') }, { weight: 1, arbitrary: fc.anything({ maxDepth: 0 }) }),
        network: fc.oneof({ weight: 8, arbitrary: fc.constant(NETWORK) }, { weight: 1, arbitrary: fc.constantFrom(undefined, 'blue', 'Default', 'a'.repeat(64), '') }, { weight: 1, arbitrary: fc.anything({ maxDepth: 0 }) }),
        agentSocket: fc.oneof({ weight: 12, arbitrary: fc.constant(agent.socket) }, { weight: 1, arbitrary: fc.constantFrom(undefined, 'relative.sock', '/' + 'a'.repeat(200), files.regular, join(tmp, 'nobody.sock'), files.fifo) }, { weight: 1, arbitrary: fc.anything({ maxDepth: 0 }) }),
        mtu: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: fc.constantFrom(1400, 1450, 68, 67, 0, -1, 65535, 65536, 1450.5, 1e300, '1400') }, { weight: 1, arbitrary: fc.anything({ maxDepth: 0 }) }),
        prevResult,
        runtimeConfig,
        capabilities: fc.oneof(fc.constant(undefined), fc.constant({ labels: true, portMappings: true }), fc.anything({ maxDepth: 1 })),
        'cni.dev/valid-attachments': attachments,
        extra: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.anything({ maxDepth: 3 }) }),
      },
      { requiredKeys: [] },
    );

  // bytes on stdin: mostly the generated config, sometimes broken in the ways a runtime or an attacker could break it
  const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
  const stdin = () =>
    fc.oneof(
      { weight: 20, arbitrary: config().map((c) => Buffer.from(JSON.stringify(c) ?? '')) },
      { weight: 1, arbitrary: config().map((c) => Buffer.from(JSON.stringify(c) ?? '').subarray(0, 17)) },
      // a config with bytes changed, dropped or added: what the shim's own scanner must survive
      {
        weight: 4,
        arbitrary: fc
          .tuple(config(), fc.array(fc.tuple(fc.nat(), fc.constantFrom('set', 'drop', 'add'), fc.constantFrom(0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x3a, 0x2c, 0x75, 0x00, 0xff, 0x20, 0x30, 0x64)), { minLength: 1, maxLength: 4 }))
          .map(([c, edits]) => {
            const b = [...Buffer.from(JSON.stringify(c) ?? '{}')];
            for (const [at, op, byte] of edits) {
              const i = b.length === 0 ? 0 : at % b.length;
              if (op === 'set') b[i] = byte;
              else if (op === 'drop') b.splice(i, 1);
              else b.splice(i, 0, byte);
            }
            return Buffer.from(b);
          }),
      },
      { weight: 1, arbitrary: fc.constantFrom(...['{"agentSocket":"\\ud800"}', '{"agentSocket":"\\udc00x"}', '{"agentSocket":"\\u0000"}', '{"cniVersion":"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"}', '{"' + 'k'.repeat(100) + '":1,"agentSocket":"/x"}', '{"agentSocket":"' + '\\u00ff'.repeat(300) + '"}', '{"a":"\\', '{"a":[{"b":"}"}]', '{"agentSocket":', '{,}', '{"x":1,}', '  {  }  ', '{"agentSocket":"\\/run\\/weft\\/agent.sock"}'].map((t) => Buffer.from(t))) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
      { weight: 1, arbitrary: fc.constant(Buffer.from(`{"cniVersion":"1.1.0","name":"weft","type":"weft","network":"\xff\xfe","agentSocket":"${agent.socket}"}`, 'latin1')) },
      { weight: 1, arbitrary: fc.constant(Buffer.from(`{"cniVersion":"1.1.0","name":"weft","type":"weft","agentSocket":"${agent.socket}","x":${deep(5000)}}`)) },
      { weight: 1, arbitrary: fc.constant(Buffer.from(`{"cniVersion":"1.1.0","name":"weft","type":"weft","agentSocket":"${agent.socket}","x":${deep(200_000)}}`)) },
      { weight: 1, arbitrary: fc.constantFrom(Buffer.from(''), Buffer.from('null'), Buffer.from('[]'), Buffer.from('"weft"'), Buffer.from('{}'), Buffer.from('{"a":1}{"b":2}'), Buffer.from('{"cniVersion":"1.1.0","cniVersion":7}')) },
      { weight: 1, arbitrary: fc.constant(Buffer.from(JSON.stringify({ cniVersion: '1.1.0', name: 'weft', type: 'weft', agentSocket: agent.socket, pad: 'x'.repeat(1 << 20) }))) },
    );

  const envFor = (bytes: boolean) =>
    fc.record({
      CNI_COMMAND: command,
      CNI_CONTAINERID: containerId,
      CNI_NETNS: netns(),
      CNI_IFNAME: ifname,
      CNI_ARGS: bytes ? fc.oneof({ weight: 6, arbitrary: cniArgs }, { weight: 1, arbitrary: fc.constant(Buffer.from('K8S_POD_NAME=\xff\xfe\xc0;weft.label.a=\x80', 'latin1')) }) : cniArgs,
      CNI_PATH: cniPath,
    }) as fc.Arbitrary<Input['env']>;

  const input = (bytes: boolean): fc.Arbitrary<Input> => fc.record({ env: envFor(bytes), stdin: stdin() });

  // ---- calling the agent ----

  function execShim(env: Input['env'], body: Buffer, sanitized = false): Promise<Reply & { code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
    const e: Record<string, string> = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
    // a process environment is C strings: a value ends at its first NUL, as the shim would see it
    for (const [k, v] of Object.entries(seenEnv({ env, stdin: body }, true))) if (v !== undefined) e[k] = String(v);
    if (sanitized) Object.assign(e, { ASAN_OPTIONS: 'detect_leaks=0:exitcode=86', UBSAN_OPTIONS: 'halt_on_error=1:exitcode=87:print_stacktrace=1' });
    return launcher.run(sanitized ? sanitizedShim : SHIM, e, body);
  }

  function callSocket(env: Input['env'], body: Buffer): Promise<Reply> {
    const envBuf = Buffer.concat(
      Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => Buffer.concat([Buffer.from(`${k}=`), Buffer.isBuffer(v) ? v : Buffer.from(v as string), Buffer.from([0])])),
    );
    const frame = Buffer.alloc(12 + envBuf.length + body.length);
    frame.write('WCN1');
    frame.writeUInt32BE(envBuf.length, 4);
    envBuf.copy(frame, 8);
    frame.writeUInt32BE(body.length, 8 + envBuf.length);
    body.copy(frame, 12 + envBuf.length);
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const c = createConnection(agent.socket);
      const timer = setTimeout(() => {
        c.destroy();
        reject(new Error(`the agent did not answer within ${CALL_DEADLINE_MS} ms`));
      }, CALL_DEADLINE_MS);
      c.on('data', (d: Buffer) => chunks.push(d));
      c.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      c.on('end', () => {
        clearTimeout(timer);
        const reply = Buffer.concat(chunks);
        if (reply.length < 12 || reply.toString('latin1', 0, 4) !== 'WCN1' || reply.readUInt32BE(8) !== reply.length - 12) {
          reject(new Error(`malformed reply from the agent: ${reply.toString('latin1').slice(0, 200)}`));
          return;
        }
        resolve({ status: reply.readUInt32BE(4), stdout: reply.subarray(12).toString('utf8') });
      });
      c.end(frame);
    });
  }

  /** The environment the receiving side sees: an exec'd shim gets C strings, cut at their first NUL. */
  function seenEnv(inp: Input, viaShim: boolean): Input['env'] {
    if (!viaShim) return inp.env;
    // and no single string may exceed the kernel's MAX_ARG_STRLEN (128 KiB), or exec itself fails
    return Object.fromEntries(Object.entries(inp.env).map(([k, v]) => [k, v === undefined ? v : String(v).split('\0')[0].slice(0, 100_000)]));
  }

  function socketOf(stdin: Buffer): unknown {
    try {
      return (JSON.parse(stdin.toString('utf8')) as { agentSocket?: unknown } | null)?.agentSocket;
    } catch {
      return undefined;
    }
  }

  /** The oracle: what any answer must look like, and what some inputs must be answered with. */
  function judge(inp: Input, r: Reply, viaShim: boolean): void {
    const env = seenEnv(inp, viaShim);
    const cmd = env.CNI_COMMAND === undefined ? undefined : String(env.CNI_COMMAND);
    const knownVerb = cmd !== undefined && VERBS.includes(cmd);
    if (r.status === 0) {
      expect(knownVerb, `success for CNI_COMMAND ${JSON.stringify(cmd)}`).toBe(true);
      if (cmd === 'VERSION') {
        expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: '1.1.0', supportedVersions: expect.arrayContaining(['1.1.0', '0.4.0']) });
        return;
      }
      if (cmd === 'ADD') {
        const res = JSON.parse(r.stdout) as { ips?: Array<{ address: string }>; interfaces?: unknown[] };
        expect(res.ips?.length).toBeGreaterThan(0);
        const c = JSON.parse(inp.stdin.toString('utf8')) as { network?: string };
        const a = { containerId: String(env.CNI_CONTAINERID), ifname: String(env.CNI_IFNAME), network: c.network ?? NETWORK };
        added.set(JSON.stringify(a), a);
      } else {
        expect(r.stdout).toBe('');
      }
      return;
    }
    expect(r.status).toBe(1);
    const err = JSON.parse(r.stdout) as { cniVersion?: unknown; code?: unknown; msg?: unknown; details?: unknown };
    expect(typeof err.cniVersion).toBe('string');
    expect(typeof err.msg).toBe('string');
    expect((err.msg as string).length).toBeGreaterThan(0);
    if (err.details !== undefined) expect(typeof err.details).toBe('string');
    expect(ALLOWED_CODES.has(err.code as number), `code ${String(err.code)}: ${String(err.msg)}`).toBe(true);
    // The shim answers a missing or unknown verb itself, before anything else. The agent first
    // checks the frame (environment over 64 KiB, config over 1 MiB), then reads the environment
    // before the config: a missing or unknown verb is INVALID_ENV.
    const envBytes = Object.entries(env).reduce((n, [k, v]) => n + (v === undefined ? 0 : k.length + 2 + Buffer.byteLength(v)), 0);
    if (viaShim && !knownVerb) expect(err.code).toBe(4);
    else if (viaShim && inp.stdin.length > 1 << 20) expect(err.code).toBe(5);
    // a shim pointed at another socket (or none) answers for itself: malformed, refused path, oversized environment, or unreachable
    else if (viaShim && socketOf(inp.stdin) !== agent.socket && !inp.stdin.includes(agent.socket)) expect([4, 6, 7, 11]).toContain(err.code);
    else if (envBytes > 64 * 1024) expect(err.code).toBe(4);
    // a NUL inside a value splits it in the frame: whatever follows is read as another variable
    else if (!viaShim && Object.values(env).some((v) => (typeof v === 'string' ? v.includes('\0') : v?.includes(0)))) return;
    else if (!viaShim && inp.stdin.length > 1 << 20) expect(err.code).toBe(5);
    else if (!knownVerb) expect(err.code).toBe(4);
  }

  /**
   * Generates `runs` inputs from `seed` (the same seed gives the same inputs in the same order) and
   * sends them CONCURRENCY at a time, as a busy node's runtime does; stops at the first wrong answer.
   */
  async function runSome(label: string, seed: number, runs: number, viaShim: boolean): Promise<{ ok: number; refused: Map<number, number>; ms: number }> {
    const refused = new Map<number, number>();
    let ok = 0;
    const times: number[] = [];
    let slowest: { ms: number; what: string } | undefined;
    const t0 = Date.now();
    const inputs = fc.sample(input(!viaShim), { seed, numRuns: runs });
    let next = 0;
    let failure: Error | undefined;
    const one = async (i: number): Promise<void> => {
      const inp = inputs[i];
      const t = performance.now();
      let r: Reply | undefined;
      try {
        // every other input goes through the sanitized build of the same shim
        r = viaShim ? await execShim(inp.env, inp.stdin, i % 2 === 1) : await callSocket(inp.env, inp.stdin);
        const took = performance.now() - t;
        times.push(took);
        if (took > (slowest?.ms ?? 0)) slowest = { ms: took, what: `#${i} ${String(inp.env.CNI_COMMAND).slice(0, 10)}, stdin ${inp.stdin.length} B, exit ${r.status}` };
        const s = r as Partial<Awaited<ReturnType<typeof execShim>>>;
        if (s.signal) throw new Error(`the shim was killed by ${s.signal}; stderr: ${s.stderr}`);
        if (viaShim && r.status !== 0 && r.status !== 1) throw new Error(`the shim exited ${r.status}; stderr: ${s.stderr?.slice(0, 3000)}`);
        judge(inp, r, viaShim);
        if (r.status === 0) ok++;
        else {
          const code = (JSON.parse(r.stdout) as { code: number }).code;
          refused.set(code, (refused.get(code) ?? 0) + 1);
        }
      } catch (e) {
        // the input shortened so a report stays readable; seed and index reproduce it whole
        const shown = fc.stringify(inp).replace(/(.)\1{40,}/g, (m, c: string) => `${c}…(${m.length}×)`).slice(0, 3000);
        failure ??= new Error(`${label} input #${i} of seed ${seed}: ${(e as Error).message}\nreply: ${r ? `exit ${r.status} ${r.stdout.slice(0, 1000)}` : 'none'}\ninput: ${shown}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (!failure && next < inputs.length) await one(next++);
    }));
    if (failure) throw failure;
    if (agent.proc.exited) throw new Error(`the agent exited during the ${label} run`);
    times.sort((x, y) => x - y);
    const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))].toFixed(1);
    console.log(`${label}: per call p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms (${slowest?.what})`);
    return { ok, refused, ms: Date.now() - t0 };
  }

  it('every generated request through the shim binary ends in success or a CNI error', async () => {
    const r = await runSome('shim', SHIM_SEED, SHIM_RUNS, true);
    console.log(`shim: ${SHIM_RUNS} execs in ${r.ms} ms, ${r.ok} succeeded, refused by code ${JSON.stringify(Object.fromEntries(r.refused))}`);
    expect(r.ok).toBeGreaterThan(0);
  }, 300_000);

  it('every generated request on the agent socket ends in success or a CNI error', async () => {
    const r = await runSome('socket', SOCKET_SEED, SOCKET_RUNS, false);
    console.log(`socket: ${SOCKET_RUNS} requests in ${r.ms} ms, ${r.ok} succeeded, refused by code ${JSON.stringify(Object.fromEntries(r.refused))}`);
    expect(r.ok).toBeGreaterThan(0);
  }, 300_000);

  // Inputs the fuzz found answered wrongly, kept as they were found.
  describe('regressions', () => {
    // CNI_ARGS past the 64 KiB the agent reads (seed 99540034): the shim sent it and the agent
    // answered DECODE_FAILURE (6) with the fallback version, as if the frame were broken.
    it('an oversized CNI_ARGS is INVALID_ENV (4) from the shim and from the agent alike', async () => {
      const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'fz1', CNI_NETNS: containers[0], CNI_IFNAME: 'eth0', CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${'x'.repeat(70_000)}` };
      const body = Buffer.from(conf({ cniVersion: '0.4.0' }));
      for (const r of [await execShim(env, body), await execShim(env, body, true), await callSocket(env, body)]) {
        expect(r.status).toBe(1);
        expect(JSON.parse(r.stdout)).toMatchObject({ code: 4, msg: 'the CNI_* environment is larger than 64 KiB' });
      }
      // from the shim, labelled with the config's own version
      expect(JSON.parse((await execShim(env, body)).stdout).cniVersion).toBe('0.4.0');
    });
  });

  it('after DEL of every successful ADD nothing is left: links, addresses, rules, allocations, endpoints', async () => {
    const adds = [...added.values()];
    console.log(`DEL of ${adds.length} distinct successful ADDs`);
    expect(adds.length).toBeGreaterThan(0);
    for (const a of adds) {
      const r = await callSocket({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: a.containerId, CNI_IFNAME: a.ifname }, Buffer.from(conf({ network: a.network })));
      expect(r, JSON.stringify(a)).toEqual({ status: 0, stdout: '' });
    }
    expect(agent.proc.exited).toBe(false);
    // the agent's own table of addresses it handed out
    const db = new Database(join(agent.stateDir, 'agent.db'), { readonly: true, fileMustExist: true });
    try {
      expect(db.prepare('SELECT network, ip, container_id, ifname FROM ipam_allocations').all()).toEqual([]);
    } finally {
      db.close();
    }
    // the kernel: the host namespace as it was, every container namespace back to lo alone
    expect(hostState(host.netns)).toEqual(before);
    for (const c of containers) {
      const links = (JSON.parse(execFileSync('ip', ['-n', c.slice('/run/netns/'.length), '-j', 'link', 'show'], { encoding: 'utf8' })) as Array<{ ifname: string }>).map((l) => l.ifname);
      expect(links, c).toEqual(['lo']);
    }
    // the controller: every endpoint the agent reported it has also released (the outbox delivers asynchronously)
    await waitFor('the controller to hold no endpoint', async () => {
      const r = await grpcCall(lab.controller!.netns, controller.server, admin, 'ListEndpoints', {});
      if (!r.ok) throw new GiveUp(`ListEndpoints failed: ${r.code} ${r.details}`);
      return (r.res.endpoints as unknown[]).length === 0 ? true : (console.log(JSON.stringify(r.res.endpoints)), false);
    }, 30_000, 500);
    // and the agent still works: STATUS, then a clean ADD and DEL through the shim
    expect((await execShim({ CNI_COMMAND: 'STATUS' }, Buffer.from(conf()))).status).toBe(0);
    const env = { CNI_CONTAINERID: 'after-fuzz', CNI_NETNS: containers[0], CNI_IFNAME: 'eth0' };
    const add = await execShim({ CNI_COMMAND: 'ADD', ...env }, Buffer.from(conf()));
    expect(add.status, add.stdout).toBe(0);
    expect(JSON.parse(add.stdout).ips[0].address).toMatch(/^10\./);
    expect(await execShim({ CNI_COMMAND: 'DEL', ...env }, Buffer.from(conf()))).toMatchObject({ status: 0, stdout: '' });
    expect(hostState(host.netns)).toEqual(before);
    // nothing went wrong on the agent's side: no warning or error in its log but the refusals
    // themselves, and so no endpoint it reported was refused by the controller
    const warned = new Map<string, number>();
    for (const line of readFileSync(agent.logFile).subarray(logStart).toString('utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      const l = JSON.parse(line) as { level: number; msg: string; err?: { message?: string } };
      if (l.level < 40 || l.msg === 'cni request refused' || l.msg === 'malformed cni request') continue;
      const k = `${l.level} ${l.msg}${l.err?.message ? `: ${l.err.message.slice(0, 200)}` : ''}`;
      warned.set(k, (warned.get(k) ?? 0) + 1);
    }
    expect(Object.fromEntries(warned)).toEqual({});
  }, 90_000);
});

type HostState = { links: string[]; addrs: string[]; iptables: string; ip6tables: string; nft: string };

/** What the host namespace holds that a leak would change: link names and kinds, addresses, and the packet filter, counters stripped. */
function hostState(ns: string): HostState {
  const run = (cmd: string, args: string[]) => execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8' });
  const links = (JSON.parse(execFileSync('ip', ['-n', ns, '-d', '-j', 'link', 'show'], { encoding: 'utf8' })) as Array<{ ifname: string; linkinfo?: { info_kind?: string } }>)
    .map((l) => `${l.ifname} ${l.linkinfo?.info_kind ?? ''}`).sort();
  const addrs = (JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'addr', 'show'], { encoding: 'utf8' })) as Array<{ ifname: string; addr_info: Array<{ local: string; prefixlen: number }> }>)
    // link-local v6 addresses are the kernel's own, made when a bridge gets its first port
    .flatMap((l) => l.addr_info.filter((a) => !a.local.startsWith('fe80:')).map((a) => `${l.ifname} ${a.local}/${a.prefixlen}`)).sort();
  const strip = (s: string) => s.split('\n').filter((l) => !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/g, '')).join('\n');
  return {
    links,
    addrs,
    iptables: strip(run('iptables-save', [])),
    ip6tables: strip(run('ip6tables-save', [])),
    nft: run('nft', ['list', 'ruleset']).replace(/counter packets \d+ bytes \d+/g, 'counter'),
  };
}

// ---- exec'ing the shim ----
//
// fork() costs in proportion to the forking process's memory, and the test
// worker holds the generated inputs: exec'ing from it measured 90 ms per
// shim against 24 ms from a small process. So a small Node process does the
// exec'ing: one JSON line per call in (binary, environment, stdin), one line
// per finished call out (exit status, signal, stdout, stderr). It applies the
// per-call deadline itself and reports a kill as a signal.

type ExecResult = Reply & { code: number | null; signal: NodeJS.Signals | null; stderr: string };
type Launcher = { run(bin: string, env: Record<string, string>, stdin: Buffer): Promise<ExecResult>; stop(): void };

const LAUNCHER = `
const { spawn } = require('node:child_process');
const rl = require('node:readline').createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const r = JSON.parse(line);
  const child = spawn(r.bin, [], { env: r.env, stdio: 'pipe' });
  const out = [], err = [];
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, r.deadlineMs);
  child.stdout.on('data', (b) => out.push(b));
  child.stderr.on('data', (b) => err.push(b));
  child.stdin.on('error', () => {});
  child.on('error', (e) => { clearTimeout(timer); process.stdout.write(JSON.stringify({ id: r.id, error: e.message }) + '\\n'); });
  child.on('close', (code, signal) => {
    clearTimeout(timer);
    process.stdout.write(JSON.stringify({ id: r.id, code, signal, timedOut, stdout: Buffer.concat(out).toString('base64'), stderr: Buffer.concat(err).toString('utf8').slice(0, 20000) }) + '\\n');
  });
  child.stdin.end(Buffer.from(r.stdin, 'base64'));
});
`;

function startLauncher(): Launcher {
  const child = spawn(process.execPath, ['-e', LAUNCHER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = new Map<number, { resolve: (r: ExecResult) => void; reject: (e: Error) => void }>();
  let next = 0;
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buf += chunk;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const r = JSON.parse(buf.slice(0, nl)) as { id: number; error?: string; code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; stdout: string; stderr: string };
      buf = buf.slice(nl + 1);
      const w = waiting.get(r.id);
      waiting.delete(r.id);
      if (!w) continue;
      if (r.error) w.reject(new Error(`exec failed: ${r.error}`));
      else if (r.timedOut) w.reject(new Error(`the shim did not finish within ${CALL_DEADLINE_MS} ms`));
      else w.resolve({ code: r.code, signal: r.signal, status: r.code ?? -1, stdout: Buffer.from(r.stdout, 'base64').toString('utf8'), stderr: r.stderr });
    }
  });
  child.on('exit', (code) => {
    for (const w of waiting.values()) w.reject(new Error(`the exec helper exited (${code})`));
    waiting.clear();
  });
  return {
    run(bin, env, stdin) {
      return new Promise((resolve, reject) => {
        const id = next++;
        waiting.set(id, { resolve, reject });
        child.stdin.write(JSON.stringify({ id, bin, env, stdin: stdin.toString('base64'), deadlineMs: CALL_DEADLINE_MS }) + '\n');
      });
    },
    stop() {
      if (child.exitCode === null) child.kill('SIGKILL'); // our own child, by its handle
    },
  };
}

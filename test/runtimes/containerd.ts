// Runs containers with `ctr run --cni` against a private containerd (own
// root, state and sockets in the test's temp dir). ctr has no flag for the
// CNI dirs: go-cni's defaults /etc/cni/net.d and /opt/cni/bin are fixed, so
// containerd and every ctr call run inside a mount sandbox where the test's
// config and plugin dirs are bind-mounted over those two paths (and the
// libcni cache under /var/lib/cni stays in the sandbox too).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync, closeSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { GiveUp, waitFor } from '../helpers/wait';
import { startSandbox, type Sandbox } from './sandbox';
import { IMAGE_REF } from './image';

export const CTR_NAMESPACE = 'wt';

export interface ContainerdOptions {
  dir: string;
  cniConfigDir: string;
  pluginDir: string;
  /**
   * Run inside this sandbox (the caller's, which it closes) instead of a
   * private one; it must already bind cniConfigDir on /etc/cni/net.d and
   * pluginDir on /opt/cni/bin.
   */
  sandbox?: Sandbox;
}

export interface CtrRun {
  id: string;
  /** The foreground `ctr run` process; it sends DEL when the task exits. */
  proc: ChildProcess;
  exited: Promise<number | null>;
  output(): string;
}

export interface Containerd {
  /** Runs a command on the runtime's host side: inside its sandbox's network namespace. */
  host(cmd: string, args: string[]): string;
  ctr(args: string[]): string;
  tryCtr(args: string[]): { code: number; stdout: string; stderr: string };
  importImage(archive: string): void;
  /** `ctr run --cni` in the foreground (not --detach: a detached ctr never sends DEL). */
  run(id: string, cmd: string[]): CtrRun;
  /** Resolves with the task's pid once it is RUNNING (CNI ADD is done by then). */
  waitRunning(id: string, timeoutMs?: number): Promise<number>;
  /** Kills the task and waits for the ctr run process to finish its DEL. */
  stop(run: CtrRun): Promise<void>;
  close(): Promise<void>;
  log(): string;
}

export async function startContainerd(o: ContainerdOptions): Promise<Containerd> {
  const root = join(o.dir, 'root');
  const state = join(o.dir, 'state');
  const fifo = join(o.dir, 'fifo');
  for (const d of [root, state, fifo]) mkdirSync(d, { recursive: true });
  const address = join(o.dir, 'containerd.sock');
  const config = join(o.dir, 'config.toml');
  writeFileSync(
    config,
    [
      'version = 2',
      `root = "${root}"`,
      `state = "${state}"`,
      // The CRI plugin would look for its own CNI setup; ctr does not need it.
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${address}"`,
      '[ttrpc]',
      `  address = "${address}.ttrpc"`,
      '[debug]',
      '  address = ""',
      '[metrics]',
      '  address = ""',
      '',
    ].join('\n'),
  );
  const sandbox: Sandbox =
    o.sandbox ??
    (await startSandbox(o.dir, [
      { source: o.cniConfigDir, target: '/etc/cni/net.d' },
      { source: o.pluginDir, target: '/opt/cni/bin' },
    ]));
  const closeSandbox = () => (o.sandbox ? undefined : sandbox.close());
  const logFile = join(o.dir, 'containerd.log');
  const logFd = openSync(logFile, 'a');
  // pdeathsig: a test process that dies does not leave the daemon behind.
  const daemon = spawn(
    sandbox.prefix()[0],
    [...sandbox.prefix().slice(1), 'setpriv', '--pdeathsig', 'TERM', '--', 'containerd', '--config', config],
    { stdio: ['ignore', logFd, logFd] },
  );
  closeSync(logFd);
  const daemonExit = new Promise<void>((r) => daemon.on('exit', () => r()));

  const argv = (args: string[]) => [...sandbox.prefix().slice(1), 'ctr', '--address', address, '-n', CTR_NAMESPACE, ...args];
  const tryCtr = (args: string[]) => {
    try {
      const stdout = execFileSync('nsenter', argv(args), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      return { code: 0, stdout, stderr: '' };
    } catch (e) {
      const err = e as { status: number | null; stdout?: string; stderr?: string };
      return { code: err.status ?? -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
    }
  };
  const ctr = (args: string[]) => {
    const r = tryCtr(args);
    if (r.code !== 0) throw new Error(`ctr ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');

  try {
    await waitFor('the private containerd to answer', () => {
      if (daemon.exitCode !== null) throw new GiveUp(`exited ${daemon.exitCode}`);
      return tryCtr(['version']).code === 0;
    }, 20_000, 100);
  } catch (e) {
    closeSandbox();
    throw new Error(`private containerd did not come up (${(e as Error).message}):\n${log().slice(-3000)}`);
  }

  const runs = new Set<CtrRun>();
  const taskPid = (id: string): number | undefined => {
    const line = tryCtr(['task', 'ls']).stdout.split('\n').find((l) => l.split(/\s+/)[0] === id);
    if (!line) return undefined;
    const [, pid, status] = line.trim().split(/\s+/);
    return status === 'RUNNING' ? Number(pid) : undefined;
  };

  const stop = async (run: CtrRun): Promise<void> => {
    // PID 1 in its own pid namespace ignores TERM without a handler.
    tryCtr(['task', 'kill', '-s', 'SIGKILL', run.id]);
    await withTimeout(run.exited, 15_000, `ctr run ${run.id} did not exit`);
    tryCtr(['container', 'rm', run.id]);
  };

  return {
    host: (cmd, args) => sandbox.exec(cmd, args),
    ctr,
    tryCtr,
    log,
    importImage(archive) {
      ctr(['image', 'import', archive]);
    },
    run(id, cmd) {
      const proc = spawn('nsenter', argv(['run', '--cni', '--null-io', '--fifo-dir', fifo, IMAGE_REF, id, ...cmd]), {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
      const run: CtrRun = { id, proc, exited, output: () => out };
      runs.add(run);
      void exited.then(() => runs.delete(run));
      return run;
    },
    waitRunning(id, timeoutMs = 20_000) {
      return waitFor(`task ${id} running`, () => taskPid(id), timeoutMs, 100);
    },
    stop,
    async close() {
      for (const run of [...runs]) await stop(run).catch(() => run.proc.kill('SIGKILL'));
      for (const line of tryCtr(['container', 'ls', '-q']).stdout.split('\n').filter(Boolean)) {
        tryCtr(['task', 'kill', '-s', 'SIGKILL', line]);
        tryCtr(['task', 'rm', '-f', line]);
        tryCtr(['container', 'rm', line]);
      }
      daemon.kill('SIGTERM');
      await withTimeout(daemonExit, 10_000, 'containerd did not stop').catch(() => daemon.kill('SIGKILL'));
      closeSandbox();
    },
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error(what)), ms))),
  ]);
}

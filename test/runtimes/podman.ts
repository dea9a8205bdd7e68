// Runs containers under podman 4.3's CNI backend with a CNI config dir and
// plugin dir of the test's choosing. Storage, state, tmp and the CNI cache
// all live in the test's temp dir (podman inside a mount sandbox), and a
// temp containers.conf replaces the machine's, so the machine's podman is
// untouched.
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { startSandbox, type Sandbox } from './sandbox';

export interface PodmanOptions {
  /** Temp dir owned by the caller; everything podman writes goes under it. */
  dir: string;
  cniConfigDir: string;
  pluginDirs: string[];
  /** Run inside this sandbox (the caller's, which it closes) instead of a private one: several runtimes on one host side. */
  sandbox?: Sandbox;
}

export interface Podman {
  /** Runs a command on the runtime's host side: inside its sandbox's network namespace. */
  host(cmd: string, args: string[]): string;
  /** Runs `podman <args>` and returns stdout; throws with stderr on failure. */
  run(args: string[], input?: string): string;
  /** Same, but returns the outcome instead of throwing. */
  tryRun(args: string[]): { code: number; stdout: string; stderr: string };
  loadImage(archive: string): void;
  /** Starts a detached container on `network`; returns its id. */
  start(name: string, network: string, cmd: string[]): string;
  /** The container's init pid, whose netns is the container's. */
  pid(name: string): number;
  ip(name: string, network: string): string;
  close(): void;
}

export async function startPodman(o: PodmanOptions): Promise<Podman> {
  const root = join(o.dir, 'root');
  const runroot = join(o.dir, 'runroot');
  const tmp = join(o.dir, 'tmp');
  for (const d of [root, runroot, tmp]) mkdirSync(d, { recursive: true });
  const containersConf = join(o.dir, 'containers.conf');
  const nofile = hardLimit('Max open files');
  const nproc = hardLimit('Max processes');
  writeFileSync(
    containersConf,
    [
      '[containers]',
      // Rootful podman raises the container's open-files and process limits
      // (to 1048576 / 4194304); under a parent with lower hard limits (a CI
      // container) runc then fails with EPERM. The tests' containers need
      // few of either; asking for exactly the parent's hard nproc limit
      // failed too (observed), so stay well below it.
      `default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]`,
      '[engine]',
      // No systemd on the test machines; journald may be absent too.
      'cgroup_manager = "cgroupfs"',
      'events_logger = "none"',
      `tmp_dir = "${tmp}"`,
      '[network]',
      // Without this podman 4.3 picks netavark when installed.
      'network_backend = "cni"',
      `cni_plugin_dirs = [${o.pluginDirs.map((d) => JSON.stringify(d)).join(', ')}]`,
      `network_config_dir = "${o.cniConfigDir}"`,
      '',
    ].join('\n'),
  );
  const storageConf = join(o.dir, 'storage.conf');
  writeFileSync(storageConf, `[storage]\ndriver = "overlay"\ngraphroot = "${root}"\nrunroot = "${runroot}"\n`);
  const env = {
    ...process.env,
    CONTAINERS_CONF: containersConf,
    CONTAINERS_STORAGE_CONF: storageConf,
    TMPDIR: tmp,
  };
  const sandbox: Sandbox = o.sandbox ?? (await startSandbox(o.dir));
  const argv = (args: string[]) => [
    ...sandbox.prefix().slice(1),
    'podman',
    '--root', root, '--runroot', runroot, '--tmpdir', tmp,
    '--network-config-dir', o.cniConfigDir,
    ...args,
  ];

  const tryRun = (args: string[]) => {
    try {
      const stdout = execFileSync('nsenter', argv(args), { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      return { code: 0, stdout, stderr: '' };
    } catch (e) {
      const err = e as { status: number | null; stdout?: string; stderr?: string };
      return { code: err.status ?? -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
    }
  };
  const run = (args: string[], input?: string) => {
    try {
      return execFileSync('nsenter', argv(args), { env, encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (e) {
      const err = e as { status: number | null; stderr?: string };
      throw new Error(`podman ${args.join(' ')} exited ${err.status}: ${err.stderr}`);
    }
  };
  const inspect = (name: string, fmt: string) => run(['inspect', '--format', fmt, name]).trim();

  return {
    host: (cmd, args) => sandbox.exec(cmd, args),
    run,
    tryRun,
    loadImage(archive) {
      run(['load', '-q', '-i', archive]);
    },
    start(name, network, cmd) {
      return run(['run', '-d', '--pull', 'never', '--name', name, '--network', network, 'localhost/wt-busybox:latest', ...cmd]).trim();
    },
    pid(name) {
      return Number(inspect(name, '{{.State.Pid}}'));
    },
    ip(name, network) {
      return inspect(name, `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`);
    },
    close() {
      // Removing every container runs DEL for each; then the sandbox (and with
      // it the overlays and podman's mounts) goes away.
      tryRun(['rm', '-af', '-t', '0']);
      tryRun(['rmi', '-af']);
      if (!o.sandbox) sandbox.close();
    },
  };
}

function hardLimit(name: string): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(name));
  const hard = Number(line?.slice(name.length).trim().split(/\s+/)[1]);
  return Number.isFinite(hard) ? Math.min(Math.floor(hard / 2), 4096) : 1024;
}

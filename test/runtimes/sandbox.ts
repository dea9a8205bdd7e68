// A private mount and network namespace that a runtime runs inside. The
// network namespace is the runtime's "host": the bridges, iptables rules and
// forwarding sysctls its CNI plugins set up live there and vanish with it,
// so a test never changes the machine's own network. The mount namespace
// makes what the runtime writes to fixed machine paths land in a temp dir:
// libcni's cache (/var/lib/cni), the config and plugin dirs `ctr run --cni`
// insists on (/etc/cni/net.d, /opt/cni/bin, no flag changes them), runc/shim
// state under /run, podman's lock segment in /dev/shm (a private tmpfs here).
// Each of /etc, /opt, /var/lib and /run is an overlay with the machine's dir
// as the read-only lower layer and an upper dir in the temp dir; nothing on
// the machine changes and the namespaces vanish with their last process.
import { spawn, type ChildProcess, execFileSync, type ExecFileSyncOptions } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const OVERLAID = ['/etc', '/opt', '/var/lib', '/run'];

export interface Bind {
  source: string;
  target: string;
}

export interface Sandbox {
  /** Holder process whose mount namespace commands enter. */
  pid: number;
  /** Argv prefix that runs a command inside the namespaces. */
  prefix(): string[];
  exec(cmd: string, args: string[], opts?: ExecFileSyncOptions): string;
  close(): void;
}

/**
 * Starts the holder. It lives while this process holds its stdin open, so a
 * test process that dies takes the holder with it.
 */
export async function startSandbox(dir: string, binds: Bind[] = []): Promise<Sandbox> {
  const lines = ['set -e', 'ip link set lo up'];
  lines.push(...overlayMounts(dir, OVERLAID));
  // podman's lock segment (shm_open "libpod_lock") would outlive the test.
  lines.push('mount -t tmpfs -o mode=1777 wt-shm /dev/shm');
  for (const b of binds) lines.push(`mkdir -p ${b.target}`, `mount --bind ${b.source} ${b.target}`);
  lines.push('echo ready', 'exec cat >/dev/null');
  const holder = await startHolder(['unshare', '--mount', '--net', '--propagation', 'private', '--', 'sh', '-c', lines.join('\n')], 'mount sandbox');
  const pid = holder.pid!;
  const prefix = () => ['nsenter', `--mount=/proc/${pid}/ns/mnt`, `--net=/proc/${pid}/ns/net`, '--'];
  return {
    pid,
    prefix,
    exec(cmd, args, opts = {}) {
      const [p0, ...rest] = prefix();
      return execFileSync(p0, [...rest, cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts }) as string;
    },
    close() {
      holder.stdin!.end();
      holder.kill();
    },
  };
}

/** Shell lines that overlay each of `dirs` with the real dir as the read-only lower layer and an upper dir under `dir`. */
export function overlayMounts(dir: string, dirs: readonly string[]): string[] {
  return dirs.map((d) => {
    const o = join(dir, 'overlay', d.slice(1).replace(/\//g, '_'));
    mkdirSync(join(o, 'up'), { recursive: true });
    mkdirSync(join(o, 'work'), { recursive: true });
    return `mount -t overlay wt-overlay -o lowerdir=${d},upperdir=${o}/up,workdir=${o}/work ${d}`;
  });
}

/**
 * Starts a holder process (argv ends in a shell script that prints "ready",
 * then waits on its stdin) and resolves once it is ready. It lives while this
 * process holds its stdin open, so a test process that dies takes it along.
 */
export async function startHolder(argv: string[], what: string): Promise<ChildProcess> {
  const holder = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  holder.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    holder.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    holder.on('exit', (code) => reject(new Error(`${what} failed to start (${code}): ${stderr}`)));
  });
  return holder;
}

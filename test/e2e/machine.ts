// A lab host that looks like a machine of its own to the commands run on it:
// the lab's network namespace, plus a private mount and UTS namespace, so
// `weft agent`, `weft install-cni` and the controller use their default paths
// (/var/lib/weft, /etc/cni/net.d, /opt/cni/bin, /run/weft) and the host's own
// name, exactly as an operator's commands would on a real machine, while
// nothing lands on the machine running the tests. /etc, /opt and /var/lib are
// overlays with the real dirs as read-only lower layers and upper dirs in a
// temp dir; /run/weft is a private tmpfs. /run itself stays shared, so the
// container namespaces the test made under /run/netns before the machine
// started are there.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const OVERLAID = ['/etc', '/opt', '/var/lib'];
const PRIVATE_TMPFS = ['/run/weft'];

export interface Machine {
  name: string;
  netns: string;
  /** Holder process whose mount and UTS namespaces commands enter. */
  pid: number;
  /** argv that, run inside the machine's network namespace, enters its mount and UTS namespaces */
  enter(): string[];
  close(): void;
}

/**
 * Starts the holder inside `netns`. It lives while this process holds its
 * stdin open, so a test process that dies takes it (and the namespaces) along.
 */
export async function startMachine(name: string, netns: string, dir: string): Promise<Machine> {
  const lines = ['set -e', `hostname ${name}`];
  for (const d of OVERLAID) {
    const o = join(dir, 'overlay', d.slice(1).replace(/\//g, '_'));
    mkdirSync(join(o, 'up'), { recursive: true });
    mkdirSync(join(o, 'work'), { recursive: true });
    lines.push(`mount -t overlay wt-overlay -o lowerdir=${d},upperdir=${o}/up,workdir=${o}/work ${d}`);
  }
  // The mount point must exist in the shared /run; an empty dir there is all that changes outside.
  for (const d of PRIVATE_TMPFS) lines.push(`mkdir -p ${d}`, `mount -t tmpfs -o mode=0755 wt-run ${d}`);
  lines.push('echo ready', 'exec cat >/dev/null');
  const holder: ChildProcess = spawn('ip', ['netns', 'exec', netns, 'unshare', '--mount', '--uts', '--propagation', 'private', '--', 'sh', '-c', lines.join('\n')], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  holder.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    holder.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    holder.on('exit', (code) => reject(new Error(`machine ${name} failed to start (${code}): ${stderr}`)));
  });
  const pid = holder.pid!;
  return {
    name,
    netns,
    pid,
    enter: () => ['nsenter', `--mount=/proc/${pid}/ns/mnt`, `--uts=/proc/${pid}/ns/uts`, '--'],
    close() {
      holder.stdin!.end();
      holder.kill();
    },
  };
}

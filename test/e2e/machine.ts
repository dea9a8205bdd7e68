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
import { overlayMounts, startHolder } from '../runtimes/sandbox';

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
  lines.push(...overlayMounts(dir, OVERLAID));
  // The mount point must exist in the shared /run; an empty dir there is all that changes outside.
  for (const d of PRIVATE_TMPFS) lines.push(`mkdir -p ${d}`, `mount -t tmpfs -o mode=0755 wt-run ${d}`);
  lines.push('echo ready', 'exec cat >/dev/null');
  const holder = await startHolder(['ip', 'netns', 'exec', netns, 'unshare', '--mount', '--uts', '--propagation', 'private', '--', 'sh', '-c', lines.join('\n')], `machine ${name}`);
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

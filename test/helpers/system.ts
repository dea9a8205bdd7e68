// System packages the tests use. They are installed by .ci/run and by
// test/setup/require-system.sh (npm test's pretest), never by a test: a test
// that finds one missing fails at once, naming the Debian package.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** What a test needs from the machine: a command on PATH, a file, or just an installed package. */
export type SystemNeed = { pkg: string; command?: string; file?: string };

function present(n: SystemNeed): boolean {
  if (n.command !== undefined) {
    try {
      execFileSync('sh', ['-c', 'command -v "$1"', 'sh', n.command], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }
  if (n.file !== undefined) return existsSync(n.file);
  try {
    execFileSync('dpkg', ['-s', n.pkg], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Throws naming every missing package and the command that installs them. */
export function requireSystem(needs: SystemNeed[]): void {
  const missing = needs.filter((n) => !present(n));
  if (missing.length === 0) return;
  const what = missing.map((n) => n.command ?? n.file ?? n.pkg);
  const pkgs = [...new Set(missing.map((n) => n.pkg))].sort();
  throw new Error(
    `missing ${what.join(', ')}: install the Debian package${pkgs.length > 1 ? 's' : ''} ${pkgs.join(' ')} ` +
      `(apt-get install --no-install-recommends ${pkgs.join(' ')}; npm test's pretest and .ci/run do)`,
  );
}

/** podman, containerd and the static busybox the runtime tests' image is made of, and the reference CNI plugins. */
export const RUNTIME_PACKAGES: SystemNeed[] = [
  { pkg: 'podman', command: 'podman' },
  { pkg: 'containerd', command: 'containerd' },
  { pkg: 'containerd', command: 'ctr' },
  // the image needs a busybox that runs without a libc in the rootfs
  { pkg: 'busybox-static' },
  { pkg: 'containernetworking-plugins', file: '/usr/lib/cni/bridge' },
];

// What `podman network inspect` shows about a weft network: this host's
// subnet and gateway in it. podman 4.3 (CNI backend) reads a conflist's
// subnets only from the IPAM section of a `bridge`, `macvlan` or `ipvlan`
// first plugin; for any other plugin type it shows the network's labels,
// which it reads from the list's `args.podman_labels` (and options from
// `args.podman_options`), and nothing else. libcni passes neither to the
// plugins. So weft's conflists carry labels:
//   weft.network  the weft network (written by install-cni)
//   weft.subnet   this host's subnet in it, e.g. 10.244.3.0/24  (kept by the agent)
//   weft.gateway  the gateway containers route through           (kept by the agent)
//
// The agent rewrites them when its leases change and checks them at every
// resync, in the conflists install-cni recorded for its socket (in
// `<socket>.conflists`, a JSON list of paths) and in /etc/cni/net.d; a file
// already right is not written, and a conflist for another agent's socket is
// never touched.
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { replaceAtomicSync } from '../../controller/common/files';

export const LABEL_NETWORK = 'weft.network';
export const LABEL_SUBNET = 'weft.subnet';
export const LABEL_GATEWAY = 'weft.gateway';

/** Where the agent scans besides the recorded conflists: the runtimes' default conf dir. */
export const DEFAULT_CONF_DIRS = ['/etc/cni/net.d'];

export type HostAddressing = { subnet: string; gateway: string };

/** The file listing the conflists install-cni wrote for the agent at `socket`. */
export function conflistRecordPath(socket: string): string {
  return `${socket}.conflists`;
}

export function recordedConflists(socket: string): string[] {
  try {
    const v = JSON.parse(readFileSync(conflistRecordPath(socket), 'utf8')) as unknown;
    return Array.isArray(v) ? v.filter((p): p is string => typeof p === 'string' && p.startsWith('/')) : [];
  } catch {
    return [];
  }
}

/** install-cni: remember `path` (and forget `removed`) for the agent at `socket`. */
export function recordConflist(socket: string, path: string, removed: string[] = []): void {
  const paths = new Set(recordedConflists(socket));
  for (const r of removed) paths.delete(r);
  paths.add(path);
  const record = conflistRecordPath(socket);
  mkdirSync(dirname(record), { recursive: true, mode: 0o755 });
  replaceAtomicSync(record, `${JSON.stringify([...paths].sort(), null, 2)}\n`, 0o644);
}

type Conflist = { args?: Record<string, unknown>; plugins?: Array<Record<string, unknown>> } & Record<string, unknown>;

/** The weft plugin entry of a conflist for the agent at `socket`, if it has one. */
function weftPlugin(c: Conflist, socket: string): Record<string, unknown> | undefined {
  const plugins = Array.isArray(c.plugins) ? c.plugins : [];
  return plugins.find((p) => p?.type === 'weft' && p.agentSocket === socket);
}

/**
 * The conflist's labels with this host's addressing for its network (none:
 * the host has no subnet there, so the labels say nothing rather than
 * something stale). Undefined when the text is not a weft conflist for
 * `socket`, or is already right.
 */
export function withHostLabels(text: string, socket: string, addressing: (network: string) => HostAddressing | undefined): string | undefined {
  let c: Conflist;
  try {
    c = JSON.parse(text) as Conflist;
  } catch {
    return undefined;
  }
  if (typeof c !== 'object' || c === null) return undefined;
  const plugin = weftPlugin(c, socket);
  if (!plugin) return undefined;
  const network = typeof plugin.network === 'string' && plugin.network !== '' ? plugin.network : 'default';
  const args = typeof c.args === 'object' && c.args !== null && !Array.isArray(c.args) ? { ...c.args } : {};
  const old = args.podman_labels;
  const labels: Record<string, unknown> = typeof old === 'object' && old !== null && !Array.isArray(old) ? { ...old } : {};
  const want = addressing(network);
  const before = JSON.stringify(labels);
  labels[LABEL_NETWORK] = network;
  if (want) {
    labels[LABEL_SUBNET] = want.subnet;
    labels[LABEL_GATEWAY] = want.gateway;
  } else {
    delete labels[LABEL_SUBNET];
    delete labels[LABEL_GATEWAY];
  }
  if (JSON.stringify(labels) === before) return undefined;
  args.podman_labels = labels;
  return `${JSON.stringify({ ...c, args }, null, 2)}\n`;
}

/** The weft.subnet and weft.gateway labels a conflist already carries, so install-cni rewriting it keeps them. */
export function hostLabelsOf(text: string): HostAddressing | undefined {
  try {
    const labels = (JSON.parse(text) as Conflist).args?.podman_labels as Record<string, unknown> | undefined;
    const subnet = labels?.[LABEL_SUBNET];
    const gateway = labels?.[LABEL_GATEWAY];
    return typeof subnet === 'string' && typeof gateway === 'string' ? { subnet, gateway } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Bring the labels of every weft conflist for `socket` up to date: the
 * recorded ones and those in `dirs`. Returns the paths written. A file that
 * cannot be read is skipped (it may be gone); one that cannot be written is
 * reported in `failed`, so the caller can log it.
 */
export function updateConflistLabels(
  socket: string, addressing: (network: string) => HostAddressing | undefined, dirs: readonly string[] = DEFAULT_CONF_DIRS,
): { written: string[]; failed: Array<{ path: string; error: Error }> } {
  const paths = new Set(recordedConflists(socket));
  for (const d of dirs) {
    try {
      for (const f of readdirSync(d)) if (f.endsWith('.conflist') && !f.startsWith('.')) paths.add(join(d, f));
    } catch {
      /* no such dir on this host */
    }
  }
  const written: string[] = [];
  const failed: Array<{ path: string; error: Error }> = [];
  for (const path of [...paths].sort()) {
    let text: string;
    let mode: number;
    try {
      const st = statSync(path);
      if (!st.isFile() || st.size > 1 << 20) continue;
      mode = st.mode & 0o7777;
      text = readFileSync(path, 'utf8');
    } catch {
      continue;
    }
    const next = withHostLabels(text, socket, addressing);
    if (next === undefined) continue;
    try {
      replaceAtomicSync(path, next, mode);
      written.push(path);
    } catch (e) {
      failed.push({ path, error: e as Error });
    }
  }
  return { written, failed };
}


// `weft install-cni`: puts the weft CNI plugin where container runtimes look
// for it — the shim binary as <bin-dir>/weft and a network config list
// <conf-dir>/10-<name>.conflist — so podman, containerd, CRI-O or Nomad
// start containers on weft without further setup.
//
// Both files are written atomically (a temp file in the same directory,
// fsync, rename): a runtime reading the directory at that moment sees the
// old file or the new one, never half of one. A file that already has the
// wanted content and mode is left alone, so running it again changes nothing
// (and a runtime watching the conf dir sees no event).
//
// Priority: runtimes that take "the first config in the directory" as their
// default network (containerd's CRI, `ctr run --cni`, Nomad) sort the file
// names bytewise, so `10-weft-blue.conflist` would silently win over
// `10-weft.conflist`. Writing a file that would sort before another weft
// network's config is refused unless --default says that is the intent;
// sorting before a foreign network's config is allowed (that is usually why
// weft is being installed) but said in a warning.
//
// portmap chaining: the reference plugin must be installed already. It is
// looked for in <bin-dir> and in /usr/lib/cni (where Debian's
// containernetworking-plugins puts it); weft does not install it.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkName } from '../controller/api/validate';
import { replaceAtomicSync } from '../controller/common/files';
import { loadCommandConfig } from '../controller/common/command';
import { ConfigError, readSources, type OptionSpec, type Raw } from '../controller/common/config-sources';
import { DEFAULT_AGENT_SOCKET, DEFAULT_NETWORK } from './cni/parse';
import { hostLabelsOf, LABEL_GATEWAY, LABEL_NETWORK, LABEL_SUBNET, recordConflist, type HostAddressing } from './cni/conflist-labels';
import { SUPPORTED_VERSIONS } from './cni/types';

export const PORTMAP_DIRS_EXTRA = ['/usr/lib/cni'];

export type InstallCniOptions = {
  binDir: string;
  confDir: string;
  network: string;
  name: string;
  cniVersion: string;
  socket: string;
  withPortmap: boolean;
  /** The shim to install; default dist/weft-cni beside the weft bundle. */
  source: string;
  /** 0-99: the conflist is <priority>-<name>.conflist, and runtimes that take the first file sort by that name. */
  priority: number;
  /** Allow the conflist to sort before another weft network's, making it the default on purpose. */
  makeDefault: boolean;
};

export type InstallCniReport = {
  binary: { path: string; changed: boolean };
  conflist: { path: string; changed: boolean };
  /** Where portmap was found, when chained. */
  portmap?: string;
  /** This network's earlier conflists under another priority, removed so runtimes see the name once. */
  removed: string[];
  warnings: string[];
};

type Key = 'binDir' | 'confDir' | 'network' | 'name' | 'cniVersion' | 'socket' | 'withPortmap' | 'source' | 'priority' | 'makeDefault';
const OPTIONS: Array<OptionSpec<Key>> = [
  { key: 'binDir', flag: '--bin-dir', env: 'WEFT_CNI_BIN_DIR', kind: 'string', form: 'an absolute directory path' },
  { key: 'confDir', flag: '--conf-dir', env: 'WEFT_CNI_CONF_DIR', kind: 'string', form: 'an absolute directory path' },
  { key: 'network', flag: '--network', env: 'WEFT_CNI_NETWORK', kind: 'string', form: 'a weft network name (a DNS label: a-z, 0-9, "-")' },
  { key: 'name', flag: '--name', env: 'WEFT_CNI_NAME', kind: 'string', form: 'a CNI network name (letters, digits, "_", ".", "-"; starting with a letter or digit)' },
  { key: 'cniVersion', flag: '--cni-version', env: 'WEFT_CNI_VERSION', kind: 'string', form: `one of ${SUPPORTED_VERSIONS.join(', ')}` },
  { key: 'socket', flag: '--socket', env: 'WEFT_CNI_SOCKET', kind: 'string', form: 'an absolute socket path of at most 107 bytes' },
  { key: 'withPortmap', flag: '--with-portmap', env: 'WEFT_CNI_WITH_PORTMAP', kind: 'bool', form: 'true or false' },
  { key: 'source', flag: '--source', env: 'WEFT_CNI_SOURCE', kind: 'string', form: 'the path of the weft-cni binary to install' },
  { key: 'priority', flag: '--priority', env: 'WEFT_CNI_PRIORITY', kind: 'string', form: 'a whole number from 0 to 99' },
  { key: 'makeDefault', flag: '--default', env: 'WEFT_CNI_DEFAULT', kind: 'bool', form: 'true or false' },
];

/** Every option of weft install-cni: the README's flag reference is generated from it (npm run gen:flags). */
export const INSTALL_CNI_OPTIONS: ReadonlyArray<OptionSpec<Key>> = OPTIONS;

export const DEFAULT_PRIORITY = 10;

const formOf = (k: Key) => OPTIONS.find((o) => o.key === k)!.form;
const bad = (raw: Raw, k: Key) => new ConfigError(`${raw.source}: ${JSON.stringify(raw.value)} is not ${formOf(k)}`);

/** dist/weft-cni beside the running bundle (dist/weft.mjs), or in the checkout when run from source. */
export function defaultShimPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'weft-cni'), resolve(here, '../dist/weft-cni')];
  return candidates.find((p) => existsSync(p)) ?? candidates[0];
}

export function parseInstallCniArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): InstallCniOptions {
  const { pick } = readSources(OPTIONS, argv, env, (p) => readFileSync(p, 'utf8'));
  const abs = (k: Key, fallback: string, max = 4096) => {
    const raw = pick(k);
    if (!raw) return fallback;
    const v = raw.value as string;
    if (!v.startsWith('/') || v.includes('\0') || Buffer.byteLength(v) > max) throw bad(raw, k);
    return v;
  };
  const netRaw = pick('network');
  if (netRaw && checkName(netRaw.value, netRaw.source)) throw bad(netRaw, 'network');
  const nameRaw = pick('name');
  if (nameRaw && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(nameRaw.value as string)) throw bad(nameRaw, 'name');
  const verRaw = pick('cniVersion');
  if (verRaw && !(SUPPORTED_VERSIONS as readonly string[]).includes(verRaw.value as string)) throw bad(verRaw, 'cniVersion');
  const srcRaw = pick('source');
  const prioRaw = pick('priority');
  if (prioRaw && !/^\d{1,2}$/.test(prioRaw.value as string)) throw bad(prioRaw, 'priority');
  return {
    binDir: abs('binDir', '/opt/cni/bin'),
    confDir: abs('confDir', '/etc/cni/net.d'),
    network: (netRaw?.value as string | undefined) ?? DEFAULT_NETWORK,
    name: (nameRaw?.value as string | undefined) ?? 'weft',
    cniVersion: (verRaw?.value as string | undefined) ?? '1.0.0',
    socket: abs('socket', DEFAULT_AGENT_SOCKET, 107),
    withPortmap: pick('withPortmap')?.value === true,
    source: srcRaw ? resolve(srcRaw.value as string) : defaultShimPath(),
    priority: prioRaw ? Number(prioRaw.value) : DEFAULT_PRIORITY,
    makeDefault: pick('makeDefault')?.value === true,
  };
}

/**
 * The conflist. Its labels (`args.podman_labels`, what `podman network
 * inspect` shows for a plugin it does not know) name the weft network and,
 * once the agent has written them, this host's subnet and gateway in it
 * (`host`, kept from the file being replaced: the agent keeps them current).
 */
export function renderConflist(o: Pick<InstallCniOptions, 'name' | 'cniVersion' | 'network' | 'socket' | 'withPortmap'>, host?: HostAddressing): string {
  const labels: Record<string, string> = { [LABEL_NETWORK]: o.network, ...(host ? { [LABEL_SUBNET]: host.subnet, [LABEL_GATEWAY]: host.gateway } : {}) };
  const plugins: object[] = [
    // "labels": runtimes that support the capability pass container labels, which become endpoint labels.
    // "ips": the address a runtime asks for (podman --ip with several addresses, Kubernetes' conventions) reaches weft.
    { type: 'weft', network: o.network, agentSocket: o.socket, capabilities: { labels: true, ips: true } },
  ];
  if (o.withPortmap) plugins.push({ type: 'portmap', capabilities: { portMappings: true }, snat: true });
  return JSON.stringify({ cniVersion: o.cniVersion, name: o.name, args: { podman_labels: labels }, plugins }, null, 2) + '\n';
}

/** The conflist's file name: runtimes that take the first config sort these bytewise. */
export function conflistFileName(priority: number, name: string): string {
  return `${String(priority).padStart(2, '0')}-${name}.conflist`;
}

/** The extensions libcni reads from a conf dir. */
const CONFIG_EXTENSIONS = ['.conf', '.conflist', '.json'];

type ConfigFile = { file: string; /** The CNI network name when the file configures weft, else undefined. */ weftName?: string };

/** The network configs in `dir` in the order runtimes sort them (bytewise, as Go's sort.Strings). */
function listConfigs(dir: string): ConfigFile[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw dirError(dir, 'weft network config', e);
  }
  return names
    .filter((f) => !f.startsWith('.') && CONFIG_EXTENSIONS.some((x) => f.endsWith(x)))
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    .map((file) => ({ file, weftName: weftNetworkName(join(dir, file)) }));
}

/** The network name of a config that runs the weft plugin; unreadable or foreign configs give undefined. */
function weftNetworkName(path: string): string | undefined {
  try {
    if (statSync(path).size > 1 << 20) return undefined;
    const c = JSON.parse(readFileSync(path, 'utf8')) as { name?: unknown; type?: unknown; plugins?: unknown };
    const plugins = Array.isArray(c.plugins) ? (c.plugins as Array<{ type?: unknown }>) : [c];
    return typeof c.name === 'string' && plugins.some((p) => p?.type === 'weft') ? c.name : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Where the new conflist lands among the others: refused when it would sort
 * first ahead of another weft network (unless made the default on purpose),
 * a warning when it sorts first ahead of a foreign network. Returns the
 * warnings and this network's own older files to remove.
 */
function checkPlacement(o: Pick<InstallCniOptions, 'confDir' | 'name' | 'priority' | 'makeDefault'>): { warnings: string[]; stale: string[] } {
  const ours = conflistFileName(o.priority, o.name);
  const all = listConfigs(o.confDir);
  const stale = all.filter((c) => c.weftName === o.name && c.file !== ours).map((c) => c.file);
  const others = all.filter((c) => c.weftName !== o.name);
  const first = others[0];
  const sortsFirst = first !== undefined && Buffer.compare(Buffer.from(ours), Buffer.from(first.file)) < 0;
  // installing the default again (or moving it) displaces nobody
  const alreadyDefault = all[0]?.weftName === o.name;
  if (alreadyDefault && first !== undefined && !sortsFirst) {
    return { warnings: [`${ours} no longer sorts first: runtimes that take the first config (containerd, ctr --cni, Nomad) now use ${first.file}`], stale };
  }
  if (!sortsFirst || alreadyDefault) return { warnings: [], stale };
  if (first.weftName !== undefined && !o.makeDefault) {
    let needed = o.priority + 1;
    while (needed < 100 && Buffer.compare(Buffer.from(conflistFileName(needed, o.name)), Buffer.from(first.file)) < 0) needed++;
    const instead = needed < 100 ? `give --priority ${needed} or higher to install it beside the default` : 'rename one of them';
    throw new Error(
      `${ours} would sort before ${first.file} (weft network "${first.weftName}") and silently become the default network of runtimes that take the first config (containerd, ctr --cni, Nomad): ${instead}, or --default to make "${o.name}" the default on purpose`,
    );
  }
  const what = first.weftName !== undefined ? `weft network "${first.weftName}"` : 'a network of another plugin';
  return { warnings: [`${ours} sorts before ${first.file} (${what}): runtimes that take the first config (containerd, ctr --cni, Nomad) now use "${o.name}" by default`], stale };
}

/** Explains an fs error on `dir` the way an operator fixes it. */
function dirError(dir: string, what: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException).code;
  const why =
    code === 'EACCES' || code === 'EPERM' ? 'permission denied (run as root, or choose a directory you can write)'
    : code === 'EROFS' ? 'the file system is read-only'
    : code === 'ENOTDIR' ? 'a path component is not a directory'
    : code === 'ENOSPC' ? 'no space left on the device'
    : (e as Error).message;
  return new Error(`cannot write ${what} in ${dir}: ${why}`);
}

/** Writes `content` to `path` through a temp file and rename, unless it already holds exactly that with `mode`. */
function writeAtomic(path: string, content: Buffer, mode: number, what: string): boolean {
  const dir = dirname(path);
  try {
    const st = statSync(path);
    if (st.isFile() && (st.mode & 0o7777) === mode && readFileSync(path).equals(content)) return false;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw dirError(dir, what, e);
  }
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch (e) {
    throw dirError(dir, what, e);
  }
  try {
    // the runtime must be able to exec the plugin whatever the umask was
    replaceAtomicSync(path, content, mode);
  } catch (e) {
    throw dirError(dir, what, e);
  }
  return true;
}

export function installCni(o: InstallCniOptions): InstallCniReport {
  const placement = checkPlacement(o);
  const warnings = [...placement.warnings];
  let shim: Buffer;
  try {
    shim = readFileSync(o.source);
  } catch (e) {
    throw new Error(`cannot read the weft CNI plugin binary ${o.source} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): build it with npm run build, or give --source`);
  }
  if (shim.length < 4 || shim.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${o.source} is not an executable (ELF) file; give the weft-cni binary with --source`);

  let portmap: string | undefined;
  if (o.withPortmap) {
    const dirs = [o.binDir, ...PORTMAP_DIRS_EXTRA];
    portmap = dirs.map((d) => join(d, 'portmap')).find((p) => {
      try {
        return statSync(p).isFile() && (statSync(p).mode & 0o111) !== 0;
      } catch {
        return false;
      }
    });
    if (!portmap) {
      throw new Error(
        `--with-portmap: no portmap plugin in ${dirs.join(' or ')}; install the reference plugins first (apt-get install containernetworking-plugins) or leave out --with-portmap`,
      );
    }
    if (dirname(portmap) !== o.binDir) {
      warnings.push(`portmap is in ${dirname(portmap)}, not in ${o.binDir}: the runtime's CNI plugin path must include ${dirname(portmap)} (or copy portmap into ${o.binDir})`);
    }
  }

  const binPath = join(o.binDir, 'weft');
  const confPath = join(o.confDir, conflistFileName(o.priority, o.name));
  const binChanged = writeAtomic(binPath, shim, 0o755, 'weft CNI plugin');
  // the host's subnet and gateway the agent wrote into the file being replaced stay (same network and socket only)
  const host = [confPath, ...placement.stale.map((f) => join(o.confDir, f))].map((p) => keptHostLabels(p, o)).find((h) => h !== undefined);
  const confChanged = writeAtomic(confPath, Buffer.from(renderConflist(o, host)), 0o644, 'weft network config');
  // only after the new file is in place, so the network never disappears from the directory
  const removed: string[] = [];
  for (const f of placement.stale) {
    try {
      unlinkSync(join(o.confDir, f));
      removed.push(join(o.confDir, f));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw dirError(o.confDir, 'weft network config', e);
    }
  }
  // the agent keeps the labels of the conflists recorded for its socket
  try {
    recordConflist(o.socket, confPath, removed);
  } catch (e) {
    warnings.push(`cannot record ${confPath} for the agent at ${o.socket} (${(e as Error).message}): podman network inspect shows this host's subnet only for conflists in /etc/cni/net.d`);
  }
  return { binary: { path: binPath, changed: binChanged }, conflist: { path: confPath, changed: confChanged }, ...(portmap ? { portmap } : {}), removed, warnings };
}

function keptHostLabels(path: string, o: Pick<InstallCniOptions, 'network' | 'socket'>): HostAddressing | undefined {
  try {
    const text = readFileSync(path, 'utf8');
    const c = JSON.parse(text) as { plugins?: Array<{ type?: unknown; network?: unknown; agentSocket?: unknown }> };
    const same = (c.plugins ?? []).some((p) => p?.type === 'weft' && p.network === o.network && p.agentSocket === o.socket);
    return same ? hostLabelsOf(text) : undefined;
  } catch {
    return undefined;
  }
}

const HELP = `usage: weft install-cni [flags]

  --bin-dir DIR        where the runtime finds CNI plugins (default /opt/cni/bin); the plugin goes there as "weft"
  --conf-dir DIR       where the runtime finds network configs (default /etc/cni/net.d); writes <priority>-<name>.conflist
  --priority N         0-99, the file name's prefix (default ${DEFAULT_PRIORITY}); runtimes that take the first config
                       (containerd, ctr --cni, Nomad) use the lowest as their default network
  --default            allow this network to sort before another weft network's config (make it the default)
  --network NAME       the weft network containers join (default ${DEFAULT_NETWORK})
  --name NAME          the CNI network name runtimes select (default weft)
  --cni-version V      the conflist's cniVersion: ${SUPPORTED_VERSIONS.join(', ')} (default 1.0.0)
  --socket PATH        the agent's socket (default ${DEFAULT_AGENT_SOCKET}; as weft agent --cni-socket)
  --with-portmap       chain the reference portmap plugin (must be in --bin-dir or ${PORTMAP_DIRS_EXTRA.join(', ')})
  --source FILE        the plugin binary to install (default dist/weft-cni beside the weft command)
Files are replaced atomically; running it again with the same flags changes nothing.
`;

export async function installCniCommand(argv: string[]): Promise<number> {
  const loaded = loadCommandConfig('install-cni', argv, HELP, () => parseInstallCniArgs(argv, process.env));
  if ('exit' in loaded) return loaded.exit;
  const o = loaded.config;
  try {
    const r = installCni(o);
    const said = (f: { path: string; changed: boolean }) => `${f.changed ? 'wrote' : 'unchanged'} ${f.path}`;
    process.stdout.write(`${said(r.binary)}\n${said(r.conflist)}${r.portmap ? ` (chains portmap: ${r.portmap})` : ''}\n`);
    for (const f of r.removed) process.stdout.write(`removed ${f} (this network's config under its old priority)\n`);
    for (const w of r.warnings) process.stderr.write(`weft install-cni: warning: ${w}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`weft install-cni: ${(err as Error).message}\n`);
    return 1;
  }
}

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
// portmap chaining: the reference plugin must be installed already. It is
// looked for in <bin-dir> and in /usr/lib/cni (where Debian's
// containernetworking-plugins puts it); weft does not install it.
import { closeSync, constants, existsSync, fchmodSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkName } from '../controller/api/validate';
import { loadCommandConfig } from '../controller/common/command';
import { ConfigError, readSources, type OptionSpec, type Raw } from '../controller/common/config-sources';
import { DEFAULT_AGENT_SOCKET, DEFAULT_NETWORK } from './cni/parse';
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
};

export type InstallCniReport = {
  binary: { path: string; changed: boolean };
  conflist: { path: string; changed: boolean };
  /** Where portmap was found, when chained. */
  portmap?: string;
  warnings: string[];
};

type Key = 'binDir' | 'confDir' | 'network' | 'name' | 'cniVersion' | 'socket' | 'withPortmap' | 'source';
const OPTIONS: Array<OptionSpec<Key>> = [
  { key: 'binDir', flag: '--bin-dir', env: 'WEFT_CNI_BIN_DIR', kind: 'string', form: 'an absolute directory path' },
  { key: 'confDir', flag: '--conf-dir', env: 'WEFT_CNI_CONF_DIR', kind: 'string', form: 'an absolute directory path' },
  { key: 'network', flag: '--network', env: 'WEFT_CNI_NETWORK', kind: 'string', form: 'a weft network name (a DNS label: a-z, 0-9, "-")' },
  { key: 'name', flag: '--name', env: 'WEFT_CNI_NAME', kind: 'string', form: 'a CNI network name (letters, digits, "_", ".", "-"; starting with a letter or digit)' },
  { key: 'cniVersion', flag: '--cni-version', env: 'WEFT_CNI_VERSION', kind: 'string', form: `one of ${SUPPORTED_VERSIONS.join(', ')}` },
  { key: 'socket', flag: '--socket', env: 'WEFT_CNI_SOCKET', kind: 'string', form: 'an absolute socket path of at most 107 bytes' },
  { key: 'withPortmap', flag: '--with-portmap', env: 'WEFT_CNI_WITH_PORTMAP', kind: 'bool', form: 'true or false' },
  { key: 'source', flag: '--source', env: 'WEFT_CNI_SOURCE', kind: 'string', form: 'the path of the weft-cni binary to install' },
];

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
  return {
    binDir: abs('binDir', '/opt/cni/bin'),
    confDir: abs('confDir', '/etc/cni/net.d'),
    network: (netRaw?.value as string | undefined) ?? DEFAULT_NETWORK,
    name: (nameRaw?.value as string | undefined) ?? 'weft',
    cniVersion: (verRaw?.value as string | undefined) ?? '1.0.0',
    socket: abs('socket', DEFAULT_AGENT_SOCKET, 107),
    withPortmap: pick('withPortmap')?.value === true,
    source: srcRaw ? resolve(srcRaw.value as string) : defaultShimPath(),
  };
}

export function renderConflist(o: Pick<InstallCniOptions, 'name' | 'cniVersion' | 'network' | 'socket' | 'withPortmap'>): string {
  const plugins: object[] = [
    // "labels": runtimes that support the capability pass container labels, which become endpoint labels.
    { type: 'weft', network: o.network, agentSocket: o.socket, capabilities: { labels: true } },
  ];
  if (o.withPortmap) plugins.push({ type: 'portmap', capabilities: { portMappings: true }, snat: true });
  return JSON.stringify({ cniVersion: o.cniVersion, name: o.name, plugins }, null, 2) + '\n';
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
  const tmp = join(dir, `.${what.replace(/\W+/g, '-')}.tmp-${process.pid}`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, mode);
    for (let off = 0; off < content.length; ) off += writeSync(fd, content, off);
    // open() applied the umask; the runtime must be able to exec the plugin whatever it was
    fchmodSync(fd, mode);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* never created */
    }
    throw dirError(dir, what, e);
  }
  // the rename is durable once the directory entry is
  try {
    const dfd = openSync(dir, constants.O_RDONLY);
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    /* some file systems cannot fsync a directory; the rename itself is still atomic */
  }
  return true;
}

export function installCni(o: InstallCniOptions): InstallCniReport {
  const warnings: string[] = [];
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
  const confPath = join(o.confDir, `10-${o.name}.conflist`);
  const binChanged = writeAtomic(binPath, shim, 0o755, 'weft CNI plugin');
  const confChanged = writeAtomic(confPath, Buffer.from(renderConflist(o)), 0o644, 'weft network config');
  return { binary: { path: binPath, changed: binChanged }, conflist: { path: confPath, changed: confChanged }, ...(portmap ? { portmap } : {}), warnings };
}

const HELP = `usage: weft install-cni [flags]

  --bin-dir DIR        where the runtime finds CNI plugins (default /opt/cni/bin); the plugin goes there as "weft"
  --conf-dir DIR       where the runtime finds network configs (default /etc/cni/net.d); writes 10-<name>.conflist
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
    for (const w of r.warnings) process.stderr.write(`weft install-cni: warning: ${w}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`weft install-cni: ${(err as Error).message}\n`);
    return 1;
  }
}

// Kernel parameters under /proc/sys, optionally inside a network namespace.
// The net.* tree is resolved against the namespace of the thread that opens
// the file, so the open happens inside withNetns; other trees are global.
import { closeSync, constants as fsc, openSync, readFileSync, writeSync } from 'node:fs';
import { type ErrnoName, InvalidArgumentError, WeftError } from './netlink/errors';
import { withNetns } from './netlink/netns';

export type SysctlOptions = { netns?: string };

const PROC_SYS = '/proc/sys';
const KEY_RE = /^[A-Za-z0-9_./-]+$/;
const IFNAME_RE = /^[^\s/:]{1,15}$/;

/** A key that names nothing under /proc/sys (in that namespace: per-device keys exist only where the device does). */
export class SysctlNotFoundError extends WeftError {
  constructor(readonly key: string, readonly netns?: string) {
    super('ENOENT', `unknown sysctl "${key}"${netns ? ` in netns ${netns}` : ''}`);
    this.name = 'SysctlNotFoundError';
  }
}

/** The kernel refused a read or write (EINVAL for a value out of range, EACCES for a read-only key, ...). */
export class SysctlError extends WeftError {
  constructor(readonly key: string, code: ErrnoName, readonly op: 'read' | 'write', detail?: string) {
    super(code, `sysctl ${op} "${key}" failed: ${code}${detail ? ` (${detail})` : ''}`);
    this.name = 'SysctlError';
  }
}

/**
 * The /proc/sys path of a key. As in sysctl(8): when the first separator is a
 * dot, dots separate levels and slashes stand for dots inside a name
 * (`net.ipv4.conf.eth0/100.rp_filter`); when it is a slash, the key is a path
 * already (`net/ipv4/conf/eth0.100/rp_filter`).
 */
export function sysctlPath(key: string): string {
  if (typeof key !== 'string' || !KEY_RE.test(key) || key.includes('..')) {
    throw new InvalidArgumentError(`invalid sysctl key ${JSON.stringify(key)} (letters, digits, "_", "-", "." and "/", no "..")`);
  }
  const first = key.search(/[./]/);
  const path = first === -1 || key[first] === '/' ? key : key.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'));
  const parts = path.split('/');
  if (parts.some((p) => p === '' || p === '.')) throw new InvalidArgumentError(`invalid sysctl key "${key}" (empty level)`);
  return `${PROC_SYS}/${path}`;
}

function inNs<T>(opts: SysctlOptions, fn: () => T): T {
  return opts.netns ? withNetns(opts.netns, fn) : fn();
}

function fail(key: string, op: 'read' | 'write', e: unknown, netns?: string): never {
  const code = ((e as NodeJS.ErrnoException).code ?? 'EIO') as ErrnoName;
  if (code === 'ENOENT') throw new SysctlNotFoundError(key, netns);
  if (code === 'EISDIR') throw new SysctlError(key, code, op, 'a group of keys, not a value');
  throw new SysctlError(key, code, op);
}

/** The value as the kernel prints it, without the trailing newline (tabs between fields kept). */
export function sysctlGet(key: string, opts: SysctlOptions = {}): string {
  const path = sysctlPath(key);
  try {
    return inNs(opts, () => readFileSync(path, 'utf8')).replace(/\n$/, '');
  } catch (e) {
    return fail(key, 'read', e, opts.netns);
  }
}

export function sysctlSet(key: string, value: string | number, opts: SysctlOptions = {}): void {
  const path = sysctlPath(key);
  const text = String(value);
  if (typeof value === 'number' && !Number.isInteger(value)) throw new InvalidArgumentError(`sysctl "${key}": value ${value} is not an integer`);
  if (text === '' || /[\r\n\0]/.test(text)) throw new InvalidArgumentError(`sysctl "${key}": value must be a non-empty single line`);
  // Only net.* follows the namespace; anything else would silently change the whole host.
  if (opts.netns && !path.startsWith(`${PROC_SYS}/net/`)) {
    throw new InvalidArgumentError(`sysctl "${key}" is not per network namespace: refusing to set it for netns ${opts.netns}`);
  }
  try {
    inNs(opts, () => {
      // no O_CREAT: an unknown key must fail with ENOENT, not EACCES
      const fd = openSync(path, fsc.O_WRONLY);
      try {
        writeSync(fd, text);
      } finally {
        closeSync(fd);
      }
    });
  } catch (e) {
    fail(key, 'write', e, opts.netns);
  }
}

export type ForwardingOptions = SysctlOptions & { ipv6?: boolean };

/** Let the host route between its container bridges, the overlay and the underlay. */
export function enableForwarding(opts: ForwardingOptions = {}): void {
  sysctlSet('net/ipv4/ip_forward', 1, opts);
  if (opts.ipv6) sysctlSet('net/ipv6/conf/all/forwarding', 1, opts);
}

export type RpFilterMode = 'off' | 'strict' | 'loose';
const RP_MODES: Record<RpFilterMode, number> = { off: 0, strict: 1, loose: 2 };

/**
 * Reverse-path filtering on one interface ('all' and 'default' included).
 * The kernel uses the higher of conf/all and conf/<iface>, so loosening one
 * interface needs conf/all to be no stricter.
 */
export function setRpFilter(iface: string, mode: RpFilterMode, opts: SysctlOptions = {}): void {
  if (typeof iface !== 'string' || !IFNAME_RE.test(iface) || iface === '.' || iface === '..') {
    throw new InvalidArgumentError(`invalid interface name ${JSON.stringify(iface)}`);
  }
  if (!(mode in RP_MODES)) throw new InvalidArgumentError(`invalid rp_filter mode ${JSON.stringify(mode)} (off, strict or loose)`);
  // the slash form keeps a dot in the interface name (eth0.100) a dot
  sysctlSet(`net/ipv4/conf/${iface}/rp_filter`, RP_MODES[mode], opts);
}

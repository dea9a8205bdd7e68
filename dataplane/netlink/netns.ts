// Network namespaces: named ones under /run/netns (compatible with `ip netns`),
// and running a synchronous block inside one. Node runs JavaScript on one
// thread, so switching that thread's namespace is safe only while no other
// JavaScript can run: withNetns therefore refuses asynchronous callbacks.
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, unlinkSync, constants as fsc, type BigIntStats } from 'node:fs';
import { errno, sys, CLONE_NEWNET, MS_BIND, MS_REC, MS_SHARED, MNT_DETACH, NSFS_MAGIC, NS_GET_NSTYPE, STATFS_SIZE } from './libc';
import { InvalidArgumentError, NetlinkError, NotNetnsError } from './errors';

export const NETNS_RUN_DIR = '/run/netns';
const SELF_NS = '/proc/thread-self/ns/net';
const NAME_RE = /^[A-Za-z0-9_.-]{1,200}$/;

export function validateNetnsName(name: string): void {
  if (!NAME_RE.test(name) || name === '.' || name === '..') {
    throw new InvalidArgumentError(`invalid netns name "${name}" (letters, digits, "_", "." and "-", at most 200)`);
  }
}

/** A name is looked up under /run/netns; anything with a slash is used as a path (e.g. /proc/PID/ns/net). */
export function netnsPath(nameOrPath: string): string {
  if (nameOrPath.includes('/')) return nameOrPath;
  validateNetnsName(nameOrPath);
  return `${NETNS_RUN_DIR}/${nameOrPath}`;
}

// O_PATH (not in Node's fs.constants; the same on x86-64 and arm64): resolves
// the path without opening the file itself, so no FIFO, device or tty can block
// the one thread or act on being opened (a watchdog, a tape drive).
const O_PATH = 0o10000000;

/** How a path that is not a namespace is named in errors. */
function kindOf(st: BigIntStats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isFile()) return 'a regular file';
  return 'not a namespace file';
}

/**
 * Open a network namespace by name or path without ever blocking: the path is
 * first resolved with O_PATH and checked to be an nsfs inode, and only that
 * very inode (through /proc/self/fd, so a path swapped meanwhile does not
 * count) is opened for reading. Node opens every file close-on-exec already,
 * so children never inherit these. ENOENT (typed) when nothing is there;
 * NotNetnsError for anything that is not a network namespace.
 */
function openNetns(nameOrPath: string, op: string): number {
  const path = netnsPath(nameOrPath);
  let pathFd: number;
  try {
    pathFd = openSync(path, O_PATH);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new NetlinkError(Math.abs(err.errno ?? 2), `${op}: open ${path}`);
  }
  try {
    const fs = Buffer.alloc(STATFS_SIZE);
    if (sys.fstatfs(pathFd, fs) !== 0) throw new NetlinkError(errno(), `${op}: fstatfs ${path}`);
    if (Number(fs.readBigInt64LE(0)) !== NSFS_MAGIC) {
      throw new NotNetnsError(path, op, `${path} is ${kindOf(fstatSync(pathFd, { bigint: true }))}, not a network namespace`);
    }
    let fd: number;
    try {
      // nsfs files have no open side effects; O_NONBLOCK only in case
      fd = openSync(`/proc/self/fd/${pathFd}`, fsc.O_RDONLY | fsc.O_NONBLOCK);
    } catch (e) {
      throw new NetlinkError(Math.abs((e as NodeJS.ErrnoException).errno ?? 5), `${op}: open ${path}`);
    }
    const type = sys.ioctl(fd, NS_GET_NSTYPE) as number;
    // ENOTTY: a kernel before 4.11 cannot say; setns(CLONE_NEWNET) still refuses another type
    if (type !== CLONE_NEWNET && !(type === -1 && errno() === 25)) {
      closeSync(fd);
      throw new NotNetnsError(path, op, `${path} is a namespace of another type, not a network namespace`);
    }
    return fd;
  } finally {
    closeSync(pathFd);
  }
}

/**
 * This thread's own namespace, to return to. It is always a network namespace,
 * so openNetns's checks (four more system calls) would be wasted on every
 * withNetns: it is opened directly.
 */
function openOwnNetns(op: string): number {
  try {
    return openSync(SELF_NS, fsc.O_RDONLY);
  } catch (e) {
    throw new NetlinkError(Math.abs((e as NodeJS.ErrnoException).errno ?? 2), `${op}: open ${SELF_NS}`);
  }
}

/** A network namespace's identity: its nsfs inode and device, as `ip netns identify` compares them. */
export type NetnsId = { dev: bigint; ino: bigint };

export function sameNetns(a: NetnsId, b: NetnsId): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/** The identity of the namespace a name or path refers to (checked as openNetns checks it). */
export function netnsId(nameOrPath: string): NetnsId {
  return withNetnsFd(nameOrPath, `netns identify ${nameOrPath}`, (fd) => {
    const st = fstatSync(fd, { bigint: true });
    return { dev: st.dev, ino: st.ino };
  });
}

/**
 * A namespace held open: `path` (/proc/self/fd/N) names exactly the inode
 * that was checked for as long as the pin is open, so work done by path after
 * a check cannot land in a namespace swapped in at the original path.
 */
export type NetnsPin = { readonly path: string; readonly id: NetnsId; close(): void };

export function pinNetns(nameOrPath: string): NetnsPin {
  const fd = openNetns(nameOrPath, `netns open ${nameOrPath}`);
  let st: BigIntStats;
  try {
    st = fstatSync(fd, { bigint: true });
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  let open = true;
  return {
    path: `/proc/self/fd/${fd}`,
    id: { dev: st.dev, ino: st.ino },
    close() {
      if (open) {
        open = false;
        closeSync(fd);
      }
    },
  };
}

/** Run `fn` with an fd for the namespace open, closing it afterwards; ENOENT (typed) when it does not exist. */
export function withNetnsFd<T>(nameOrPath: string, op: string, fn: (fd: number) => T): T {
  const fd = openNetns(nameOrPath, op);
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

function setnsOrThrow(fd: number, op: string): void {
  if (sys.setns(fd, CLONE_NEWNET) !== 0) throw new NetlinkError(errno(), op);
}

function restore(origFd: number): void {
  if (sys.setns(origFd, CLONE_NEWNET) !== 0) {
    // The thread would keep acting in the wrong namespace: nothing after this is safe.
    process.stderr.write(`fatal: cannot return to the original network namespace (errno ${errno()})\n`);
    process.abort();
  }
}

/**
 * Run `fn` with this thread inside the namespace, then return to the original
 * one, also when `fn` throws. Sockets created inside stay bound to it.
 */
export function withNetns<T>(nameOrPath: string, fn: () => T): T {
  const op = `netns enter ${nameOrPath}`;
  const target = openNetns(nameOrPath, op);
  let orig = -1;
  try {
    orig = openOwnNetns(op);
    setnsOrThrow(target, op);
    try {
      const out = fn();
      if (out && typeof (out as { then?: unknown }).then === 'function') {
        throw new InvalidArgumentError('withNetns takes a synchronous function: awaiting inside would run other code in the namespace');
      }
      return out;
    } finally {
      restore(orig);
    }
  } finally {
    closeSync(target);
    if (orig !== -1) closeSync(orig);
  }
}

let runDirReady = false;

/** /run/netns must be a shared mount so bind mounts made here show in other mount namespaces, as `ip netns` does. */
function ensureRunDir(): void {
  if (runDirReady) return;
  mkdirSync(NETNS_RUN_DIR, { recursive: true, mode: 0o755 });
  if (sys.mount('none', NETNS_RUN_DIR, null, MS_SHARED | MS_REC, null) !== 0) {
    if (sys.mount(NETNS_RUN_DIR, NETNS_RUN_DIR, 'none', MS_BIND | MS_REC, null) !== 0) {
      throw new NetlinkError(errno(), `netns: bind ${NETNS_RUN_DIR}`);
    }
    if (sys.mount('none', NETNS_RUN_DIR, null, MS_SHARED | MS_REC, null) !== 0) {
      throw new NetlinkError(errno(), `netns: make ${NETNS_RUN_DIR} shared`);
    }
  }
  runDirReady = true;
}

/** Create a named namespace (like `ip netns add`); EEXIST if the name is taken. Returns its path. */
export function netnsAdd(name: string): string {
  validateNetnsName(name);
  const op = `netns add ${name}`;
  ensureRunDir();
  const path = netnsPath(name);
  try {
    closeSync(openSync(path, fsc.O_RDONLY | fsc.O_CREAT | fsc.O_EXCL, 0o444));
  } catch (e) {
    throw new NetlinkError(Math.abs((e as NodeJS.ErrnoException).errno ?? 17), op);
  }
  const orig = openOwnNetns(op);
  try {
    if (sys.unshare(CLONE_NEWNET) !== 0) throw new NetlinkError(errno(), `${op}: unshare`);
    try {
      if (sys.mount(SELF_NS, path, 'none', MS_BIND, null) !== 0) throw new NetlinkError(errno(), `${op}: bind mount`);
    } finally {
      restore(orig);
    }
  } catch (e) {
    try {
      unlinkSync(path);
    } catch {
      /* already gone */
    }
    throw e;
  } finally {
    closeSync(orig);
  }
  return path;
}

/** Delete a named namespace (like `ip netns delete`); ENOENT if there is none. */
export function netnsDelete(name: string): void {
  validateNetnsName(name);
  const path = netnsPath(name);
  if (!existsSync(path)) throw new NetlinkError(2, `netns delete ${name}`);
  if (sys.umount2(path, MNT_DETACH) !== 0) {
    const e = errno();
    if (e !== 22 /* EINVAL: not mounted, just a stale file */) throw new NetlinkError(e, `netns delete ${name}: umount`);
  }
  unlinkSync(path);
}

export function netnsList(): string[] {
  try {
    return readdirSync(NETNS_RUN_DIR).sort();
  } catch {
    return [];
  }
}

export function netnsExists(name: string): boolean {
  return existsSync(netnsPath(name));
}

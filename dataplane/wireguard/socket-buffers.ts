// wireguard-go as Debian ships it (0.0.20220316) leaves its UDP sockets at
// the kernel's default buffers (net.core.rmem_default, ~208 KiB), which
// overflow in bursts at a few hundred Mbit/s; later releases raise them to
// 7 MiB themselves. The agent does it from outside: pidfd_getfd (Linux 5.6)
// gives it a copy of each of the process's UDP sockets, and SO_RCVBUFFORCE /
// SO_SNDBUFFORCE (CAP_NET_ADMIN) set them past net.core.rmem_max/wmem_max.
// Where the kernel refuses (older than 5.6, no ptrace access), the sockets
// stay as they were and the caller is told why.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { errnoName, WeftError, type ErrnoName } from '../netlink/errors';
import { errno, sys, SOL_SOCKET, SO_RCVBUF, SO_RCVBUFFORCE, SO_SNDBUF, SO_SNDBUFFORCE, SYS_PIDFD_GETFD, SYS_PIDFD_OPEN } from '../netlink/libc';

/** What wireguard-go itself asks for in its later releases. */
export const WIREGUARD_SOCKET_BUFFER = 7 << 20;

export type SocketBuffers = {
  /** UDP sockets of the process that were raised. */
  sockets: number;
  /** The kernel's view afterwards (it doubles what is set, for its bookkeeping), of the smallest socket; 0 with none. */
  rcvbuf: number;
  sndbuf: number;
};

/** The kernel refused to hand over or resize a socket; `code` is its errno name. */
export class SocketBufferError extends WeftError {
  constructor(readonly pid: number, code: ErrnoName, message: string) {
    super(code, message);
    this.name = 'SocketBufferError';
  }
}

/** Inodes of the UDP sockets the process's network namespace has (/proc/<pid>/net/udp and udp6). */
function udpInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const file of ['udp', 'udp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9) out.add(cols[9]);
    }
  }
  return out;
}

/** The process's file descriptors that are UDP sockets. */
function udpFds(pid: number): number[] {
  const inodes = udpInodes(pid);
  const fds: number[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m && inodes.has(m[1])) fds.push(Number(fd));
  }
  return fds;
}

function getInt(fd: number, opt: number): number {
  const v = Buffer.alloc(4);
  const len = [4];
  return sys.getsockopt(fd, SOL_SOCKET, opt, v, len) === 0 ? v.readInt32LE(0) : 0;
}

function setInt(fd: number, opt: number, value: number): void {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value, 0);
  if (sys.setsockopt(fd, SOL_SOCKET, opt, v, 4) !== 0) throw new Error(`setsockopt: errno ${errno()}`);
}

const ENOSYS = 38;
const EBADF = 9;

/** Raise the receive and send buffers of every UDP socket of process `pid` to `bytes`; throws SocketBufferError when the kernel refuses. */
export function raiseSocketBuffers(pid: number, bytes = WIREGUARD_SOCKET_BUFFER): SocketBuffers {
  const fds = udpFds(pid);
  if (fds.length === 0) return { sockets: 0, rcvbuf: 0, sndbuf: 0 };
  const pidfd = Number(sys.syscall3(SYS_PIDFD_OPEN, pid, 0, 0));
  if (pidfd < 0) {
    const e = errno();
    throw new SocketBufferError(pid, errnoName(e), `pidfd_open(${pid}): ${errnoName(e)}${e === ENOSYS ? ' (the kernel is older than 5.3)' : ''}`);
  }
  let rcvbuf = Infinity;
  let sndbuf = Infinity;
  let raised = 0;
  try {
    for (const fd of fds) {
      const copy = Number(sys.syscall3(SYS_PIDFD_GETFD, pidfd, fd, 0));
      if (copy < 0) {
        const e = errno();
        if (e === EBADF) continue; // closed since it was listed
        throw new SocketBufferError(pid, errnoName(e), `pidfd_getfd(${pid}, ${fd}): ${errnoName(e)}${e === ENOSYS ? ' (the kernel is older than 5.6)' : ''}`);
      }
      try {
        // FORCE passes net.core.*mem_max with CAP_NET_ADMIN; the plain option is the fallback, capped by them
        try {
          setInt(copy, SO_RCVBUFFORCE, bytes);
        } catch {
          setInt(copy, SO_RCVBUF, bytes);
        }
        try {
          setInt(copy, SO_SNDBUFFORCE, bytes);
        } catch {
          setInt(copy, SO_SNDBUF, bytes);
        }
        rcvbuf = Math.min(rcvbuf, getInt(copy, SO_RCVBUF));
        sndbuf = Math.min(sndbuf, getInt(copy, SO_SNDBUF));
        raised++;
      } finally {
        sys.close(copy);
      }
    }
  } finally {
    sys.close(pidfd);
  }
  return { sockets: raised, rcvbuf: raised ? rcvbuf : 0, sndbuf: raised ? sndbuf : 0 };
}

// Passing file descriptors between processes over a unix socket
// (SCM_RIGHTS), which Node offers only to its own children through
// child_process IPC. Bound through koffi to libc's socket, connect, sendmsg
// and recvmsg; everything outside this file speaks Buffers and fd numbers.
//
// Linux x86_64 and aarch64 layouts (LP64): msghdr is 56 bytes, iovec 16,
// cmsghdr 16 followed by the ints.
import koffi from 'koffi';
import { WeftError } from '../controller/common/errors';
import { SO_RCVTIMEO, SO_SNDTIMEO, SOCK_CLOEXEC, SOL_SOCKET, sys as libc } from '../dataplane/netlink/libc';
import { errnoName } from '../dataplane/netlink/errors';

// socket, setsockopt and close are the dataplane's bindings; only the calls it
// does not bind are bound here.
const lib = koffi.load('libc.so.6');
const sys = {
  socket: libc.socket,
  setsockopt: libc.setsockopt,
  close: libc.close,
  connect: lib.func('int connect(int fd, const void *addr, uint32_t len)'),
  sendmsg: lib.func('intptr_t sendmsg(int fd, void *msg, int flags)'),
  recvmsg: lib.func('intptr_t recvmsg(int fd, void *msg, int flags)'),
  strerror: lib.func('const char *strerror(int errnum)'),
};

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SCM_RIGHTS = 1;
const MSG_NOSIGNAL = 0x4000;
const MSG_CMSG_CLOEXEC = 0x40000000;
const MSG_CTRUNC = 0x8;
const MSGHDR = 56;
const IOVEC = 16;
const CMSGHDR = 16;
export const MAX_FDS = 64;
const CONTROL = CMSGHDR + MAX_FDS * 4;

/** A libc call failed: `code` is the errno name (ECONNREFUSED, ENOENT, EAGAIN, ...). */
export class FdPassError extends WeftError {
  readonly errno: number;
  constructor(what: string, errno: number) {
    const name = errnoName(errno);
    super(name, `${what}: ${name} (${sys.strerror(errno) as string})`);
    this.name = 'FdPassError';
    this.errno = errno;
  }
}

function check(what: string, r: number | bigint): number {
  const n = Number(r);
  if (n < 0) throw new FdPassError(what, koffi.errno());
  return n;
}

/** Native memory for one message: msghdr, one iovec, the control buffer and the data. */
function message(dataLen: number): { mem: unknown; buf: Buffer; base: bigint; dataAt: number } {
  const total = MSGHDR + IOVEC + CONTROL + dataLen;
  const mem = koffi.alloc('uint8_t', total);
  const buf = Buffer.from(koffi.view(mem, total));
  buf.fill(0);
  return { mem, buf, base: BigInt(koffi.address(mem)), dataAt: MSGHDR + IOVEC + CONTROL };
}

function fillHeader(m: ReturnType<typeof message>, dataLen: number, controlLen: number): void {
  const { buf, base } = m;
  buf.writeBigUInt64LE(0n, 0); // msg_name
  buf.writeUInt32LE(0, 8); // msg_namelen
  buf.writeBigUInt64LE(base + BigInt(MSGHDR), 16); // msg_iov
  buf.writeBigUInt64LE(1n, 24); // msg_iovlen
  buf.writeBigUInt64LE(controlLen ? base + BigInt(MSGHDR + IOVEC) : 0n, 32); // msg_control
  buf.writeBigUInt64LE(BigInt(controlLen), 40); // msg_controllen
  buf.writeInt32LE(0, 48); // msg_flags
  buf.writeBigUInt64LE(base + BigInt(m.dataAt), MSGHDR); // iov_base
  buf.writeBigUInt64LE(BigInt(dataLen), MSGHDR + 8); // iov_len
}

/** A blocking unix stream socket connected to `path`; throws FdPassError (ENOENT, ECONNREFUSED: nobody listens there). */
export function connectUnix(path: string, timeoutMs: number): number {
  const bytes = Buffer.from(path);
  if (bytes.length > 107) throw new WeftError('WEFT_INVALID_ARGUMENT', `unix socket path ${path} is longer than 107 bytes`);
  const fd = check('socket', sys.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) as number);
  try {
    const addr = Buffer.alloc(110);
    addr.writeUInt16LE(AF_UNIX, 0);
    bytes.copy(addr, 2);
    const tv = Buffer.alloc(16);
    tv.writeBigInt64LE(BigInt(Math.floor(timeoutMs / 1000)), 0);
    tv.writeBigInt64LE(BigInt((timeoutMs % 1000) * 1000), 8);
    check('setsockopt SO_RCVTIMEO', sys.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16) as number);
    check('setsockopt SO_SNDTIMEO', sys.setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, tv, 16) as number);
    check(`connect ${path}`, sys.connect(fd, addr, 2 + bytes.length + 1) as number);
    return fd;
  } catch (e) {
    sys.close(fd);
    throw e;
  }
}

/** Sends `data` with `fds` attached in one sendmsg; the whole of `data` must go at once (it is small). */
export function sendWithFds(sock: number, data: Buffer, fds: readonly number[]): void {
  if (fds.length > MAX_FDS) throw new WeftError('WEFT_INVALID_ARGUMENT', `at most ${MAX_FDS} descriptors per message, not ${fds.length}`);
  const m = message(data.length);
  const controlLen = fds.length ? CMSGHDR + fds.length * 4 : 0;
  fillHeader(m, data.length, controlLen);
  if (fds.length) {
    const c = MSGHDR + IOVEC;
    m.buf.writeBigUInt64LE(BigInt(controlLen), c); // cmsg_len = CMSG_LEN(n * 4)
    m.buf.writeInt32LE(SOL_SOCKET, c + 8);
    m.buf.writeInt32LE(SCM_RIGHTS, c + 12);
    fds.forEach((fd, i) => m.buf.writeInt32LE(fd, c + CMSGHDR + i * 4));
  }
  data.copy(m.buf, m.dataAt);
  try {
    const sent = check('sendmsg', sys.sendmsg(sock, m.mem, MSG_NOSIGNAL) as bigint);
    if (sent !== data.length) throw new WeftError('WEFT_INVALID_ARGUMENT', `sendmsg sent ${sent} of ${data.length} bytes`);
  } finally {
    koffi.free(m.mem);
  }
}

/** One recvmsg: the bytes read (empty at end of stream) and the descriptors that came with them (close-on-exec). */
export function recvWithFds(sock: number, maxBytes = 65536): { data: Buffer; fds: number[] } {
  const m = message(maxBytes);
  fillHeader(m, maxBytes, CONTROL);
  try {
    const n = check('recvmsg', sys.recvmsg(sock, m.mem, MSG_CMSG_CLOEXEC) as bigint);
    // The kernel drops descriptors that do not fit the control buffer: a sender that sent more than MAX_FDS lost them.
    if (m.buf.readInt32LE(48) & MSG_CTRUNC) throw new WeftError('EPROTO', `recvmsg: more than ${MAX_FDS} descriptors sent; the rest were dropped`);
    const data = Buffer.from(m.buf.subarray(m.dataAt, m.dataAt + n));
    const fds: number[] = [];
    const controlLen = Number(m.buf.readBigUInt64LE(40));
    let c = MSGHDR + IOVEC;
    const end = c + controlLen;
    while (c + CMSGHDR <= end) {
      const len = Number(m.buf.readBigUInt64LE(c));
      if (len < CMSGHDR) break;
      if (m.buf.readInt32LE(c + 8) === SOL_SOCKET && m.buf.readInt32LE(c + 12) === SCM_RIGHTS) {
        for (let i = c + CMSGHDR; i + 4 <= c + len; i += 4) fds.push(m.buf.readInt32LE(i));
      }
      c += (len + 7) & ~7;
    }
    return { data, fds };
  } finally {
    koffi.free(m.mem);
  }
}

export function closeFd(fd: number): void {
  sys.close(fd);
}

// The few libc calls the dataplane needs, bound once through koffi.
// Everything above this file speaks Buffers and numbers, never koffi types.
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

export const sys = {
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  bind: libc.func('int bind(int fd, const void *addr, uint32_t len)'),
  getsockname: libc.func('int getsockname(int fd, _Inout_ void *addr, _Inout_ uint32_t *len)'),
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)'),
  send: libc.func('intptr_t send(int fd, const void *buf, size_t len, int flags)'),
  recv: libc.func('intptr_t recv(int fd, _Out_ void *buf, size_t len, int flags)'),
  // the sender's address tells the kernel (nl_pid 0) from another process writing to our port
  recvfrom: libc.func('intptr_t recvfrom(int fd, _Out_ void *buf, size_t len, int flags, _Out_ void *addr, _Inout_ uint32_t *addrlen)'),
  // the filesystem of an open fd: a namespace file must be on nsfs
  fstatfs: libc.func('int fstatfs(int fd, _Out_ void *buf)'),
  close: libc.func('int close(int fd)'),
  setns: libc.func('int setns(int fd, int nstype)'),
  unshare: libc.func('int unshare(int flags)'),
  mount: libc.func('int mount(const char *src, const char *target, const char *fstype, unsigned long flags, const void *data)'),
  umount2: libc.func('int umount2(const char *target, int flags)'),
  ifNameToIndex: libc.func('unsigned int if_nametoindex(const char *name)'),
  // variadic: koffi needs the type of the extra argument at each call
  ioctl: libc.func('int ioctl(int fd, unsigned long request, ...)'),
  // the link monitor waits in poll() on a libuv worker thread (koffi's .async) and is woken to stop through an eventfd
  poll: libc.func('int poll(_Inout_ void *fds, unsigned long nfds, int timeout)'),
  eventfd: libc.func('int eventfd(unsigned int initval, int flags)'),
  write: libc.func('intptr_t write(int fd, const void *buf, size_t len)'),
  getsockopt: libc.func('int getsockopt(int fd, int level, int name, _Out_ void *val, _Inout_ uint32_t *len)'),
  // pidfd_open and pidfd_getfd (Linux 5.6) have no glibc wrapper on every release: through syscall(2), three int arguments
  syscall3: libc.func('long syscall(long number, int a, int b, int c)'),
} as const;

/** x86-64 and arm64 share these numbers (the generic syscall table from 5.1 on). */
export const SYS_PIDFD_OPEN = 434;
export const SYS_PIDFD_GETFD = 438;

export function errno(): number {
  return koffi.errno();
}

export const AF_NETLINK = 16;
export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_BRIDGE = 7;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;
export const SOL_NETLINK = 270;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_GET_STRICT_CHK = 12;
export const CLONE_NEWNET = 0x40000000;
export const MS_BIND = 4096;
export const MS_REC = 16384;
export const MS_SHARED = 1 << 20;
export const MNT_DETACH = 2;
export const SO_RCVTIMEO = 20;
export const SO_SNDTIMEO = 21;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const POLLIN = 0x1;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;
export const SOCK_NONBLOCK = 0o4000;
export const ENOBUFS = 105;
export const EAGAIN = 11;
/** f_type of the namespace filesystem (linux/magic.h). */
export const NSFS_MAGIC = 0x6e736673;
/** struct statfs is 120 bytes on 64-bit Linux; f_type is its first field, a long. */
export const STATFS_SIZE = 120;
/** ioctl on a namespace fd: its CLONE_NEW* type (Linux 4.11). */
export const NS_GET_NSTYPE = 0xb703;

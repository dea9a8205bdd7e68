// A netlink socket bound to one network namespace, and the three ways of
// talking to the kernel over it: one request, a dump, and a batch of many
// requests in a single send with every ack collected.
//
// Every call here blocks Node's only thread, so none may wait forever: the
// socket has send and receive timeouts, and a request that sees no reply of
// its own for that long fails with "timed out waiting for the kernel's reply".
// Only replies from the kernel (sender port 0), addressed to this socket's
// port and carrying the request's sequence number count; anything else is
// skipped, as vishvananda/netlink does. A reply that does not parse is an
// error, never silently dropped: a dropped ack would mean waiting for nothing.
// The socket and those checks (the channel) are exported on their own so that
// code with its own framing, the nf_tables transactions, gets the same
// protections rather than a second receive loop without them.
import {
  encodeMessage, parseError, parseMessages,
  NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NETLINK_ROUTE,
  type Message,
} from './codec';
import { NetlinkError } from './errors';
import {
  errno, sys, AF_NETLINK, EAGAIN, MSG_TRUNC, SOCK_RAW, SOCK_CLOEXEC, SOL_SOCKET, SO_RCVBUFFORCE, SO_SNDBUFFORCE, SO_RCVBUF, SO_SNDBUF,
  SO_RCVTIMEO, SO_SNDTIMEO, SOL_NETLINK, NETLINK_EXT_ACK, NETLINK_CAP_ACK,
} from './libc';
import { withNetns } from './netns';

/** One kernel request: message type, extra flags (CREATE, EXCL, ...), body, and what it is for errors. */
export type Request = { type: number; flags?: number; body: Buffer; op: string };

export type Handle = {
  /** The namespace this handle acts in, or null for the one the process was in when it opened. */
  readonly netns: string | null;
  /** Send one request and wait for its ack; returns the kernel's replies (for GET requests). Throws NetlinkError. */
  exec(req: Request): Message[];
  /** Send a dump request and return every message of the dump (restarted if the kernel says it was interrupted). */
  dump(req: Request): Message[];
  /** Send many requests in as few sends as possible; one entry per request: undefined, or its error. */
  batch(reqs: Request[]): Array<NetlinkError | undefined>;
  close(): void;
};

const SOCK_BUF = 8 << 20;
const RECV_BUF = 1 << 20;
const BATCH_BYTES = 256 << 10;
const DUMP_RETRIES = 5;
/** How long a request may go without a reply of its own. The kernel answers in microseconds; this is for a lost reply. */
export const DEFAULT_TIMEOUT_MS = 5000;
const EINTR = 4;
const EIO = 5;
const EBADMSG = 74;
const ETIMEDOUT = 110;

function setIntOpt(fd: number, level: number, name: number, value: number): number {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value);
  return sys.setsockopt(fd, level, name, v, 4);
}

/** struct timeval for SO_RCVTIMEO/SO_SNDTIMEO (64-bit: two longs). */
function setTimeoutOpt(fd: number, name: number, ms: number): number {
  const tv = Buffer.alloc(16);
  tv.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
  tv.writeBigInt64LE(BigInt((ms % 1000) * 1000), 8);
  return sys.setsockopt(fd, SOL_SOCKET, name, tv, tv.length);
}

/**
 * The socket under a handle: all the reply checks need from the kernel, and
 * all a unit test has to stand in for.
 */
export type NetlinkSocket = {
  /** This socket's port id (nl_pid): the kernel addresses its replies to it. */
  readonly portId: number;
  /** Bytes sent, or -errno. */
  send(buf: Buffer): number;
  /** One datagram into `buf`: its whole length (more than buf.length: it was cut), and the sender's port id (0: the kernel); or n = -errno. */
  recv(buf: Buffer): { n: number; senderPid: number };
  /** Grow the send buffer: a send larger than it fails with EMSGSIZE, and an nf_tables transaction must go in one send. */
  setSendBuffer(bytes: number): void;
  close(): void;
};

export type SocketOptions = {
  /** SO_RCVTIMEO and SO_SNDTIMEO: how long one receive or send may block; default DEFAULT_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Send and receive buffer sizes in bytes; default 8 MiB each. */
  sendBuffer?: number;
  receiveBuffer?: number;
};

/**
 * A netlink socket of the current namespace for any protocol, bound, with
 * buffers, extended and capped acks and both timeouts set.
 */
export function openNetlinkSocket(protocol: number, op: string, o: SocketOptions = {}): NetlinkSocket {
  const fd = openSocket(protocol, op, o);
  const addr = Buffer.alloc(12);
  const len = [12];
  if (sys.getsockname(fd, addr, len) !== 0) {
    const e = errno();
    sys.close(fd);
    throw new NetlinkError(e, `${op}: getsockname`);
  }
  const from = Buffer.alloc(12);
  return {
    portId: addr.readUInt32LE(4),
    send(buf) {
      const n = Number(sys.send(fd, buf, buf.length, 0));
      return n < 0 ? -errno() : n;
    },
    recv(buf) {
      from.fill(0);
      // MSG_TRUNC: the datagram's real length, so a cut reply is seen as one
      const n = Number(sys.recvfrom(fd, buf, buf.length, MSG_TRUNC, from, [from.length]));
      return n < 0 ? { n: -errno(), senderPid: 0 } : { n, senderPid: from.readUInt32LE(4) };
    },
    setSendBuffer(bytes) {
      setBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, bytes);
    },
    close() {
      sys.close(fd);
    },
  };
}

/** FORCE needs CAP_NET_ADMIN; the plain option (capped by the sysctl maximum) is the fallback for the unprivileged. */
function setBuffer(fd: number, force: number, plain: number, bytes: number): void {
  if (setIntOpt(fd, SOL_SOCKET, force, bytes) !== 0) setIntOpt(fd, SOL_SOCKET, plain, bytes);
}

function openSocket(protocol: number, op: string, o: SocketOptions): number {
  const fd = sys.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  if (fd < 0) throw new NetlinkError(errno(), `${op}: socket`);
  // a lost reply (or a full send buffer) must end in an error, not block the thread for good
  for (const name of [SO_RCVTIMEO, SO_SNDTIMEO]) {
    if (setTimeoutOpt(fd, name, o.timeoutMs ?? DEFAULT_TIMEOUT_MS) !== 0) {
      const e = errno();
      sys.close(fd);
      throw new NetlinkError(e, `${op}: setsockopt timeout`);
    }
  }
  setBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, o.sendBuffer ?? SOCK_BUF);
  setBuffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, o.receiveBuffer ?? SOCK_BUF);
  // extended acks carry the kernel's own explanation; capped acks keep a batch's acks small
  setIntOpt(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
  setIntOpt(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
  const addr = Buffer.alloc(12);
  addr.writeUInt16LE(AF_NETLINK, 0);
  if (sys.bind(fd, addr, addr.length) !== 0) {
    const e = errno();
    sys.close(fd);
    throw new NetlinkError(e, `${op}: bind`);
  }
  return fd;
}

export type HandleOptions = SocketOptions & {
  /** Namespace name (under /run/netns) or path (/proc/PID/ns/net); default: the current one. */
  netns?: string;
  /** Netlink protocol; default NETLINK_ROUTE. */
  protocol?: number;
};

export function openHandle(opts: HandleOptions = {}): Handle {
  const protocol = opts.protocol ?? NETLINK_ROUTE;
  const netns = opts.netns ?? null;
  const op = `netlink open${netns ? ` in ${netns}` : ''}`;
  const sock = netns ? withNetns(netns, () => openNetlinkSocket(protocol, op, opts)) : openNetlinkSocket(protocol, op, opts);
  return handleOnSocket(sock, { netns, timeoutMs: opts.timeoutMs });
}

const timedOut = (op: string) => new NetlinkError(ETIMEDOUT, `timed out waiting for the kernel's reply to ${op}`);

/** What the reply checks are told: the per-reply timeout, and a clock a test can move. */
export type ChannelOptions = { timeoutMs?: number; now?: () => number };

/**
 * The checked send and receive over one socket, for anything that talks to
 * the kernel in its own framing (a handle's requests, an nf_tables
 * transaction): sequence numbers, a send that cannot block for good, and the
 * replies to chosen sequence numbers with every check on.
 */
export type NetlinkChannel = {
  readonly portId: number;
  /** The next sequence number (never 0, wraps at 2^32). */
  nextSeq(): number;
  /** Send all of `buf` in one datagram; a full send buffer that never drains is ETIMEDOUT naming `op`. */
  send(buf: Buffer, op: string): void;
  /**
   * Every message that answers `wanted(seq)`, in order, until the caller
   * stops. Messages for another port or another (earlier, abandoned) request
   * are skipped; if nothing wanted comes for timeoutMs, also while others
   * keep coming, it throws ETIMEDOUT naming `op`. The timeout is per reply:
   * a long stream of wanted replies never times out.
   */
  replies(op: string, wanted: (seq: number) => boolean): Generator<Message, never>;
  close(): void;
};

export function channelOnSocket(sock: NetlinkSocket, o: ChannelOptions = {}): NetlinkChannel {
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const now = o.now ?? Date.now;
  const rx = Buffer.alloc(RECV_BUF);
  let seq = Math.floor(Math.random() * 0x7fffffff);
  let closed = false;

  function send(buf: Buffer, op: string): void {
    if (closed) throw new NetlinkError(9 /* EBADF */, `${op}: socket closed`);
    for (;;) {
      const n = sock.send(buf);
      if (n === -EINTR) continue;
      if (n === -EAGAIN) throw new NetlinkError(ETIMEDOUT, `timed out sending ${op} to the kernel`);
      if (n < 0) throw new NetlinkError(-n, op);
      if (n !== buf.length) throw new NetlinkError(EIO, `${op}: short send`);
      return;
    }
  }

  /** The kernel's messages of the next datagram; EINTR retried, EAGAIN (SO_RCVTIMEO) a timeout. */
  function receive(op: string): Message[] {
    for (;;) {
      const { n, senderPid } = sock.recv(rx);
      if (n < 0) {
        if (n === -EINTR) continue;
        if (n === -EAGAIN) throw timedOut(op);
        throw new NetlinkError(-n, `${op}: recv`);
      }
      if (n > rx.length) throw new NetlinkError(EBADMSG, `${op}: reply of ${n} bytes cut to the ${rx.length}-byte buffer`);
      // another process writing to our port; never taken for the kernel's answer
      if (senderPid !== 0) return [];
      return parseMessages(rx, n, op);
    }
  }

  function* replies(op: string, wanted: (seq: number) => boolean): Generator<Message, never> {
    let deadline = now() + timeoutMs;
    for (;;) {
      for (const m of receive(op)) {
        if (m.pid !== sock.portId || !wanted(m.seq)) continue;
        deadline = now() + timeoutMs;
        yield m;
      }
      if (now() > deadline) throw timedOut(op);
    }
  }

  return {
    portId: sock.portId,
    nextSeq: () => (seq = (seq + 1) >>> 0 || 1),
    send,
    replies,
    close() {
      if (!closed) {
        closed = true;
        sock.close();
      }
    },
  };
}

/** The request/dump/batch logic over any NetlinkSocket (openHandle's, or a test's stand-in). */
export function handleOnSocket(sock: NetlinkSocket, o: ChannelOptions & { netns?: string | null } = {}): Handle {
  const netns = o.netns ?? null;
  const ch = channelOnSocket(sock, o);
  const { nextSeq, replies, send: sendAll } = ch;

  function exec(req: Request): Message[] {
    const s = nextSeq();
    sendAll(encodeMessage({ type: req.type, flags: NLM_F_REQUEST | NLM_F_ACK | (req.flags ?? 0), seq: s, pid: 0, body: req.body }), req.op);
    const out: Message[] = [];
    for (const m of replies(req.op, (q) => q === s)) {
      if (m.type === NLMSG_ERROR) {
        const { errno: e, detail } = parseError(m);
        if (e !== 0) throw new NetlinkError(e, req.op, detail);
        return out;
      }
      if (m.type !== NLMSG_NOOP && m.type !== NLMSG_DONE) out.push(m);
    }
    throw timedOut(req.op); // not reached: replies() ends only by throwing
  }

  function dumpOnce(req: Request): { msgs: Message[]; interrupted: boolean } {
    const s = nextSeq();
    sendAll(encodeMessage({ type: req.type, flags: NLM_F_REQUEST | NLM_F_DUMP | (req.flags ?? 0), seq: s, pid: 0, body: req.body }), req.op);
    const msgs: Message[] = [];
    let interrupted = false;
    for (const m of replies(req.op, (q) => q === s)) {
      if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
      if (m.type === NLMSG_DONE) return { msgs, interrupted };
      if (m.type === NLMSG_ERROR) {
        const { errno: e, detail } = parseError(m);
        if (e !== 0) throw new NetlinkError(e, req.op, detail);
        return { msgs, interrupted };
      }
      if (m.type !== NLMSG_NOOP) msgs.push(m);
    }
    throw timedOut(req.op);
  }

  function dump(req: Request): Message[] {
    // The kernel marks a dump that raced with a change; such a listing may be
    // missing entries, and a reconcile acting on it would delete live state.
    for (let i = 0; ; i++) {
      const { msgs, interrupted } = dumpOnce(req);
      if (!interrupted) return msgs;
      if (i === DUMP_RETRIES) throw new NetlinkError(4 /* EINTR */, `${req.op}: dump kept being interrupted by concurrent changes`);
    }
  }

  function batch(reqs: Request[]): Array<NetlinkError | undefined> {
    const results: Array<NetlinkError | undefined> = new Array(reqs.length).fill(undefined);
    let i = 0;
    while (i < reqs.length) {
      const start = i;
      const bySeq = new Map<number, number>();
      const parts: Buffer[] = [];
      let bytes = 0;
      let lastSeq = 0;
      while (i < reqs.length && (bytes === 0 || bytes + reqs[i].body.length + 16 <= BATCH_BYTES)) {
        bySeq.set((lastSeq = nextSeq()), i);
        bytes += reqs[i].body.length + 16;
        i++;
      }
      // The kernel handles the messages of one send in order and reports every
      // failure whether or not an ack was asked for; asking only the last one
      // for an ack tells us when the whole send is done without one receive
      // per entry.
      for (const [s, idx] of bySeq) {
        const r = reqs[idx];
        const ack = s === lastSeq ? NLM_F_ACK : 0;
        parts.push(encodeMessage({ type: r.type, flags: NLM_F_REQUEST | ack | (r.flags ?? 0), seq: s, pid: 0, body: r.body }));
      }
      const op = `batch of ${i - start}: ${reqs[start].op}`;
      sendAll(Buffer.concat(parts), op);
      for (const m of replies(op, (q) => bySeq.has(q))) {
        if (m.type !== NLMSG_ERROR) continue;
        const idx = bySeq.get(m.seq)!;
        const { errno: e, detail } = parseError(m);
        if (e !== 0) results[idx] = new NetlinkError(e, reqs[idx].op, detail);
        if (m.seq === lastSeq) break;
      }
    }
    return results;
  }

  return { netns, exec, dump, batch, close: ch.close };
}

/** Run `fn` with a handle for the namespace, closing it afterwards. */
export function withHandle<T>(opts: HandleOptions, fn: (h: Handle) => T): T {
  const h = openHandle(opts);
  try {
    return fn(h);
  } finally {
    h.close();
  }
}

/** A batch's errors, thrown as one: the first error, with how many failed. */
export function throwIfAny(errors: Array<NetlinkError | undefined>): void {
  const failed = errors.filter((e): e is NetlinkError => e !== undefined);
  if (failed.length === 0) return;
  const first = failed[0];
  if (failed.length === 1) throw first;
  throw new NetlinkError(first.errno, `${first.op} (and ${failed.length - 1} more of ${errors.length} failed)`, first.detail);
}

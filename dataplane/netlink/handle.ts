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
import {
  align4, encodeMessage, parseError,
  NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NETLINK_ROUTE,
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
/** struct nlmsgerr: the error code and the header of the request it answers, always present. */
const NLMSGERR_LEN = 4 + NLMSG_HDRLEN;

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
  close(): void;
};

/** A netlink socket of the current namespace, bound, with buffers, extended acks and both timeouts set. */
export function openNetlinkSocket(protocol: number, op: string, timeoutMs = DEFAULT_TIMEOUT_MS): NetlinkSocket {
  const fd = openSocket(protocol, op, timeoutMs);
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
    close() {
      sys.close(fd);
    },
  };
}

function openSocket(protocol: number, op: string, timeoutMs: number): number {
  const fd = sys.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  if (fd < 0) throw new NetlinkError(errno(), `${op}: socket`);
  // a lost reply (or a full send buffer) must end in an error, not block the thread for good
  for (const name of [SO_RCVTIMEO, SO_SNDTIMEO]) {
    if (setTimeoutOpt(fd, name, timeoutMs) !== 0) {
      const e = errno();
      sys.close(fd);
      throw new NetlinkError(e, `${op}: setsockopt timeout`);
    }
  }
  // FORCE needs CAP_NET_ADMIN; the plain options are the fallback for the unprivileged
  if (setIntOpt(fd, SOL_SOCKET, SO_SNDBUFFORCE, SOCK_BUF) !== 0) setIntOpt(fd, SOL_SOCKET, SO_SNDBUF, SOCK_BUF);
  if (setIntOpt(fd, SOL_SOCKET, SO_RCVBUFFORCE, SOCK_BUF) !== 0) setIntOpt(fd, SOL_SOCKET, SO_RCVBUF, SOCK_BUF);
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

export type HandleOptions = {
  /** Namespace name (under /run/netns) or path (/proc/PID/ns/net); default: the current one. */
  netns?: string;
  /** Netlink protocol; default NETLINK_ROUTE. */
  protocol?: number;
  /** How long a request may wait for a reply of its own; default DEFAULT_TIMEOUT_MS. */
  timeoutMs?: number;
};

/**
 * The messages of one datagram, checked: every header must fit, lengths must
 * add up to the datagram, and an error message must hold a whole nlmsgerr.
 * Anything else is an EBADMSG NetlinkError naming the request.
 */
export function parseReply(buf: Buffer, length: number, op: string): Message[] {
  const bad = (why: string) => new NetlinkError(EBADMSG, `${op}: malformed reply from the kernel: ${why}`);
  const out: Message[] = [];
  let off = 0;
  while (off < length) {
    if (length - off < NLMSG_HDRLEN) throw bad(`${length - off} bytes left at offset ${off}, less than a message header`);
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > length) throw bad(`message at offset ${off} claims ${len} bytes, ${length - off} there`);
    const m: Message = {
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      // copy: the receive buffer is reused by the next recv
      body: Buffer.from(buf.subarray(off + NLMSG_HDRLEN, off + len)),
    };
    if (m.type === NLMSG_ERROR && m.body.length < NLMSGERR_LEN) throw bad(`error message of ${m.body.length} bytes, less than struct nlmsgerr`);
    out.push(m);
    off += align4(len);
  }
  return out;
}

export function openHandle(opts: HandleOptions = {}): Handle {
  const protocol = opts.protocol ?? NETLINK_ROUTE;
  const netns = opts.netns ?? null;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const op = `netlink open${netns ? ` in ${netns}` : ''}`;
  const sock = netns ? withNetns(netns, () => openNetlinkSocket(protocol, op, timeoutMs)) : openNetlinkSocket(protocol, op, timeoutMs);
  return handleOnSocket(sock, { netns, timeoutMs });
}

/** The request/dump/batch logic over any NetlinkSocket (openHandle's, or a test's stand-in). */
export function handleOnSocket(sock: NetlinkSocket, o: { netns?: string | null; timeoutMs?: number; now?: () => number } = {}): Handle {
  const netns = o.netns ?? null;
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const now = o.now ?? Date.now;
  const rx = Buffer.alloc(RECV_BUF);
  let seq = Math.floor(Math.random() * 0x7fffffff);
  let closed = false;

  const nextSeq = () => (seq = (seq + 1) >>> 0 || 1);
  const timedOut = (op: string) => new NetlinkError(ETIMEDOUT, `timed out waiting for the kernel's reply to ${op}`);

  function sendAll(buf: Buffer, op: string): void {
    if (closed) throw new NetlinkError(9 /* EBADF */, `${op}: handle closed`);
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
      return parseReply(rx, n, op);
    }
  }

  /**
   * Every message that answers one of this handle's requests `wanted(seq)`,
   * in order, until the caller stops. Messages for another port or another
   * (earlier, abandoned) request are skipped; if nothing of ours comes for
   * timeoutMs, also while others keep coming, the request fails.
   */
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
      while (i < reqs.length && (bytes === 0 || bytes + reqs[i].body.length + 16 <= BATCH_BYTES)) {
        bySeq.set(nextSeq(), i);
        bytes += reqs[i].body.length + 16;
        i++;
      }
      // The kernel handles the messages of one send in order and reports every
      // failure whether or not an ack was asked for; asking only the last one
      // for an ack tells us when the whole send is done without one receive
      // per entry.
      const lastSeq = seq;
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

  return {
    netns,
    exec,
    dump,
    batch,
    close() {
      if (!closed) {
        closed = true;
        sock.close();
      }
    },
  };
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

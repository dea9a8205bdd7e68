// A netlink socket bound to one network namespace, and the three ways of
// talking to the kernel over it: one request, a dump, and a batch of many
// requests in a single send with every ack collected.
import {
  encodeMessage, parseError, parseMessages,
  NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NETLINK_ROUTE,
  type Message,
} from './codec';
import { NetlinkError } from './errors';
import {
  errno, sys, AF_NETLINK, SOCK_RAW, SOCK_CLOEXEC, SOL_SOCKET, SO_RCVBUFFORCE, SO_SNDBUFFORCE, SO_RCVBUF, SO_SNDBUF,
  SOL_NETLINK, NETLINK_EXT_ACK, NETLINK_CAP_ACK,
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

function setIntOpt(fd: number, level: number, name: number, value: number): number {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value);
  return sys.setsockopt(fd, level, name, v, 4);
}

function openSocket(protocol: number, op: string): number {
  const fd = sys.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  if (fd < 0) throw new NetlinkError(errno(), `${op}: socket`);
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
};

export function openHandle(opts: HandleOptions = {}): Handle {
  const protocol = opts.protocol ?? NETLINK_ROUTE;
  const netns = opts.netns ?? null;
  const op = `netlink open${netns ? ` in ${netns}` : ''}`;
  const fd = netns ? withNetns(netns, () => openSocket(protocol, op)) : openSocket(protocol, op);
  const rx = Buffer.alloc(RECV_BUF);
  let seq = Math.floor(Math.random() * 0x7fffffff);
  let closed = false;

  const nextSeq = () => (seq = (seq + 1) >>> 0 || 1);

  function sendAll(buf: Buffer, op: string): void {
    if (closed) throw new NetlinkError(9 /* EBADF */, `${op}: handle closed`);
    const n = sys.send(fd, buf, buf.length, 0);
    if (n < 0) throw new NetlinkError(errno(), op);
    if (Number(n) !== buf.length) throw new NetlinkError(5 /* EIO */, `${op}: short send`);
  }

  function receive(op: string): Message[] {
    for (;;) {
      const n = Number(sys.recv(fd, rx, rx.length, 0));
      if (n >= 0) return parseMessages(rx, n);
      const e = errno();
      if (e !== 4 /* EINTR */) throw new NetlinkError(e, `${op}: recv`);
    }
  }

  function exec(req: Request): Message[] {
    const s = nextSeq();
    sendAll(encodeMessage({ type: req.type, flags: NLM_F_REQUEST | NLM_F_ACK | (req.flags ?? 0), seq: s, pid: 0, body: req.body }), req.op);
    const replies: Message[] = [];
    for (;;) {
      for (const m of receive(req.op)) {
        if (m.seq !== s) continue; // a late answer to an earlier, abandoned request
        if (m.type === NLMSG_ERROR) {
          const { errno: e, detail } = parseError(m);
          if (e !== 0) throw new NetlinkError(e, req.op, detail);
          return replies;
        }
        if (m.type !== NLMSG_NOOP && m.type !== NLMSG_DONE) replies.push(m);
      }
    }
  }

  function dumpOnce(req: Request): { msgs: Message[]; interrupted: boolean } {
    const s = nextSeq();
    sendAll(encodeMessage({ type: req.type, flags: NLM_F_REQUEST | NLM_F_DUMP | (req.flags ?? 0), seq: s, pid: 0, body: req.body }), req.op);
    const msgs: Message[] = [];
    let interrupted = false;
    for (;;) {
      for (const m of receive(req.op)) {
        if (m.seq !== s) continue;
        if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
        if (m.type === NLMSG_DONE) return { msgs, interrupted };
        if (m.type === NLMSG_ERROR) {
          const { errno: e, detail } = parseError(m);
          if (e !== 0) throw new NetlinkError(e, req.op, detail);
          return { msgs, interrupted };
        }
        if (m.type !== NLMSG_NOOP) msgs.push(m);
      }
    }
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
      sendAll(Buffer.concat(parts), `batch of ${i - start}: ${reqs[start].op}`);
      let done = false;
      while (!done) {
        for (const m of receive(`batch of ${i - start}`)) {
          const idx = bySeq.get(m.seq);
          if (idx === undefined || m.type !== NLMSG_ERROR) continue;
          const { errno: e, detail } = parseError(m);
          if (e !== 0) results[idx] = new NetlinkError(e, reqs[idx].op, detail);
          if (m.seq === lastSeq) done = true;
        }
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
        sys.close(fd);
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

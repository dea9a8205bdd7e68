// One nf_tables transaction: BATCH_BEGIN, the messages, BATCH_END, in a
// single send. The kernel applies a batch all or nothing, so a failed message
// leaves the ruleset exactly as it was. The shared netlink handle sends one
// request per message; a batch must arrive in one skb, so this socket is its
// own, with a send buffer sized to the batch.
import { encodeMessage, parseError, parseMessages, NLMSG_ERROR, NLM_F_ACK, NLM_F_REQUEST } from '../netlink/codec';
import { NetlinkError } from '../netlink/errors';
import {
  errno, sys, AF_NETLINK, SOCK_RAW, SOCK_CLOEXEC, SOL_SOCKET, SO_RCVBUFFORCE, SO_SNDBUFFORCE, SOL_NETLINK, NETLINK_EXT_ACK, NETLINK_CAP_ACK,
} from '../netlink/libc';
import { withNetns } from '../netlink/netns';
import { NETLINK_NETFILTER, NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END, NFNL_SUBSYS_NFTABLES, NFPROTO_UNSPEC, nfgenmsg, type BatchMsg } from './wire';

const RECV_BUF = 1 << 20;
const MIN_SNDBUF = 4 << 20;
// setsockopt caps a forced buffer at INT_MAX/2; the kernel doubles it.
const MAX_SNDBUF = 0x3fffffff;

export type BatchSocket = {
  /** Apply the messages as one transaction; throws the first error (the kernel then applied nothing). Returns bytes sent. */
  commit(msgs: BatchMsg[], what: string): number;
  close(): void;
};

function setInt(fd: number, level: number, name: number, v: number): number {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return sys.setsockopt(fd, level, name, b, 4);
}

function open(op: string): number {
  const fd = sys.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) throw new NetlinkError(errno(), `${op}: socket`);
  setInt(fd, SOL_SOCKET, SO_SNDBUFFORCE, MIN_SNDBUF);
  setInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20);
  setInt(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
  setInt(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
  const addr = Buffer.alloc(12);
  addr.writeUInt16LE(AF_NETLINK, 0);
  if (sys.bind(fd, addr, addr.length) !== 0) {
    const e = errno();
    sys.close(fd);
    throw new NetlinkError(e, `${op}: bind`);
  }
  return fd;
}

/** A socket for nf_tables transactions in `netns` (a name or path), or in the current namespace. */
export function openBatchSocket(netns?: string): BatchSocket {
  const op = `nftables batch socket${netns ? ` in ${netns}` : ''}`;
  const fd = netns ? withNetns(netns, () => open(op)) : open(op);
  const rx = Buffer.alloc(RECV_BUF);
  let sndbuf = MIN_SNDBUF;
  let seq = Math.floor(Math.random() * 0x3fffffff);
  let closed = false;

  function commit(msgs: BatchMsg[], what: string): number {
    if (closed) throw new NetlinkError(9 /* EBADF */, `${what}: batch socket closed`);
    if (msgs.length === 0) return 0;
    const parts: Buffer[] = [];
    const opOf = new Map<number, number>();
    const begin = ++seq;
    parts.push(encodeMessage({ type: NFNL_MSG_BATCH_BEGIN, flags: NLM_F_REQUEST, seq: begin, pid: 0, body: nfgenmsg(NFPROTO_UNSPEC, NFNL_SUBSYS_NFTABLES) }));
    msgs.forEach((m, i) => {
      const s = ++seq;
      opOf.set(s, i);
      // an ack for every message: the last one tells us the batch is done
      parts.push(encodeMessage({ type: m.type, flags: NLM_F_REQUEST | NLM_F_ACK | m.flags, seq: s, pid: 0, body: m.body }));
    });
    const end = ++seq;
    parts.push(encodeMessage({ type: NFNL_MSG_BATCH_END, flags: NLM_F_REQUEST, seq: end, pid: 0, body: nfgenmsg(NFPROTO_UNSPEC, NFNL_SUBSYS_NFTABLES) }));
    const buf = Buffer.concat(parts);
    if (buf.length + 65536 > sndbuf) {
      sndbuf = Math.min(MAX_SNDBUF, 2 ** Math.ceil(Math.log2(buf.length + 65536)));
      setInt(fd, SOL_SOCKET, SO_SNDBUFFORCE, sndbuf);
    }
    const n = Number(sys.send(fd, buf, buf.length, 0));
    if (n < 0) throw new NetlinkError(errno(), `${what}: send of ${buf.length} bytes`);
    let pending = msgs.length;
    let first: NetlinkError | undefined;
    while (pending > 0) {
      const got = Number(sys.recv(fd, rx, rx.length, 0));
      if (got < 0) {
        const e = errno();
        if (e === 4 /* EINTR */) continue;
        throw new NetlinkError(e, `${what}: recv`);
      }
      for (const m of parseMessages(rx, got)) {
        if (m.type !== NLMSG_ERROR) continue;
        const { errno: e, detail } = parseError(m);
        if (m.seq === begin || m.seq === end) {
          // the batch as a whole was refused: no per-message acks follow
          if (e !== 0) throw new NetlinkError(e, `${what}: batch`, detail);
          continue;
        }
        if (!opOf.has(m.seq)) continue;
        opOf.delete(m.seq);
        pending--;
        if (e !== 0 && !first) first = new NetlinkError(e, `${what}: message ${m.seq - begin} of ${msgs.length}`, detail);
      }
    }
    if (first) throw first;
    return buf.length;
  }

  return {
    commit,
    close() {
      if (!closed) {
        closed = true;
        sys.close(fd);
      }
    },
  };
}

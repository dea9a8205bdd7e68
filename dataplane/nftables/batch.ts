// One nf_tables transaction: BATCH_BEGIN, the messages, BATCH_END, in a
// single send. The kernel applies a batch all or nothing, so a failed message
// leaves the ruleset exactly as it was. The shared netlink handle sends one
// request per message; a batch must arrive in one skb, so this socket is its
// own, with a send buffer sized to the batch. Sending and receiving go
// through the handle's checked channel: a lost ack is a timeout naming the
// transaction, not a wait that freezes the ingress's only thread.
import { encodeMessage, parseError, NLMSG_ERROR, NLM_F_ACK, NLM_F_REQUEST } from '../netlink/codec';
import { NetlinkError } from '../netlink/errors';
import { channelOnSocket, openNetlinkSocket, type ChannelOptions, type NetlinkSocket } from '../netlink/handle';
import { withNetns } from '../netlink/netns';
import { NETLINK_NETFILTER, NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END, NFNL_SUBSYS_NFTABLES, NFPROTO_UNSPEC, nfgenmsg, type BatchMsg } from './wire';

const MIN_SNDBUF = 4 << 20;
// room for the acks of a big transaction: one small datagram per message
const RCVBUF = 16 << 20;
// setsockopt caps a forced buffer at INT_MAX/2; the kernel doubles it.
const MAX_SNDBUF = 0x3fffffff;

export type BatchSocket = {
  /** Apply the messages as one transaction; throws the first error (the kernel then applied nothing). Returns bytes sent. */
  commit(msgs: BatchMsg[], what: string): number;
  close(): void;
};

/**
 * A socket for nf_tables transactions in `netns` (a name or path), or in the
 * current namespace. `timeoutMs` bounds each wait for the next ack, not the
 * transaction: the kernel does a transaction's work inside the send, so once
 * the send returns its acks are already queued, and a wait of seconds for
 * one means it was lost — however big the transaction was.
 */
export function openBatchSocket(netns?: string, o: { timeoutMs?: number } = {}): BatchSocket {
  const op = `nftables batch socket${netns ? ` in ${netns}` : ''}`;
  const open = () => openNetlinkSocket(NETLINK_NETFILTER, op, { timeoutMs: o.timeoutMs, sendBuffer: MIN_SNDBUF, receiveBuffer: RCVBUF });
  return batchOnSocket(netns ? withNetns(netns, open) : open(), o);
}

/** The transaction logic over any NetlinkSocket (openBatchSocket's, or a test's stand-in). */
export function batchOnSocket(sock: NetlinkSocket, o: ChannelOptions = {}): BatchSocket {
  const ch = channelOnSocket(sock, o);
  let sndbuf = MIN_SNDBUF;

  function commit(msgs: BatchMsg[], what: string): number {
    if (msgs.length === 0) return 0;
    const parts: Buffer[] = [];
    // sequence number -> the message's index
    const pending = new Map<number, number>();
    const begin = ch.nextSeq();
    parts.push(encodeMessage({ type: NFNL_MSG_BATCH_BEGIN, flags: NLM_F_REQUEST, seq: begin, pid: 0, body: nfgenmsg(NFPROTO_UNSPEC, NFNL_SUBSYS_NFTABLES) }));
    msgs.forEach((m, i) => {
      const s = ch.nextSeq();
      pending.set(s, i);
      // an ack for every message: the last one tells us the batch is done
      parts.push(encodeMessage({ type: m.type, flags: NLM_F_REQUEST | NLM_F_ACK | m.flags, seq: s, pid: 0, body: m.body }));
    });
    const end = ch.nextSeq();
    parts.push(encodeMessage({ type: NFNL_MSG_BATCH_END, flags: NLM_F_REQUEST, seq: end, pid: 0, body: nfgenmsg(NFPROTO_UNSPEC, NFNL_SUBSYS_NFTABLES) }));
    const buf = Buffer.concat(parts);
    if (buf.length + 65536 > sndbuf) {
      sndbuf = Math.min(MAX_SNDBUF, 2 ** Math.ceil(Math.log2(buf.length + 65536)));
      sock.setSendBuffer(sndbuf);
    }
    const op = `${what} (nftables transaction of ${msgs.length} messages, ${buf.length} bytes)`;
    ch.send(buf, op);
    for (const m of ch.replies(op, (q) => q === begin || q === end || pending.has(q))) {
      if (m.type !== NLMSG_ERROR) continue;
      const { errno: e, detail } = parseError(m);
      if (m.seq === begin || m.seq === end) {
        // the batch as a whole was refused: no per-message acks follow
        if (e !== 0) throw new NetlinkError(e, `${what}: batch`, detail);
        continue;
      }
      // The kernel reports in message order, so the first error is the
      // first failing message, and it means nothing was applied. The acks
      // still queued are skipped by the next transaction (their sequence
      // numbers are not its own), so there is no need to wait for them.
      if (e !== 0) throw new NetlinkError(e, `${what}: message ${pending.get(m.seq)! + 1} of ${msgs.length}`, detail);
      pending.delete(m.seq);
      if (pending.size === 0) break;
    }
    return buf.length;
  }

  return { commit, close: ch.close };
}

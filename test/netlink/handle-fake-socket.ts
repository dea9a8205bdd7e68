// A stand-in for the socket under a handle or an nf_tables batch: it answers
// each send with datagrams a test crafts from what was sent, and when it has
// nothing more it returns EAGAIN, as the real socket does once SO_RCVTIMEO
// passes. Lets the reply checks be tested without a kernel.
import { expect } from 'vitest';
import { encodeMessage, parseMessages, NLMSG_ERROR, type Message } from '../../dataplane/netlink/codec';
import { NetlinkError } from '../../dataplane/netlink/errors';
import type { NetlinkSocket } from '../../dataplane/netlink/handle';

export const PORT = 4242;
export const EAGAIN = 11;

/** An ack (errno 0) or error for the request header `req`, as the kernel sends it (struct nlmsgerr). */
export function ack(req: { seq: number }, errno = 0, o: { pid?: number; body?: Buffer } = {}): Buffer {
  const body = o.body ?? Buffer.alloc(20);
  if (!o.body) {
    body.writeInt32LE(-errno, 0);
    body.writeUInt32LE(16, 4);
  }
  return encodeMessage({ type: NLMSG_ERROR, flags: 0, seq: req.seq, pid: o.pid ?? PORT, body });
}

export type Datagram = { data: Buffer; senderPid?: number; n?: number } | { errno: number };

export type FakeSocket = NetlinkSocket & { recvs: number; sendBuffer: number };

/** A socket whose replies `script` makes from each send: its first message's header, and all its messages. */
export function fakeSocket(script: (sent: Message, all: Message[]) => Datagram[]): FakeSocket {
  const queue: Datagram[] = [];
  const s: FakeSocket = {
    portId: PORT,
    recvs: 0,
    sendBuffer: 0,
    send(buf: Buffer) {
      const all = parseMessages(buf);
      queue.push(...script(all[0], all));
      return buf.length;
    },
    recv(buf: Buffer) {
      s.recvs++;
      const d = queue.shift() ?? { errno: EAGAIN }; // nothing more: what SO_RCVTIMEO gives
      if ('errno' in d) return { n: -d.errno, senderPid: 0 };
      d.data.copy(buf);
      return { n: d.n ?? d.data.length, senderPid: d.senderPid ?? 0 };
    },
    setSendBuffer(bytes: number) {
      s.sendBuffer = bytes;
    },
    close() {},
  };
  return s;
}

/** The NetlinkError `fn` throws; fails the test if it throws nothing or something else. */
export function thrown(fn: () => unknown): NetlinkError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(NetlinkError);
    return e as NetlinkError;
  }
  throw new Error('expected a NetlinkError');
}

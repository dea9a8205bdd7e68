// How an nf_tables transaction collects its acks, against a stand-in socket
// fed crafted replies: every message is acked before the commit returns, the
// first error fails it (the kernel then applied nothing), only the kernel's
// replies to this transaction count, a reply that does not parse is an
// error, and a lost ack is a timeout naming the transaction — per ack, so a
// big transaction whose acks keep coming never times out.
import { describe, expect, it } from 'vitest';
import { NLM_F_ACK, NLM_F_REQUEST, type Message } from '../../../dataplane/netlink/codec';
import { batchOnSocket } from '../../../dataplane/nftables/batch';
import { NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END, NFT_MSG, nftType, type BatchMsg } from '../../../dataplane/nftables/wire';
import { PORT, ack, fakeSocket, thrown, type Datagram } from '../../netlink/handle-fake-socket';

const ENOENT = 2;
const EEXIST = 17;
const EINVAL = 22;

function msgs(n: number, bytes = 8): BatchMsg[] {
  return Array.from({ length: n }, () => ({ type: nftType(NFT_MSG.NEWSETELEM), flags: 0x400, body: Buffer.alloc(bytes) }));
}

/** The messages of a transaction between BATCH_BEGIN and BATCH_END. */
const inner = (all: Message[]) => all.slice(1, -1);

/** The kernel's answer to a good transaction: one ack per message, each its own datagram. */
const ackAll = (_: Message, all: Message[]): Datagram[] => inner(all).map((m) => ({ data: ack(m) }));

describe('nf_tables transaction acks', () => {
  it('frames the messages with BEGIN and END, asks each for an ack, and returns once every one is acked', () => {
    let sent: Message[] = [];
    const sock = fakeSocket((first, all) => ((sent = all), ackAll(first, all)));
    expect(batchOnSocket(sock).commit(msgs(3), 'add')).toBe(5 * 16 + 2 * 4 + 3 * 8); // headers, BEGIN's and END's nfgenmsg, the bodies
    expect(sent.map((m) => m.type)).toEqual([NFNL_MSG_BATCH_BEGIN, ...Array(3).fill(nftType(NFT_MSG.NEWSETELEM)), NFNL_MSG_BATCH_END]);
    expect(inner(sent).every((m) => m.flags === (NLM_F_REQUEST | NLM_F_ACK | 0x400))).toBe(true);
    expect(new Set(sent.map((m) => m.seq)).size).toBe(5);
    expect(sock.recvs).toBe(3);
  });

  it("skips what is not the kernel's reply to this transaction: another sender, another port, an earlier sequence number", () => {
    const sock = fakeSocket((begin, all) => [
      { data: ack(inner(all)[0], EEXIST), senderPid: 999 }, // another process writing to our port
      { data: ack(inner(all)[0], EEXIST, { pid: PORT + 1 }) }, // addressed to another socket
      { data: ack({ seq: begin.seq - 1 }, EEXIST) }, // a late ack of an earlier transaction
      ...ackAll(begin, all),
    ]);
    batchOnSocket(sock).commit(msgs(2), 'add');
    expect(sock.recvs).toBe(5);
  });

  it('the first error fails the transaction, and its leftover acks do not disturb the next one', () => {
    const sock = fakeSocket((begin, all) =>
      all.length === 5
        ? [{ data: ack(inner(all)[0]) }, { data: ack(inner(all)[1], ENOENT) }, { data: ack(inner(all)[2], EEXIST) }]
        : ackAll(begin, all),
    );
    const b = batchOnSocket(sock);
    const e = thrown(() => b.commit(msgs(3), 'switch'));
    expect(e.code).toBe('ENOENT');
    expect(e.message).toBe('ENOENT: switch: message 2 of 3');
    // the third message's error is still queued: the next transaction must skip it, not fail on it
    expect(b.commit(msgs(1), 'again')).toBeGreaterThan(0);
  });

  it('an error on BATCH_BEGIN refuses the whole transaction', () => {
    const sock = fakeSocket((begin) => [{ data: ack(begin, EINVAL) }]);
    expect(thrown(() => batchOnSocket(sock).commit(msgs(2), 'add')).message).toBe('EINVAL: add: batch');
  });

  it('a malformed or cut reply is an EBADMSG error naming the transaction, not skipped', () => {
    const short = fakeSocket((_, all) => [{ data: ack(inner(all)[0], 0, { body: Buffer.alloc(4) }) }]);
    const e = thrown(() => batchOnSocket(short).commit(msgs(1), 'add'));
    expect(e.code).toBe('EBADMSG');
    expect(e.message).toMatch(/^EBADMSG: add \(nftables transaction of 1 messages, 64 bytes\): malformed reply from the kernel: error message of 4 bytes/);
    const cut = fakeSocket((_, all) => [{ data: ack(inner(all)[0]), n: 2 << 20 }]);
    expect(thrown(() => batchOnSocket(cut).commit(msgs(1), 'add')).message).toMatch(/^EBADMSG: add \(nftables transaction .*\): reply of 2097152 bytes cut/);
  });

  it('a lost ack is a timeout naming the transaction, also after some acks came', () => {
    const none = fakeSocket(() => []);
    const e = thrown(() => batchOnSocket(none).commit(msgs(2), 'fill'));
    expect(e.code).toBe('ETIMEDOUT');
    expect(e.message).toBe("ETIMEDOUT: timed out waiting for the kernel's reply to fill (nftables transaction of 2 messages, 88 bytes)");
    const some = fakeSocket((begin, all) => ackAll(begin, all).slice(0, 1));
    expect(thrown(() => batchOnSocket(some).commit(msgs(2), 'fill')).code).toBe('ETIMEDOUT');
  });

  it('the timeout is per ack: a transaction whose acks keep coming takes as long as it takes, one whose replies are never its own does not', () => {
    let t = 0;
    const slow = fakeSocket(ackAll);
    const recv = slow.recv;
    slow.recv = (buf) => ((t += 1000), recv(buf)); // each ack a second after the one before
    expect(batchOnSocket(slow, { timeoutMs: 5000, now: () => t }).commit(msgs(20), 'fill')).toBeGreaterThan(0);
    expect(t).toBe(20_000);

    t = 0;
    const foreign = fakeSocket((_, all) => inner(all).map(() => ({ data: ack({ seq: 1 }, 0, { pid: PORT + 1 }) })));
    const frecv = foreign.recv;
    foreign.recv = (buf) => ((t += 1000), frecv(buf));
    expect(thrown(() => batchOnSocket(foreign, { timeoutMs: 5000, now: () => t }).commit(msgs(20), 'fill')).code).toBe('ETIMEDOUT');
    expect(t).toBeLessThanOrEqual(7000);
  });

  it('grows the send buffer to hold a transaction bigger than it in one send', () => {
    const sock = fakeSocket(ackAll);
    const b = batchOnSocket(sock);
    b.commit(msgs(1), 'small');
    expect(sock.sendBuffer).toBe(0);
    const n = b.commit(msgs(100, 60_000), 'big');
    expect(sock.sendBuffer).toBeGreaterThanOrEqual(n + 65536);
    expect(sock.sendBuffer).toBe(8 << 20);
  });

  it('a closed socket refuses to send', () => {
    const b = batchOnSocket(fakeSocket(ackAll));
    b.close();
    expect(thrown(() => b.commit(msgs(1), 'add')).code).toBe('EBADF');
  });
});

// The checks a handle makes on what it receives, against a stand-in socket
// fed crafted datagrams: only the kernel's replies to this socket's own
// request count, a reply that does not parse is an error (never skipped, so
// a lost ack cannot mean waiting for ever), and a request that sees no reply
// of its own times out with an error naming it.
import { describe, expect, it } from 'vitest';
import { encodeMessage, parseMessages, NLMSG_DONE, RTM_GETLINK, RTM_NEWLINK } from '../../dataplane/netlink/codec';
import { handleOnSocket } from '../../dataplane/netlink/handle';
import { PORT, ack, fakeSocket, thrown } from './handle-fake-socket';

const request = { type: RTM_NEWLINK, body: Buffer.alloc(16), op: 'link add x' };

describe('parseMessages', () => {
  const good = Buffer.concat([
    encodeMessage({ type: RTM_NEWLINK, flags: 2, seq: 7, pid: PORT, body: Buffer.alloc(5) }),
    encodeMessage({ type: NLMSG_DONE, flags: 2, seq: 7, pid: PORT, body: Buffer.alloc(4) }),
  ]);

  it('reads every message of a well-formed datagram, padding included', () => {
    expect(parseMessages(good, good.length, 'link dump').map((m) => [m.type, m.seq, m.body.length])).toEqual([[RTM_NEWLINK, 7, 5], [NLMSG_DONE, 7, 4]]);
  });

  it('a datagram cut inside a header, a length past the end or below a header, and a short error are errors naming the request', () => {
    const cases: Array<[Buffer, number, RegExp]> = [
      [good, good.length - 14, /6 bytes left at offset 24, less than a message header/],
      [good, 20, /message at offset 0 claims 21 bytes, 20 there/],
      [(() => { const b = Buffer.from(good); b.writeUInt32LE(8, 0); return b; })(), good.length, /message at offset 0 claims 8 bytes/],
      [ack({ seq: 1 }, 0, { body: Buffer.alloc(4) }), 20, /error message of 4 bytes, less than struct nlmsgerr/],
    ];
    for (const [buf, n, why] of cases) {
      const e = thrown(() => parseMessages(buf, n, 'link dump'));
      expect(e.code).toBe('EBADMSG');
      expect(e.message).toMatch(/^EBADMSG: link dump: malformed reply from the kernel: /);
      expect(e.message).toMatch(why);
    }
  });
});

describe('a handle\'s reply checks', () => {
  it('skips what is not the kernel\'s reply to this request: another sender, another port, an earlier sequence number', () => {
    const sock = fakeSocket((req) => [
      { data: ack(req, 1 /* EPERM */), senderPid: 999 }, // another process writing to our port
      { data: ack(req, 1, { pid: PORT + 1 }) }, // addressed to another socket
      { data: ack({ seq: req.seq - 1 }, 1) }, // a late answer to an earlier request
      { data: ack(req) },
    ]);
    const h = handleOnSocket(sock);
    expect(h.exec(request)).toEqual([]);
    expect(sock.recvs).toBe(4);
  });

  it('a lost reply is a timeout naming the request, not a wait for ever', () => {
    const h = handleOnSocket(fakeSocket(() => []));
    const e = thrown(() => h.exec(request));
    expect(e.code).toBe('ETIMEDOUT');
    expect(e.message).toBe("ETIMEDOUT: timed out waiting for the kernel's reply to link add x");
    expect(thrown(() => h.dump({ type: RTM_GETLINK, body: Buffer.alloc(16), op: 'link list' })).message).toContain("reply to link list");
    expect(thrown(() => h.batch([request])).message).toContain('reply to batch of 1: link add x');
  });

  it('a stream of messages that are never ours also times out', () => {
    let t = 0;
    // every recv returns someone else's message and 1 s passes
    const sock = fakeSocket(() => []);
    sock.recv = (buf: Buffer) => {
      t += 1000;
      const d = ack({ seq: 1 }, 0, { pid: PORT + 1 });
      d.copy(buf);
      return { n: d.length, senderPid: 0 };
    };
    const h = handleOnSocket(sock, { timeoutMs: 5000, now: () => t });
    expect(thrown(() => h.exec(request)).code).toBe('ETIMEDOUT');
    expect(t).toBeLessThanOrEqual(7000);
  });

  it('a malformed or cut reply fails the request instead of being dropped', () => {
    const short = fakeSocket((req) => [{ data: ack(req, 0, { body: Buffer.alloc(4) }) }]);
    expect(thrown(() => handleOnSocket(short).exec(request)).message).toMatch(/^EBADMSG: link add x: malformed reply from the kernel: error message of 4 bytes/);
    const cut = fakeSocket((req) => [{ data: ack(req), n: 2 << 20 }]);
    expect(thrown(() => handleOnSocket(cut).exec(request)).message).toMatch(/^EBADMSG: link add x: reply of 2097152 bytes cut to the 1048576-byte buffer/);
  });

  it('errors and acks still reach the request they answer; a batch attributes each error', () => {
    const failing = fakeSocket((req) => [{ data: ack(req, 17 /* EEXIST */) }]);
    expect(thrown(() => handleOnSocket(failing).exec(request)).code).toBe('EEXIST');
    // both messages of the batch in one send: the fake answers the first with an error and acks the last
    const sock = fakeSocket((first) => [{ data: Buffer.concat([ack(first, 19 /* ENODEV */), ack({ seq: first.seq + 1 })]) }]);
    const results = handleOnSocket(sock).batch([{ ...request, op: 'a' }, { ...request, op: 'b' }]);
    expect(results.map((r) => r?.code)).toEqual(['ENODEV', undefined]);
  });
});

// The probe wire format and the responder on loopback: well-formed requests
// from allowed addresses get a reply exactly as long as the request, and
// everything else (random bytes, near-misses, replies, refused addresses) is
// counted and never answered, and never throws.
import { createSocket, type Socket } from 'node:dgram';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../controller/common/log';
import { startChooser } from '../../cni-plugin/agent/tunnel/chooser';
import { startProbeResponder, type ProbeResponder } from '../../cni-plugin/agent/tunnel/probe';
import {
  decodeProbe, encodeProbe, KIND_REPLY, KIND_REQUEST, plainAddress, PROBE_SIZE, rateLimited, replyTo, type Probe,
} from '../../cni-plugin/agent/tunnel/probe-wire';
import { waitFor } from '../helpers/wait';

const probeArb: fc.Arbitrary<Probe> = fc.record({
  kind: fc.constantFrom(KIND_REQUEST, KIND_REPLY),
  sequence: fc.nat({ max: 0xffff_ffff }),
  nonce: fc.uint8Array({ minLength: 8, maxLength: 8 }).map((a) => Buffer.from(a)),
  sentAtUs: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
});
const request = (sequence = 1): Buffer => encodeProbe({ kind: KIND_REQUEST, sequence, nonce: Buffer.alloc(8, 7), sentAtUs: 123n });

describe('wire format', () => {
  it('round-trips every probe, 28 bytes each', () => {
    fc.assert(
      fc.property(probeArb, (p) => {
        const b = encodeProbe(p);
        expect(b.length).toBe(PROBE_SIZE);
        expect(decodeProbe(b)).toEqual(p);
      }),
    );
  });

  it('a reply is the request with its kind changed: same length, same fields', () => {
    fc.assert(
      fc.property(probeArb, (p) => {
        const b = encodeProbe(p);
        const r = replyTo(b);
        if (p.kind === KIND_REPLY) {
          expect(r).toBeUndefined();
        } else {
          expect(r!.length).toBe(b.length);
          expect(decodeProbe(r!)).toEqual({ ...p, kind: KIND_REPLY });
          expect(replyTo(r!)).toBeUndefined();
        }
      }),
    );
  });

  it('random bytes never throw and are never answered', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (a) => {
        const b = Buffer.from(a);
        expect(() => decodeProbe(b)).not.toThrow();
        expect(replyTo(b)).toBeUndefined();
      }),
      { numRuns: 5_000 },
    );
  });

  it('a well-formed request with any header byte changed, cut or extended is not a probe', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 1, max: 255 }), (i, delta) => {
        const b = request();
        b[i] = (b[i]! + delta) & 0xff;
        // kind 1 -> 2 is the one change that still parses: a reply, never answered
        if (i === 5 && b[5] === KIND_REPLY) expect(decodeProbe(b)?.kind).toBe(KIND_REPLY);
        else expect(decodeProbe(b)).toBeUndefined();
        expect(replyTo(b)).toBeUndefined();
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 }).filter((n) => n !== PROBE_SIZE), (n) => {
        const b = Buffer.alloc(n);
        request().copy(b);
        expect(replyTo(b)).toBeUndefined();
      }),
    );
  });

  it('judges IPv4 peers of a dual-stack socket by their plain address', () => {
    expect(plainAddress('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(plainAddress('fd00::1')).toBe('fd00::1');
    expect(plainAddress('::ffff:abcd')).toBe('::ffff:abcd');
  });

  it('rate-limited logging emits once per period and counts the rest', () => {
    let t = 0;
    const emitted: number[] = [];
    const limit = rateLimited(1000, () => t);
    for (t = 0; t < 3000; t += 100) limit((n) => emitted.push(n));
    expect(emitted).toEqual([0, 9, 9]);
  });
});

describe('responder on loopback', () => {
  let responder: ProbeResponder | undefined;
  let client: Socket | undefined;
  afterEach(async () => {
    await responder?.close();
    client?.close();
    responder = client = undefined;
  });

  /** A client socket on 127.0.0.1 that collects what comes back. */
  async function openClient(type: 'udp4' | 'udp6' = 'udp4'): Promise<{ sock: Socket; got: Buffer[] }> {
    const sock = createSocket(type);
    const got: Buffer[] = [];
    sock.on('message', (m) => got.push(m));
    await new Promise<void>((r) => sock.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', r));
    client = sock;
    return { sock, got };
  }

  it('answers allowed requests with a reply exactly as long, and nothing else, ever', async () => {
    const seen: string[] = [];
    responder = await startProbeResponder({ port: 0, allowed: (a) => (seen.push(a), a === '127.0.0.1'), log: silentLogger });
    const { sock, got } = await openClient();
    const send = (b: Buffer) => new Promise<void>((r, j) => sock.send(b, responder!.port, '127.0.0.1', (e) => (e ? j(e) : r())));

    const junk: Buffer[] = fc.sample(fc.uint8Array({ maxLength: 120 }), 500).map((a) => Buffer.from(a));
    junk.push(Buffer.alloc(0), encodeProbe({ kind: KIND_REPLY, sequence: 9, nonce: Buffer.alloc(8), sentAtUs: 1n }), Buffer.concat([request(), Buffer.alloc(1)]));
    // In batches the responder drains, so the socket's receive buffer never overflows and every datagram is judged.
    for (let i = 0; i < junk.length; i += 50) {
      for (const b of junk.slice(i, i + 50)) await send(b);
      await waitFor('the batch judged', () => responder!.counts().malformed === Math.min(i + 50, junk.length), 5000);
    }
    await send(request(42));
    // Loopback keeps order: once the answer to the last request is here, any answer to the junk would be too.
    await waitFor('the reply to the valid request', () => got.length > 0, 5000);
    expect(got.length).toBe(1);
    expect(got[0]!.length).toBe(PROBE_SIZE);
    expect(decodeProbe(got[0]!)).toMatchObject({ kind: KIND_REPLY, sequence: 42, sentAtUs: 123n });
    expect(responder.counts()).toEqual({ answered: 1, malformed: junk.length, refused: 0 });
    // only the well-formed request reached the address check
    expect(seen).toEqual(['127.0.0.1']);
  });

  it('refuses addresses `allowed` rejects, and one whose check throws, without answering', async () => {
    let mode: 'no' | 'throw' | 'yes' = 'no';
    responder = await startProbeResponder({
      port: 0, log: silentLogger,
      allowed: () => {
        if (mode === 'throw') throw new Error('check broke');
        return mode === 'yes';
      },
    });
    const { sock, got } = await openClient();
    const send = (b: Buffer) => new Promise<void>((r) => sock.send(b, responder!.port, '127.0.0.1', () => r()));
    await send(request(1));
    mode = 'throw';
    await send(request(2));
    await waitFor('both requests counted', () => responder!.counts().refused === 2, 5000);
    mode = 'yes';
    await send(request(3));
    await waitFor('the reply', () => got.length > 0, 5000);
    expect(got.map((b) => decodeProbe(b)!.sequence)).toEqual([3]);
    expect(responder.counts()).toEqual({ answered: 1, malformed: 0, refused: 2 });
  });

  it('answers over IPv6 on the same socket', async (ctx) => {
    responder = await startProbeResponder({ port: 0, allowed: (a) => a === '::1', log: silentLogger });
    let c: { sock: Socket; got: Buffer[] };
    try {
      c = await openClient('udp6');
    } catch {
      return ctx.skip(); // no IPv6 loopback on this machine
    }
    c.sock.send(request(7), responder.port, '::1');
    await waitFor('the IPv6 reply', () => c.got.length > 0, 5000);
    expect(decodeProbe(c.got[0]!)?.sequence).toBe(7);
  });

  it('close() frees the port', async () => {
    responder = await startProbeResponder({ port: 0, allowed: () => true, log: silentLogger });
    const { port } = responder;
    await responder.close();
    responder = await startProbeResponder({ port, allowed: () => true, log: silentLogger });
    expect(responder.port).toBe(port);
  });
});

describe('chooser and responder on real loopback sockets', () => {
  const chooserOn = async (family: 4 | 6) => {
    const addr = family === 4 ? '127.0.0.1' : '::1';
    const responder = await startProbeResponder({ port: 0, allowed: (a) => a === addr, log: silentLogger });
    const chooser = startChooser({ port: responder.port, intervalMs: 50, graceIntervals: 0, log: silentLogger });
    chooser.update([{ datacenter: 'dc2', candidates: [{ host: 'g1', draining: false }, { host: 'g2', draining: false }], targets: [addr] }], addr);
    return { responder, chooser };
  };

  for (const family of [4, 6] as const) {
    it(`IPv${family}: answered while the responder runs; fails over once it is gone`, async () => {
      const { responder, chooser } = await chooserOn(family);
      try {
        const h = await waitFor('an answered probe', () => chooser.health()[0]!.lastOkAt > 0 && chooser.health()[0], 5000);
        expect(h).toMatchObject({ chosen: 'g1', failovers: 0 });
        expect(h.rttMs).toBeGreaterThanOrEqual(0);
        expect(responder.counts()).toMatchObject({ malformed: 0, refused: 0 });
        await responder.close();
        await waitFor('a failover', () => chooser.health()[0]!.failovers >= 1, 5000);
        expect(chooser.choices().get('dc2')).toBe('g2');
      } finally {
        await chooser.close();
        await responder.close();
      }
    });
  }
});

// The probe's wire format: one fixed-size UDP datagram, the same for request
// and reply except for its kind byte. Fixed size keeps the parser trivial and
// strict (anything of another length is not a probe), and the responder's
// reply is the request with one byte changed, so it is never larger than what
// it answers: a spoofed source can not use a responder as an amplifier. A
// reply is never answered, so two responders can not be made to bounce a
// packet between them.
//
//   0      4   magic "WFPB"
//   4      1   version (1)
//   5      1   kind: 1 request, 2 reply
//   6      2   zero
//   8      4   sequence (big-endian)
//   12     8   sender's nonce: random per prober, echoed
//   20     8   sender's send time, µs of its monotonic clock, echoed

export const PROBE_SIZE = 28;
export const PROBE_MAGIC = 0x57_46_50_42; // "WFPB"
export const PROBE_VERSION = 1;
export const KIND_REQUEST = 1;
export const KIND_REPLY = 2;
export const NONCE_SIZE = 8;

export type ProbeKind = typeof KIND_REQUEST | typeof KIND_REPLY;

export type Probe = {
  kind: ProbeKind;
  sequence: number;
  /** 8 bytes. */
  nonce: Buffer;
  /** µs, as the sender's clock had it. */
  sentAtUs: bigint;
};

export function encodeProbe(p: Probe): Buffer {
  const b = Buffer.alloc(PROBE_SIZE);
  b.writeUInt32BE(PROBE_MAGIC, 0);
  b[4] = PROBE_VERSION;
  b[5] = p.kind;
  b.writeUInt32BE(p.sequence >>> 0, 8);
  p.nonce.copy(b, 12, 0, NONCE_SIZE);
  b.writeBigUInt64BE(BigInt.asUintN(64, p.sentAtUs), 20);
  return b;
}

/** The probe in `b`, or undefined for anything that is not exactly one well-formed probe. Never throws. */
export function decodeProbe(b: Buffer): Probe | undefined {
  if (!Buffer.isBuffer(b) || b.length !== PROBE_SIZE) return undefined;
  if (b.readUInt32BE(0) !== PROBE_MAGIC || b[4] !== PROBE_VERSION) return undefined;
  const kind = b[5];
  if (kind !== KIND_REQUEST && kind !== KIND_REPLY) return undefined;
  if (b[6] !== 0 || b[7] !== 0) return undefined;
  return {
    kind,
    sequence: b.readUInt32BE(8),
    nonce: Buffer.from(b.subarray(12, 12 + NONCE_SIZE)),
    sentAtUs: b.readBigUInt64BE(20),
  };
}

/** The reply to `request`: the same bytes, kind set to reply; undefined when `request` is not a well-formed request. */
export function replyTo(request: Buffer): Buffer | undefined {
  const p = decodeProbe(request);
  if (p?.kind !== KIND_REQUEST) return undefined;
  const reply = Buffer.from(request);
  reply[5] = KIND_REPLY;
  return reply;
}

/** An IPv4 peer seen on a dual-stack socket arrives as ::ffff:a.b.c.d; callers judge the plain address. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * A log line at most once per `everyMs`; the calls it swallowed in between
 * are counted into the next line's `suppressed`, so a flood of bad packets
 * costs one line per period, not one per packet.
 */
export function rateLimited(everyMs: number, now: () => number = Date.now) {
  let last = -Infinity;
  let suppressed = 0;
  return (emit: (suppressed: number) => void): void => {
    const t = now();
    if (t - last < everyMs) {
      suppressed++;
      return;
    }
    last = t;
    const n = suppressed;
    suppressed = 0;
    emit(n);
  };
}

// Join is the one call anyone can make, so it is the one to bound: a token
// bucket per peer address (each attempt takes a token; an empty bucket is
// RESOURCE_EXHAUSTED before the token is even looked at), and refusals are
// logged at most `logPerMinute` times a minute, the rest counted in one line,
// so a flood of guesses neither burns the CPU nor fills the disk.
import type { Logger } from '../common/log';

export type JoinLimit = {
  /** Attempts one address may make in a burst. */
  burst: number;
  /** Attempts per second refilled. */
  perSecond: number;
  /** Refusal lines logged per minute; the rest are counted. */
  logPerMinute: number;
};

export const JOIN_LIMIT: JoinLimit = { burst: 10, perSecond: 1, logPerMinute: 20 };

/** Addresses tracked at most; past it, the one idle longest is forgotten (a forgotten address starts with a full bucket). */
const MAX_ADDRESSES = 10_000;

export type JoinGuard = {
  /** Takes one attempt from the address's bucket: 0 when allowed, else ms until the next attempt is. */
  take(peer: string): number;
  /** Logs a refusal within the rate, or counts it. */
  refused(fields: Record<string, unknown>, msg: string): void;
};

/** "ipv4:1.2.3.4:5678", "[::1]:5678", "1.2.3.4:5678" -> the address alone: every port of a machine shares one bucket. */
export function peerAddress(peer: string): string {
  const p = peer.replace(/^ipv[46]:/, '');
  const v6 = /^\[([^\]]+)\]:\d+$/.exec(p);
  if (v6) return v6[1];
  const v4 = /^([^:]+):\d+$/.exec(p);
  return v4 ? v4[1] : p;
}

export function createJoinGuard(limit: JoinLimit, logger: Logger, now: () => number = Date.now): JoinGuard {
  const buckets = new Map<string, { tokens: number; at: number }>();
  let windowStart = now();
  let logged = 0;
  let suppressed = 0;

  return {
    take(peer) {
      const addr = peerAddress(peer);
      const t = now();
      let b = buckets.get(addr);
      if (b) {
        buckets.delete(addr); // re-inserted below: the map's order is least recently used first
        b.tokens = Math.min(limit.burst, b.tokens + ((t - b.at) / 1000) * limit.perSecond);
        b.at = t;
      } else {
        b = { tokens: limit.burst, at: t };
        if (buckets.size >= MAX_ADDRESSES) buckets.delete(buckets.keys().next().value as string);
      }
      buckets.set(addr, b);
      if (b.tokens < 1) return Math.ceil(((1 - b.tokens) / limit.perSecond) * 1000);
      b.tokens -= 1;
      return 0;
    },
    refused(fields, msg) {
      const t = now();
      if (t - windowStart >= 60_000) {
        if (suppressed > 0) logger.warn({ method: 'Join', suppressed, sinceMs: t - windowStart }, 'more join refusals were not logged one by one');
        windowStart = t;
        logged = 0;
        suppressed = 0;
      }
      if (logged < limit.logPerMinute) {
        logged++;
        logger.warn(fields, msg);
      } else suppressed++;
    },
  };
}

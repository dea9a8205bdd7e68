// The probe responder every agent runs: it answers the probes other agents
// send through the tunnel to pick their gateways (chooser.ts). It answers
// only addresses the caller allows (weft's own), with a reply exactly as long
// as the request, and ignores everything else silently: a bad packet is
// counted and, at most once a period, logged, but never answered and never
// an exception.
import { createSocket, type Socket } from 'node:dgram';
import type { Logger } from '../../../controller/common/log';
import { plainAddress, rateLimited, replyTo } from './probe-wire';

export type ProbeResponderCounts = {
  /** Requests answered. */
  answered: number;
  /** Datagrams that are not a well-formed probe request (replies included). */
  malformed: number;
  /** Well-formed requests from an address `allowed` refused. */
  refused: number;
};

export type ProbeResponder = {
  /** The port bound (the one asked for, or the kernel's pick for 0). */
  port: number;
  counts(): ProbeResponderCounts;
  close(): Promise<void>;
};

const LOG_EVERY_MS = 10_000;

/** Listens on the wildcard address, IPv6 and IPv4 on one socket (IPv4 alone where IPv6 is off). */
export async function startProbeResponder(o: { port: number; allowed: (addr: string) => boolean; log: Logger }): Promise<ProbeResponder> {
  const sock = await bindWildcard(o.port);
  const counts: ProbeResponderCounts = { answered: 0, malformed: 0, refused: 0 };
  const logIgnored = rateLimited(LOG_EVERY_MS);
  const ignored = (from: string, why: 'malformed' | 'refused'): void => {
    counts[why]++;
    logIgnored((suppressed) => o.log.info({ from, why, suppressed, ...counts }, 'probe responder: datagram ignored'));
  };
  const logSendError = rateLimited(LOG_EVERY_MS);
  sock.on('message', (msg, rinfo) => {
    const from = plainAddress(rinfo.address);
    const reply = replyTo(msg);
    if (!reply) return ignored(from, 'malformed');
    let ok = false;
    try {
      ok = o.allowed(from) === true;
    } catch (err) {
      o.log.error({ err, from }, 'probe responder: the address check threw; refusing');
    }
    if (!ok) return ignored(from, 'refused');
    counts.answered++;
    sock.send(reply, rinfo.port, rinfo.address, (err) => {
      if (err) logSendError((suppressed) => o.log.warn({ err, to: from, suppressed }, 'probe responder: reply not sent'));
    });
  });
  // After binding, errors are per datagram (ICMP errors reflected on the
  // socket); the socket stays usable.
  sock.on('error', (err) => logSendError((suppressed) => o.log.warn({ err, suppressed }, 'probe responder: socket error')));
  const port = sock.address().port;
  o.log.info({ port, family: sock.address().family }, 'probe responder listening');
  let closed: Promise<void> | undefined;
  return {
    port,
    counts: () => ({ ...counts }),
    close: () => (closed ??= new Promise<void>((resolve) => sock.close(() => resolve()))),
  };
}

function bindWildcard(port: number): Promise<Socket> {
  return bind('udp6', '::', port).catch((err: NodeJS.ErrnoException) => {
    // A host (or namespace) with IPv6 disabled has no :: to bind.
    if (err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL' || err.code === 'EINVAL') return bind('udp4', '0.0.0.0', port);
    throw err;
  });
}

function bind(type: 'udp4' | 'udp6', address: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = createSocket({ type, ipv6Only: false });
    const fail = (err: Error): void => {
      try {
        sock.close();
      } catch {
        // never bound: nothing to close
      }
      reject(err);
    };
    sock.once('error', fail);
    sock.bind({ address, port, exclusive: true }, () => {
      sock.off('error', fail);
      resolve(sock);
    });
  });
}

// The front door, before any HTTP: the connection limit over all listeners,
// and the PROXY header from a trusted balancer, read off the socket before
// the HTTP parser sees a byte.
import { BlockList, isIPv4, isIPv6, type Socket } from 'node:net';
import { parseCidr } from '../../controller/common/cidr';
import type { ProxyMetrics } from '../model';
import { plainIp } from './client';
import { parseProxyHeader, type ProxyHeader } from './proxy-protocol';

/** Counts and holds the open client connections, refusing those over the limit. */
export class ConnectionGate {
  readonly sockets = new Set<Socket>();
  // One listener for every socket (it is called with the socket as `this`).
  private readonly onClose: (this: Socket) => void;

  constructor(
    private readonly max: number,
    private readonly metrics: ProxyMetrics,
    /** After every close: a drain resolves when the last connection is gone. */
    onClosed: () => void = () => {},
  ) {
    const gate = this;
    this.onClose = function (this: Socket) {
      gate.sockets.delete(this);
      onClosed();
    };
  }

  /** False (and the socket destroyed) when the limit is reached. */
  admit(socket: Socket): boolean {
    if (this.sockets.size >= this.max) {
      this.metrics.rejected('too-many-connections');
      // A reset, not a FIN: nothing to say, and no TIME_WAIT left on our side.
      socket.resetAndDestroy();
      return false;
    }
    this.sockets.add(socket);
    socket.on('close', this.onClose);
    return true;
  }

  get open(): number {
    return this.sockets.size;
  }
}

/** The sources allowed to send a PROXY header, or undefined when none are. */
export function trustedSources(cidrs: readonly string[] | undefined): BlockList | undefined {
  if (!cidrs || cidrs.length === 0) return undefined;
  const list = new BlockList();
  for (const text of cidrs) {
    const c = parseCidr(text); // throws CidrError naming the bad entry
    const [addr] = text.split('/');
    list.addSubnet(addr, c.prefixLength, c.family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

export function isTrusted(list: BlockList, remoteAddress: string | undefined): boolean {
  if (remoteAddress === undefined) return false;
  const ip = plainIp(remoteAddress);
  if (isIPv4(ip)) return list.check(ip, 'ipv4');
  return isIPv6(ip) && list.check(ip, 'ipv6');
}

/**
 * Reads a PROXY header from `socket`, then calls `done` with it and the
 * socket paused, the bytes after the header pushed back: hand it to the HTTP
 * server and resume. On a bad or missing header, or none within `timeoutMs`,
 * calls `fail` with the reason (the caller answers and closes).
 */
export function readProxyHeader(socket: Socket, timeoutMs: number, done: (h: ProxyHeader) => void, fail: (reason: string, timedOut: boolean) => void): void {
  let buf: Buffer | undefined;
  const timer = setTimeout(() => finish('no PROXY header in time', true), timeoutMs);
  const onData = (chunk: Buffer) => {
    buf = buf === undefined ? chunk : Buffer.concat([buf, chunk]);
    const r = parseProxyHeader(buf);
    if (r.kind === 'incomplete') return;
    if (r.kind === 'invalid') return finish(r.reason, false);
    // Stop the flow before the listener goes, or the next chunk would be emitted to nobody.
    socket.pause();
    cleanup();
    if (buf.length > r.header.length) socket.unshift(buf.subarray(r.header.length));
    done(r.header);
  };
  const onEnd = () => finish('connection closed before the PROXY header', false);
  const cleanup = () => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('error', onEnd);
  };
  const finish = (reason: string, timedOut: boolean) => {
    cleanup();
    fail(reason, timedOut);
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('error', onEnd);
}

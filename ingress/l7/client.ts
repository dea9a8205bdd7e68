// Who a client connection is from and to: the PROXY header's addresses when
// a trusted balancer sent one, else the socket's own. Kept on the socket so
// each request of a keep-alive connection reads it without recomputing.
import type { Socket } from 'node:net';
import type { SocketAddress } from './proxy-protocol';

export type ClientAddresses = { source: SocketAddress; destination: SocketAddress };

const kClient = Symbol('weft.l7.client');
type Tagged = Socket & { [kClient]?: ClientAddresses };

export function setClientAddresses(socket: Socket, c: ClientAddresses): void {
  (socket as Tagged)[kClient] = c;
}

export function clientAddresses(socket: Socket): ClientAddresses {
  const t = socket as Tagged;
  let c = t[kClient];
  if (c === undefined) {
    c = {
      source: { ip: plainIp(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 },
      destination: { ip: plainIp(socket.localAddress ?? ''), port: socket.localPort ?? 0 },
    };
    t[kClient] = c;
  }
  return c;
}

/** An IPv4 client of a dual-stack listener shows up as ::ffff:a.b.c.d; everyone downstream wants a.b.c.d. */
export function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.indexOf('.') > 0 ? ip.slice(7) : ip;
}

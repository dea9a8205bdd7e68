// The proxy's own answers: short plain text that names the service and what
// went wrong, for the person reading it in a browser or curl. Never a stack
// or an internal message: errors go to the log, not to the client.
import type { ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** Writes a complete plain-text response. `close`: end the connection after it. */
export function reply(res: ServerResponse, status: number, body: string, close: boolean): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers = ['content-type', 'text/plain; charset=utf-8', 'content-length', String(Buffer.byteLength(body)), 'x-content-type-options', 'nosniff'];
  if (close) headers.push('connection', 'close');
  res.writeHead(status, headers);
  res.end(body);
}

/** The same on a raw socket (a parse error, or an upgrade that failed), which is closed after it. */
export function replyRaw(socket: Duplex, status: number, body: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n${body}`,
    'utf8',
  );
  // Closing at once could reset the connection while the client is still sending, and a reset
  // can make its side drop our answer unread; give it a moment to read and close, no more.
  const s = socket as Partial<Socket>;
  if (typeof s.setTimeout === 'function') s.setTimeout(LINGER_MS, () => socket.destroy());
  socket.resume();
}

const LINGER_MS = 2000;

/** At most this much of client input is echoed back, so a reply stays small. */
function clip(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}...` : s;
}

export function noRouteBody(host: string | undefined, path: string): string {
  return `weft ingress: no route for host "${clip(host ?? '')}" and path "${clip(path)}"\n`;
}

export function noBackendBody(service: string): string {
  return `weft ingress: no healthy backend for service "${service}"\n`;
}

/** The body for an upstream failure: a 504 says it timed out, a 502 that it failed. */
export function upstreamFailureBody(service: string, f: { status: 502 | 504; why: string }): string {
  return `weft ingress: the backend of service "${service}" ${f.status === 504 ? 'timed out' : 'failed'} (${f.why})\n`;
}

export function badRequestBody(why: string): string {
  return `weft ingress: bad request (${why})\n`;
}

export function bodyTooLargeBody(max: number): string {
  return `weft ingress: request body larger than ${max} bytes\n`;
}

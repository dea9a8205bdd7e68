// Closing client connections without cutting a request, the way Go's
// http.Server.Shutdown does, one connection at a time:
//
//  - a request in progress finishes (its response says Connection: close,
//    and Node closes the connection after it);
//  - a connection that has not sent its first request yet gets a short grace
//    from its accept to send one: it was accepted just before the listener
//    closed, and its client is about to write;
//  - bytes of a next request already arriving get the same grace from the
//    start of the drain (and Node's header timeout, which may answer 408
//    first);
//  - an idle keep-alive connection gets the same grace from the end of its
//    last response, then a FIN. A busy client's next request comes within it
//    and is answered with Connection: close, so a client that reuses its
//    connections loses nothing (HAProxy's idle-close-on-response). Closing at
//    once would race every such client's next write: the request would cross
//    our FIN and fail. A connection idle for longer than the grace is closed
//    at once, as an idle timeout would close it; clients retry an idempotent
//    request on a new connection when a kept-alive one closes cleanly under
//    it, where a reset would lose the request.
//
// A connection is judged again whenever its state changes (a request starts,
// a response ends, a grace runs out), never by sweeping every connection.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

type Conn = {
  owner: ConnectionDrain;
  /** The port whose listener accepted it (closePort drains only that port's). */
  port: number;
  acceptedAt: number;
  /** When its last response ended (its accept, before the first). */
  idleSince: number;
  /** Responses finished on it. */
  served: number;
  /** Requests whose response has not finished yet (more than one only for a pipelining client). */
  inProgress: number;
  /** Handed to a tunnel, which closes it; nothing of HTTP is left to wait for. */
  upgraded: boolean;
  /**
   * socket.bytesRead when the connection last had nothing pending (0, or the
   * PROXY header's length, before its first request): more than this and no
   * request started means the next request is arriving.
   */
  restBytes: number;
  /** 0 until the connection is drained; then when that began. */
  drainingSince: number;
  /** The grace timer, or the linger timer after our FIN. */
  timer: NodeJS.Timeout | undefined;
};

const kConn = Symbol('weft.l7.conn');
const kResConn = Symbol('weft.l7.resConn');
type Tracked = Socket & { [kConn]?: Conn };
type TaggedResponse = ServerResponse & { [kResConn]?: Tracked };

/** After our FIN, how long a client has to close its side before the connection is destroyed. */
const LINGER_MS = 2000;
/** Go's Shutdown gives a connection that has not sent its first request 5 s; a shorter header timeout bounds it further. */
const MAX_GRACE_MS = 5000;

export class ConnectionDrain {
  readonly graceMs: number;

  constructor(headerTimeoutMs: number) {
    this.graceMs = Math.min(headerTimeoutMs, MAX_GRACE_MS);
  }

  /** A connection was admitted. */
  track(socket: Socket, port: number): void {
    const now = performance.now();
    const c: Conn = { owner: this, port, acceptedAt: now, idleSince: now, served: 0, inProgress: 0, upgraded: false, restBytes: 0, drainingSince: 0, timer: undefined };
    (socket as Tracked)[kConn] = c;
    socket.on('close', onSocketClose);
  }

  /** The PROXY header took the first `bytes`; the HTTP stream starts after them. */
  proxyHeaderRead(socket: Socket, bytes: number): void {
    const c = (socket as Tracked)[kConn];
    if (c !== undefined) c.restBytes = bytes;
  }

  /**
   * A request's headers are in. False when our FIN already went out on this
   * connection (the request crossed it): no response can be written; the
   * client, which has our FIN, retries on a new connection.
   */
  requestStarted(socket: Socket, res: ServerResponse): boolean {
    const c = (socket as Tracked)[kConn];
    if (socket.writableEnded) return false;
    if (c === undefined) return true;
    c.inProgress++;
    clearTimeout(c.timer);
    c.timer = undefined;
    (res as TaggedResponse)[kResConn] = socket;
    res.on('close', onResponseClose);
    return true;
  }

  /** The connection became a tunnel. False when our FIN already went out on it (see requestStarted). */
  upgraded(socket: Socket): boolean {
    const c = (socket as Tracked)[kConn];
    if (socket.writableEnded) return false;
    if (c !== undefined) {
      c.upgraded = true;
      clearTimeout(c.timer);
      c.timer = undefined;
    }
    return true;
  }

  /** This connection closes after its current response (Connection: close). */
  isDraining(socket: Socket | null): boolean {
    // A request's socket is null once Node has let go of it (the client left).
    return ((socket as Tracked | null)?.[kConn]?.drainingSince ?? 0) > 0;
  }

  /** Starts draining these connections (every one, or one port's). */
  drain(sockets: Iterable<Socket>, port?: number): void {
    const now = performance.now();
    for (const s of sockets) {
      const c = (s as Tracked)[kConn];
      if (c === undefined || c.drainingSince > 0 || (port !== undefined && c.port !== port)) continue;
      c.drainingSince = now;
      judge(s as Tracked);
    }
  }

  /** @internal: a response on this connection is over. */
  responseClosed(socket: Tracked): void {
    const c = socket[kConn];
    if (c === undefined) return;
    c.inProgress = Math.max(0, c.inProgress - 1);
    c.served++;
    if (c.inProgress === 0) {
      c.restBytes = socket.bytesRead;
      c.idleSince = performance.now();
    }
    judge(socket);
  }
}

/** Closes a draining connection that has no request to wait for, or sets a timer to look again when its grace ends. */
function judge(socket: Tracked): void {
  const c = socket[kConn];
  if (c === undefined || c.drainingSince === 0) return;
  clearTimeout(c.timer);
  c.timer = undefined;
  // Closing already (a Connection: close response, an error reply), a tunnel's, or busy: its own end will come.
  if (socket.destroyed || socket.writableEnded || c.upgraded || c.inProgress > 0) return;
  const now = performance.now();
  const grace = c.owner.graceMs;
  // bytesRead counts what the HTTP parser consumed too: public, and exact except for a pipelining client
  // whose next request was partly in before its previous response ended (it then gets a FIN it must handle anyway).
  const arriving = socket.bytesRead > c.restBytes;
  const until = arriving ? Math.max(c.acceptedAt, c.drainingSince) + grace : c.idleSince + grace;
  if (until > now) {
    c.timer = setTimeout(judge, Math.ceil(until - now), socket).unref();
    return;
  }
  socket.end();
  c.timer = setTimeout(destroy, LINGER_MS, socket).unref();
}

function destroy(socket: Socket): void {
  socket.destroy();
}

function onSocketClose(this: Tracked): void {
  const c = this[kConn];
  if (c !== undefined) {
    clearTimeout(c.timer);
    c.timer = undefined;
  }
}

function onResponseClose(this: TaggedResponse): void {
  const s = this[kResConn];
  if (s !== undefined) s[kConn]?.owner.responseClosed(s);
}

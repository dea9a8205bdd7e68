// Upgrade (WebSocket and friends) pass-through: the request head goes to a
// backend over a raw TCP connection of its own, then bytes flow both ways
// untouched until either side closes. The tunnel holds its lease for its
// whole life; it knows nothing of routes, so a route change leaves it be.
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../controller/common/log';
import type { Lease, Outcome, ProxyMetrics } from '../model';
import type { ClientAddresses } from './client';
import { serializeRequestHead, type RequestHead } from './headers';
import { encodeProxyV2 } from './proxy-protocol';
import { noBackendBody, replyRaw, upstreamFailureBody } from './replies';
import type { L7Route } from './types';
import { classifyUpstreamError, MAX_RETRIES } from './upstream-errors';

export interface TunnelContext {
  readonly metrics: ProxyMetrics;
  readonly logger: Logger;
  readonly connectTimeoutMs: number;
  tunnelStarted(t: Tunnel): void;
  tunnelEnded(t: Tunnel): void;
}

/** How long a client may take to read the rest after the backend closed. */
const LINGER_MS = 5_000;
const CONNECT_TIMEOUT = Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' });

export class Tunnel {
  private readonly started = performance.now();
  private lease: Lease | undefined;
  private upstream: Socket | undefined;
  private excluded: Set<string> | undefined;
  private retries = 0;
  private status = 0;
  private connected = false;
  private ended = false;
  private linger: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: TunnelContext,
    private readonly req: IncomingMessage,
    private readonly socket: Duplex,
    private readonly head: Buffer,
    private readonly route: L7Route,
    private readonly client: ClientAddresses,
    private readonly request: RequestHead,
    private readonly path: string,
  ) {
    ctx.tunnelStarted(this);
    // The http server leaves its sockets half-open on a FIN; a tunnel whose client has sent its last
    // byte is over once our answer is out, or a backend that never closes would hold it for ever.
    (socket as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = false;
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
  }

  start(): void {
    const lease = this.route.picker.pick({ clientIp: this.client.source.ip });
    if (lease === undefined) {
      this.status = 503;
      replyRaw(this.socket, 503, noBackendBody(this.route.service));
      return;
    }
    this.open(lease);
  }

  private open(lease: Lease): void {
    this.lease = lease;
    const ep = lease.endpoint;
    const up = connect({ host: ep.ip, port: ep.port, noDelay: true });
    this.upstream = up;
    up.setTimeout(this.ctx.connectTimeoutMs, () => up.destroy(CONNECT_TIMEOUT));
    up.once('connect', () => this.onConnected(up));
    up.on('error', (err) => this.onUpstreamError(up, err));
    up.on('close', () => {
      if (this.connected && this.upstream === up) this.upstreamClosed();
    });
  }

  private onConnected(up: Socket): void {
    if (this.ended) {
      up.destroy();
      return;
    }
    up.setTimeout(0);
    this.connected = true;
    const ep = this.lease!.endpoint;
    this.ctx.metrics.inFlight(this.route.service, ep.key, 1);
    if (this.route.proxyProtocol) up.write(encodeProxyV2(this.client.source, this.client.destination));
    up.write(serializeRequestHead(this.req.method ?? 'GET', this.path, this.request.headers));
    if (this.head.length > 0) up.write(this.head);
    // The first bytes back carry the backend's status line: what the tunnel is accounted as.
    up.once('data', (first: Buffer) => {
      this.status = statusOf(first);
      this.socket.write(first);
      up.pipe(this.socket);
    });
    this.socket.pipe(up);
  }

  private onUpstreamError(up: Socket, err: Error): void {
    if (this.upstream !== up) return;
    if (this.connected || this.ended) {
      this.close();
      return;
    }
    const f = classifyUpstreamError(err);
    const failed = this.lease!.endpoint;
    this.lease!.done(f.outcome);
    this.lease = undefined;
    this.upstream = undefined;
    if (f.beforeConnect && this.retries < MAX_RETRIES) {
      (this.excluded ??= new Set()).add(failed.key);
      const next = this.route.picker.pick({ clientIp: this.client.source.ip, exclude: this.excluded });
      if (next !== undefined) {
        this.retries++;
        this.open(next);
        return;
      }
    }
    this.ctx.logger.debug({ err, service: this.route.service, backend: failed.key }, 'upgrade: backend connection failed');
    this.status = f.status;
    replyRaw(this.socket, f.status, upstreamFailureBody(this.route.service, f));
  }

  /** The backend is gone: let the client read what it sent (pipe ends it), but not for ever. */
  private upstreamClosed(): void {
    if (this.ended || this.linger !== undefined) return;
    this.socket.end();
    this.linger = setTimeout(() => this.close(), LINGER_MS).unref();
  }

  /** Ends the tunnel (both sides), once: at the client's close or error, the backend's error, or the drain deadline. */
  close(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.linger);
    this.socket.destroy();
    this.upstream?.destroy();
    const lease = this.lease;
    if (lease !== undefined) {
      const outcome: Outcome = this.status >= 500 ? 'http-5xx' : 'ok';
      lease.done(outcome);
      if (this.connected) this.ctx.metrics.inFlight(this.route.service, lease.endpoint.key, -1);
    }
    this.ctx.metrics.requestDone({
      service: this.route.service,
      backend: lease ? lease.endpoint.key : '',
      rack: lease ? lease.endpoint.rack : '',
      spilled: lease ? lease.spilled : false,
      status: this.status || 499,
      seconds: (performance.now() - this.started) / 1000,
    });
    this.ctx.tunnelEnded(this);
  }
}

/** The status code of a response's first bytes ("HTTP/1.1 101 ..."), 0 when they are not one. */
function statusOf(b: Buffer): number {
  if (b.length < 12 || b.toString('latin1', 0, 5) !== 'HTTP/') return 0;
  const n = Number(b.toString('latin1', 9, 12));
  return Number.isInteger(n) ? n : 0;
}

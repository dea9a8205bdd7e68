// One proxied request: pick a backend, send the request on its pool, stream
// the response back, retry on another backend when a connection could not
// even be opened, and account for it exactly once. The object is its own
// undici dispatch handler, and the response's listeners are shared functions
// that find it through a symbol, so a request allocates no closures.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { InvalidArgumentError } from '../../controller/common/errors';
import type { Logger } from '../../controller/common/log';
import type { Lease, Outcome, ProxyMetrics } from '../model';
import type { ClientAddresses } from './client';
import { forwardResponseHeaders, type RequestHead } from './headers';
import { bodyTooLargeBody, noBackendBody, reply, upstreamFailureBody } from './replies';
import type { L7Route } from './types';
import { classifyUpstreamError, MAX_RETRIES } from './upstream-errors';
import type { PoolEntry, UpstreamPools } from './upstream';

/** What an exchange needs of the proxy that runs it. */
export interface ExchangeContext {
  readonly pools: UpstreamPools;
  readonly metrics: ProxyMetrics;
  readonly logger: Logger;
  readonly maxRequestBodyBytes: number | undefined;
  /** 0: no access log; 1: every request. */
  readonly accessLogRate: number;
  /** Tell this connection's client to go (Connection: close): the proxy is stopping, or the port is closed. */
  closes(socket: Socket | null): boolean;
  exchangeStarted(): void;
  exchangeEnded(): void;
}

/** Methods whose repetition does no harm (RFC 9110 9.2.2), so a request that never reached a backend may go to another. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

const kExchange = Symbol('weft.l7.exchange');
type Tagged = ServerResponse & { [kExchange]?: Exchange };

/** The request was cut on the client's side; the backend is not to blame. */
class ClientGone extends Error {
  override name = 'ClientGone';
}

class BodyTooLarge extends InvalidArgumentError {
  constructor(max: number) {
    super(`request body larger than ${max} bytes`, { field: 'body' });
    this.name = 'BodyTooLarge';
  }
}

export class Exchange implements Dispatcher.DispatchHandlers {
  private readonly started = performance.now();
  private lease: Lease | undefined;
  private entry: PoolEntry | undefined;
  private excluded: Set<string> | undefined;
  private retries = 0;
  private status = 0;
  private abortUpstream: ((err?: Error) => void) | undefined;
  private resumeUpstream: (() => void) | undefined;
  private drainHooked = false;
  /** The response to the client is over (finished or cut); accounted. */
  private ended = false;
  /** The body is wrapped to count it, so it cannot be replayed. */
  private bodyWrapped = false;
  private tooLarge = false;
  private headerError: unknown;

  constructor(
    private readonly ctx: ExchangeContext,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly route: L7Route,
    private readonly client: ClientAddresses,
    private readonly head: RequestHead,
    /** The request target in origin form. */
    private readonly path: string,
  ) {
    (res as Tagged)[kExchange] = this;
    res.on('close', onResponseClose);
    ctx.exchangeStarted();
  }

  start(): void {
    const lease = this.route.picker.pick({ clientIp: this.client.source.ip });
    if (lease === undefined) {
      reply(this.res, 503, noBackendBody(this.route.service), this.ctx.closes(this.req.socket));
      return;
    }
    this.lease = lease;
    this.dispatch();
  }

  private dispatch(): void {
    const lease = this.lease!;
    const ep = lease.endpoint;
    const pools = this.ctx.pools;
    this.entry = this.route.proxyProtocol ? pools.acquireForClient(ep, this.req.socket, this.client.source, this.client.destination) : pools.acquire(ep);
    this.ctx.metrics.inFlight(this.route.service, ep.key, 1);
    this.abortUpstream = undefined;
    try {
      this.entry.pool.dispatch({ path: this.path, method: this.req.method as Dispatcher.HttpMethod, headers: this.head.headers, body: this.body() as Dispatcher.DispatchOptions['body'] }, this);
    } catch (err) {
      // undici refused the request itself (a header or target it cannot send): the client's doing.
      this.attemptDone('ok');
      this.ctx.logger.debug({ err, service: this.route.service }, 'request cannot be forwarded');
      this.status = 400;
      reply(this.res, 400, 'weft ingress: bad request (cannot be forwarded)\n', true);
    }
  }

  private body(): IncomingMessage | AsyncIterable<Buffer> | null {
    if (!this.head.hasBody) return null;
    const max = this.ctx.maxRequestBodyBytes;
    // A declared length was checked before we got here; only a chunked body needs counting.
    if (max === undefined || this.head.contentLength >= 0) return this.req;
    this.bodyWrapped = true;
    return this.limitedBody(max);
  }

  private async *limitedBody(max: number): AsyncIterable<Buffer> {
    let seen = 0;
    for await (const chunk of this.req as AsyncIterable<Buffer>) {
      seen += chunk.length;
      if (seen > max) {
        this.tooLarge = true;
        throw new BodyTooLarge(max);
      }
      yield chunk;
    }
  }

  // ---- undici's side

  onConnect(abort: (err?: Error) => void): void {
    if (this.ended) abort(new ClientGone('client closed the connection'));
    else this.abortUpstream = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx: Node answered 100-continue to the client itself; others have no meaning across the proxy.
    if (statusCode < 200) return true;
    if (this.ended) return false;
    this.status = statusCode;
    this.resumeUpstream = resume;
    try {
      const headers = forwardResponseHeaders(rawHeaders, this.ctx.closes(this.req.socket));
      if (statusText) this.res.writeHead(statusCode, statusText, headers);
      else this.res.writeHead(statusCode, headers);
    } catch (err) {
      // A header Node will not write (a control character): the response is unusable.
      this.headerError = err;
      this.abortUpstream?.(err as Error);
      return false;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true;
    // The client reads slower than the backend writes: hold the backend until the client drains.
    if (!this.drainHooked) {
      this.drainHooked = true;
      this.res.on('drain', onResponseDrain);
    }
    return false;
  }

  onComplete(): void {
    this.attemptDone(this.status >= 500 ? 'http-5xx' : 'ok');
    if (!this.ended) this.res.end();
  }

  onError(err: Error): void {
    if (this.ended) {
      // We aborted because the client left: the backend did nothing wrong. Unless it failed on its own first.
      this.attemptDone(err instanceof ClientGone ? 'ok' : classifyUpstreamError(err).outcome);
      return;
    }
    if (this.tooLarge) {
      this.attemptDone('ok');
      this.status = 413;
      reply(this.res, 413, bodyTooLargeBody(this.ctx.maxRequestBodyBytes ?? 0), true);
      return;
    }
    const f = classifyUpstreamError(this.headerError ?? err);
    const failed = this.lease!.endpoint;
    this.attemptDone(f.outcome);
    const log = this.ctx.logger;
    if (f.beforeConnect && !this.res.headersSent && this.retryable()) {
      (this.excluded ??= new Set()).add(failed.key);
      const next = this.route.picker.pick({ clientIp: this.client.source.ip, exclude: this.excluded });
      if (next !== undefined) {
        log.debug({ err, service: this.route.service, backend: failed.key, next: next.endpoint.key }, 'backend connection failed; trying another');
        this.retries++;
        this.lease = next;
        this.dispatch();
        return;
      }
    }
    // Per request at debug: an outage would otherwise flood the log; metrics count every one.
    log.debug({ err, service: this.route.service, backend: failed.key }, 'upstream request failed');
    if (this.res.headersSent) {
      // Mid-body: the client must see the response cut, not a short one that looks complete.
      this.res.destroy();
      return;
    }
    this.status = f.status;
    reply(this.res, f.status, upstreamFailureBody(this.route.service, f), this.ctx.closes(this.req.socket));
  }

  private retryable(): boolean {
    if (this.retries >= MAX_RETRIES || !IDEMPOTENT.has(this.req.method ?? '')) return false;
    // A body can go again only if nobody has read a byte of it.
    return !this.head.hasBody || (!this.bodyWrapped && !this.req.readableDidRead);
  }

  /** One backend attempt is over: the lease, the gauge and the pool hear of it once. */
  private attemptDone(outcome: Outcome): void {
    const entry = this.entry;
    if (entry === undefined) return;
    this.entry = undefined;
    const lease = this.lease!;
    lease.done(outcome);
    this.ctx.metrics.inFlight(this.route.service, lease.endpoint.key, -1);
    this.ctx.pools.release(entry);
  }

  // ---- the client's side

  onResponseClose(): void {
    if (this.ended) return;
    this.ended = true;
    const finished = this.res.writableFinished;
    if (this.entry !== undefined) {
      // The client left (or we cut it) while the backend was still at it.
      if (this.abortUpstream) this.abortUpstream(new ClientGone('client closed the connection'));
      // Not yet connected: onConnect aborts it.
    }
    // 499: nginx's "client closed request", for a response the client did not get whole.
    const status = finished ? this.status || this.res.statusCode : 499;
    const seconds = (performance.now() - this.started) / 1000;
    const lease = this.lease;
    const service = this.route.service;
    this.ctx.metrics.requestDone({
      service,
      backend: lease ? lease.endpoint.key : '',
      rack: lease ? lease.endpoint.rack : '',
      spilled: lease ? lease.spilled : false,
      status,
      seconds,
    });
    const rate = this.ctx.accessLogRate;
    if (rate > 0 && (rate >= 1 || Math.random() < rate)) {
      this.ctx.logger.info(
        {
          client: this.client.source.ip,
          method: this.req.method,
          host: this.head.host,
          path: this.path,
          status,
          service,
          backend: lease?.endpoint.key,
          retries: this.retries,
          ms: Math.round(seconds * 1e6) / 1e3,
        },
        'request',
      );
    }
    this.ctx.exchangeEnded();
  }

  onResponseDrain(): void {
    this.resumeUpstream?.();
  }
}

function onResponseClose(this: ServerResponse): void {
  (this as Tagged)[kExchange]?.onResponseClose();
}

function onResponseDrain(this: ServerResponse): void {
  (this as Tagged)[kExchange]?.onResponseDrain();
}

// The L7 proxy: HTTP/1.1 listeners (bound here or adopted from the previous
// process), routes swapped in place per port, and a graceful stop. Each
// listener is a Node http.Server whose accept path is ours: the connection
// limit and the PROXY header come first, then the socket goes to Node's
// own connection handler, which gives us its parser, keep-alive and
// header/request/idle timeouts. Requests are Exchange objects, upgrades
// Tunnels. Stopping closes connections one by one as each has nothing left to
// wait for (drain.ts).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { InvalidArgumentError } from '../../controller/common/errors';
import type { Logger } from '../../controller/common/log';
import { noMetrics, type ProxyMetrics } from '../model';
import { ConnectionGate, isTrusted, readProxyHeader, trustedSources } from './accept';
import { clientAddresses, setClientAddresses } from './client';
import { ConnectionDrain } from './drain';
import { Exchange, type ExchangeContext } from './exchange';
import { forwardRequestHeaders } from './headers';
import { badRequestBody, bodyTooLargeBody, noRouteBody, reply, replyRaw } from './replies';
import { compileRoutes, emptyRouteTable, findRoute, type RouteTable } from './routes';
import { resolveLimits, type L7Limits, type L7ListenerOptions, type L7Route } from './types';
import { Tunnel, type TunnelContext } from './upgrade';
import { UpstreamPools } from './upstream';

export type L7ProxyOptions = { limits?: Partial<L7Limits>; logger: Logger; metrics?: ProxyMetrics; accessLog?: { sampleRate: number } };

type Listener = {
  port: number;
  server: Server;
  /** Node's own 'connection' handler, called once our front door is passed. */
  httpConnection: (socket: Socket) => void;
  trusted: ReturnType<typeof trustedSources>;
  table: RouteTable;
};

type ParseError = Error & { code?: string };

export class L7Proxy implements ExchangeContext, TunnelContext {
  readonly limits: L7Limits;
  readonly logger: Logger;
  readonly metrics: ProxyMetrics;
  readonly pools: UpstreamPools;
  readonly accessLogRate: number;
  readonly maxRequestBodyBytes: number | undefined;
  readonly connectTimeoutMs: number;
  closing = false;
  private draining = false;

  private readonly gate: ConnectionGate;
  private readonly conns: ConnectionDrain;
  private readonly byPort = new Map<number, Listener[]>();
  private readonly tables = new Map<number, RouteTable>();
  private readonly routeEndpoints = new Map<number, Set<string> | undefined>();
  private readonly tunnels = new Set<Tunnel>();
  private active = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(opts: L7ProxyOptions) {
    this.limits = resolveLimits(opts.limits);
    this.logger = opts.logger;
    this.metrics = opts.metrics ?? noMetrics;
    const rate = opts.accessLog?.sampleRate ?? 0;
    if (!(rate >= 0 && rate <= 1)) throw new InvalidArgumentError(`access log sample rate must be between 0 and 1, got ${rate}`, { field: 'accessLog.sampleRate' });
    this.accessLogRate = rate;
    this.maxRequestBodyBytes = this.limits.maxRequestBodyBytes;
    this.connectTimeoutMs = this.limits.connectTimeoutMs;
    this.gate = new ConnectionGate(this.limits.maxConnections, this.metrics, () => this.wakeIfIdle());
    this.conns = new ConnectionDrain(this.limits.headerTimeoutMs);
    this.pools = new UpstreamPools({ connectTimeoutMs: this.limits.connectTimeoutMs, upstreamTimeoutMs: this.limits.upstreamTimeoutMs });
  }

  async listen(l: L7ListenerOptions): Promise<void> {
    if (this.closing) throw new InvalidArgumentError('the proxy has stopped accepting; make a new one', { field: 'listen' });
    if (!Number.isInteger(l.port) || l.port < 0 || l.port > 65535) throw new InvalidArgumentError(`listener port must be 0..65535, got ${l.port}`, { field: 'port' });
    const trusted = trustedSources(l.acceptProxyFrom);
    const lim = this.limits;
    const server = createServer({
      maxHeaderSize: lim.maxHeaderBytes,
      headersTimeout: lim.headerTimeoutMs,
      requestTimeout: lim.requestTimeoutMs,
      keepAliveTimeout: lim.idleTimeoutMs,
      // Node checks the header and request deadlines on this beat (30 s by default, far too late for slowloris).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(lim.headerTimeoutMs / 4))),
      noDelay: true,
    });
    const [httpConnection] = server.listeners('connection') as ((s: Socket) => void)[];
    server.removeAllListeners('connection');
    const listener: Listener = { port: l.port, server, httpConnection, trusted, table: this.tables.get(l.port) ?? emptyRouteTable };
    server.on('connection', (socket: Socket) => this.onConnection(listener, socket));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (!this.conns.requestStarted(req.socket, res)) {
        // It crossed our FIN: unanswerable. Read it off (unread bytes would turn the close into a reset)
        // and let the client, which has our FIN, close; the drain's linger timer cuts one that does not.
        req.resume();
        return;
      }
      // A throwing picker or metrics sink must cost one request, not the process.
      try {
        this.onRequest(listener, req, res);
      } catch (err) {
        this.logger.error({ err, url: req.url }, 'L7 request handling failed');
        reply(res, 500, 'weft ingress: internal error\n', true);
      }
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      try {
        this.onUpgrade(listener, req, socket, head);
      } catch (err) {
        this.logger.error({ err, url: req.url }, 'L7 upgrade handling failed');
        replyRaw(socket, 500, 'weft ingress: internal error\n');
      }
    });
    server.on('clientError', (err: ParseError, socket: Duplex) => this.onClientError(err, socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const ready = () => {
        server.off('error', reject);
        server.on('error', (err) => this.logger.error({ err, port: l.port }, 'L7 listener failed'));
        resolve();
      };
      if (l.fd !== undefined) server.listen({ fd: l.fd }, ready);
      else server.listen(l.port, l.host, ready);
    });
    let list = this.byPort.get(l.port);
    if (!list) this.byPort.set(l.port, (list = []));
    list.push(listener);
    const a = server.address();
    this.logger.info({ port: l.port, address: typeof a === 'object' && a ? `${a.address}:${a.port}` : a, adopted: l.fd !== undefined, proxyFrom: l.acceptProxyFrom ?? [] }, 'L7 listener ready');
  }

  setRoutes(port: number, routes: L7Route[]): void {
    const table = compileRoutes(routes);
    this.tables.set(port, table);
    for (const l of this.byPort.get(port) ?? []) l.table = table;
    // Pools of endpoints that left every route can go, when every port's routes say which endpoints they have.
    this.routeEndpoints.set(port, routes.every((r) => r.endpoints !== undefined) ? new Set(routes.flatMap((r) => r.endpoints!.map((e) => e.key))) : undefined);
    this.pools.retain(this.endpointsInRoutes());
  }

  /** Every endpoint some route has, or undefined when a route does not say (its pools then idle out). */
  private endpointsInRoutes(): Set<string> | undefined {
    const keep = new Set<string>();
    for (const set of this.routeEndpoints.values()) {
      if (set === undefined) return undefined;
      for (const k of set) keep.add(k);
    }
    return keep;
  }

  /**
   * Stops accepting on one port's listeners and forgets its routes; that
   * port's connections are drained as drain() does, without a deadline:
   * requests in flight finish (then the connection closes), idle keep-alive
   * connections get a FIN now, connections yet to send a request get the
   * grace.
   */
  async closePort(port: number): Promise<void> {
    const list = this.byPort.get(port);
    this.byPort.delete(port);
    this.tables.delete(port);
    this.routeEndpoints.delete(port);
    this.pools.retain(this.endpointsInRoutes());
    for (const l of list ?? []) {
      l.table = emptyRouteTable;
      if (l.server.listening) NetServer.prototype.close.call(l.server);
    }
    this.conns.drain(this.gate.sockets, port);
  }

  listeners(): { port: number; host: string; fd: number }[] {
    const out: { port: number; host: string; fd: number }[] = [];
    for (const [port, list] of this.byPort) {
      for (const l of list) {
        const a = l.server.address();
        // Node keeps the descriptor on the handle; it is what a new process adopts.
        const fd = (l.server as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
        if (a && typeof a === 'object') out.push({ port, host: a.address, fd });
      }
    }
    return out;
  }

  /** The port a listener is bound to (port 0 in tests): the first listener's of `port`. */
  boundPort(port: number): number {
    const a = this.byPort.get(port)?.[0]?.server.address();
    return a && typeof a === 'object' ? a.port : -1;
  }

  async stopAccepting(): Promise<void> {
    this.closing = true;
    const closing: Promise<void>[] = [];
    for (const list of this.byPort.values()) {
      for (const l of list) {
        if (!l.server.listening) continue;
        // net's close, not http's: http's would also drop idle keep-alive connections at once,
        // where we want them to hear `Connection: close` on their next response.
        closing.push(
          new Promise((resolve) => {
            l.server.once('close', () => resolve());
            NetServer.prototype.close.call(l.server);
            // 'close' waits for every connection; stopped accepting is enough here.
            if (!l.server.listening) resolve();
          }),
        );
      }
    }
    await Promise.all(closing);
  }

  /**
   * Stops accepting, then closes each connection once it has nothing left to
   * wait for (drain.ts): requests and tunnels in progress finish, idle
   * keep-alive connections get a FIN at once, connections that have not sent
   * a request yet get a short grace to send one. Resolves when no connection
   * is left, or at `deadlineMs`, cutting whatever is still open.
   */
  async drain(deadlineMs: number): Promise<void> {
    if (!this.closing) await this.stopAccepting();
    this.draining = true;
    this.conns.drain(this.gate.sockets);
    if (!this.idle()) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadlineMs)))),
      ]);
      clearTimeout(timer);
    }
    if (!this.idle()) {
      this.logger.warn({ connections: this.gate.open, requests: this.active, tunnels: this.tunnels.size }, 'drain deadline passed; cutting what is left');
    }
    this.cutAll();
  }

  async close(): Promise<void> {
    await this.stopAccepting();
    this.cutAll();
    await this.pools.destroy();
  }

  /** Ends every tunnel and client connection now; copies, as each close takes itself out of the set. */
  private cutAll(): void {
    for (const t of [...this.tunnels]) t.close();
    for (const s of [...this.gate.sockets]) s.destroy();
  }

  /** Open client connections (tests, status). */
  get connections(): number {
    return this.gate.open;
  }

  // ---- accounting the exchanges and tunnels use

  exchangeStarted(): void {
    this.active++;
  }

  exchangeEnded(): void {
    this.active--;
    this.wakeIfIdle();
  }

  tunnelStarted(t: Tunnel): void {
    this.tunnels.add(t);
  }

  tunnelEnded(t: Tunnel): void {
    this.tunnels.delete(t);
    this.wakeIfIdle();
  }

  /** No connection, request or tunnel is left. */
  private idle(): boolean {
    return this.gate.open === 0 && this.active === 0 && this.tunnels.size === 0;
  }

  private wakeIfIdle(): void {
    if (this.idleWaiters.length === 0 || !this.idle()) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  // ---- the server's events

  /** Connection: close on this connection's response: the proxy is stopping, or its port is closed. */
  closes(socket: Socket | null): boolean {
    return this.closing || this.conns.isDraining(socket);
  }

  private onConnection(l: Listener, socket: Socket): void {
    if (!this.gate.admit(socket)) return;
    this.conns.track(socket, l.port);
    // Accepted while stopping (it was queued when the listener closed): drained from the start.
    if (this.draining) this.conns.drain([socket]);
    if (l.trusted === undefined || !isTrusted(l.trusted, socket.remoteAddress)) {
      // An untrusted PROXY header reaches the HTTP parser as a malformed request: 400.
      l.httpConnection.call(l.server, socket);
      return;
    }
    readProxyHeader(
      socket,
      this.limits.headerTimeoutMs,
      (h) => {
        if (h.source && h.destination) setClientAddresses(socket, { source: h.source, destination: h.destination });
        this.conns.proxyHeaderRead(socket, h.length);
        l.httpConnection.call(l.server, socket);
        // Node's handler leaves a socket paused by us paused; the bytes after the header wait in it.
        socket.resume();
      },
      (reason, timedOut) => {
        this.metrics.rejected(timedOut ? 'header-timeout' : 'bad-request');
        this.logger.debug({ client: socket.remoteAddress, reason }, 'PROXY header refused');
        replyRaw(socket, 400, badRequestBody(reason));
      },
    );
  }

  private onRequest(l: Listener, req: IncomingMessage, res: ServerResponse): void {
    const client = clientAddresses(req.socket);
    const head = forwardRequestHeaders(req.rawHeaders, client.source.ip, false);
    if (head.invalid !== undefined) {
      this.metrics.rejected('bad-request');
      reply(res, 400, badRequestBody(head.invalid), true);
      return;
    }
    let path = req.url ?? '/';
    let host = head.host;
    if (path.charCodeAt(0) !== 47 /* / */) ({ host, path } = absoluteForm(path, host));
    const route = findRoute(l.table, host, path);
    if (route === undefined) {
      this.metrics.rejected('no-route');
      reply(res, 404, noRouteBody(host, path), this.closes(req.socket));
      return;
    }
    const max = this.maxRequestBodyBytes;
    if (max !== undefined && head.contentLength > max) {
      // The body is not read: the connection cannot carry another request after it.
      reply(res, 413, bodyTooLargeBody(max), true);
      return;
    }
    new Exchange(this, req, res, route, client, head, path).start();
  }

  private onUpgrade(l: Listener, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!this.conns.upgraded(socket as Socket)) {
      socket.resume(); // crossed our FIN, as in 'request'
      return;
    }
    // A tunnel may be quiet for hours; the server's deadlines were for the request.
    (socket as Socket).setTimeout?.(0);
    const client = clientAddresses(req.socket);
    const rh = forwardRequestHeaders(req.rawHeaders, client.source.ip, true);
    if (rh.invalid !== undefined) {
      socket.on('error', () => socket.destroy());
      this.metrics.rejected('bad-request');
      replyRaw(socket, 400, badRequestBody(rh.invalid));
      return;
    }
    let path = req.url ?? '/';
    let host = rh.host;
    if (path.charCodeAt(0) !== 47) ({ host, path } = absoluteForm(path, host));
    const route = this.closing ? undefined : findRoute(l.table, host, path);
    if (route === undefined) {
      socket.on('error', () => socket.destroy());
      if (!this.closing) this.metrics.rejected('no-route');
      replyRaw(socket, this.closing ? 503 : 404, this.closing ? 'weft ingress: shutting down\n' : noRouteBody(host, path));
      return;
    }
    new Tunnel(this, req, socket, head, route, client, rh, path).start();
  }

  private onClientError(err: ParseError, socket: Duplex): void {
    const code = err.code;
    if (code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    // A response is already going out on this connection (a request deadline hit mid-body): just cut.
    const busy = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    if (busy && busy.headersSent) {
      socket.destroy();
      return;
    }
    if (code === 'HPE_HEADER_OVERFLOW') {
      this.metrics.rejected('header-too-large');
      replyRaw(socket, 431, 'weft ingress: request header fields too large\n');
    } else if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      this.metrics.rejected('header-timeout');
      replyRaw(socket, 408, 'weft ingress: request not received in time\n');
    } else {
      this.metrics.rejected('bad-request');
      replyRaw(socket, 400, badRequestBody('malformed HTTP'));
    }
    this.logger.debug({ err, client: (socket as Socket).remoteAddress }, 'client error');
  }
}

/** `http://host[:port]/path` as request target: its host overrides the Host header (RFC 9112 3.2.2). */
function absoluteForm(target: string, host: string | undefined): { host: string | undefined; path: string } {
  const scheme = target.indexOf('://');
  if (scheme < 0) return { host, path: target };
  const slash = target.indexOf('/', scheme + 3);
  return { host: target.slice(scheme + 3, slash < 0 ? undefined : slash), path: slash < 0 ? '/' : target.slice(slash) };
}

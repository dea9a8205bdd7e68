// Loopback backends, a picker and metrics that record what the proxy did,
// and a raw HTTP client for the cases a polite client cannot produce.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer, type Socket } from 'node:net';
import { silentLogger, type Logger } from '../../../controller/common/log';
import { endpointKey, type Endpoint, type Lease, type Outcome, type Picker, type ProxyMetrics } from '../../../ingress/model';
import { L7Proxy, type L7Limits, type L7Route } from '../../../ingress/l7';
import { parseProxyHeader, type ProxyHeader } from '../../../ingress/l7/proxy-protocol';
import { waitFor } from '../../helpers/wait';

export function endpoint(port: number, ip = '127.0.0.1'): Endpoint {
  return { key: endpointKey(ip, port), ip, port, host: 'h1', rack: 'r1', datacenter: 'dc1', containerId: `c-${port}` };
}

export type SeenRequest = { method: string; url: string; headers: IncomingMessage['headers']; rawHeaders: string[]; body: string; proxyHeader?: ProxyHeader };

export type Backend = {
  ep: Endpoint;
  name: string;
  /** TCP connections accepted, and of them closed. */
  connections: number;
  closed: number;
  requests: SeenRequest[];
  /** The PROXY header of each connection, in order (proxyProtocol backends). */
  proxyHeaders: ProxyHeader[];
  server: Server;
  close(): Promise<void>;
};

export type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

const answerWithName =
  (name: string): Handler =>
  (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(name);
  };

/**
 * An HTTP backend on 127.0.0.1 that records every request (body read whole
 * unless `stream`), answering with its name unless `handler` says otherwise.
 * `proxyProtocol`: each connection must start with a PROXY header, recorded per request.
 */
export async function startBackend(name: string, opts: { handler?: Handler; proxyProtocol?: boolean; stream?: boolean } = {}): Promise<Backend> {
  const handler = opts.handler ?? answerWithName(name);
  const headersOf = new WeakMap<Socket, ProxyHeader>();
  // every connection, upgraded ones included (the http server forgets those)
  const sockets = new Set<Socket>();
  const b: Backend = { ep: endpoint(0), name, connections: 0, closed: 0, requests: [], proxyHeaders: [], server: undefined as unknown as Server, close: async () => {} };
  const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    if (opts.stream) {
      b.requests.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body: '', proxyHeader: headersOf.get(req.socket) });
      handler(req, res, '');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      b.requests.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body, proxyHeader: headersOf.get(req.socket) });
      handler(req, res, body);
    });
  });
  const [httpConnection] = server.listeners('connection') as ((s: Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    b.connections++;
    sockets.add(socket);
    socket.on('close', () => {
      b.closed++;
      sockets.delete(socket);
    });
    if (!opts.proxyProtocol) return httpConnection.call(server, socket);
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const r = parseProxyHeader(buf);
      if (r.kind === 'incomplete') return;
      socket.pause();
      socket.off('data', onData);
      if (r.kind === 'invalid') return socket.destroy();
      headersOf.set(socket, r.header);
      b.proxyHeaders.push(r.header);
      socket.unshift(buf.subarray(r.header.length));
      httpConnection.call(server, socket);
      socket.resume();
    };
    socket.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  b.server = server;
  b.ep = endpoint((server.address() as { port: number }).port);
  b.close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return b;
}

/** A port on 127.0.0.1 that refuses connections (bound and closed). */
export async function refusedEndpoint(): Promise<Endpoint> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return endpoint(port);
}

export type DoneRecord = { key: string; outcome: Outcome };

/** Round robin over `endpoints` minus the excluded ones; records picks and outcomes, and any lease finished twice. */
export class RecordingPicker implements Picker {
  private next = 0;
  readonly picks: { clientIp: string; exclude: string[] }[] = [];
  readonly done: DoneRecord[] = [];
  readonly doubleDone: string[] = [];
  open = 0;
  constructor(public endpoints: Endpoint[]) {}
  pick(ctx: { clientIp: string; exclude?: ReadonlySet<string> }): Lease | undefined {
    this.picks.push({ clientIp: ctx.clientIp, exclude: [...(ctx.exclude ?? [])] });
    const candidates = this.endpoints.filter((e) => !ctx.exclude?.has(e.key));
    if (candidates.length === 0) return undefined;
    const ep = candidates[this.next++ % candidates.length];
    let finished = false;
    this.open++;
    return {
      endpoint: ep,
      spilled: false,
      done: (outcome: Outcome) => {
        if (finished) this.doubleDone.push(ep.key);
        finished = true;
        this.open--;
        this.done.push({ key: ep.key, outcome });
      },
    };
  }
}

export class RecordingMetrics implements ProxyMetrics {
  readonly requests: { service: string; backend: string; status: number; seconds: number }[] = [];
  readonly rejections: string[] = [];
  readonly gauge = new Map<string, number>();
  requestDone(r: { service: string; backend: string; rack: string; spilled: boolean; status: number; seconds: number }): void {
    this.requests.push({ service: r.service, backend: r.backend, status: r.status, seconds: r.seconds });
  }
  inFlight(service: string, backend: string, delta: 1 | -1): void {
    const k = `${service}/${backend}`;
    this.gauge.set(k, (this.gauge.get(k) ?? 0) + delta);
  }
  rejected(reason: 'bad-request' | 'header-too-large' | 'header-timeout' | 'too-many-connections' | 'no-route'): void {
    this.rejections.push(reason);
  }
  inFlightTotal(): number {
    let n = 0;
    for (const v of this.gauge.values()) n += v;
    return n;
  }
}

export function route(service: string, picker: Picker, o: Partial<L7Route> = {}): L7Route {
  return { service, hostnames: [], pathPrefix: '', picker, proxyProtocol: false, ...o };
}

export type Started = { proxy: L7Proxy; port: number; metrics: RecordingMetrics; url: string };

/**
 * An L7 proxy on an ephemeral port of 127.0.0.1. Routes are set for port 0,
 * the port the listener was asked for (the proxy keys routes by it).
 */
export async function startProxy(routes: L7Route[], o: { limits?: Partial<L7Limits>; acceptProxyFrom?: string[]; accessLog?: { sampleRate: number }; logger?: Logger } = {}): Promise<Started> {
  const metrics = new RecordingMetrics();
  const proxy = new L7Proxy({ logger: o.logger ?? silentLogger, metrics, limits: o.limits, accessLog: o.accessLog });
  proxy.setRoutes(0, routes);
  await proxy.listen({ port: 0, host: '127.0.0.1', acceptProxyFrom: o.acceptProxyFrom });
  const port = proxy.boundPort(0);
  return { proxy, port, metrics, url: `http://127.0.0.1:${port}` };
}

export type RawResponse = { status: number; headers: Record<string, string>; body: string; raw: string };

/** Parses one HTTP/1.1 response with a Content-Length (or none: to the end of `raw`). */
export function parseResponse(raw: string): RawResponse | undefined {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = raw.slice(0, end).split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const body = raw.slice(end + 4);
  if (headers['transfer-encoding'] === 'chunked') {
    const decoded = dechunk(body);
    return decoded === undefined ? undefined : { status, headers, body: decoded, raw };
  }
  const len = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
  if (len !== undefined && Buffer.byteLength(body) < len) return undefined;
  return { status, headers, body: len === undefined ? body : body.slice(0, len), raw };
}

/** A chunked body, or undefined until its last chunk is in. */
function dechunk(s: string): string | undefined {
  let out = '';
  let at = 0;
  for (;;) {
    const eol = s.indexOf('\r\n', at);
    if (eol < 0) return undefined;
    const size = parseInt(s.slice(at, eol), 16);
    if (size === 0) return s.indexOf('\r\n', eol + 2) >= 0 ? out : undefined;
    if (s.length < eol + 2 + size + 2) return undefined;
    out += s.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

/** A raw TCP client: send bytes, collect what comes back, know when it closed. */
export class RawClient {
  readonly socket: Socket;
  data = '';
  /** The proxy's FIN arrived (a clean close, where a reset would only set `error`). */
  ended = false;
  closed = false;
  error: Error | undefined;
  private readonly connected: Promise<void>;
  constructor(port: number, host = '127.0.0.1', localAddress?: string) {
    this.socket = connect({ port, host, localAddress });
    this.connected = new Promise((resolve) => this.socket.once('connect', () => resolve()));
    this.socket.on('data', (d: Buffer) => (this.data += d.toString('latin1')));
    this.socket.on('end', () => (this.ended = true));
    this.socket.on('error', (e) => (this.error = e));
    this.socket.on('close', () => (this.closed = true));
  }
  async send(b: string | Buffer): Promise<void> {
    await this.connected;
    this.socket.write(b);
  }
  async response(what = 'a response'): Promise<RawResponse> {
    return waitFor(what, () => parseResponse(this.data) ?? (this.closed ? Promise.reject(new Error(`closed with ${JSON.stringify(this.data)}`)) : undefined), 10_000);
  }
  async waitClosed(ms = 10_000): Promise<void> {
    await waitFor('the connection to close', () => this.closed, ms);
  }
  destroy(): void {
    this.socket.destroy();
  }
}

export type Cleanup = () => Promise<void> | void;

/**
 * What a test file opens, closed after each test, the last opened first:
 * the backends, proxies and raw clients made through these, and whatever a
 * test pushes on `cleanups`. Call once at the top of the file with vitest's
 * own afterEach, handed in because handover-child.ts loads this module
 * outside vitest, where importing vitest throws.
 */
export function closedAfterEach(afterEach: (fn: () => Promise<void>) => void): {
  cleanups: Cleanup[];
  backend(name: string, o?: Parameters<typeof startBackend>[1]): Promise<Backend>;
  proxy(...args: Parameters<typeof startProxy>): Promise<Started>;
  client(port: number): RawClient;
} {
  const cleanups: Cleanup[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return {
    cleanups,
    async backend(name, o) {
      const b = await startBackend(name, o);
      cleanups.push(() => b.close());
      return b;
    },
    async proxy(...args) {
      const p = await startProxy(...args);
      cleanups.push(() => p.proxy.close());
      return p;
    },
    client(port) {
      const c = new RawClient(port);
      cleanups.push(() => c.destroy());
      return c;
    },
  };
}

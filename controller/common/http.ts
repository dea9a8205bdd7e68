// The controller's plain-HTTP side: /metrics for Prometheus, /healthz (the
// process is alive and its event loop turns) and /readyz (it can serve: the
// store answers and the gRPC server is bound), plus whatever pages the daemon
// adds (the topology page). Unauthenticated, so it binds to loopback unless
// the operator says otherwise.
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/** `checks` are one line each for people; `leader` (controllers only) the same answer for scripts. */
export type Readiness = () => Promise<{ ready: boolean; checks: Record<string, string>; leader?: Record<string, unknown> }>;

/** An added page's answer; headers beyond content-type (cache-control: no-store is always set). */
export type HttpAnswer = { status: number; headers: Record<string, string>; body: string };

/** Answers the paths it knows (without the query string); undefined: not one of its paths. */
export type HttpPages = (path: string, query: string) => Promise<HttpAnswer> | undefined;

export type HttpDeps = { registry: Registry; readiness: Readiness; pages?: HttpPages };

export function createHttpServer(deps: HttpDeps): Server {
  return createServer((req, res) => {
    const send = (code: number, type: string, body: string) => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(405, 'text/plain', 'method not allowed\n');
    }
    const [path, query = ''] = (req.url ?? '/').split('?', 2) as [string, string?];
    const page = deps.pages?.(path, query);
    if (page) {
      page.then(
        (a) => {
          res.writeHead(a.status, { 'cache-control': 'no-store', ...a.headers });
          res.end(a.body);
        },
        (err) => send(503, 'text/plain', `cannot answer ${path}: ${(err as Error).message}\n`),
      );
      return;
    }
    switch (path) {
      case '/healthz':
        return send(200, 'text/plain', 'ok\n');
      case '/readyz':
        deps.readiness().then(
          (r) => send(r.ready ? 200 : 503, 'application/json', JSON.stringify(r) + '\n'),
          (err) => send(503, 'application/json', JSON.stringify({ ready: false, checks: { error: (err as Error).message } }) + '\n'),
        );
        return;
      case '/metrics':
        deps.registry.metrics().then(
          (body) => send(200, deps.registry.contentType, body),
          (err) => send(500, 'text/plain', `cannot collect metrics: ${(err as Error).message}\n`),
        );
        return;
      default:
        return send(404, 'text/plain', 'not found: try /metrics, /healthz or /readyz\n');
    }
  });
}

/** Resolves once listening; rejects (e.g. EADDRINUSE) with the address in the message. */
export function listenHttp(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(new Error(`cannot listen on ${host}:${port} for metrics: ${err.message}`));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as { port: number }).port);
    });
  });
}

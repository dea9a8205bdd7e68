// The least an HTTP/1.1 reverse proxy on Node can do, as a floor for weft L7:
// Node's http server (noDelay, keep-alive) in front of one undici Pool per
// backend (pipelining 1, keep-alive, noDelay, as weft's upstream pools), round
// robin, the request's headers passed on with X-Forwarded-For added, the
// response streamed back through undici's dispatch handler as weft's Exchange
// does. No routing, no balancing state, no hop-by-hop cleaning, no metrics,
// no timeouts of its own. What this adds to direct's p99 at the same rate and
// method is what Node's HTTP stack costs on this machine; what weft adds
// beyond it is weft's own. Run in the edge namespace by PID (a lab process).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../e2e/cluster';
import type { Lab, LabProcess } from '../../lab/lab';
import { GiveUp, waitFor } from '../../helpers/wait';

export const NODE_PROXY_JS = String.raw`'use strict';
const http = require('http');
const cfg = JSON.parse(process.argv[2]);
const { Pool, buildConnector } = require(cfg.undici);
const connect = buildConnector({ timeout: 5000, noDelay: true, keepAlive: true });
const pools = cfg.backends.map((b) => new Pool('http://' + b, { connect, pipelining: 1 }));
let next = 0;
class Handler {
  constructor(res) { this.res = res; }
  onConnect() {}
  onHeaders(status, raw) {
    if (status < 200) return true;
    const h = [];
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i].toString('latin1');
      const l = n.length === 10 || n.length === 17 ? n.toLowerCase() : '';
      if (l === 'connection' || l === 'keep-alive' || l === 'transfer-encoding') continue;
      h.push(n, raw[i + 1].toString('latin1'));
    }
    this.res.writeHead(status, h);
    return true;
  }
  onData(chunk) { this.res.write(chunk); return true; }
  onComplete() { this.res.end(); }
  onError(err) {
    if (this.res.headersSent) return this.res.destroy();
    this.res.writeHead(502, { 'content-length': 0 });
    this.res.end();
  }
}
http.createServer({ noDelay: true, keepAliveTimeout: 60000 }, (req, res) => {
  const pool = pools[next++ % pools.length];
  const headers = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const l = raw[i].length === 10 ? raw[i].toLowerCase() : '';
    if (l === 'connection' || l === 'keep-alive') continue;
    headers.push(raw[i], raw[i + 1]);
  }
  headers.push('x-forwarded-for', req.socket.remoteAddress);
  pool.dispatch({ path: req.url, method: req.method, headers, body: req.method === 'GET' || req.method === 'HEAD' ? null : req }, new Handler(res));
}).listen(cfg.port, cfg.host, () => console.log('listening'));
`;

export type NodeProxyOptions = { dir: string; netns: string; listenIp: string; port: number; backends: Array<{ ip: string; port: number }> };

/** Starts the floor proxy in o.netns; resolves once it accepts connections. */
export async function startNodeProxy(lab: Lab, o: NodeProxyOptions): Promise<LabProcess> {
  const file = join(o.dir, 'node-proxy.cjs');
  writeFileSync(file, NODE_PROXY_JS);
  const log = join(o.dir, 'node-proxy.log');
  const cfg = { host: o.listenIp, port: o.port, backends: o.backends.map((b) => `${b.ip}:${b.port}`), undici: join(ROOT, 'node_modules', 'undici') };
  const p = lab.spawn(o.netns, process.execPath, [file, JSON.stringify(cfg)], { logFile: log });
  await waitFor('the node floor proxy to listen', () => {
    if (p.exited) throw new GiveUp(`node floor proxy exited: ${readFileSync(log, 'utf8').slice(-2000)}`);
    return lab.exec(o.netns, 'ss', ['-Hltn'], { check: false }).stdout.includes(`${o.listenIp}:${o.port} `);
  }, 10_000, 50);
  return p;
}

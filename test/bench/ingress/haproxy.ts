// HAProxy 2.6 (Debian's `haproxy`) as the peer the ingress is measured
// against: a config written here, the same backends as weft's services, run
// in the edge namespace by PID (a lab process, so the lab's teardown stops
// it). One thread (`nbthread 1`): the same CPU budget as the single-threaded
// ingress process, on a machine where wrk and the backends share the cores.
//
// - http mode: keep-alive to the client and to the backends (HAProxy 2.6's
//   default http-keep-alive, `http-reuse always` to pool server connections
//   as weft pools its upstreams), X-Forwarded-For added as weft adds it,
//   round robin.
// - tcp mode: one backend connection per client connection, round robin.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab, LabProcess } from '../../lab/lab';
import { GiveUp, waitFor } from '../../helpers/wait';

export type HaproxyOptions = {
  dir: string;
  netns: string;
  listenIp: string;
  httpPort: number;
  tcpPort: number;
  backends: Array<{ name: string; ip: string; port: number }>;
};

export function haproxyConfig(o: HaproxyOptions): string {
  const servers = o.backends.map((b) => `  server ${b.name} ${b.ip}:${b.port}`).join('\n');
  return `global
  nbthread 1
  maxconn 4096

defaults
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout http-request 10s
  timeout http-keep-alive 30s

frontend fe_http
  mode http
  bind ${o.listenIp}:${o.httpPort}
  option forwardfor
  default_backend be_http

backend be_http
  mode http
  balance roundrobin
  http-reuse always
${servers}

frontend fe_tcp
  mode tcp
  bind ${o.listenIp}:${o.tcpPort}
  default_backend be_tcp

backend be_tcp
  mode tcp
  balance roundrobin
${servers}
`;
}

/** `HAProxy version 2.6.x ...`: the first line of `haproxy -v`. */
export function haproxyVersion(): string {
  return spawnSync('haproxy', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0].trim();
}

/** Starts haproxy in the foreground (-db) inside o.netns; resolves once both frontends accept connections. */
export async function startHaproxy(lab: Lab, o: HaproxyOptions): Promise<LabProcess> {
  const cfg = join(o.dir, 'haproxy.cfg');
  writeFileSync(cfg, haproxyConfig(o));
  const check = lab.exec(o.netns, 'haproxy', ['-c', '-f', cfg], { check: false });
  if (check.status !== 0) throw new Error(`haproxy -c refused the config: ${check.stderr || check.stdout}`);
  const log = join(o.dir, 'haproxy.log');
  const p = lab.spawn(o.netns, 'haproxy', ['-db', '-f', cfg], { logFile: log });
  await waitFor('haproxy to listen on both frontends', () => {
    if (p.exited) throw new GiveUp(`haproxy exited: ${readFileSync(log, 'utf8').slice(-2000)}`);
    const out = lab.exec(o.netns, 'ss', ['-Hltn'], { check: false }).stdout;
    return out.includes(`${o.listenIp}:${o.httpPort} `) && out.includes(`${o.listenIp}:${o.tcpPort} `);
  }, 10_000, 50);
  return p;
}

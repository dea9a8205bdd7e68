// `weft explain <client> <address>:<port>/<proto>` on the ingress lab's edge
// host (test/ingress/lab.ts: an outside client, `weft ingress` and an agent
// on the edge, four labelled backend containers in two racks): the client's
// packet comes in by the edge's client-facing link, the ingress's nftables
// table DNATs the port to the service's backends (read from its map), and the
// path goes on to one backend over the overlay, as from a container. A port
// without a service is the break at the table; a backend whose overlay route
// is gone (the edge's agent stopped, so nothing heals it) is the break at the
// route.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Explanation, Hop } from '../../cni-plugin/agent/explain/verdicts';
import { WEFT } from '../e2e/cluster';
import { nsExecAsync } from '../e2e/traffic';
import { ipJson } from '../lab/run';
import { waitFor } from '../helpers/wait';
import { BACKEND_ECHO_PORT, BACKEND_HTTP_PORT, CLIENT_IP, EDGE_IP, createIngressLab, labName, tearDownLab, type Ingress, type IngressLab } from '../ingress/lab';

type Report = Explanation & { break: (Hop & { hop: number }) | null };

const ECHO = 9100;
const WEB = 8081;
let il: IngressLab;
let ingress: Ingress;

beforeAll(async () => {
  il = await createIngressLab({ name: labName('wtexi') });
  await il.service(['create', 'echo', '--port', `${ECHO}:${BACKEND_ECHO_PORT}/tcp`, '--selector', 'app=web', '--rack-policy', 'any']);
  await il.service(['create', 'web', '--port', `${WEB}:${BACKEND_HTTP_PORT}/http`, '--selector', 'app=web', '--rack-policy', 'any']);
  ingress = await il.startIngress(['--l4-source-nat', 'none']);
  await waitFor('L4 TCP through the edge', async () => (await il.tcpWho(EDGE_IP, ECHO, 'hello')).error === undefined, 30_000, 100);
  await waitFor('L7 through the edge', async () => (await il.httpGet(`http://${EDGE_IP}:${WEB}/`, { timeoutMs: 2000 })).status === 200, 30_000, 100);
}, 180_000);

tearDownLab({ afterEach, afterAll }, () => ({ il, ingress }));

async function explain(service: string, json = true, extra: string[] = []): Promise<{ status: number; report?: Report; stdout: string }> {
  const a = il.agents.get('edge')!;
  const args = [WEFT, 'explain', CLIENT_IP, service, '--server', il.ctl.server, '--state-dir', a.stateDir, '--host-name', 'edge', ...extra, ...(json ? ['--json'] : [])];
  const r = await nsExecAsync(il.edge.netns, process.execPath, args, { timeoutMs: 30_000 });
  if (json && r.stdout.trim() === '') throw new Error(`weft explain printed nothing (exit ${r.status}): ${r.stderr}`);
  return { status: r.status, stdout: r.stdout, ...(json ? { report: JSON.parse(r.stdout) as Report } : {}) };
}

const hops = (r: Report) => r.hops.map((h) => `${h.kind}@${h.host}`);

describe('weft explain through the ingress', () => {
  it('client -> edge L4 DNAT -> the backends in the map -> one backend over the overlay; exit 0', async () => {
    const r = await explain(`${EDGE_IP}:${ECHO}/tcp`);
    expect(r.status, r.stdout).toBe(0);
    const rep = r.report!;
    expect(rep.dst).toBe(`${EDGE_IP}:${ECHO}/tcp`);
    const backend = /the path below is to (\S+):(\d+)$/.exec(rep.hops[1].why!)!;
    const b = il.backends.find((x) => x.ip === backend[1])!;
    expect(b, rep.hops[1].why).toBeDefined();
    expect(Number(backend[2])).toBe(BACKEND_ECHO_PORT);
    expect(hops(rep)).toEqual(['ingress@edge', 'ingress@edge', 'route@edge', 'vxlan@edge', 'underlay@edge', `host@${b.host.name}`, `container@${b.host.name}`]);
    const clientDev = ipJson<Array<{ dev: string }>>(il.edge.netns, ['route', 'get', CLIENT_IP])[0].dev;
    expect(rep.hops[0].what).toContain(`client ${CLIENT_IP} -> ${EDGE_IP}:${ECHO}/tcp, in by ${clientDev}`);
    // every backend the controller has for the service is in the map, and nothing else
    expect(rep.hops[1].what).toMatch(new RegExp(`^nft ip weft-ingress: tcp ${EDGE_IP.replace(/\./g, '\\.')} \\. ${ECHO} -> lb_tcp_\\d+_flow_\\d+: DNAT by hash to `));
    const inMap = [...rep.hops[1].what.matchAll(/(\d+\.\d+\.\d+\.\d+):(\d+) \(\d+\/\d+ buckets\)/g)].map((m) => m[1]).sort();
    expect(inMap).toEqual(il.backends.map((x) => x.ip).sort());
    expect(rep.hops[2].what.startsWith(`ip route get ${b.ip} from ${CLIENT_IP} iif ${clientDev}: via `)).toBe(true);
    console.log(`weft explain through the ingress:\n${(await explain(`${EDGE_IP}:${ECHO}/tcp`, false)).stdout}`);
  }, 60_000);

  it("an http port: the L7 proxy listening on the edge, the controller's backends of the service, the proxy's own route to one", async () => {
    const admin = ['--cert', il.admin.cert, '--key', il.admin.key, '--ca', il.admin.ca];
    const r = await explain(`${EDGE_IP}:${WEB}`, true, admin);
    expect(r.status, r.stdout).toBe(0);
    const rep = r.report!;
    const ip = /the path below is to (\S+):(\d+)$/.exec(rep.hops[1].why!)!;
    const b = il.backends.find((x) => x.ip === ip[1])!;
    expect(Number(ip[2])).toBe(BACKEND_HTTP_PORT);
    expect(hops(rep)).toEqual(['ingress@edge', 'ingress@edge', 'route@edge', 'vxlan@edge', 'underlay@edge', `host@${b.host.name}`, `container@${b.host.name}`]);
    expect(rep.hops[1].what).toMatch(new RegExp(`^L7 proxy on \\S+:${WEB}: web \\(\\*/ -> port ${BACKEND_HTTP_PORT}\\): backends `));
    const listed = [...rep.hops[1].what.matchAll(/(\d+\.\d+\.\d+\.\d+):\d+ \(/g)].map((m) => m[1]).sort();
    expect(listed).toEqual(il.backends.map((x) => x.ip).sort());
    expect(rep.hops[2].what.startsWith(`ip route get ${b.ip}: via `)).toBe(true);
    console.log(`weft explain through the ingress's L7 proxy:\n${(await explain(`${EDGE_IP}:${WEB}`, false, admin)).stdout}`);
  }, 60_000);

  it('a port without a service breaks at the table; with the edge agent stopped, a deleted overlay route breaks at the route', async () => {
    const none = await explain(`${EDGE_IP}:${ECHO + 1}/udp`);
    expect(none.status).toBe(1);
    expect(none.report!.break).toMatchObject({ hop: 2, kind: 'ingress', host: 'edge' });
    expect(none.report!.break!.why).toContain(`no element for ${EDGE_IP}:${ECHO + 1}/udp in udp_svc`);

    const healthy = (await explain(`${EDGE_IP}:${ECHO}/tcp`)).report!;
    const ip = /the path below is to (\S+):/.exec(healthy.hops[1].why!)![1];
    const edge = il.agents.get('edge')!;
    await edge.proc.stop('SIGTERM');
    const route = ipJson<Array<{ dst: string; gateway: string; dev: string }>>(il.edge.netns, ['route', 'show', 'proto', '119'])
      .find((x) => x.dst.split('.').slice(0, 3).join('.') === ip.split('.').slice(0, 3).join('.'))!;
    await nsExecAsync(il.edge.netns, 'ip', ['route', 'del', route.dst, 'proto', '119']);
    try {
      const r = await explain(`${EDGE_IP}:${ECHO}/tcp`);
      expect(r.status, r.stdout).toBe(1);
      expect(r.report!.break).toMatchObject({ hop: 3, kind: 'route', host: 'edge' });
      expect(r.report!.break!.what).toContain(`ip route get ${ip} from ${CLIENT_IP} iif `);
    } finally {
      await nsExecAsync(il.edge.netns, 'ip', ['route', 'replace', route.dst, 'via', route.gateway, 'dev', route.dev, 'onlink', 'proto', '119']);
    }
  }, 60_000);
});

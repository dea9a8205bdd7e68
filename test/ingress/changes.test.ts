// `weft ingress` under a steady load from the outside client (lab.ts: a
// keep-alive client loop that counts every request that is not a 200 from a
// backend as failed, and never retries), while backends and configuration
// change under it:
//  - a backend killed (SIGKILL) fails fewer than 0.1% of the requests;
//  - a backend removed the way an orchestrator removes one (its endpoint
//    released at the controller, the ingress drains it, then CNI DEL and
//    the process stopped) fails none, with requests in flight on it;
//  - ten configuration changes (services created, updated and deleted,
//    backends added and drained, an L4 port added and removed) and one
//    binary upgrade (`weft ingress --takeover`) fail none.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tail } from '../e2e/cluster';
import { waitFor } from '../helpers/wait';
import {
  BACKEND_HTTP_PORT, EDGE_IP, createIngressLab, labName, metricSum, samples, tearDownLab, type Backend, type Ingress, type IngressLab,
} from './lab';

const WEB = 80;
const INGRESS_ARGS = ['--drain-timeout', '10s', '--connect-timeout', '500ms'];
const WEB_SERVICE = ['create', 'web', '--port', `${WEB}:${BACKEND_HTTP_PORT}/http`, '--selector', 'app=web', '--health-path', '/healthz', '--rack-policy', 'any'];

let il: IngressLab;
let ingress: Ingress;

beforeAll(async () => {
  il = await createIngressLab({ name: labName('ingc') });
  await il.service(WEB_SERVICE);
  ingress = await il.startIngress(INGRESS_ARGS);
  await waitForPool(4);
}, 180_000);

tearDownLab({ afterEach, afterAll }, () => ({ il, ingress }));

const key = (b: Backend) => `${b.ip}:${BACKEND_HTTP_PORT}`;

/** The web pool's healthy backends as the ingress reports them. */
async function healthy(): Promise<string[]> {
  return samples(await ingress.metrics(), 'weft_ingress_backend_healthy').filter((s) => s.labels.service === 'web' && s.value === 1).map((s) => s.labels.backend).sort();
}

async function waitForPool(n: number): Promise<void> {
  await waitFor(`the ingress to have ${n} healthy web backends`, async () => (await healthy()).length === n, 30_000, 100);
}

/** Drain as an orchestrator does: the endpoint released, the ingress stops sending new requests and finishes those in flight, then the container goes. */
async function drainAndRemove(b: Backend): Promise<void> {
  await il.releaseEndpoint(b);
  await waitFor(`the ingress to let go of ${b.name}`, async () => {
    const m = await ingress.metrics();
    const inPool = samples(m, 'weft_ingress_backend_healthy').some((s) => s.labels.backend === key(b));
    const draining = metricSum(m, 'weft_ingress_backend_draining', { backend: key(b) });
    const inFlight = metricSum(m, 'weft_ingress_in_flight_requests', { backend: key(b) });
    return !inPool && draining === 0 && inFlight === 0;
  }, 30_000, 50);
  await il.detachBackend(b);
  await il.stopBackend(b);
}

function failRate(s: { ok: number; failed: number }): number {
  return s.failed / (s.ok + s.failed);
}

describe('weft ingress: changes under load', () => {
  it('loses fewer than 0.1% of requests when a backend is killed', async () => {
    const load = await il.load({ port: WEB, concurrency: 8, timeoutMs: 5000 });
    await load.more(3000);
    const victim = il.backend('r2a-web1');
    await il.killBackend(victim);
    await load.more(5000, 60_000);
    await il.startBackend(victim);
    await waitForPool(4);
    const back = load.status().backends[victim.name] ?? 0;
    await waitFor(`${victim.name} to serve again`, () => (load.status().backends[victim.name] ?? 0) > back + 100, 30_000, 50);
    const s = await load.stop();
    console.log(`kill: ${s.ok} ok, ${s.failed} failed ${JSON.stringify(s.errors)}, ${(100 * failRate(s)).toFixed(4)}%`);
    expect(s.ok).toBeGreaterThan(8000);
    expect(failRate(s), JSON.stringify(s.failures)).toBeLessThan(0.001);
  });

  it('loses none when a backend is drained and then removed, with requests in flight on it', async () => {
    // 20 ms per request, 16 at a time: about four in flight on each backend at any moment
    const load = await il.load({ port: WEB, path: '/?delay=20', concurrency: 16, timeoutMs: 5000 });
    await load.more(1000);
    const gone = il.backend('r1b-web1');
    expect(load.status().backends[gone.name]).toBeGreaterThan(100);
    await drainAndRemove(gone);
    const served = load.status().backends[gone.name];
    await load.more(1000);
    const s = await load.stop();
    expect(s.backends[gone.name]).toBe(served);
    expect([s.failed, s.errors], JSON.stringify(s.failures)).toEqual([0, {}]);
    await il.addBackend('r1b', 'web2');
    await waitForPool(4);
  });

  it('loses none across ten configuration changes and a binary upgrade (--takeover)', async () => {
    const load = await il.load({ port: WEB, concurrency: 8, timeoutMs: 5000 });
    await load.more(500);
    const sees = (name: string) => waitFor(`the load to reach ${name}`, () => (load.status().backends[name] ?? 0) > 50, 30_000, 50);
    const changes: Array<[string, () => Promise<unknown>]> = [
      ['a service sharing port 80 by host name', async () => {
        await il.service(['create', 'api', '--port', `${WEB}:${BACKEND_HTTP_PORT}/http`, '--selector', 'app=web,rack=r2', '--hostname', 'api.test']);
        await waitFor('api.test to route to r2', async () => String((await il.httpGet(`http://${EDGE_IP}:${WEB}/`, { hostHeader: 'api.test' })).json?.name).startsWith('r2'), 10_000);
      }],
      ['a backend added', async () => sees((await il.addBackend('r2b', 'web2')).name)],
      ['web: TCP health checks instead of HTTP', () => il.service(WEB_SERVICE.filter((a, i, all) => a !== '--health-path' && all[i - 1] !== '--health-path'))],
      ['web: prefer the local rack', async () => {
        await il.service([...WEB_SERVICE.slice(0, -2), '--rack-policy', 'prefer-local']);
        await waitFor('the spilled picks to stop', async () => {
          const a = metricSum(await ingress.metrics(), 'weft_ingress_picks_total', { service: 'web', locality: 'spilled' });
          await load.more(200);
          return metricSum(await ingress.metrics(), 'weft_ingress_picks_total', { service: 'web', locality: 'spilled' }) === a;
        }, 15_000);
      }],
      ['a backend drained and removed', () => drainAndRemove(il.backend('r2b-web2'))],
      ['web: any rack, HTTP checks again', () => il.service(WEB_SERVICE)],
      ['the host-name service deleted', async () => {
        await il.service(['delete', 'api']);
        await waitFor('api.test to fall back to web', async () => (await il.httpGet(`http://${EDGE_IP}:${WEB}/`, { hostHeader: 'api.test' })).status === 200, 10_000);
      }],
      ['an L4 service added', async () => {
        await il.service(['create', 't9', '--port', '9000:9000/tcp', '--selector', 'app=web']);
        await waitFor('the L4 port to answer', async () => !(await il.tcpWho(EDGE_IP, 9000)).error, 10_000);
      }],
      ['another backend added', async () => sees((await il.addBackend('r1a', 'web3')).name)],
      ['the L4 service deleted', async () => {
        await il.service(['delete', 't9']);
        await waitFor('the L4 port to be gone', async () => Boolean((await il.tcpWho(EDGE_IP, 9000)).error), 10_000);
      }],
    ];
    expect(changes.length).toBe(10);
    // failures are told per change (each change and the 300 requests after it), so one that fails names itself
    const perChange: Array<{ change: string; fromMs: number; failed: number }> = [];
    for (const [what, change] of changes) {
      const before = load.status();
      const fromMs = Date.now() - before.startedAt;
      await change();
      await load.more(300);
      perChange.push({ change: what, fromMs, failed: load.status().failed - before.failed });
    }
    expect(perChange.filter((c) => c.failed > 0), `first failures: ${JSON.stringify(load.status().failures.slice(0, 3))}`).toEqual([]);

    const old = ingress;
    ingress = await il.startIngress(INGRESS_ARGS, { takeover: true, logName: 'ingress-takeover.log' });
    const exit = await old.proc.wait();
    expect(exit.code, tail(old.logFile)).toBe(0);
    await load.more(2000);
    const s = await load.stop();
    console.log(`changes + takeover: ${s.ok} ok, ${s.failed} failed ${JSON.stringify(s.errors)}`);
    expect([s.failed, s.errors], JSON.stringify(s.failures)).toEqual([0, {}]);
    expect(await healthy()).toHaveLength(5);
  }, 180_000); // ten changes and an upgrade, each a bounded wait: on a loaded 2-core machine they add up past the default minute
});

// Fail closed: with the tunnel broken, a container's packets for the other
// datacenter never cross the WAN in the clear. The lab's underlay routes
// container subnets across the WAN (routeLeaksAcrossWan), so a packet that
// escaped by a default route would be carried and captured, not silently
// dropped by a router.
//
//   - every dc1 gateway killed with SIGKILL (agent and wireguard-go), then
//     started again;
//   - a cold start with the controller down: agents stopped, weft's devices,
//     routes and table deleted as a reboot would, controller stopped, agents
//     started; `inet weft_xdc` must be in the kernel before any weft route.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ipBatch } from '../lab/run';
import { waitFor } from '../helpers/wait';
import {
  checkWan, FAIL_CLOSED_TABLE, GATEWAYS, DC1, poolRoutes, type TunnelLab,
} from './lab';
import { useTunnelLab, reachBothWays, markedTraffic, letTrafficRun, type Marked } from './use-lab';

let t: TunnelLab;
const SECRET_HEX = Buffer.from('tun3leak').toString('hex');
const SECRET = 'tun3leaktun3leak';
const UDP_SECRET = 'weft-tun3-udp-cleartext-marker';

const c = (name: string) => t.containers.get(name)!;

useTunnelLab('tun3', (lab) => {
  t = lab;
});

/** Routes through weft's overlay and tunnel devices (not a bridge's own subnet), and whether the fail-closed table exists. */
function sample(ns: string): { table: boolean; routes: Array<{ dst: string; dev?: string }> } {
  const table = spawnSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', 'inet', FAIL_CLOSED_TABLE], { encoding: 'utf8' }).status === 0;
  const routes = poolRoutes(ns).filter((r) => /^weft\.(vx|xdc|wg)/.test(String(r.dev ?? '')));
  return { table, routes };
}

const logSize = (f: string) => (existsSync(f) ? statSync(f).size : 0);
function logSince(f: string, offset: number): string {
  return existsSync(f) ? readFileSync(f).subarray(offset).toString('utf8') : '';
}

describe('fail closed', () => {
  it('with every dc1 gateway killed (agent and wireguard-go), nothing of c1\'s crosses the WAN in the clear, and traffic returns with them', async () => {
    const cap = await t.capture('wan-all-killed');
    const m = markedTraffic(t, SECRET_HEX, UDP_SECRET);
    try {
      await letTrafficRun(m, 10, 'before the kill');
      for (const g of GATEWAYS[DC1]) await t.killGateway(g);
      await letTrafficRun(m, 60, 'with the dc1 gateways dead');
      for (const g of GATEWAYS[DC1]) await t.startAgent(g);
      await reachBothWays(t, 60_000);
      await letTrafficRun(m, 10, 'after the restart');
    } finally {
      await m.stop();
    }
    const { packets, violations } = await checkWan(t, cap, [SECRET, UDP_SECRET]);
    expect(violations).toEqual([]);
    expect(packets).toBeGreaterThan(20);
  }, 150_000);

  it('cold start with the controller down: inet weft_xdc is in place before any weft route, nothing leaks, traffic returns with the controller', async () => {
    const hosts = t.lab.hosts.map((h) => h.name);
    // a reboot: agents and wireguard-go gone, weft's devices (and their routes) and its nftables table gone
    for (const h of hosts) await t.stopAgent(h);
    for (const g of Object.values(GATEWAYS).flat()) await t.killGateway(g);
    for (const h of hosts) {
      const ns = t.host(h).netns;
      const links = JSON.parse(spawnSync('ip', ['-n', ns, '-j', 'link', 'show'], { encoding: 'utf8' }).stdout) as Array<{ ifname: string }>;
      const doomed = links.map((l) => l.ifname).filter((n) => /^weft\.(vx\d+|xdc|wg0)$/.test(n));
      ipBatch(ns, doomed.map((n) => `link del ${n}`));
      spawnSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', FAIL_CLOSED_TABLE]);
      expect(poolRoutes(ns).filter((r) => r.gateway), `${h}: overlay routes gone`).toEqual([]);
    }
    await t.stopController();

    const cap = await t.capture('wan-cold-start');
    // The simulated reboot keeps the containers and their bridge (a real one would not: no container has a
    // path before the agent has made its bridge, which it does after the table), so marked traffic starts
    // only once every agent has put its table in; until then the check is the order of table and routes.
    let m: Marked | null = null;
    const order: string[] = [];
    try {
      // each agent, watched from its first moment: whenever a weft route exists, the table must exist
      for (const h of hosts) {
        const ns = t.host(h).netns;
        const a = await t.startAgent(h, { waitSocket: false });
        const t0 = Date.now();
        let tableAt = -1;
        let routeAt = -1;
        const logStart = logSize(a.logFile);
        // sampled as fast as the commands run, from the spawn on: a sleep here could miss the window
        while (Date.now() - t0 < 15_000) {
          const { table, routes } = sample(ns);
          if (table && tableAt < 0) tableAt = Date.now() - t0;
          if (routes.length && routeAt < 0) routeAt = Date.now() - t0;
          if (routes.length && !table) order.push(`${h}: weft route ${JSON.stringify(routes[0])} with no ${FAIL_CLOSED_TABLE} table, ${Date.now() - t0} ms after spawn`);
          // settled: the table, and either the routes or the agent saying it runs (without a controller it may have no route to make)
          if (table && (routes.length || logSince(a.logFile, logStart).includes('weft agent running'))) break;
        }
        console.log(`${h}: table after ${tableAt} ms, first weft route after ${routeAt} ms`);
        expect(tableAt, `${h}: ${FAIL_CLOSED_TABLE} appeared`).toBeGreaterThanOrEqual(0);
      }
      expect(order).toEqual([]);
      m = markedTraffic(t, SECRET_HEX, UDP_SECRET);
      const mm = m;
      await waitFor('the marked ping stream to start', () => mm.stream.lastSeq() > 0, 10_000);
      // and so it stays while the agents run without a controller
      const seq = mm.stream.lastSeq();
      await waitFor('60 pings sent with the controller down', () => {
        for (const h of hosts) {
          const { table, routes } = sample(t.host(h).netns);
          if (routes.length && !table) order.push(`${h}: weft route ${JSON.stringify(routes[0])} with no ${FAIL_CLOSED_TABLE} table`);
        }
        return mm.sentSince(seq) >= 60;
      }, 30_000, 50);
      expect(order).toEqual([]);
      await t.restartController();
      await reachBothWays(t, 90_000);
      await letTrafficRun(mm, 10, 'with the controller back');
    } finally {
      await m?.stop();
    }
    const { violations } = await checkWan(t, cap, [SECRET, UDP_SECRET]);
    expect(violations).toEqual([]);
  }, 240_000);
});

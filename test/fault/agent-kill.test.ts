// The agent SIGKILLed 50 times during a stream of CNI ADDs through the real
// shim (the installed `weft` plugin, exec'd in the host's namespace as a
// runtime does), restarted each time. The restarted agent's GC (at start,
// before its socket listens, then every --gc-interval) must leave every
// allocation with its host veth and every weft veth with its allocation;
// then the runtime's DEL for every ADD it issued succeeds, and nothing is
// left: no weft veth on the host, no address or link in any container, no
// allocation in the agent's DB, no endpoint of the host at the controller,
// and the host's iptables rules as before the storm.
//
// A kill lands during the stream: the runtime lanes start ADDs as soon as
// the agent answers, and the kill follows a random 0-300 ms later.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../controller/store';
import { listEndpoints } from '../../controller/registry/endpoints';
import { callAgent } from '../agent/cni-call';
import { nsExecAsync } from '../e2e/traffic';
import { ipJson } from '../lab/run';
import { GiveUp, waitFor } from '../helpers/wait';
import { startFaultLab, type FaultHost, type FaultLab } from './agent-lab';

const KILLS = 50;
const LANES = 2;
const WEFT_VETH = /^wv[0-9a-f]{12}$/;
const WEFT = join(import.meta.dirname, '..', '..', 'dist', 'weft.mjs');

type Add = { id: string; netns: string; status?: number; out?: string };

describe('the agent SIGKILLed 50 times during CNI ADDs', () => {
  let f: FaultLab;
  let h: FaultHost;
  let bin: string;
  let conf: string;
  let socket: string;

  beforeAll(async () => {
    f = await startFaultLab(`fak${process.pid.toString(36)}`, '2s', { agentArgs: ['--gc-interval', '1s'] });
    h = f.hosts[0];
    bin = join(h.dir, 'bin');
    socket = join(h.dir, 'agent.sock');
    f.lab.exec(h.host.netns, process.execPath, [WEFT, 'install-cni', '--bin-dir', bin, '--conf-dir', join(h.dir, 'net.d'), '--socket', socket]);
    const list = JSON.parse(readFileSync(join(h.dir, 'net.d', '10-weft.conflist'), 'utf8'));
    conf = JSON.stringify({ cniVersion: list.cniVersion, name: list.name, ...list.plugins[0] });
  }, 120_000);

  afterAll(async () => {
    await f?.destroy();
  }, 60_000);

  /** The plugin as a runtime runs it: env and stdin, in the host's namespace, without blocking the test. */
  const shim = (command: string, a: Add) =>
    nsExecAsync(h.host.netns, 'env', [`CNI_COMMAND=${command}`, `CNI_CONTAINERID=${a.id}`, `CNI_NETNS=${a.netns}`, 'CNI_IFNAME=eth0', `CNI_PATH=${bin}`, join(bin, 'weft')], { input: conf, timeoutMs: 30_000 });

  /** The agent answers CNI requests (it ran its start-up GC before listening). */
  const answers = async () => (await callAgent(socket, { CNI_COMMAND: 'STATUS' }, { ...JSON.parse(conf), cniVersion: '1.1.0' }).catch(() => ({ status: -1 }))).status === 0;

  const weftVeths = () => ipJson<Array<{ ifname: string }>>(h.host.netns, ['link', 'show', 'type', 'veth']).map((l) => l.ifname).filter((n) => WEFT_VETH.test(n));
  const allocations = () => {
    const db = new Database(join(h.dir, 'state', 'agent.db'), { readonly: true, fileMustExist: true });
    try {
      return db.prepare('SELECT network, ip, container_id AS id, ifname FROM ipam_allocations').all() as Array<{ network: string; ip: string; id: string; ifname: string }>;
    } finally {
      db.close();
    }
  };
  const iptablesRules = () => f.sh(h, 'iptables-save', []).split('\n').filter((l) => l.startsWith('-A ') || l.startsWith(':')).map((l) => l.replace(/\[\d+:\d+\]/, '')).sort();

  it('after restart and GC, the runtime\'s DELs succeed and no veth, address, rule, allocation or endpoint is left', async () => {
    await waitFor('the agent to answer', answers, 30_000, 50);
    const rulesBefore = iptablesRules();
    expect(weftVeths()).toEqual([]);
    const adds: Add[] = [];
    let up = true;
    const sleeping = new Set<() => void>();
    const wakeLanes = () => {
      for (const w of sleeping) w();
      sleeping.clear();
    };
    let stopped = false;
    let inFlight = 0;
    let n = 0;
    const lane = async () => {
      while (!stopped) {
        if (!up) {
          await new Promise<void>((r) => sleeping.add(r));
          continue;
        }
        const name = `k${n++}`;
        const a: Add = { id: `fault-${name}`, netns: f.lab.addContainerNetns(h.host, name) };
        adds.push(a);
        inFlight++;
        const r = await shim('ADD', a);
        inFlight--;
        a.status = r.status;
        a.out = r.stdout;
      }
    };
    const lanes = Promise.all(Array.from({ length: LANES }, lane));
    const inFlightAtKill: number[] = [];
    const restartMs: number[] = [];
    try {
      for (let k = 0; k < KILLS; k++) {
        await new Promise((r) => setTimeout(r, Math.random() * 300));
        inFlightAtKill.push(inFlight);
        up = false;
        await h.agent.stop('SIGKILL');
        const t0 = performance.now();
        f.restartAgent(h);
        await waitFor('the restarted agent to answer', async () => {
          if (h.agent.exited) throw new GiveUp(`agent exited:\n${readFileSync(h.log, 'utf8').slice(-3000)}`);
          return answers();
        }, { ms: 30_000, everyMs: 20 });
        restartMs.push(performance.now() - t0);
        up = true;
        wakeLanes();
      }
    } finally {
      stopped = true;
      wakeLanes();
      await lanes;
    }
    const ok = adds.filter((a) => a.status === 0).length;
    const sorted = [...restartMs].sort((a, b) => a - b);
    console.log(
      `[fault] agent: ${KILLS} SIGKILLs, ${adds.length} ADDs through the shim (${ok} succeeded, ${adds.length - ok} failed with the agent), ` +
        `ADDs in flight at the kills: ${inFlightAtKill.filter((x) => x > 0).length}/${KILLS} kills hit one; restart to answering: median ${sorted[Math.floor(sorted.length / 2)].toFixed(0)} ms`,
    );
    expect(inFlightAtKill.filter((x) => x > 0).length).toBeGreaterThan(KILLS / 2);
    expect(ok).toBeGreaterThan(0);

    // the GC that ran at start (and every second since): allocations and weft veths match one to one
    const leftAfterGc = { veths: weftVeths().sort(), allocations: allocations().length };
    const { hostVethName } = await import('../../cni-plugin/agent/host/naming');
    expect(allocations().map((a) => hostVethName(a.network, a.id, a.ifname)).sort()).toEqual(leftAfterGc.veths);

    // the runtime's DEL for every ADD it issued, as it would (in parallel, two at a time)
    const dels: Array<{ id: string; status: number; stdout: string; stderr: string }> = [];
    for (let i = 0; i < adds.length; i += LANES) {
      dels.push(...(await Promise.all(adds.slice(i, i + LANES).map(async (a) => ({ id: a.id, ...(await shim('DEL', a)) })))));
    }
    expect(dels.filter((d) => d.status !== 0)).toEqual([]);

    expect(weftVeths()).toEqual([]);
    expect(allocations()).toEqual([]);
    for (const a of adds) {
      const ns = a.netns.split('/').pop()!;
      const links = ipJson<Array<{ ifname: string; addr_info: Array<{ local: string; scope: string }> }>>(ns, ['addr', 'show']);
      expect(links.map((l) => l.ifname), a.id).toEqual(['lo']);
      // (ADD sets the container's lo up, and lo keeps 127.0.0.1: that is the runtime's to remove with the namespace)
      expect(links.flatMap((l) => l.addr_info).filter((x) => x.scope !== 'host'), a.id).toEqual([]);
    }
    expect(iptablesRules()).toEqual(rulesBefore);
    // the controller hears of every release through the agent's outbox
    const store = await openStore(`sqlite:${join(f.controllerDir, 'weft.db')}`);
    try {
      await waitFor('no endpoint of the host at the controller', async () => (await listEndpoints(store, { host: h.host.name })).endpoints.length === 0, 20_000, 100)
        .catch(async (e: Error) => {
          throw new Error(`${e.message}: ${JSON.stringify((await listEndpoints(store, { host: h.host.name })).endpoints)}`);
        });
    } finally {
      await store.close();
    }
    console.log(`[fault] agent: after the storm and the GC: ${leftAfterGc.allocations} allocations with their veths; after the DELs: nothing`);
  }, 240_000);
});

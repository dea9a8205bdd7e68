// The glue between service state and the serving parts, with fakes for the
// proxy, the balancer and the L4 programmer: what goes where, what survives
// a reconfiguration, and that nothing closes before its drain.
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../controller/common/log';
import type { Endpoint, IngressService } from '../../../ingress/model';
import { createRuntime, type L4Service, type RouteSpec, type RuntimePool } from '../../../ingress/runtime';
import type { IngressState } from '../../../ingress/sync';

function service(name: string, ports: IngressService['ports'], ips: string[], extra: Partial<IngressService> = {}): IngressService {
  return {
    name, network: 'default', ports, hostnames: [], pathPrefix: '', rackPolicy: 'prefer-local', affinity: 'none', healthPath: '', proxyProtocol: false,
    backends: ips.map((ip) => ({ ip, host: 'h', rack: 'r1', datacenter: 'dc', containerId: `c-${ip}` })), ...extra,
  };
}
const http = (port: number) => ({ name: `p${port}`, port, targetPort: 8080, protocol: 'http' as const });
const tcp = (port: number) => ({ name: `t${port}`, port, targetPort: 5432, protocol: 'tcp' as const });
const st = (revision: number, ...s: IngressService[]): IngressState => ({ revision, services: new Map(s.map((x) => [x.name, x])) });

class FakePool implements RuntimePool {
  endpoints: Endpoint[] = [];
  drained: Endpoint[] = [];
  healthy = new Set<string>();
  closed = false;
  flights = 0;
  listeners = new Set<() => void>();
  constructor(readonly service: string) {}
  pick() {
    return undefined;
  }
  setEndpoints(eps: Endpoint[], o?: { drainMs?: number }) {
    if (o?.drainMs) this.drained.push(...this.endpoints.filter((e) => !eps.some((x) => x.key === e.key)));
    this.endpoints = eps;
  }
  setHealth(key: string, h: boolean) {
    if (h) this.healthy.add(key);
    else this.healthy.delete(key);
    for (const l of this.listeners) l();
  }
  candidates() {
    return this.endpoints.filter((e) => this.healthy.has(e.key));
  }
  onChange(cb: () => void) {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }
  inFlight() {
    return this.flights;
  }
  view() {
    return { endpoints: this.endpoints.map((e) => ({ key: e.key, rack: e.rack, healthy: this.healthy.has(e.key), ejected: false, draining: false })), picksLocal: 0, picksSpilled: 0, ejections: 0 };
  }
  close() {
    this.closed = true;
  }
}

function harness(opts: { failListen?: number; checksPending?: boolean } = {}) {
  const pools: FakePool[] = [];
  const checkers: { pass(): void }[] = [];
  const routes = new Map<number, RouteSpec[]>();
  const listening = new Set<number>();
  const closedPorts: number[] = [];
  const l4: (readonly L4Service[])[] = [];
  const timers: { fn: () => void; ms: number; cancelled: boolean }[] = [];
  const rt = createRuntime({
    drainMs: 5000,
    log: silentLogger,
    l7: {
      async listen(o) {
        if (o.port === opts.failListen) throw new Error('EADDRINUSE');
        listening.add(o.port);
      },
      setRoutes: (port, r) => routes.set(port, r),
      async closePort(port) {
        listening.delete(port);
        closedPorts.push(port);
      },
      listening: () => [...listening],
    },
    l4: {
      async sync(d) {
        l4.push(d);
        return { changed: true, elements: d.length, ms: 1 };
      },
    },
    makePool: ({ service }) => {
      const p = new FakePool(service);
      pools.push(p);
      return p;
    },
    makeChecker: ({ pool }) => {
      // checksPending: a real checker's new targets stay pending until their first check answers (checkers[i].pass()).
      const states = new Map<string, 'pending' | 'healthy'>();
      const c = {
        setTargets: (eps: Endpoint[]) => eps.forEach((e) => (opts.checksPending ? states.set(e.key, 'pending') : pool.setHealth(e.key, true))),
        close: () => states.clear(),
        state: (key: string) => (opts.checksPending ? states.get(key) : 'healthy'),
        pass: () => states.forEach((_, k) => (states.set(k, 'healthy'), pool.setHealth(k, true))),
      };
      checkers.push(c);
      return c;
    },
    setTimer: (fn, ms) => {
      const t = { fn, ms, cancelled: false };
      timers.push(t);
      return { cancel: () => (t.cancelled = true) };
    },
  });
  const fire = () => {
    for (const t of timers.splice(0)) if (!t.cancelled) t.fn();
  };
  return { rt, pools, checkers, routes, listening, closedPorts, l4, timers, fire };
}

describe('runtime', () => {
  it('routes services sharing an http port on one listener, and feeds tcp ports to L4', async () => {
    const h = harness();
    await h.rt.apply(st(1, service('a', [http(80)], ['10.0.0.1']), service('b', [http(80), tcp(5432)], ['10.0.0.2'], { hostnames: ['b.example'] })));
    await h.rt.l4Settled();
    expect([...h.listening]).toEqual([80]);
    expect(h.routes.get(80)!.map((r) => [r.service, r.hostnames])).toEqual([['a', []], ['b', ['b.example']]]);
    expect(h.l4.at(-1)!.map((s) => [s.name, s.port, s.endpoints.map((e) => e.key)])).toEqual([['b-tcp-5432', 5432, ['10.0.0.2:5432']]]);
  });

  it('keeps pools and listeners across a change of backends; removed backends drain in their pool', async () => {
    const h = harness();
    await h.rt.apply(st(1, service('a', [http(80)], ['10.0.0.1', '10.0.0.2'])));
    const pool = h.pools[0];
    await h.rt.apply(st(2, service('a', [http(80)], ['10.0.0.2', '10.0.0.3'])));
    expect(h.pools).toHaveLength(1);
    expect(pool.endpoints.map((e) => e.key)).toEqual(['10.0.0.2:8080', '10.0.0.3:8080']);
    expect(pool.drained.map((e) => e.key)).toEqual(['10.0.0.1:8080']);
    expect(h.closedPorts).toEqual([]);
  });

  it('a removed service leaves the routes at once, and its pool closes only once idle', async () => {
    const h = harness();
    await h.rt.apply(st(1, service('a', [http(80)], ['10.0.0.1']), service('b', [http(80)], ['10.0.0.2'])));
    const b = h.pools[1];
    b.flights = 1;
    await h.rt.apply(st(2, service('a', [http(80)], ['10.0.0.1'])));
    expect(h.routes.get(80)!.map((r) => r.service)).toEqual(['a']);
    expect(b.closed).toBe(false);
    h.fire();
    expect(b.closed).toBe(false);
    b.flights = 0;
    h.fire();
    expect(b.closed).toBe(true);
    expect(h.closedPorts).toEqual([]);
  });

  it('closes a port nobody uses only after the drain timeout, and not if a service comes back first', async () => {
    const h = harness();
    await h.rt.apply(st(1, service('a', [http(80), http(81)], ['10.0.0.1'])));
    await h.rt.apply(st(2, service('a', [http(80)], ['10.0.0.1'])));
    expect(h.routes.get(81)).toEqual([]);
    expect(h.closedPorts).toEqual([]);
    const t = h.timers.find((x) => x.ms === 5000)!;
    expect(t).toBeDefined();
    await h.rt.apply(st(3, service('a', [http(80), http(81)], ['10.0.0.1'])));
    h.fire();
    expect(h.closedPorts).toEqual([]);
    await h.rt.apply(st(4, service('a', [http(80)], ['10.0.0.1'])));
    h.fire();
    await Promise.resolve();
    expect(h.closedPorts).toEqual([81]);
  });

  it('re-syncs L4 when a pool changes health, coalescing a burst into few syncs', async () => {
    const h = harness();
    await h.rt.apply(st(1, service('db', [tcp(5432)], ['10.0.0.1', '10.0.0.2'])));
    await h.rt.l4Settled();
    const before = h.l4.length;
    const pool = h.pools[0];
    for (let i = 0; i < 10; i++) pool.setHealth('10.0.0.1:5432', i % 2 === 1);
    await h.rt.l4Settled();
    expect(h.l4.length - before).toBeLessThanOrEqual(2);
    expect(h.l4.at(-1)![0].endpoints.map((e) => e.key)).toEqual(['10.0.0.1:5432', '10.0.0.2:5432']);
    pool.setHealth('10.0.0.1:5432', false);
    await h.rt.l4Settled();
    expect(h.l4.at(-1)![0].endpoints.map((e) => e.key)).toEqual(['10.0.0.2:5432']);
  });

  it('hands L4 the same object for a port whose candidates did not change, and a new one only for the port that changed', async () => {
    const h = harness();
    await h.rt.apply(st(1, service('db', [tcp(5432)], ['10.0.0.1', '10.0.0.2']), service('cache', [tcp(6379)], ['10.0.0.3'])));
    await h.rt.l4Settled();
    const [db0, cache0] = h.l4.at(-1)!;
    h.pools[0].setHealth('10.0.0.1:5432', false);
    await h.rt.l4Settled();
    const [db1, cache1] = h.l4.at(-1)!;
    expect(cache1).toBe(cache0);
    expect(db1).not.toBe(db0);
    expect(db1.endpoints.map((e) => e.key)).toEqual(['10.0.0.2:5432']);
    // new endpoints from the controller are a change too, even before any health news
    await h.rt.apply(st(2, service('db', [tcp(5432)], ['10.0.0.1', '10.0.0.2']), service('cache', [tcp(6379)], ['10.0.0.3', '10.0.0.4'])));
    await h.rt.l4Settled();
    const [db2, cache2] = h.l4.at(-1)!;
    expect(db2).toBe(db1);
    expect(cache2).not.toBe(cache1);
  });

  it('leaves a pool alone when its service is unchanged, and hands it new endpoints when only a backend\'s rack moved', async () => {
    const h = harness();
    const a = service('a', [tcp(5432)], ['10.0.0.1']);
    await h.rt.apply(st(1, a));
    const first = h.pools[0].endpoints;
    await h.rt.apply(st(2, a));
    expect(h.pools[0].endpoints).toBe(first);
    const moved = { ...a, backends: a.backends.map((b) => ({ ...b, rack: 'r9' })) };
    await h.rt.apply(st(3, moved));
    expect(h.pools).toHaveLength(1);
    expect(h.pools[0].endpoints).not.toBe(first);
    expect(h.pools[0].endpoints.map((e) => e.rack)).toEqual(['r9']);
  });

  it('syncs L4 once at the first state even with no L4 service (clearing what a crash left)', async () => {
    const h = harness();
    await h.rt.apply(st(1, service('a', [http(80)], ['10.0.0.1'])));
    await h.rt.l4Settled();
    expect(h.l4).toEqual([[]]);
  });

  it('a listener that cannot open is reported and tried again at the next state', async () => {
    const h = harness({ failListen: 8080 });
    await h.rt.apply(st(1, service('a', [http(8080)], ['10.0.0.1'])));
    expect([...h.rt.listenErrors().keys()]).toEqual([8080]);
    await h.rt.apply(st(2));
    expect(h.rt.listenErrors().size).toBe(0);
  });

  it('a new rack policy is a new pool; the old one drains', async () => {
    const h = harness();
    await h.rt.apply(st(1, service('a', [http(80)], ['10.0.0.1'])));
    await h.rt.apply(st(2, service('a', [http(80)], ['10.0.0.1'], { rackPolicy: 'any' })));
    expect(h.pools).toHaveLength(2);
    expect(h.routes.get(80)![0].picker).toBe(h.pools[1]);
    h.fire();
    expect(h.pools[0].closed).toBe(true);
  });

  it('a new pool for a new rack policy or affinity starts with the health the old checks knew, not with nothing to serve', async () => {
    const h = harness({ checksPending: true });
    await h.rt.apply(st(1, service('a', [http(80)], ['10.0.0.1', '10.0.0.2'], { healthPath: '/healthz' })));
    h.checkers[0].pass();
    expect(h.pools[0].candidates()).toHaveLength(2);
    await h.rt.apply(st(2, service('a', [http(80)], ['10.0.0.1', '10.0.0.2'], { healthPath: '/healthz', affinity: 'client-ip' })));
    expect(h.pools).toHaveLength(2);
    // Before the new checker has answered once, the new pool already serves both backends.
    expect(h.pools[1].candidates().map((e) => e.ip)).toEqual(['10.0.0.1', '10.0.0.2']);
    // With a new check path too, the old answers stand until the new checks give theirs (as in a kept checker).
    await h.rt.apply(st(3, service('a', [http(80)], ['10.0.0.1', '10.0.0.2'], { healthPath: '/ready', rackPolicy: 'any' })));
    expect(h.pools[2].candidates()).toHaveLength(2);
    // A backend the old checks never answered for stays out until its own first check.
    await h.rt.apply(st(4, service('a', [http(80)], ['10.0.0.1', '10.0.0.2', '10.0.0.3'], { healthPath: '/ready', rackPolicy: 'prefer-local' })));
    expect(h.pools[3].candidates().map((e) => e.ip)).toEqual(['10.0.0.1', '10.0.0.2']);
  });
});

// The pool as the proxy and the kernel path see it: rack preference and
// spill (by health and by load), panic, pending endpoints, draining,
// ejection and its cap, client-ip affinity, retries, leases, notifications.
import { describe, expect, it } from 'vitest';
import { BackendPool, type PoolOptions, type PoolTimers } from '../../../ingress/balance/pool';
import type { Endpoint, Lease } from '../../../ingress/model';

/** A clock and timers that move only when the test says so. */
class FakeTime implements PoolTimers {
  t = 1_000_000;
  #next = 1;
  readonly #due = new Map<number, { at: number; fn: () => void }>();
  now = () => this.t;
  set(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#due.set(id, { at: this.t + ms, fn });
    return id;
  }
  clear(h: unknown): void {
    this.#due.delete(h as number);
  }
  get pending(): number {
    return this.#due.size;
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const [id, d] = [...this.#due].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at)[0] ?? [];
      if (id === undefined || d === undefined) break;
      this.#due.delete(id);
      this.t = d.at;
      d.fn();
    }
    this.t = end;
  }
}

/** A seeded rng (LCG): the same draws every run. */
function seeded(seed = 7): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function ep(rack: string, i: number): Endpoint {
  const ip = `10.${rack === 'r1' ? 1 : rack === 'r2' ? 2 : 3}.0.${i}`;
  return { key: `${ip}:8080`, ip, port: 8080, host: `${rack}-h${i}`, rack, datacenter: 'dc1', containerId: `c-${rack}-${i}` };
}

function pool(o: Partial<PoolOptions> = {}) {
  const time = new FakeTime();
  const p = new BackendPool({ service: 'web', localRack: 'r1', rackPolicy: 'prefer-local', affinity: 'none', initialHealth: 'healthy', rng: seeded(), now: time.now, timers: time, ...o });
  let changes = 0;
  p.onChange(() => changes++);
  return { p, time, changes: () => changes };
}

const local = [1, 2, 3, 4].map((i) => ep('r1', i));
const remote = [1, 2, 3, 4].map((i) => ep('r2', i));

/** Picks `n` times, ending each lease at once; returns how many went to each rack. */
function spread(p: BackendPool, n: number): { local: number; remote: number; spilledFlag: number } {
  const out = { local: 0, remote: 0, spilledFlag: 0 };
  for (let i = 0; i < n; i++) {
    const l = p.pick({ clientIp: '192.0.2.1' })!;
    if (l.endpoint.rack === 'r1') out.local++;
    else out.remote++;
    if (l.spilled) out.spilledFlag++;
    l.done('ok');
  }
  return out;
}

describe('BackendPool: racks', () => {
  it('keeps every pick in the local rack while it is healthy, and counts them', () => {
    const { p } = pool();
    p.setEndpoints([...local, ...remote]);
    expect(spread(p, 1000)).toEqual({ local: 1000, remote: 0, spilledFlag: 0 });
    expect(p.status()).toMatchObject({ picksLocal: 1000, picksSpilled: 0, panic: false });
    expect(p.candidates().map((e) => e.rack)).toEqual(['r1', 'r1', 'r1', 'r1']);
  });

  it('spills the deficit of a degraded local rack (2 of 4 healthy: 30% out), flagged as spilled', () => {
    const { p } = pool();
    p.setEndpoints([...local, ...remote]);
    p.setHealth(local[0].key, false);
    p.setHealth(local[1].key, false);
    const s = spread(p, 4000);
    expect(s.remote / 4000).toBeGreaterThan(0.26);
    expect(s.remote / 4000).toBeLessThan(0.34);
    expect(s.spilledFlag).toBe(s.remote);
    expect(p.status().picksSpilled).toBe(s.remote);
    // the kernel path gets both racks, each side weighted to its share: 0.7 over 2 local, 0.3 over 4 remote
    const c = p.candidates();
    const w = p.candidateWeights();
    expect(c.map((e) => e.key).sort()).toEqual([local[2], local[3], ...remote].map((e) => e.key).sort());
    const share = (rack: string) => c.reduce((a, e, i) => a + (e.rack === rack ? w[i] : 0), 0) / w.reduce((a, b) => a + b, 0);
    expect(share('r1')).toBeCloseTo(0.7, 10);
  });

  it('at one healthy of four local (25%) spills 65%; with none, everything', () => {
    const { p } = pool();
    p.setEndpoints([...local, ...remote]);
    for (const e of local.slice(0, 3)) p.setHealth(e.key, false);
    expect(spread(p, 4000).remote / 4000).toBeCloseTo(0.65, 1);
    p.setHealth(local[3].key, false);
    expect(spread(p, 100)).toMatchObject({ local: 0, remote: 100 });
  });

  it('spills by load when the local rack is much busier, and stops when it is not', () => {
    const { p } = pool({ locality: { loadFloor: 4, loadRatio: 2 } });
    p.setEndpoints([ep('r1', 1), ...remote]);
    // requests that do not finish: the lone local endpoint piles up
    const held: Lease[] = [];
    for (let i = 0; i < 200; i++) held.push(p.pick({ clientIp: '192.0.2.1' })!);
    const spilled = held.filter((l) => l.spilled).length;
    expect(spilled).toBeGreaterThan(50);
    // but it stays preferred: it carries more than the 2× ratio of any remote endpoint's load
    const inFlight = new Map(p.status().endpoints.map((e) => [e.key, e.inFlight]));
    const remoteMax = Math.max(...remote.map((e) => inFlight.get(e.key)!));
    expect(inFlight.get(ep('r1', 1).key)!).toBeGreaterThan(2 * remoteMax);
    for (const l of held) l.done('ok');
    // idle again: all local
    expect(spread(p, 200)).toMatchObject({ local: 200, remote: 0 });
  });

  it('does not spill by load below the floor', () => {
    const { p } = pool({ locality: { loadFloor: 1000 } });
    p.setEndpoints([ep('r1', 1), ...remote]);
    const held = Array.from({ length: 200 }, () => p.pick({ clientIp: '192.0.2.1' })!);
    expect(held.filter((l) => l.spilled)).toHaveLength(0);
  });

  it("with policy 'any' spreads over both racks", () => {
    const { p } = pool({ rackPolicy: 'any' });
    p.setEndpoints([...local, ...remote]);
    const s = spread(p, 2000);
    expect(s.local).toBeGreaterThan(800);
    expect(s.remote).toBeGreaterThan(800);
    expect(p.candidates()).toHaveLength(8);
  });

  it('panics below half healthy: unhealthy endpoints are picked again', () => {
    const { p } = pool();
    p.setEndpoints([...local, ...remote]);
    for (const e of [...local, ...remote.slice(0, 1)]) p.setHealth(e.key, false); // 3 of 8 healthy
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const l = p.pick({ clientIp: '192.0.2.1' })!;
      seen.add(l.endpoint.key);
      l.done('ok');
    }
    expect(seen).toContain(local[0].key);
    expect(p.status().panic).toBe(true);
    expect(p.candidates()).toHaveLength(8);
  });
});

describe('BackendPool: health', () => {
  it('does not pick pending endpoints, and does not panic into them', () => {
    const { p, changes } = pool({ initialHealth: 'pending' });
    p.setEndpoints(local);
    expect(p.pick({ clientIp: '192.0.2.1' })).toBeUndefined();
    expect(p.candidates()).toEqual([]);
    expect(changes()).toBe(0);
    p.setHealth(local[0].key, true);
    expect(changes()).toBe(1);
    // one checked and healthy, three pending: not panic, only the checked one serves
    for (let i = 0; i < 20; i++) expect(p.pick({ clientIp: '192.0.2.1' })!.endpoint.key).toBe(local[0].key);
  });

  it('notifies only when the candidates change', () => {
    const { p, changes } = pool();
    p.setEndpoints([...local, ...remote]);
    expect(changes()).toBe(1);
    p.setHealth(local[0].key, true); // already healthy
    p.setHealth('10.9.9.9:1', false); // not ours
    p.setEndpoints([...remote, ...local]); // same set
    expect(changes()).toBe(1);
    p.setHealth(remote[0].key, false); // remote is not programmed while local is whole
    expect(changes()).toBe(1);
    p.setHealth(local[0].key, false);
    expect(changes()).toBe(2);
  });
});

describe('BackendPool: draining', () => {
  it('drains a removed endpoint: no new picks, in-flight finish, then it is forgotten', () => {
    const { p, changes } = pool();
    p.setEndpoints(local.slice(0, 2));
    const leases: Lease[] = [];
    for (let i = 0; i < 10; i++) leases.push(p.pick({ clientIp: '192.0.2.1' })!);
    const onGone = leases.filter((l) => l.endpoint.key === local[0].key);
    expect(onGone.length).toBeGreaterThan(0);
    const before = changes();

    p.setEndpoints(local.slice(1, 2));
    expect(changes()).toBe(before + 1);
    expect(p.candidates().map((e) => e.key)).toEqual([local[1].key]);
    expect(p.status().endpoints.find((e) => e.key === local[0].key)).toMatchObject({ draining: true, inFlight: onGone.length });
    for (let i = 0; i < 50; i++) expect(p.pick({ clientIp: '192.0.2.1' })!.endpoint.key).toBe(local[1].key);

    for (const l of onGone.slice(1)) l.done('http-5xx');
    expect(p.status().endpoints.find((e) => e.key === local[0].key)?.inFlight).toBe(1);
    onGone[0].done('ok');
    expect(p.status().endpoints.map((e) => e.key)).toEqual([local[1].key]);
  });

  it('forgets a draining endpoint at the deadline even with requests in flight; their done() is harmless', () => {
    const { p, time } = pool();
    p.setEndpoints([local[0]]);
    const l = p.pick({ clientIp: '192.0.2.1' })!;
    p.setEndpoints([local[1]], { drainMs: 5000 });
    time.advance(4999);
    expect(p.status().endpoints.map((e) => e.key)).toContain(local[0].key);
    time.advance(1);
    expect(p.status().endpoints.map((e) => e.key)).toEqual([local[1].key]);
    expect(time.pending).toBe(0);
    l.done('reset');
    expect(p.status().endpoints).toHaveLength(1);
    expect(p.status().ejections).toBe(0);
  });

  it('forgets an idle removed endpoint at once, and revives a draining one that comes back', () => {
    const { p } = pool();
    p.setEndpoints(local.slice(0, 2));
    p.setEndpoints([local[1]]);
    expect(p.status().endpoints).toHaveLength(1);

    const l = p.pick({ clientIp: '192.0.2.1' })!;
    p.setEndpoints([local[0]]);
    expect(p.status().endpoints.find((e) => e.key === local[1].key)?.draining).toBe(true);
    p.setEndpoints([local[0], local[1]]);
    expect(p.status().endpoints.find((e) => e.key === local[1].key)).toMatchObject({ draining: false, inFlight: 1, healthy: true });
    expect(p.candidates()).toHaveLength(2);
    l.done('ok');
    expect(p.status().endpoints).toHaveLength(2);
  });
});

describe('BackendPool: ejection', () => {
  it('ejects after five failures, notifies, and takes it back after 30 s', () => {
    const { p, time, changes } = pool();
    p.setEndpoints(local);
    const bad = local[2].key;
    let failures = 0;
    for (let i = 0; failures < 5 && i < 10_000; i++) {
      const l = p.pick({ clientIp: '192.0.2.1' })!;
      if (l.endpoint.key === bad) {
        l.done('http-5xx');
        failures++;
      } else l.done('ok');
    }
    expect(p.status().endpoints.find((e) => e.key === bad)).toMatchObject({ ejected: true, healthy: true });
    expect(p.status().ejections).toBe(1);
    expect(changes()).toBe(2);
    expect(p.candidates().map((e) => e.key)).not.toContain(bad);
    for (let i = 0; i < 200; i++) expect(p.pick({ clientIp: '192.0.2.1' })!.endpoint.key).not.toBe(bad);

    time.advance(30_000);
    expect(changes()).toBe(3);
    expect(p.candidates().map((e) => e.key)).toContain(bad);
  });

  it('ejects at most 10% of the pool (one in a pool under 10)', () => {
    const { p } = pool();
    const big = Array.from({ length: 20 }, (_, i) => ep('r1', i + 1));
    p.setEndpoints(big);
    const failing = new Set(big.slice(0, 4).map((e) => e.key));
    for (let i = 0; i < 20_000; i++) {
      const l = p.pick({ clientIp: '192.0.2.1' })!;
      l.done(failing.has(l.endpoint.key) ? 'connect-error' : 'ok');
    }
    expect(p.status().endpoints.filter((e) => e.ejected)).toHaveLength(2);

    const small = pool();
    small.p.setEndpoints(local);
    const bad = new Set([local[0].key, local[1].key]);
    for (let i = 0; i < 5000; i++) {
      const l = small.p.pick({ clientIp: '192.0.2.1' })!;
      l.done(bad.has(l.endpoint.key) ? 'timeout' : 'ok');
    }
    expect(small.p.status().endpoints.filter((e) => e.ejected)).toHaveLength(1);
  });

  it('a second done() on a lease is ignored', () => {
    const { p } = pool();
    p.setEndpoints([local[0], local[1]]);
    const l = p.pick({ clientIp: '192.0.2.1' })!;
    l.done('http-5xx');
    for (let i = 0; i < 10; i++) l.done('http-5xx');
    expect(p.status().endpoints.every((e) => e.inFlight === 0 && !e.ejected)).toBe(true);
  });
});

describe('BackendPool: affinity and retries', () => {
  const many = Array.from({ length: 20 }, (_, i) => ep('r1', i + 1));
  const clients = Array.from({ length: 2000 }, (_, i) => `198.51.${i >> 8}.${i & 255}`);
  const where = (p: BackendPool) =>
    new Map(
      clients.map((ip) => {
        const l = p.pick({ clientIp: ip })!;
        l.done('ok');
        return [ip, l.endpoint.key];
      }),
    );

  it('sends a client to the same backend every time, and two pools agree whatever the order', () => {
    const a = pool({ affinity: 'client-ip' }).p;
    const b = pool({ affinity: 'client-ip', rng: seeded(99) }).p;
    a.setEndpoints(many);
    b.setEndpoints([...many].reverse());
    const first = where(a);
    expect(where(a)).toEqual(first);
    expect(where(b)).toEqual(first);
    expect(new Set(first.values()).size).toBe(20);
  });

  it('keeps clients on their backend when an unrelated backend is removed', () => {
    const { p } = pool({ affinity: 'client-ip' });
    p.setEndpoints(many);
    const before = where(p);
    const gone = many[7].key;
    p.setEndpoints(many.filter((e) => e.key !== gone));
    const after = where(p);
    const others = clients.filter((ip) => before.get(ip) !== gone);
    const kept = others.filter((ip) => after.get(ip) === before.get(ip)).length;
    // Maglev moves the removed backend's clients plus ~1-2% of the others (see maglev tests)
    expect(kept / others.length).toBeGreaterThan(0.95);
    for (const ip of clients) expect(after.get(ip)).not.toBe(gone);
  });

  it('retries elsewhere: exclude is honoured with and without affinity', () => {
    for (const affinity of ['none', 'client-ip'] as const) {
      const { p } = pool({ affinity });
      p.setEndpoints(local.slice(0, 2));
      const first = p.pick({ clientIp: '192.0.2.1' })!;
      first.done('reset');
      const retry = p.pick({ clientIp: '192.0.2.1', exclude: new Set([first.endpoint.key]) })!;
      expect(retry.endpoint.key).not.toBe(first.endpoint.key);
      retry.done('ok');
      expect(p.pick({ clientIp: '192.0.2.1', exclude: new Set(local.slice(0, 2).map((e) => e.key)) })).toBeUndefined();
    }
  });

  it('answers undefined with no endpoints, and after close', () => {
    const { p, time } = pool();
    expect(p.pick({ clientIp: '192.0.2.1' })).toBeUndefined();
    p.setEndpoints(local);
    const l = p.pick({ clientIp: '192.0.2.1' })!;
    p.setEndpoints([]);
    p.close();
    expect(time.pending).toBe(0);
    expect(p.pick({ clientIp: '192.0.2.1' })).toBeUndefined();
    l.done('ok');
  });
});

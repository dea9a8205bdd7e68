// The glue between the service state (sync.ts) and the parts that serve it:
// one balancer (BackendPool) per service port; http ports also get active
// health checks and a route on the L7 proxy's listener for that port (many
// services may share one, routed by host and path); tcp and udp ports feed
// their pool's healthy candidates to the L4 kernel programmer.
//
// Reconfiguration swaps state inside the process; nothing is restarted:
//  - a listener stays open while any service still routes on its port, and
//    its routes are replaced in one setRoutes; a port nobody uses any more
//    gets no routes (new requests: no route) and is closed after the drain
//    timeout, so requests in flight on it finish;
//  - a pool of a removed service port leaves the routes and the L4 set at
//    once (no new requests) and is closed once its requests in flight have
//    finished or the drain timeout has passed;
//  - backends removed from a live service drain inside their pool.
// L4 syncs are coalesced: any number of changes while one sync runs cost one
// more sync after it. Each tcp/udp port keeps the L4Service object it last
// handed the programmer and builds a new one only when its candidates may
// have changed (its pool said so, or it got new endpoints): the programmer
// skips a service given as the same object, so a sync after one change costs
// that change, not the 10,000 ports that stayed as they were.
//
// The parts are handed in through small interfaces, so this module is tested
// with fakes and knows nothing of how the proxy, the balancer or nftables
// work.
import type { Logger } from '../controller/common/log';
import { endpointsOf, type Affinity, type Endpoint, type IngressPort, type IngressService, type Picker, type RackPolicy } from './model';
import type { PoolView } from './metrics';
import type { IngressState } from './sync';

/** One balancer, as the runtime uses it. */
export interface RuntimePool extends Picker {
  setEndpoints(eps: Endpoint[], opts?: { drainMs?: number }): void;
  setHealth(key: string, healthy: boolean): void;
  /** Endpoints new L4 flows may go to (healthy, not ejected, not draining), rack policy applied. */
  candidates(): Endpoint[];
  onChange(cb: () => void): () => void;
  /** In-flight count over all endpoints, and the view metrics read. */
  inFlight(): number;
  view(): Omit<PoolView, 'service' | 'port'>;
  close(): void;
}

export interface RuntimeChecker {
  setTargets(eps: Endpoint[], opts: { path: string }): void;
  /** 'pending' while an endpoint has not been checked yet. */
  state?(key: string): string | undefined;
  close(): void;
}

export type RouteSpec = { service: string; hostnames: string[]; pathPrefix: string; picker: Picker; proxyProtocol: boolean; endpoints: readonly Endpoint[] };

export interface RuntimeL7 {
  listen(o: { port: number; host?: string; fd?: number }): Promise<void>;
  setRoutes(port: number, routes: RouteSpec[]): void;
  /** Stops accepting on one port (in-flight requests go on). */
  closePort(port: number): Promise<void>;
  listening(): number[];
}

/** Immutable once handed to sync(): the same object again means the same service port, unchanged. */
export type L4Service = { readonly name: string; readonly port: number; readonly protocol: 'tcp' | 'udp'; readonly affinity: Affinity; readonly endpoints: readonly Endpoint[] };

export interface RuntimeL4 {
  sync(desired: readonly L4Service[]): Promise<{ changed: boolean; elements: number; ms: number }>;
}

export type RuntimeDeps = {
  /** Address the L7 listeners bind; undefined: every address. */
  listenAddress?: string;
  drainMs: number;
  l7: RuntimeL7;
  l4: RuntimeL4;
  makePool(o: { service: string; port: IngressPort; rackPolicy: RackPolicy; affinity: Affinity }): RuntimePool;
  /** Undefined for udp ports: there is no active check of a UDP service that works for any protocol. */
  makeChecker(o: { service: string; port: IngressPort; pool: RuntimePool }): RuntimeChecker | undefined;
  onL4Synced?(r: { elements: number; ms: number }): void;
  onL4Failed?(err: unknown): void;
  log: Logger;
  /** Timers, for tests. */
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
};

type Unit = {
  key: string;
  service: string;
  port: IngressPort;
  /** What a change of which means a new pool rather than new endpoints. */
  shape: string;
  svc: IngressService;
  pool: RuntimePool;
  checker?: RuntimeChecker;
  endpoints: Endpoint[];
  /** What the last L4 sync got for this port; undefined once its candidates may have changed. */
  l4?: L4Service;
  unsubscribe: () => void;
};

export type Runtime = {
  /** Serve this state from now on. Resolves once listeners for its http ports are up (or failed, logged). */
  apply(state: IngressState): Promise<void>;
  /** http ports whose listener could not be opened, with the reason. */
  listenErrors(): ReadonlyMap<number, string>;
  pools(): Iterable<PoolView>;
  /** Waits for the L4 sync running or due, if any. */
  l4Settled(): Promise<void>;
  /** Resolves once every endpoint has had its first health check (true), or after `timeoutMs` (false). */
  healthKnown(timeoutMs: number): Promise<boolean>;
  /** Closes every pool and checker (listeners and the L4 table are the caller's). */
  close(): void;
};

const unitKey = (service: string, p: IngressPort) => `${service}/${p.protocol}/${p.port}`;

/** Field by field: both lists come from endpointsOf, so the same endpoints stand in the same order. */
function sameEndpoints(a: readonly Endpoint[], b: readonly Endpoint[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.key !== y.key || x.ip !== y.ip || x.port !== y.port || x.host !== y.host || x.rack !== y.rack || x.datacenter !== y.datacenter || x.containerId !== y.containerId) return false;
  }
  return true;
}

export function createRuntime(deps: RuntimeDeps): Runtime {
  const { log } = deps;
  const setTimer = deps.setTimer ?? ((fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  });
  const units = new Map<string, Unit>();
  const draining = new Set<RuntimePool>();
  const portClosing = new Map<number, { cancel(): void }>();
  const listenErrors = new Map<number, string>();
  let closed = false;
  let firstApply = true;

  // ---- L4: coalesced syncs ----
  let l4Running: Promise<void> | undefined;
  let l4Dirty = false;
  function scheduleL4(): void {
    l4Dirty = true;
    l4Running ??= runL4();
  }
  async function runL4(): Promise<void> {
    while (l4Dirty && !closed) {
      l4Dirty = false;
      const desired: L4Service[] = [];
      for (const u of units.values()) {
        if (u.port.protocol === 'http') continue;
        desired.push(u.l4 ??= {
          name: `${u.service}-${u.port.protocol}-${u.port.port}`, port: u.port.port, protocol: u.port.protocol,
          affinity: u.svc.affinity, endpoints: u.pool.candidates(),
        });
      }
      try {
        const r = await deps.l4.sync(desired);
        if (r.changed) log.info({ services: desired.length, elements: r.elements, ms: r.ms }, 'L4 rules synced');
        deps.onL4Synced?.(r);
      } catch (err) {
        log.error({ err }, 'L4 sync failed; the kernel keeps the rules of the last sync that worked');
        deps.onL4Failed?.(err);
      }
    }
    l4Running = undefined;
  }

  function shapeOf(svc: IngressService): string {
    return JSON.stringify([svc.rackPolicy, svc.affinity]);
  }

  function createUnit(svc: IngressService, port: IngressPort, healthyBefore?: ReadonlySet<string>): Unit {
    const pool = deps.makePool({ service: svc.name, port, rackPolicy: svc.rackPolicy, affinity: svc.affinity });
    const endpoints = endpointsOf(svc, port);
    pool.setEndpoints(endpoints);
    // A new rack policy or affinity rebuilds the pool, not the backends: what the
    // old pool's checks knew carries over until the new checker's first answer
    // (as a new check path does in a kept checker), so the service is not left
    // without a healthy backend while the new checks run.
    for (const e of endpoints) if (healthyBefore?.has(e.key)) pool.setHealth(e.key, true);
    const checker = deps.makeChecker({ service: svc.name, port, pool });
    checker?.setTargets(endpoints, { path: port.protocol === 'http' ? svc.healthPath : '' });
    const u: Unit = { key: unitKey(svc.name, port), service: svc.name, port, shape: shapeOf(svc), svc, pool, checker, endpoints, unsubscribe: () => {} };
    // L4 follows the pool: a backend that fails its checks or is ejected leaves the kernel's set.
    if (port.protocol !== 'http') {
      u.unsubscribe = pool.onChange(() => {
        u.l4 = undefined;
        scheduleL4();
      });
    }
    return u;
  }

  /** Out of every route and the L4 set already; closed once idle or at the drain deadline. */
  function retire(u: Unit): void {
    u.unsubscribe();
    u.checker?.close();
    u.pool.setEndpoints([], { drainMs: deps.drainMs });
    draining.add(u.pool);
    const deadline = Date.now() + deps.drainMs;
    const poll = () => {
      if (!draining.has(u.pool)) return;
      if (u.pool.inFlight() === 0 || Date.now() >= deadline) {
        draining.delete(u.pool);
        u.pool.close();
        return;
      }
      setTimer(poll, Math.min(1000, Math.max(1, deadline - Date.now())));
    };
    setTimer(poll, Math.min(1000, deps.drainMs));
  }

  async function apply(state: IngressState): Promise<void> {
    if (closed) return;
    const wanted = new Map<string, { svc: IngressService; port: IngressPort }>();
    const tcpPorts = new Map<number, string>();
    const udpPorts = new Map<number, string>();
    for (const svc of state.services.values()) {
      for (const port of svc.ports) {
        // The controller refuses two services on one tcp/udp port; a state that has them anyway serves the first.
        const taken = port.protocol === 'udp' ? udpPorts : port.protocol === 'tcp' ? tcpPorts : undefined;
        if (taken?.has(port.port)) {
          log.warn({ service: svc.name, port: port.port, protocol: port.protocol, owner: taken.get(port.port) }, 'port already used by another service; ignoring this one');
          continue;
        }
        taken?.set(port.port, svc.name);
        wanted.set(unitKey(svc.name, port), { svc, port });
      }
    }

    let l4Changed = false;
    const replaced = new Map<string, Set<string>>();
    for (const [key, u] of [...units]) {
      const w = wanted.get(key);
      if (w && shapeOf(w.svc) === u.shape && w.port.targetPort === u.port.targetPort) continue;
      units.delete(key);
      if (w && w.port.targetPort === u.port.targetPort) {
        // Read before retire() empties the pool. Only the healthy carry over: the rest start as any new backend does.
        replaced.set(key, new Set(u.pool.view().endpoints.filter((e) => e.healthy).map((e) => e.key)));
      }
      retire(u);
      if (u.port.protocol !== 'http') l4Changed = true;
    }
    for (const [key, { svc, port }] of wanted) {
      const u = units.get(key);
      if (!u) {
        units.set(key, createUnit(svc, port, replaced.get(key)));
        if (port.protocol !== 'http') l4Changed = true;
        continue;
      }
      // The watch fold keeps the object of every service an event did not touch,
      // so an apply after one change skips the 10,000 ports that stayed as they were.
      if (svc === u.svc) continue;
      const endpoints = endpointsOf(svc, port);
      const moved = !sameEndpoints(endpoints, u.endpoints);
      if (moved) {
        u.pool.setEndpoints(endpoints, { drainMs: deps.drainMs });
        u.l4 = undefined;
        if (port.protocol !== 'http') l4Changed = true;
      }
      if (moved || svc.healthPath !== u.svc.healthPath) {
        u.checker?.setTargets(endpoints, { path: port.protocol === 'http' ? svc.healthPath : '' });
      }
      u.endpoints = endpoints;
      u.svc = svc;
    }
    // Every start syncs L4 once, so rules a crashed process left for services that are gone are removed.
    if (l4Changed || firstApply) scheduleL4();
    firstApply = false;

    // L7: one route list per http port, in service-name order (a stable tie-break for equal prefixes).
    const routes = new Map<number, RouteSpec[]>();
    for (const u of [...units.values()].sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0))) {
      if (u.port.protocol !== 'http') continue;
      let list = routes.get(u.port.port);
      if (!list) routes.set(u.port.port, (list = []));
      list.push({ service: u.service, hostnames: u.svc.hostnames, pathPrefix: u.svc.pathPrefix, picker: u.pool, proxyProtocol: u.svc.proxyProtocol, endpoints: u.endpoints });
    }
    const listening = new Set(deps.l7.listening());
    await Promise.all(
      [...routes].map(async ([port, list]) => {
        portClosing.get(port)?.cancel();
        portClosing.delete(port);
        if (!listening.has(port)) {
          try {
            await deps.l7.listen({ port, ...(deps.listenAddress ? { host: deps.listenAddress } : {}) });
            listenErrors.delete(port);
            log.info({ port, host: deps.listenAddress ?? '(all)' }, 'HTTP listener open');
          } catch (err) {
            listenErrors.set(port, (err as Error).message);
            log.error({ err, port }, 'cannot open the HTTP listener; trying again at the next change');
            return;
          }
        }
        deps.l7.setRoutes(port, list);
      }),
    );
    for (const port of listening) {
      if (routes.has(port) || portClosing.has(port)) continue;
      deps.l7.setRoutes(port, []);
      log.info({ port, drainMs: deps.drainMs }, 'no service uses this HTTP port any more; closing it after the drain timeout');
      portClosing.set(port, setTimer(() => {
        portClosing.delete(port);
        deps.l7.closePort(port).then(
          () => log.info({ port }, 'HTTP listener closed'),
          (err) => log.error({ err, port }, 'cannot close the HTTP listener'),
        );
      }, deps.drainMs));
    }
    for (const port of listenErrors.keys()) if (!routes.has(port)) listenErrors.delete(port);
  }
  return {
    apply,
    listenErrors: () => listenErrors,
    *pools() {
      for (const u of units.values()) yield { service: u.service, port: u.port.port, ...u.pool.view() };
    },
    async l4Settled() {
      while (l4Running) await l4Running;
    },
    async healthKnown(timeoutMs) {
      const pending = () => [...units.values()].some((u) => u.checker?.state && u.endpoints.some((e) => u.checker!.state!(e.key) === 'pending'));
      const deadline = Date.now() + timeoutMs;
      while (pending()) {
        if (Date.now() >= deadline) return false;
        await new Promise((r) => setTimeout(r, 10));
      }
      return true;
    },
    close() {
      closed = true;
      for (const t of portClosing.values()) t.cancel();
      portClosing.clear();
      for (const u of units.values()) {
        u.unsubscribe();
        u.checker?.close();
        u.pool.close();
      }
      units.clear();
      for (const p of draining) p.close();
      draining.clear();
    },
  };
}

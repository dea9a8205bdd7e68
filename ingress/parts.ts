// The serving parts of one ingress process, made from its config and shaped
// to what runtime.ts asks of them: the L7 proxy (ingress/l7), the L4
// programmer (ingress/l4), and per service port a BackendPool
// (ingress/balance) with its HealthChecker (ingress/health). The only module
// of the process that knows their constructors.
import { closeSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import type { Logger } from '../controller/common/log';
import { BackendPool, type PoolStatus } from './balance/pool';
import type { IngressConfig } from './config';
import { HealthChecker } from './health/checker';
import { createL4Programmer, type L4Programmer } from './l4';
import { L7Proxy } from './l7';
import type { IngressMetrics, PoolView } from './metrics';
import type { RuntimeChecker, RuntimeDeps, RuntimeL4, RuntimeL7, RuntimePool } from './runtime';

export type IngressParts = {
  l7: RuntimeL7 & {
    /**
     * Listeners handed over by the process being taken over: their ports count as listening (nothing binds
     * them again) but nothing is accepted on them until adopt().
     */
    reserve(offered: { port: number; host: string; fd: number }[]): void;
    /** Starts accepting on every reserved listener. */
    adopt(): Promise<void>;
    listenerFds(): { port: number; host: string; fd: number }[];
    stopAccepting(): Promise<void>;
    drain(deadlineMs: number): Promise<void>;
  };
  l4: RuntimeL4;
  /** Removes the L4 table (stop without a handover). */
  removeL4(): Promise<void>;
  makePool: RuntimeDeps['makePool'];
  makeChecker: RuntimeDeps['makeChecker'];
  close(): Promise<void>;
};

export async function createParts(config: IngressConfig, metrics: IngressMetrics, log: Logger): Promise<IngressParts> {
  const proxy = new L7Proxy({
    limits: config.limits,
    logger: log.child({ component: 'l7' }),
    metrics: metrics.proxy,
    accessLog: { sampleRate: config.accessLogSample },
  });

  let reserved: { port: number; host: string; fd: number }[] = [];
  const l7: IngressParts['l7'] = {
    listen: (o) => proxy.listen({ ...o, acceptProxyFrom: config.acceptProxyFrom }),
    reserve(offered) {
      reserved = offered;
    },
    async adopt() {
      for (const l of reserved.splice(0)) await proxy.listen({ port: l.port, host: l.host, fd: l.fd, acceptProxyFrom: config.acceptProxyFrom });
    },
    setRoutes: (port, routes) => proxy.setRoutes(port, routes),
    // The port's listeners close (new connections are refused, and its port is free for a restart to bind);
    // its open connections are drained.
    async closePort(port) {
      // A handed-over listener not adopted yet is only a descriptor here: adopt() must not open it later.
      for (const l of reserved) if (l.port === port) closeFd(l.fd, log);
      reserved = reserved.filter((l) => l.port !== port);
      await proxy.closePort(port);
    },
    listening: () => [...new Set([...proxy.listeners(), ...reserved].map((l) => l.port))],
    listenerFds: () => proxy.listeners().filter((l) => l.fd >= 0),
    stopAccepting: () => proxy.stopAccepting(),
    drain: (ms) => proxy.drain(ms),
  };

  const l4p = openL4(config, log);
  const l4: RuntimeL4 = {
    async sync(desired) {
      if ('error' in l4p) {
        if (desired.length === 0) return { changed: false, elements: 0, ms: 0 };
        throw l4p.error;
      }
      const r = await l4p.programmer.sync(desired);
      return { changed: r.changed > 0, elements: r.elements, ms: r.ms };
    },
  };

  const makePool: RuntimeDeps['makePool'] = ({ service, port, rackPolicy, affinity }) =>
    poolAdapter(new BackendPool({
      service, localRack: config.rack, rackPolicy, affinity, drainMs: config.drainTimeoutMs, log: log.child({ component: 'pool', service, port: port.port }),
      // No active check fits every UDP protocol: udp backends count as healthy while the controller lists them.
      initialHealth: port.protocol === 'udp' ? 'healthy' : 'pending',
    }));

  const makeChecker: RuntimeDeps['makeChecker'] = ({ service, port, pool }): RuntimeChecker | undefined => {
    if (port.protocol === 'udp') return undefined;
    return new HealthChecker({
      onChange: (key, healthy) => pool.setHealth(key, healthy),
      log: log.child({ component: 'health', service, port: port.port }),
    });
  };

  return {
    l7,
    l4,
    async removeL4() {
      if (!('error' in l4p)) await l4p.programmer.remove();
    },
    makePool,
    makeChecker,
    async close() {
      await proxy.close();
      if (!('error' in l4p)) l4p.programmer.close();
    },
  };
}

/** The L4 programmer, or why there is none (no nf_tables, no privilege, an IPv6 listen address): then only L4 services fail. */
function openL4(config: IngressConfig, log: Logger): { programmer: L4Programmer } | { error: Error } {
  try {
    if (config.listenAddress && !isIPv4(config.listenAddress)) throw new Error(`L4 services need an IPv4 --listen-address, not ${config.listenAddress}`);
    return {
      programmer: createL4Programmer({
        table: config.nftTable, addresses: config.listenAddress ? [config.listenAddress] : [], sourceNat: config.l4SourceNat, logger: log,
      }),
    };
  } catch (err) {
    log.error({ err }, 'the L4 path is unavailable: tcp and udp service ports will not be served');
    return { error: err as Error };
  }
}

/** Closes a descriptor nothing wraps yet. */
function closeFd(fd: number, log: Logger): void {
  try {
    closeSync(fd);
  } catch (err) {
    log.warn({ err, fd }, 'cannot close a handed-over listener');
  }
}

function poolAdapter(pool: BackendPool): RuntimePool {
  return {
    pick: (ctx) => pool.pick(ctx),
    setEndpoints: (eps, o) => pool.setEndpoints(eps, o),
    setHealth: (key, healthy) => pool.setHealth(key, healthy),
    candidates: () => pool.candidates(),
    onChange: (cb) => pool.onChange(cb),
    inFlight: () => pool.status().endpoints.reduce((n, e) => n + e.inFlight, 0),
    view: (): Omit<PoolView, 'service' | 'port'> => viewOf(pool.status()),
    close: () => pool.close(),
  };
}

function viewOf(s: PoolStatus): Omit<PoolView, 'service' | 'port'> {
  return {
    endpoints: s.endpoints.map((e) => ({ key: e.key, rack: e.rack, healthy: e.healthy, ejected: e.ejected, draining: e.draining })),
    picksLocal: s.picksLocal,
    picksSpilled: s.picksSpilled,
    ejections: s.ejections,
  };
}

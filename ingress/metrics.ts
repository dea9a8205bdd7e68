// Prometheus metrics of one ingress. What an operator asks of a load
// balancer: how many requests per service and backend and how did they end
// (status class, errors, latency, in flight), which backends are healthy or
// ejected, does traffic stay in the rack (local vs spilled picks), is the L4
// kernel path programmed (elements, last sync time) and is the controller
// there (connection, revision of the state served).
//
// The proxy reports through ProxyMetrics (model.ts), which this module
// implements; balancer state (health, ejections, picks) is read from the
// pools when Prometheus scrapes, so the balancer carries no metrics code.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ConnectionState } from '../controller/api/client/client';
import type { ProxyMetrics } from './model';

/** One balancer as the metrics read it at scrape time. */
export type PoolView = {
  service: string;
  port: number;
  endpoints: { key: string; rack: string; healthy: boolean; ejected: boolean; draining: boolean }[];
  picksLocal: number;
  picksSpilled: number;
  ejections: number;
};

export type IngressMetrics = {
  registry: Registry;
  proxy: ProxyMetrics;
  setConnection(state: ConnectionState): void;
  /** The revision and size of the state being served, and where it came from. */
  setState(s: { revision: number; services: number; source: 'controller' | 'file' | 'none' }): void;
  l4Synced(r: { elements: number; ms: number }): void;
  l4Failed(): void;
  /** Where the pools are read from at scrape time. */
  readPools(fn: () => Iterable<PoolView>): void;
};

const CONNECTION_STATES: ConnectionState[] = ['connected', 'connecting', 'disconnected'];

export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'none';
}

export function createIngressMetrics(deps: { name: string; version: string }): IngressMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  let pools: () => Iterable<PoolView> = () => [];

  new Gauge({ name: 'weft_ingress_info', help: 'Always 1; labels name this ingress and its version', labelNames: ['name', 'version'], registers })
    .set({ name: deps.name, version: deps.version }, 1);

  const requests = new Counter({
    name: 'weft_ingress_requests_total', help: 'HTTP requests proxied, by service, backend and response status class ("none": no response was sent)',
    labelNames: ['service', 'backend', 'class'], registers,
  });
  const errors = new Counter({
    name: 'weft_ingress_request_errors_total', help: 'HTTP requests that ended in a 5xx or no response at all, by service and backend',
    labelNames: ['service', 'backend'], registers,
  });
  const latency = new Histogram({
    name: 'weft_ingress_request_duration_seconds', help: 'Time from the request head to the end of the response, by service',
    labelNames: ['service'], registers, buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  });
  const inFlight = new Gauge({ name: 'weft_ingress_in_flight_requests', help: 'Requests being proxied now, by service and backend', labelNames: ['service', 'backend'], registers });
  const rejected = new Counter({
    name: 'weft_ingress_rejected_total', help: 'Requests or connections refused before reaching a backend, by reason', labelNames: ['reason'], registers,
  });

  new Gauge({
    name: 'weft_ingress_backend_healthy', help: '1 when the backend passes its health checks and is not ejected, else 0',
    labelNames: ['service', 'port', 'backend', 'rack'], registers,
    collect() {
      this.reset();
      for (const p of pools()) {
        for (const e of p.endpoints) this.set({ service: p.service, port: String(p.port), backend: e.key, rack: e.rack }, e.healthy && !e.ejected ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'weft_ingress_backend_draining', help: '1 while a backend removed from its service finishes its requests',
    labelNames: ['service', 'port', 'backend'], registers,
    collect() {
      this.reset();
      for (const p of pools()) for (const e of p.endpoints) if (e.draining) this.set({ service: p.service, port: String(p.port), backend: e.key }, 1);
    },
  });
  // The pools count; these report their totals (a pool that is replaced starts again from 0, as a restart would).
  new Counter({
    name: 'weft_ingress_backend_ejections_total', help: 'Backends ejected by outlier detection, by service and port',
    labelNames: ['service', 'port'], registers,
    collect() {
      this.reset();
      for (const p of pools()) this.inc({ service: p.service, port: String(p.port) }, p.ejections);
    },
  });
  new Counter({
    name: 'weft_ingress_picks_total', help: 'Backends picked, by service, port and whether the backend is in this ingress\'s rack (local) or not (spilled)',
    labelNames: ['service', 'port', 'locality'], registers,
    collect() {
      this.reset();
      for (const p of pools()) {
        this.inc({ service: p.service, port: String(p.port), locality: 'local' }, p.picksLocal);
        this.inc({ service: p.service, port: String(p.port), locality: 'spilled' }, p.picksSpilled);
      }
    },
  });

  const l4Elements = new Gauge({ name: 'weft_ingress_l4_programmed_elements', help: 'nftables elements (services and backends) the last successful L4 sync left in the kernel', registers });
  const l4Seconds = new Gauge({ name: 'weft_ingress_l4_last_sync_seconds', help: 'Duration of the last L4 sync', registers });
  const l4Syncs = new Counter({ name: 'weft_ingress_l4_syncs_total', help: 'L4 syncs, by result', labelNames: ['result'], registers });

  const connection = new Gauge({
    name: 'weft_ingress_controller_connection', help: '1 for the current state of the connection to the controller', labelNames: ['state'], registers,
  });
  const revision = new Gauge({ name: 'weft_ingress_services_revision', help: 'Controller revision of the service state being served', registers });
  const services = new Gauge({ name: 'weft_ingress_services', help: 'Services in the state being served', registers });
  const source = new Gauge({
    name: 'weft_ingress_state_source', help: '1 for where the state being served came from: controller, file (saved before a restart) or none',
    labelNames: ['source'], registers,
  });

  function setConnection(state: ConnectionState): void {
    for (const s of CONNECTION_STATES) connection.set({ state: s }, s === state ? 1 : 0);
  }
  setConnection('connecting');

  const proxy: ProxyMetrics = {
    requestDone(r) {
      requests.inc({ service: r.service, backend: r.backend, class: statusClass(r.status) });
      if (r.status >= 500 || r.status < 100) errors.inc({ service: r.service, backend: r.backend });
      latency.observe({ service: r.service }, r.seconds);
    },
    inFlight(service, backend, delta) {
      inFlight.inc({ service, backend }, delta);
    },
    rejected(reason) {
      rejected.inc({ reason });
    },
  };

  return {
    registry,
    proxy,
    setConnection,
    setState(s) {
      revision.set(s.revision);
      services.set(s.services);
      for (const k of ['controller', 'file', 'none'] as const) source.set({ source: k }, k === s.source ? 1 : 0);
    },
    l4Synced(r) {
      l4Syncs.inc({ result: 'ok' });
      l4Elements.set(r.elements);
      l4Seconds.set(r.ms / 1000);
    },
    l4Failed() {
      l4Syncs.inc({ result: 'error' });
    },
    readPools(fn) {
      pools = fn;
    },
  };
}

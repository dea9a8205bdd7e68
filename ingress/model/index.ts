// The plain data the ingress's parts hand each other. The controller's
// WatchServices messages are turned into these once (sync); balancing, the
// L7 proxy and the L4 kernel path read nothing else. A folder of its own, so
// every part (balance, health, l4, l7) imports it without the folders
// importing each other.

export type PortProtocol = 'http' | 'tcp' | 'udp';
export type RackPolicy = 'prefer-local' | 'any';
export type Affinity = 'none' | 'client-ip';

/** One container address serving one service port: the unit that is balanced, health-checked and drained. */
export type Endpoint = {
  /** `ip:port`, stable for as long as the container keeps its address. */
  key: string;
  ip: string;
  port: number;
  host: string;
  rack: string;
  datacenter: string;
  containerId: string;
};

export type IngressPort = { name: string; port: number; targetPort: number; protocol: PortProtocol };

export type IngressService = {
  name: string;
  network: string;
  ports: IngressPort[];
  /** L7 routing: the Host header must be one of these (empty: any host). */
  hostnames: string[];
  /** L7 routing: the request path must start with this ('' or '/': every path). */
  pathPrefix: string;
  rackPolicy: RackPolicy;
  affinity: Affinity;
  /** Active HTTP check path for http ports ('' = TCP connect check). */
  healthPath: string;
  /** Send a PROXY protocol v2 header to the backends of tcp/http ports. */
  proxyProtocol: boolean;
  backends: { ip: string; host: string; rack: string; datacenter: string; containerId: string }[];
};

export function endpointKey(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** The endpoints of one service port, in a stable order. */
export function endpointsOf(svc: IngressService, port: IngressPort): Endpoint[] {
  return svc.backends
    .map((b) => ({ key: endpointKey(b.ip, port.targetPort), ip: b.ip, port: port.targetPort, host: b.host, rack: b.rack, datacenter: b.datacenter, containerId: b.containerId }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** How a finished request went, as the balancer and outlier detection count it. */
export type Outcome = 'ok' | 'http-5xx' | 'connect-error' | 'timeout' | 'reset';

/** What the proxy gets from the balancer for one request. */
export interface Lease {
  readonly endpoint: Endpoint;
  /** True when the endpoint is outside the ingress's own rack. */
  readonly spilled: boolean;
  /** Call exactly once when the request (or connection) ends. */
  done(outcome: Outcome): void;
}

/** One service port's balancer, as the proxy sees it. */
export interface Picker {
  /** A backend for a new request or connection, or undefined when none can serve (the proxy answers 503). */
  pick(ctx: { clientIp: string; exclude?: ReadonlySet<string> }): Lease | undefined;
}

/** Counters the proxy reports; the ingress's metrics module implements them. */
export interface ProxyMetrics {
  requestDone(r: { service: string; backend: string; rack: string; spilled: boolean; status: number; seconds: number }): void;
  inFlight(service: string, backend: string, delta: 1 | -1): void;
  rejected(reason: 'bad-request' | 'header-too-large' | 'header-timeout' | 'too-many-connections' | 'no-route'): void;
}

export const noMetrics: ProxyMetrics = { requestDone() {}, inFlight() {}, rejected() {} };

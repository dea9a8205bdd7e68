// The L7 proxy's configuration types and the limits an operator gets when
// they set none. Plain data: the ingress process builds routes from its
// services (model.ts) and hands them over with L7Proxy.setRoutes.
import { InvalidArgumentError } from '../../controller/common/errors';
import type { Endpoint, Picker } from '../model';

/** One service's HTTP route on one listening port. */
export type L7Route = {
  service: string;
  /** Host names (case-insensitive, no port); `*.example.com` matches one label under example.com. Empty: any host. */
  hostnames: string[];
  /** The request path must start with this ('' or '/': every path). The longest matching prefix wins. */
  pathPrefix: string;
  picker: Picker;
  /** Start every upstream connection with a PROXY protocol v2 header carrying the client's address. */
  proxyProtocol: boolean;
  /**
   * The endpoints the picker chooses from, when the caller knows them
   * (endpointsOf). With it, the pooled connections of an endpoint that is in
   * no route any more are closed as soon as its in-flight requests finish;
   * without it, they are closed once they have been unused for a sweep period.
   */
  endpoints?: readonly Endpoint[];
};

export type L7Limits = {
  /** Concurrent client connections over all listeners; the next one is closed at once. */
  maxConnections: number;
  /** Request line plus headers; larger gets 431. */
  maxHeaderBytes: number;
  /** From connection (or the end of the previous request) to the end of the headers; then 408 (slowloris). */
  headerTimeoutMs: number;
  /** To receive the whole request, body included; then 408. */
  requestTimeoutMs: number;
  /** A keep-alive client connection idle between requests is closed after this. */
  idleTimeoutMs: number;
  /** Opening a connection to a backend; then the next backend (retryable requests) or 504. */
  connectTimeoutMs: number;
  /** Waiting for the backend's response headers, and the longest silence inside its body; then 504 (or a cut response). */
  upstreamTimeoutMs: number;
  /** Larger request bodies get 413 (unset: no limit). */
  maxRequestBodyBytes?: number;
};

export type L7ListenerOptions = {
  /** The port routes are set for; also the port bound unless `fd` is given. */
  port: number;
  host?: string;
  /** Adopt this already-listening socket (handed over by the previous process) instead of binding. */
  fd?: number;
  /** CIDRs allowed (and then required) to open connections with a PROXY protocol header; empty = none. */
  acceptProxyFrom?: string[];
};

/** What an operator would expect of an edge proxy without tuning. */
export const DEFAULT_LIMITS: Readonly<L7Limits> = {
  maxConnections: 10_000,
  maxHeaderBytes: 16 * 1024,
  headerTimeoutMs: 10_000,
  // Generous: it bounds uploads too. Slow clients sending headers are cut by headerTimeoutMs.
  requestTimeoutMs: 300_000,
  idleTimeoutMs: 60_000,
  connectTimeoutMs: 5_000,
  upstreamTimeoutMs: 60_000,
};

/** The defaults overlaid with `given`, checked so a bad value fails at construction, not on the first request. */
export function resolveLimits(given: Partial<L7Limits> | undefined): L7Limits {
  const l: L7Limits = { ...DEFAULT_LIMITS, ...given };
  for (const k of ['maxConnections', 'maxHeaderBytes', 'headerTimeoutMs', 'requestTimeoutMs', 'idleTimeoutMs', 'connectTimeoutMs', 'upstreamTimeoutMs'] as const) {
    if (!Number.isInteger(l[k]) || l[k] <= 0) throw new InvalidArgumentError(`L7 limit ${k} must be a positive integer, got ${String(l[k])}`, { field: k });
  }
  if (l.maxRequestBodyBytes !== undefined && (!Number.isInteger(l.maxRequestBodyBytes) || l.maxRequestBodyBytes < 0)) {
    throw new InvalidArgumentError(`L7 limit maxRequestBodyBytes must be a non-negative integer, got ${String(l.maxRequestBodyBytes)}`, { field: 'maxRequestBodyBytes' });
  }
  // Node refuses a header deadline beyond the whole-request deadline.
  if (l.headerTimeoutMs > l.requestTimeoutMs) {
    throw new InvalidArgumentError(`L7 limit headerTimeoutMs (${l.headerTimeoutMs}) must not exceed requestTimeoutMs (${l.requestTimeoutMs})`, { field: 'headerTimeoutMs' });
  }
  return l;
}

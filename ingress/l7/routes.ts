// Host and path routing for one listening port. Routes are compiled once per
// setRoutes into maps keyed by host, so a request costs one or two map
// lookups and a walk over that host's few prefixes; host specificity first
// (exact, then `*.` wildcard, then any host), then the longest path prefix.
import type { L7Route } from './types';

export type RouteTable = {
  exact: Map<string, L7Route[]>;
  /** Keyed by the suffix after `*`, e.g. `.example.com`. */
  wildcard: Map<string, L7Route[]>;
  anyHost: L7Route[];
};

export const emptyRouteTable: RouteTable = { exact: new Map(), wildcard: new Map(), anyHost: [] };

export function compileRoutes(routes: readonly L7Route[]): RouteTable {
  const t: RouteTable = { exact: new Map(), wildcard: new Map(), anyHost: [] };
  for (const r of routes) {
    if (r.hostnames.length === 0) {
      t.anyHost.push(r);
      continue;
    }
    for (const h of r.hostnames) {
      const name = normalizeHostname(h);
      const into = name.startsWith('*.') ? t.wildcard : t.exact;
      const key = name.startsWith('*.') ? name.slice(1) : name;
      let list = into.get(key);
      if (!list) into.set(key, (list = []));
      list.push(r);
    }
  }
  // Longest prefix first; sort is stable, so among equal prefixes the first route given wins.
  const byPrefix = (a: L7Route, b: L7Route) => prefixOf(b).length - prefixOf(a).length;
  for (const list of t.exact.values()) list.sort(byPrefix);
  for (const list of t.wildcard.values()) list.sort(byPrefix);
  t.anyHost.sort(byPrefix);
  return t;
}

function prefixOf(r: L7Route): string {
  return r.pathPrefix === '/' ? '' : r.pathPrefix;
}

function normalizeHostname(h: string): string {
  const lower = h.trim().toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/**
 * The route for a request: `host` as the Host header has it (any case, with
 * or without a port, `[v6]:port`), `path` the request target's path.
 */
export function findRoute(t: RouteTable, host: string | undefined, path: string): L7Route | undefined {
  if (host !== undefined && (t.exact.size !== 0 || t.wildcard.size !== 0)) {
    const name = hostOnly(host);
    const exact = t.exact.get(name);
    const r = exact && longestPrefix(exact, path);
    if (r) return r;
    if (t.wildcard.size !== 0) {
      const dot = name.indexOf('.');
      const wild = dot > 0 ? t.wildcard.get(name.slice(dot)) : undefined;
      const w = wild && longestPrefix(wild, path);
      if (w) return w;
    }
  }
  return longestPrefix(t.anyHost, path);
}

function longestPrefix(list: L7Route[], path: string): L7Route | undefined {
  for (let i = 0; i < list.length; i++) {
    const p = list[i].pathPrefix;
    if (p.length === 0 || p === '/' || path.startsWith(p)) return list[i];
  }
  return undefined;
}

/** The Host header without port, lower case, without a trailing dot. */
export function hostOnly(host: string): string {
  let end = host.length;
  if (host.charCodeAt(0) === 91 /* [ */) {
    const close = host.indexOf(']');
    if (close > 0) end = close + 1;
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0) end = colon;
  }
  if (end > 0 && host.charCodeAt(end - 1) === 46 /* . */) end--;
  const name = end === host.length ? host : host.slice(0, end);
  return name.toLowerCase();
}

import { describe, expect, it } from 'vitest';
import { compileRoutes, findRoute, hostOnly } from '../../../ingress/l7/routes';
import type { L7Route } from '../../../ingress/l7';
import { RecordingPicker } from './fixtures';

const r = (service: string, hostnames: string[], pathPrefix = ''): L7Route => ({ service, hostnames, pathPrefix, picker: new RecordingPicker([]), proxyProtocol: false });

describe('L7 routing', () => {
  const table = compileRoutes([
    r('any-root', []),
    r('any-static', [], '/static'),
    r('shop', ['Shop.Example.com']),
    r('shop-api', ['shop.example.com'], '/api'),
    r('shop-api-v2', ['shop.example.com'], '/api/v2'),
    r('wild', ['*.example.com']),
    r('wild-admin', ['*.example.com'], '/admin'),
  ]);
  const svc = (host: string | undefined, path: string) => findRoute(table, host, path)?.service;

  it('matches the Host header case-insensitively, with or without a port or trailing dot', () => {
    expect(svc('shop.example.com', '/')).toBe('shop');
    expect(svc('SHOP.EXAMPLE.COM:8080', '/')).toBe('shop');
    expect(svc('shop.example.com.', '/')).toBe('shop');
  });

  it('takes the longest path prefix among the host routes', () => {
    expect(svc('shop.example.com', '/api/v2/items')).toBe('shop-api-v2');
    expect(svc('shop.example.com', '/api/v1')).toBe('shop-api');
    expect(svc('shop.example.com', '/cart?x=1')).toBe('shop');
  });

  it('prefers the exact host over a wildcard, a wildcard over any host', () => {
    expect(svc('blog.example.com', '/')).toBe('wild');
    expect(svc('blog.example.com', '/admin/users')).toBe('wild-admin');
    // a wildcard covers one label only
    expect(svc('a.b.example.com', '/')).toBe('any-root');
    expect(svc('example.com', '/')).toBe('any-root');
    expect(svc('other.test', '/static/app.js')).toBe('any-static');
    expect(svc(undefined, '/')).toBe('any-root');
  });

  it('falls back to less specific hosts when the specific one has no matching prefix', () => {
    const t = compileRoutes([r('only-api', ['a.test'], '/api'), r('fallback', [])]);
    expect(findRoute(t, 'a.test', '/api/x')?.service).toBe('only-api');
    expect(findRoute(t, 'a.test', '/other')?.service).toBe('fallback');
  });

  it('finds nothing when no route matches', () => {
    const t = compileRoutes([r('a', ['a.test'], '/api')]);
    expect(findRoute(t, 'b.test', '/api')).toBeUndefined();
    expect(findRoute(t, 'a.test', '/web')).toBeUndefined();
  });

  it('strips ports from IPv6 literals', () => {
    expect(hostOnly('[::1]:8080')).toBe('[::1]');
    expect(hostOnly('[::1]')).toBe('[::1]');
    expect(hostOnly('Host.Test')).toBe('host.test');
  });
});

import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  routeAdd, routeAddRequest, routeDel, routeDelRequest, routeEqual, routeKey, routeList, routeReplace, routeReplaceRequest,
  routeString, RTN_BLACKHOLE, RTN_UNREACHABLE, RTPROT_STATIC, RTPROT_WEFT, RT_SCOPE_LINK, RT_TABLE_MAIN, type Route,
} from '../../dataplane/netlink/route';
import { openHandle, throwIfAny, type Handle } from '../../dataplane/netlink/handle';
import { InvalidArgumentError, NetlinkError } from '../../dataplane/netlink/errors';
import { AF_INET, AF_INET6 } from '../../dataplane/netlink/libc';
import { ipJson, useTestNetns } from '../helpers/netns';
import { thrown } from '../helpers/process';

type IpRoute = { dst: string; gateway?: string; dev?: string; table?: string; protocol?: string; metric?: number; flags: string[]; prefsrc?: string; scope?: string; type?: string; metrics?: Array<{ mtu?: number }> };

const VXLAN = 'wtrvx';

function ip(ns: string, ...args: string[]): void {
  execFileSync('ip', ['-n', ns, ...args]);
}

function routes(ns: string, ...args: string[]): IpRoute[] {
  return ipJson<IpRoute[]>(ns, ['route', 'show', ...args]);
}

function routes6(ns: string, ...args: string[]): IpRoute[] {
  return ipJson<IpRoute[]>(ns, ['-6', 'route', 'show', ...args]);
}

/** Every route not the kernel's own: those come and go with IPv6 autoconfiguration on their own schedule. */
function everyRoute(ns: string): unknown {
  const notKernel = (rs: IpRoute[]) => rs.filter((r) => r.protocol !== 'kernel');
  return [notKernel(ipJson(ns, ['route', 'show', 'table', 'all'])), notKernel(ipJson(ns, ['-6', 'route', 'show', 'table', 'all']))];
}


describe('route', () => {
  const ns = useTestNetns('r');
  let h: Handle;
  let vx: number;
  let n: string;

  beforeEach(() => {
    n = ns()[0];
    h = openHandle({ netns: n });
    // the overlay's own device: a VXLAN with no underlay, which is all an onlink route needs
    ip(n, 'link', 'add', VXLAN, 'type', 'vxlan', 'id', '42', 'dstport', '4789', 'nolearning');
    ip(n, 'addr', 'add', '10.20.0.1/24', 'dev', VXLAN);
    ip(n, 'addr', 'add', 'fd00:20::1/64', 'dev', VXLAN, 'nodad');
    ip(n, 'link', 'set', VXLAN, 'up');
    vx = ipJson<Array<{ ifindex: number }>>(n, ['link', 'show', VXLAN])[0].ifindex;
  });
  afterEach(() => h.close());

  it('adds, lists, replaces and deletes an IPv4 route via a gateway', () => {
    const r: Route = { dst: '10.30.0.0/16', gw: '10.20.0.254', linkIndex: vx, protocol: RTPROT_WEFT, priority: 10, mtu: 1400, src: '10.20.0.1' };
    routeAdd(h, r);
    expect(routes(n, '10.30.0.0/16')).toMatchObject([{ dst: '10.30.0.0/16', gateway: '10.20.0.254', dev: VXLAN, protocol: '119', metric: 10, prefsrc: '10.20.0.1', metrics: [{ mtu: 1400 }] }]);

    const listed = routeList(h, { dst: '10.30.0.0/16' });
    expect(listed).toEqual([{ dst: '10.30.0.0/16', gw: '10.20.0.254', linkIndex: vx, table: RT_TABLE_MAIN, protocol: RTPROT_WEFT, scope: 0, type: 1, priority: 10, mtu: 1400, src: '10.20.0.1' }]);
    expect(routeEqual(listed[0], r)).toBe(true);
    expect(routeKey(listed[0])).toBe(routeKey(r));

    routeReplace(h, { ...r, gw: '10.20.0.253' });
    expect(routes(n, '10.30.0.0/16').map((x) => x.gateway)).toEqual(['10.20.0.253']);
    expect(routeEqual(routeList(h, { dst: '10.30.0.0/16' })[0], r)).toBe(false);

    routeDel(h, { dst: '10.30.0.0/16', priority: 10 });
    expect(routes(n, '10.30.0.0/16')).toEqual([]);
  });

  it('adds, lists, replaces and deletes IPv6 routes, a device route and a default', () => {
    const r: Route = { dst: 'fd00:30::/64', gw: 'fd00:20::fe', linkIndex: vx, protocol: RTPROT_WEFT };
    routeAdd(h, r);
    routeAdd(h, { dst: 'fd00:31::/64', linkIndex: vx, protocol: RTPROT_WEFT });
    routeAdd(h, { dst: 'default', gw: 'fd00:20::fe', protocol: RTPROT_WEFT });
    expect(routes6(n, 'proto', '119').map((x) => [x.dst, x.gateway, x.metric])).toEqual([
      ['fd00:30::/64', 'fd00:20::fe', 1024],
      ['fd00:31::/64', undefined, 1024],
      ['default', 'fd00:20::fe', 1024],
    ]);

    const listed = routeList(h, { family: AF_INET6, protocol: RTPROT_WEFT });
    expect(listed.map((x) => x.dst)).toEqual(['fd00:30::/64', 'fd00:31::/64', '::/0']);
    expect(listed.every((x) => x.priority === 1024 && x.linkIndex === vx)).toBe(true);
    // a desired route without a metric is the same route as the kernel's metric-1024 copy
    expect(routeEqual(listed[0], r)).toBe(true);
    expect(routeKey(listed[0])).toBe(routeKey(r));
    expect(routeKey(listed[2])).toBe(routeKey({ dst: 'default', gw: 'fd00:20::fe' }));
    expect(routeList(h, { family: AF_INET6, dst: 'default' }).map((x) => x.gw)).toEqual(['fd00:20::fe']);
    expect(routeList(h, { dst: 'default' })).toEqual([]);

    // metric 0 is stored as 1024 too, and the kernel treats it as the same route
    expect((thrown(() => routeAdd(h, { ...r, priority: 0 })) as NetlinkError).code).toBe('EEXIST');
    expect(routeEqual({ ...r, priority: 0 }, listed[0])).toBe(true);

    routeReplace(h, { ...r, gw: 'fd00:20::fd' });
    expect(routes6(n, 'fd00:30::/64').map((x) => x.gateway)).toEqual(['fd00:20::fd']);

    // delete matches on what it is given: the old gateway is gone, the dst alone still finds it
    expect((thrown(() => routeDel(h, r)) as NetlinkError).code).toBe('ESRCH');
    routeDel(h, { dst: r.dst });
    routeDel(h, { dst: '::/0' });
    expect(routes6(n, 'proto', '119').map((x) => x.dst)).toEqual(['fd00:31::/64']);
  });

  it('installs weft\'s core route shape: subnet via the remote VTEP IP, onlink on the VXLAN device', () => {
    // 10.99.0.2 is on no local subnet: without onlink the kernel refuses the gateway
    const core: Route = { dst: '10.244.7.0/24', gw: '10.99.0.2', linkIndex: vx, onlink: true, protocol: RTPROT_WEFT };
    const refused = thrown(() => routeAdd(h, { ...core, onlink: false }));
    expect((refused as NetlinkError).code).toBe('ENETUNREACH');

    routeAdd(h, core);
    expect(routes(n, '10.244.7.0/24')).toMatchObject([{ gateway: '10.99.0.2', dev: VXLAN, protocol: '119', flags: ['onlink'] }]);
    const listed = routeList(h, { protocol: RTPROT_WEFT });
    expect(listed).toHaveLength(1);
    expect(listed[0].onlink).toBe(true);
    expect(routeEqual(listed[0], core)).toBe(true);

    const core6: Route = { dst: 'fd00:244:7::/64', gw: 'fd00:99::2', linkIndex: vx, onlink: true, protocol: RTPROT_WEFT };
    routeAdd(h, core6);
    expect(routes6(n, 'fd00:244:7::/64')).toMatchObject([{ gateway: 'fd00:99::2', flags: ['onlink'] }]);
    expect(routeEqual(routeList(h, { family: AF_INET6, protocol: RTPROT_WEFT })[0], core6)).toBe(true);

    routeDel(h, core);
    routeDel(h, core6);
    expect(routeList(h, { protocol: RTPROT_WEFT })).toEqual([]);
  });

  it('writes to and lists from tables, including ids that do not fit the header byte', () => {
    routeAdd(h, { dst: '10.40.0.0/24', linkIndex: vx, table: 100, protocol: RTPROT_WEFT });
    routeAdd(h, { dst: '10.40.0.0/24', linkIndex: vx, table: 100000, protocol: RTPROT_WEFT });
    routeAdd(h, { dst: 'fd00:40::/64', linkIndex: vx, table: 70000, protocol: RTPROT_WEFT });
    expect(routes(n, 'table', '100').map((x) => x.dst)).toEqual(['10.40.0.0/24']);
    expect(routes(n, 'table', '100000').map((x) => x.dst)).toEqual(['10.40.0.0/24']);
    expect(routes6(n, 'table', '70000').map((x) => x.dst)).toEqual(['fd00:40::/64']);
    expect(routes(n).map((x) => x.dst)).not.toContain('10.40.0.0/24');

    expect(routeList(h, { table: 100000 })).toMatchObject([{ dst: '10.40.0.0/24', table: 100000, linkIndex: vx, scope: RT_SCOPE_LINK }]);
    expect(routeList(h, { table: 100 }).map((x) => x.table)).toEqual([100]);
    expect(routeList(h, { table: 70000 }).map((x) => x.dst)).toEqual(['fd00:40::/64']);
    expect(routeList(h).map((x) => x.dst)).not.toContain('10.40.0.0/24');
    const all = routeList(h, { table: 'all', protocol: RTPROT_WEFT });
    expect(all.map((x) => x.table).sort((a, b) => a! - b!)).toEqual([100, 70000, 100000]);
    expect(new Set(all.map(routeKey)).size).toBe(3);

    routeDel(h, { dst: '10.40.0.0/24', table: 100000 });
    expect(routes(n, 'table', '100000')).toEqual([]);
    expect(routes(n, 'table', '100').map((x) => x.dst)).toEqual(['10.40.0.0/24']);
  });

  it('lists by weft\'s protocol only weft\'s routes, never another owner\'s', () => {
    ip(n, 'route', 'add', '10.50.0.0/24', 'dev', VXLAN, 'proto', 'static');
    ip(n, 'route', 'add', '10.51.0.0/24', 'via', '10.20.0.9', 'proto', 'bird');
    ip(n, 'route', 'add', '10.52.0.0/24', 'dev', VXLAN);
    routeAdd(h, { dst: '10.53.0.0/24', gw: '10.99.0.3', linkIndex: vx, onlink: true, protocol: RTPROT_WEFT });

    const weft = routeList(h, { protocol: RTPROT_WEFT });
    expect(weft.map((x) => x.dst)).toEqual(['10.53.0.0/24']);
    expect(routeList(h, { protocol: RTPROT_STATIC }).map((x) => x.dst)).toEqual(['10.50.0.0/24']);
    // the kernel's own connected route and the others are all there without the filter
    expect(routeList(h, { family: AF_INET }).map((x) => x.dst).sort()).toEqual(['10.20.0.0/24', '10.50.0.0/24', '10.51.0.0/24', '10.52.0.0/24', '10.53.0.0/24']);
    expect(routeList(h, { linkIndex: vx, family: AF_INET, dst: '10.51.0.0/24' })).toMatchObject([{ gw: '10.20.0.9', protocol: 12 }]);
    expect(routes(n, 'proto', '119').map((x) => x.dst)).toEqual(['10.53.0.0/24']);
  });

  it('is typed on a repeat add (EEXIST), replace is idempotent, a missing route\'s delete is ESRCH', () => {
    const r: Route = { dst: '10.60.0.0/24', gw: '10.99.0.4', linkIndex: vx, onlink: true, protocol: RTPROT_WEFT };
    routeAdd(h, r);
    const again = thrown(() => routeAdd(h, r));
    expect(again).toBeInstanceOf(NetlinkError);
    expect((again as NetlinkError).code).toBe('EEXIST');
    expect((again as NetlinkError).op).toBe(`route add 10.60.0.0/24 via 10.99.0.4 dev #${vx} proto weft onlink`);
    routeReplace(h, r);
    routeReplace(h, r);
    expect(routes(n, '10.60.0.0/24')).toHaveLength(1);

    const r6: Route = { dst: 'fd00:60::/64', linkIndex: vx, protocol: RTPROT_WEFT };
    routeAdd(h, r6);
    expect((thrown(() => routeAdd(h, r6)) as NetlinkError).code).toBe('EEXIST');
    routeReplace(h, r6);
    expect(routes6(n, 'fd00:60::/64')).toHaveLength(1);

    routeDel(h, r);
    routeDel(h, r6);
    expect((thrown(() => routeDel(h, r)) as NetlinkError).code).toBe('ESRCH');
    expect((thrown(() => routeDel(h, r6)) as NetlinkError).code).toBe('ESRCH');
    expect((thrown(() => routeDel(h, { dst: '10.61.0.0/24', table: 4242 })) as NetlinkError).code).toBe('ESRCH');
  });

  it('deletes only the route matching the given protocol', () => {
    ip(n, 'route', 'add', '10.65.0.0/24', 'dev', VXLAN, 'proto', 'static');
    expect((thrown(() => routeDel(h, { dst: '10.65.0.0/24', protocol: RTPROT_WEFT })) as NetlinkError).code).toBe('ESRCH');
    expect(routes(n, '10.65.0.0/24')).toHaveLength(1);
    routeDel(h, { dst: '10.65.0.0/24', protocol: RTPROT_STATIC });
    expect(routes(n, '10.65.0.0/24')).toEqual([]);
  });

  it('keeps routes that differ only in priority apart', () => {
    routeAdd(h, { dst: '10.70.0.0/24', linkIndex: vx, priority: 100, protocol: RTPROT_WEFT });
    routeAdd(h, { dst: '10.70.0.0/24', linkIndex: vx, priority: 200, protocol: RTPROT_WEFT });
    const listed = routeList(h, { dst: '10.70.0.0/24' });
    expect(listed.map((x) => x.priority)).toEqual([100, 200]);
    expect(routeKey(listed[0])).not.toBe(routeKey(listed[1]));
    routeDel(h, { dst: '10.70.0.0/24', priority: 200 });
    expect(routes(n, '10.70.0.0/24').map((x) => x.metric)).toEqual([100]);
  });

  it('writes blackhole and unreachable routes without a device', () => {
    routeAdd(h, { dst: '10.80.0.0/24', type: RTN_BLACKHOLE, protocol: RTPROT_WEFT });
    routeAdd(h, { dst: 'fd00:80::/64', type: RTN_UNREACHABLE, protocol: RTPROT_WEFT });
    expect(routes(n, '10.80.0.0/24')).toMatchObject([{ type: 'blackhole' }]);
    expect(routes6(n, 'fd00:80::/64')).toMatchObject([{ type: 'unreachable' }]);
    const listed = routeList(h, { protocol: RTPROT_WEFT });
    expect(listed.map((x) => [x.dst, x.type])).toEqual([['10.80.0.0/24', RTN_BLACKHOLE], ['fd00:80::/64', RTN_UNREACHABLE]]);
    expect(routeEqual(listed[0], { dst: '10.80.0.0/24', type: RTN_BLACKHOLE, protocol: RTPROT_WEFT })).toBe(true);
    routeDel(h, { dst: '10.80.0.0/24', type: RTN_BLACKHOLE });
    routeDel(h, { dst: 'fd00:80::/64' });
    expect(routeList(h, { protocol: RTPROT_WEFT })).toEqual([]);
  });

  it('lands a batch of 1,000 onlink routes completely, and removes them in a batch', () => {
    const desired: Route[] = Array.from({ length: 1000 }, (_, i) => ({
      dst: `10.${100 + (i >> 8)}.${i & 255}.0/24`,
      gw: `10.99.${i >> 8}.${(i & 255) + 1 > 254 ? 254 : (i & 255) + 1}`,
      linkIndex: vx,
      onlink: true,
      protocol: RTPROT_WEFT,
    }));
    const errs = h.batch(desired.map(routeAddRequest));
    expect(errs.filter(Boolean)).toEqual([]);

    const kernel = routes(n, 'proto', '119');
    expect(kernel).toHaveLength(1000);
    expect(new Set(kernel.map((x) => x.dst))).toEqual(new Set(desired.map((d) => d.dst)));
    expect(kernel.every((x) => x.flags.includes('onlink') && x.dev === VXLAN)).toBe(true);

    // what reconcile relies on: listing gives back exactly the desired set, route for route
    const actual = new Map(routeList(h, { protocol: RTPROT_WEFT }).map((r) => [routeKey(r), r]));
    expect(actual.size).toBe(1000);
    for (const d of desired) expect(routeEqual(actual.get(routeKey(d))!, d)).toBe(true);

    // replace in a batch is idempotent
    throwIfAny(h.batch(desired.map(routeReplaceRequest)));
    expect(routes(n, 'proto', '119')).toHaveLength(1000);

    throwIfAny(h.batch(desired.map(routeDelRequest)));
    expect(routes(n, 'proto', '119')).toEqual([]);
  });

  const bad: Array<[string, Route, RegExp]> = [
    ['a bad CIDR', { dst: '10.0.0.0/33', linkIndex: 1 }, /invalid route dst: invalid CIDR "10\.0\.0\.0\/33": prefix length must be between 0 and 32/],
    ['garbage dst', { dst: 'nowhere', linkIndex: 1 }, /invalid route dst: invalid CIDR "nowhere"/],
    ['host bits in dst', { dst: '10.1.2.3/24', linkIndex: 1 }, /host bits set \(the network is 10\.1\.2\.0\/24\)/],
    ['an IPv6 gw for an IPv4 dst', { dst: '10.1.0.0/24', gw: 'fd00::1', linkIndex: 1 }, /gw "fd00::1": not of the destination's family \(IPv4\)/],
    ['an IPv4 gw for an IPv6 dst', { dst: 'fd00:1::/64', gw: '10.0.0.1', linkIndex: 1 }, /gw "10\.0\.0\.1": not of the destination's family \(IPv6\)/],
    ['a gw that is no address', { dst: '10.1.0.0/24', gw: '10.0.0', linkIndex: 1 }, /invalid route gw "10\.0\.0"/],
    ['a src of the wrong family', { dst: '10.1.0.0/24', src: 'fd00::1', linkIndex: 1 }, /src "fd00::1"/],
    ['table 0', { dst: '10.1.0.0/24', linkIndex: 1, table: 0 }, /table 0 \(must be between 1 and 4294967295\)/],
    ['table 2^32', { dst: '10.1.0.0/24', linkIndex: 1, table: 2 ** 32 }, /table 4294967296 \(must be between 1 and 4294967295\)/],
    ['a negative priority', { dst: '10.1.0.0/24', linkIndex: 1, priority: -1 }, /priority -1 \(must be between 0 and 4294967295\)/],
    ['protocol 256', { dst: '10.1.0.0/24', linkIndex: 1, protocol: 256 }, /protocol 256 \(must be between 0 and 255\)/],
    ['a fractional linkIndex', { dst: '10.1.0.0/24', linkIndex: 1.5 }, /linkIndex 1\.5 \(must be between 1 and/],
    ['onlink without a linkIndex', { dst: '10.1.0.0/24', gw: '10.99.0.2', onlink: true }, /onlink needs a linkIndex/],
    ['neither gw nor linkIndex', { dst: '10.1.0.0/24' }, /needs a linkIndex or a gw/],
    ['a link-local gw without a linkIndex', { dst: 'fd00:1::/64', gw: 'fe80::1' }, /link-local gw "fe80::1" needs a linkIndex/],
    ['a link-local gw in fe80::/10 past fe80:', { dst: 'fd00:1::/64', gw: 'febf::1' }, /link-local gw "febf::1" needs a linkIndex/],
    ['a tiny mtu', { dst: '10.1.0.0/24', linkIndex: 1, mtu: 10 }, /mtu 10 \(must be between 68 and 65535\)/],
    ['an IPv6 mtu under 1280', { dst: 'fd00:1::/64', linkIndex: 1, mtu: 1000 }, /mtu 1000 \(must be between 1280 and 65535 for IPv6\)/],
    ['an unknown type', { dst: '10.1.0.0/24', linkIndex: 1, type: 99 }, /type 99 \(must be between 1 and 11\)/],
  ];

  it.each(bad)('rejects %s before touching the kernel', (_, route, msg) => {
    const before = everyRoute(n);
    const r = { ...route, linkIndex: route.linkIndex === 1 ? vx : route.linkIndex };
    for (const fn of [routeAdd, routeReplace]) {
      const err = thrown(() => fn(h, r));
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(msg);
    }
    expect(everyRoute(n)).toEqual(before);
  });

  it('rejects a bad delete and a bad filter before touching the kernel', () => {
    expect(() => routeDel(h, { dst: '10.1.2.3/24' })).toThrow(/host bits set/);
    expect(() => routeDel(h, { dst: '10.1.0.0/24', gw: 'fd00::1' })).toThrow(InvalidArgumentError);
    expect(() => routeList(h, { table: 0 })).toThrow(/filter table 0 \(must be between 1 and 4294967295\)/);
    expect(() => routeList(h, { family: 7 })).toThrow(/family 7/);
    expect(() => routeList(h, { dst: 'fd00::/64', family: AF_INET })).toThrow(/not of family/);
  });

  it('builds no batch when one route in it is bad, so nothing is half-applied', () => {
    const before = everyRoute(n);
    const build = () => [
      routeAddRequest({ dst: '10.90.0.0/24', linkIndex: vx, protocol: RTPROT_WEFT }),
      routeAddRequest({ dst: '10.91.0.0/24', gw: 'fd00::1', linkIndex: vx, protocol: RTPROT_WEFT }),
    ];
    expect(build).toThrow(InvalidArgumentError);
    expect(everyRoute(n)).toEqual(before);
  });

  it('reports the kernel\'s refusal for a device that does not exist', () => {
    const err = thrown(() => routeAdd(h, { dst: '10.95.0.0/24', linkIndex: 999999 }));
    expect((err as NetlinkError).code).toBe('ENODEV');
  });
});

describe('route helpers', () => {
  it('reads "default" by the family of its gateway', () => {
    expect(routeKey({ dst: 'default', gw: '10.0.0.1' })).toBe(routeKey({ dst: '0.0.0.0/0', gw: '10.0.0.2' }));
    expect(routeKey({ dst: 'default', gw: 'fd00::1' })).toBe(routeKey({ dst: '::/0' }));
    expect(routeKey({ dst: 'default', gw: 'fd00::1' })).not.toBe(routeKey({ dst: 'default', gw: '10.0.0.1' }));
  });

  it('keys on family, table, dst and priority only', () => {
    const a: Route = { dst: '10.1.0.0/24', gw: '10.0.0.1', linkIndex: 2 };
    expect(routeKey(a)).toBe(routeKey({ ...a, gw: '10.0.0.9', linkIndex: 3, protocol: 9 }));
    expect(routeKey(a)).toBe(routeKey({ ...a, table: RT_TABLE_MAIN, priority: 0 }));
    expect(routeKey(a)).not.toBe(routeKey({ ...a, table: 100 }));
    expect(routeKey(a)).not.toBe(routeKey({ ...a, priority: 5 }));
    expect(routeKey({ dst: 'fd00::/64', linkIndex: 2 })).toBe(routeKey({ dst: 'fd00:0::/64', linkIndex: 2, priority: 1024 }));
    expect(routeKey({ dst: 'fd00::/64', linkIndex: 2, priority: 0 })).toBe(routeKey({ dst: 'fd00::/64', linkIndex: 2 }));
  });

  it('compares contents with the kernel\'s defaults filled in', () => {
    const a: Route = { dst: '10.1.0.0/24', gw: '10.0.0.1', linkIndex: 2, protocol: RTPROT_WEFT };
    expect(routeEqual(a, { ...a, table: 254, type: 1, scope: 0, priority: 0 })).toBe(true);
    expect(routeEqual(a, { ...a, gw: '10.0.0.2' })).toBe(false);
    expect(routeEqual(a, { ...a, onlink: true })).toBe(false);
    expect(routeEqual(a, { ...a, protocol: RTPROT_STATIC })).toBe(false);
    expect(routeEqual(a, { ...a, mtu: 1400 })).toBe(false);
    expect(routeEqual({ dst: '10.1.0.0/24', linkIndex: 2 }, { dst: '10.1.0.0/24', linkIndex: 2, scope: RT_SCOPE_LINK })).toBe(true);
    expect(routeEqual({ dst: 'fd00::/64', gw: 'FD00::1' }, { dst: 'fd00::/64', gw: 'fd00::1' })).toBe(true);
  });

  it('formats for logs', () => {
    expect(routeString({ dst: '10.244.1.0/24', gw: '10.99.0.2', linkIndex: 4, onlink: true, protocol: RTPROT_WEFT, table: 254 }))
      .toBe('10.244.1.0/24 via 10.99.0.2 dev #4 table 254 proto weft onlink');
    expect(routeString({ dst: '10.80.0.0/24', type: RTN_BLACKHOLE, priority: 5 })).toBe('type 6 10.80.0.0/24 metric 5');
  });
});

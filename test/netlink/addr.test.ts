import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  addrAdd, addrAddRequest, addrDel, addrDelRequest, addrEqual, addrList, addrReplace, addrString, broadcastOf,
  IFA_F_NODAD, IFA_F_NOPREFIXROUTE, type AddrSpec,
} from '../../dataplane/netlink/addr';
import { openHandle, throwIfAny, type Handle } from '../../dataplane/netlink/handle';
import { InvalidArgumentError, NetlinkError } from '../../dataplane/netlink/errors';
import { parseCidr } from '../../dataplane/netlink/ip';
import { AF_INET, AF_INET6 } from '../../dataplane/netlink/libc';
import { ipJson, useTestNetns } from '../helpers/netns';
import { thrown } from '../helpers/process';

type IpAddrInfo = { family: string; local: string; prefixlen: number; broadcast?: string; address?: string; label?: string; scope: string; noprefixroute?: boolean };
type IpLink = { ifindex: number; ifname: string; addr_info?: IpAddrInfo[] };

function linkAdd(ns: string, name: string, ...kind: string[]): number {
  execFileSync('ip', ['-n', ns, 'link', 'add', name, ...kind]);
  execFileSync('ip', ['-n', ns, 'link', 'set', name, 'up']);
  return ipJson<IpLink[]>(ns, ['link', 'show', name])[0].ifindex;
}

function kernelAddrs(ns: string, dev: string): IpAddrInfo[] {
  return ipJson<IpLink[]>(ns, ['addr', 'show', 'dev', dev])[0].addr_info ?? [];
}

/** Every address but IPv6 link-local ones, which autoconfiguration adds on its own schedule. */
function everyAddr(ns: string): unknown {
  return ipJson<IpLink[]>(ns, ['addr', 'show']).map((l) => [l.ifname, (l.addr_info ?? []).filter((a) => !a.local.startsWith('fe80:'))]);
}


describe('addr', () => {
  const ns = useTestNetns('a');
  let h: Handle;
  let br: number;
  const dev = 'wtabr';

  beforeEach(() => {
    h = openHandle({ netns: ns()[0] });
    br = linkAdd(ns()[0], dev, 'type', 'bridge');
  });
  afterEach(() => h.close());

  it('adds, lists and deletes an IPv4 address with a computed broadcast', () => {
    addrAdd(h, { linkIndex: br, cidr: '10.20.0.1/24', broadcast: '+' });
    const k = kernelAddrs(ns()[0], dev).filter((a) => a.family === 'inet');
    expect(k).toMatchObject([{ local: '10.20.0.1', prefixlen: 24, broadcast: '10.20.0.255', label: dev }]);

    const listed = addrList(h, { linkIndex: br, family: AF_INET });
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ linkIndex: br, cidr: '10.20.0.1/24', family: AF_INET, broadcast: '10.20.0.255', label: dev, scope: 0 });
    expect(listed[0].peer).toBeUndefined();
    expect(addrEqual(listed[0], { linkIndex: br, cidr: '10.20.0.1/24' })).toBe(true);

    addrDel(h, { linkIndex: br, cidr: '10.20.0.1/24' });
    expect(kernelAddrs(ns()[0], dev).filter((a) => a.family === 'inet')).toEqual([]);
    expect(addrList(h, { linkIndex: br, family: AF_INET })).toEqual([]);
  });

  it('adds, lists and deletes an IPv6 address (IFA_ADDRESS is the address, no peer)', () => {
    addrAdd(h, { linkIndex: br, cidr: 'fd00:0:0:7::1/64', flags: IFA_F_NODAD });
    const k = kernelAddrs(ns()[0], dev).filter((a) => a.family === 'inet6' && a.scope === 'global');
    expect(k).toMatchObject([{ local: 'fd00:0:0:7::1', prefixlen: 64 }]);
    expect(k[0].address).toBeUndefined();

    const listed = addrList(h, { linkIndex: br, family: AF_INET6 }).filter((a) => a.cidr.startsWith('fd00'));
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ cidr: 'fd00:0:0:7::1/64', family: AF_INET6 });
    expect(listed[0].peer).toBeUndefined();
    expect(listed[0].flags! & IFA_F_NODAD).toBe(IFA_F_NODAD);
    expect(addrEqual(listed[0], { linkIndex: br, cidr: 'fd00:0:0:7:0::1/64' })).toBe(true);

    addrDel(h, { linkIndex: br, cidr: 'fd00:0:0:7::1/64' });
    expect(kernelAddrs(ns()[0], dev).filter((a) => a.local.startsWith('fd00'))).toEqual([]);
  });

  it('writes and reads point-to-point peers for both families', () => {
    addrAdd(h, { linkIndex: br, cidr: '10.30.0.1', peer: '10.30.0.2/32' });
    addrAdd(h, { linkIndex: br, cidr: 'fd00:30::1', peer: 'fd00:30::2/128', flags: IFA_F_NODAD });
    const k = kernelAddrs(ns()[0], dev);
    expect(k.find((a) => a.local === '10.30.0.1')).toMatchObject({ address: '10.30.0.2', prefixlen: 32 });
    expect(k.find((a) => a.local === 'fd00:30::1')).toMatchObject({ address: 'fd00:30::2', prefixlen: 128 });

    const listed = addrList(h, { linkIndex: br });
    const v4 = listed.find((a) => a.cidr.startsWith('10.30.'));
    const v6 = listed.find((a) => a.cidr.startsWith('fd00:30:'));
    expect(v4).toMatchObject({ cidr: '10.30.0.1/32', peer: '10.30.0.2/32' });
    expect(v6).toMatchObject({ cidr: 'fd00:30::1/128', peer: 'fd00:30::2/128' });
    expect(addrEqual(v4!, { linkIndex: br, cidr: '10.30.0.1/24', peer: '10.30.0.2/32' })).toBe(true);
    expect(addrEqual(v4!, { linkIndex: br, cidr: '10.30.0.1', peer: '10.30.0.3/32' })).toBe(false);

    addrDel(h, { linkIndex: br, cidr: '10.30.0.1', peer: '10.30.0.2/32' });
    addrDel(h, { linkIndex: br, cidr: 'fd00:30::1', peer: 'fd00:30::2/128' });
    expect(kernelAddrs(ns()[0], dev).filter((a) => a.local.startsWith('10.30.') || a.local.startsWith('fd00:30:'))).toEqual([]);
  });

  it('is typed on a repeat add (EEXIST), replace succeeds and updates, delete of a missing address is EADDRNOTAVAIL', () => {
    const a: AddrSpec = { linkIndex: br, cidr: '10.40.0.1/24' };
    addrAdd(h, a);
    const err = thrown(() => addrAdd(h, a));
    expect(err).toBeInstanceOf(NetlinkError);
    expect((err as NetlinkError).code).toBe('EEXIST');
    expect((err as NetlinkError).op).toMatch(/addr add 10\.40\.0\.1\/24 dev #\d+/);

    addrReplace(h, a);
    addrReplace(h, { linkIndex: br, cidr: '10.40.1.1/24' });
    expect(kernelAddrs(ns()[0], dev).filter((x) => x.family === 'inet').map((x) => x.local)).toEqual(['10.40.0.1', '10.40.1.1']);

    // IPv6 replace rewrites the address's flags (IPv4 replace keeps them: see addrReplace)
    const a6: AddrSpec = { linkIndex: br, cidr: 'fd00:40::1/64', flags: IFA_F_NODAD };
    addrAdd(h, a6);
    expect((thrown(() => addrAdd(h, a6)) as NetlinkError).code).toBe('EEXIST');
    addrReplace(h, { ...a6, flags: IFA_F_NODAD | IFA_F_NOPREFIXROUTE });
    const k = kernelAddrs(ns()[0], dev).filter((x) => x.local === 'fd00:40::1');
    expect(k).toHaveLength(1);
    expect(k[0].noprefixroute).toBe(true);
    const listed = addrList(h, { linkIndex: br, family: AF_INET6 }).find((x) => x.cidr === 'fd00:40::1/64');
    expect(listed!.flags! & IFA_F_NOPREFIXROUTE).toBe(IFA_F_NOPREFIXROUTE);

    addrDel(h, a);
    const missing = thrown(() => addrDel(h, a));
    expect((missing as NetlinkError).code).toBe('EADDRNOTAVAIL');
    const missing6 = thrown(() => addrDel(h, { linkIndex: br, cidr: 'fd00:41::1/64' }));
    expect((missing6 as NetlinkError).code).toBe('EADDRNOTAVAIL');
  });

  it('filters the listing by link and family', () => {
    const other = linkAdd(ns()[0], 'wtabr2', 'type', 'bridge');
    addrAdd(h, { linkIndex: br, cidr: '10.50.0.1/24' });
    addrAdd(h, { linkIndex: other, cidr: '10.51.0.1/24' });
    addrAdd(h, { linkIndex: other, cidr: 'fd00:51::1/64', flags: IFA_F_NODAD });
    expect(addrList(h, { linkIndex: br, family: AF_INET }).map((a) => a.cidr)).toEqual(['10.50.0.1/24']);
    expect(addrList(h, { linkIndex: other, family: AF_INET }).map((a) => a.cidr)).toEqual(['10.51.0.1/24']);
    const v6 = addrList(h, { family: AF_INET6 });
    expect(v6.every((a) => a.family === AF_INET6)).toBe(true);
    expect(v6.map((a) => a.cidr)).toContain('fd00:51::1/64');
    const all = addrList(h).map((a) => a.cidr);
    expect(all).toEqual(expect.arrayContaining(['127.0.0.1/8', '10.50.0.1/24', '10.51.0.1/24', 'fd00:51::1/64']));
  });

  it('sets a label on an IPv4 address', () => {
    addrAdd(h, { linkIndex: br, cidr: '10.60.0.1/24', label: `${dev}:x` });
    expect(kernelAddrs(ns()[0], dev).find((a) => a.local === '10.60.0.1')?.label).toBe(`${dev}:x`);
    expect(addrList(h, { linkIndex: br, family: AF_INET })[0].label).toBe(`${dev}:x`);
  });

  it('lands a batch of address writes and reports each failure', () => {
    const reqs = Array.from({ length: 50 }, (_, i) => addrAddRequest({ linkIndex: br, cidr: `10.70.${i}.1/24` }));
    reqs.push(addrAddRequest({ linkIndex: br, cidr: '10.70.0.1/24' }));
    const errs = h.batch(reqs);
    expect(errs.slice(0, 50).filter(Boolean)).toEqual([]);
    expect(errs[50]?.code).toBe('EEXIST');
    expect(kernelAddrs(ns()[0], dev).filter((a) => a.local.startsWith('10.70.'))).toHaveLength(50);
    throwIfAny(h.batch(Array.from({ length: 50 }, (_, i) => addrDelRequest({ linkIndex: br, cidr: `10.70.${i}.1/24` }))));
    expect(kernelAddrs(ns()[0], dev).filter((a) => a.local.startsWith('10.70.'))).toEqual([]);
  });

  const bad: Array<[string, AddrSpec, RegExp]> = [
    ['bad CIDR', { linkIndex: 1, cidr: '10.0.0.300/24' }, /invalid CIDR/],
    ['prefix too long', { linkIndex: 1, cidr: '10.0.0.1/33' }, /prefix length must be between 0 and 32/],
    ['linkIndex 0', { linkIndex: 0, cidr: '10.0.0.1/24' }, /linkIndex 0 \(must be between 1 and/],
    ['fractional linkIndex', { linkIndex: 1.5, cidr: '10.0.0.1/24' }, /linkIndex/],
    ['peer of the other family', { linkIndex: 1, cidr: '10.0.0.1', peer: 'fd00::2' }, /peer "fd00::2" is not of the same family/],
    ['family mismatch', { linkIndex: 1, cidr: '10.0.0.1/24', family: AF_INET6 }, /does not match/],
    ['IPv6 broadcast', { linkIndex: 1, cidr: 'fd00::1/64', broadcast: '+' }, /broadcast is only supported for IPv4/],
    ['bad broadcast', { linkIndex: 1, cidr: '10.0.0.1/24', broadcast: 'everyone' }, /invalid CIDR|broadcast/],
    ['label too long', { linkIndex: 1, cidr: '10.0.0.1/24', label: 'x'.repeat(16) }, /label .* \(must be 1 to 15 bytes\)/],
    ['IPv6 label', { linkIndex: 1, cidr: 'fd00::1/64', label: 'x' }, /label is only supported for IPv4/],
    ['scope out of range', { linkIndex: 1, cidr: '10.0.0.1/24', scope: 256 }, /scope 256 \(must be between 0 and 255\)/],
    ['negative flags', { linkIndex: 1, cidr: '10.0.0.1/24', flags: -1 }, /flags -1/],
  ];

  it.each(bad)('rejects %s before touching the kernel', (_, spec, msg) => {
    const before = everyAddr(ns()[0]);
    for (const fn of [addrAdd, addrReplace, addrDel]) {
      const err = thrown(() => fn(h, { ...spec, linkIndex: spec.linkIndex === 1 ? br : spec.linkIndex }));
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(msg);
    }
    expect(everyAddr(ns()[0])).toEqual(before);
  });

  it('rejects a batch with one bad entry before sending any of it', () => {
    const before = everyAddr(ns()[0]);
    expect(() => [addrAddRequest({ linkIndex: br, cidr: '10.80.0.1/24' }), addrAddRequest({ linkIndex: br, cidr: 'nope' })]).toThrow(InvalidArgumentError);
    expect(everyAddr(ns()[0])).toEqual(before);
  });

  it('names the kernel failure for a link that does not exist', () => {
    const err = thrown(() => addrAdd(h, { linkIndex: 999999, cidr: '10.0.0.1/24' }));
    expect((err as NetlinkError).code).toBe('ENODEV');
  });
});

describe('addr helpers', () => {
  it('computes IPv4 broadcasts, none for /31 and /32', () => {
    expect(broadcastOf(parseCidr('10.1.2.3/24'))).toBe('10.1.2.255');
    expect(broadcastOf(parseCidr('10.1.2.3/20'))).toBe('10.1.15.255');
    expect(broadcastOf(parseCidr('10.1.2.3/0'))).toBe('255.255.255.255');
    expect(broadcastOf(parseCidr('10.1.2.3/31'))).toBeUndefined();
    expect(broadcastOf(parseCidr('10.1.2.3/32'))).toBeUndefined();
    expect(broadcastOf(parseCidr('fd00::1/64'))).toBeUndefined();
  });

  it('compares identity, not properties', () => {
    expect(addrEqual({ linkIndex: 2, cidr: '10.0.0.1/24', label: 'a' }, { linkIndex: 2, cidr: '10.0.0.1/24', flags: 0x80 })).toBe(true);
    expect(addrEqual({ linkIndex: 2, cidr: '10.0.0.1/24' }, { linkIndex: 3, cidr: '10.0.0.1/24' })).toBe(false);
    expect(addrEqual({ linkIndex: 2, cidr: '10.0.0.1/24' }, { linkIndex: 2, cidr: '10.0.0.1/25' })).toBe(false);
    expect(addrEqual({ linkIndex: 2, cidr: 'FD00:0::1/64' }, { linkIndex: 2, cidr: 'fd00::1/64' })).toBe(true);
    expect(addrString({ linkIndex: 2, cidr: '10.0.0.1/24', broadcast: '10.0.0.255' })).toBe('10.0.0.1/24 brd 10.0.0.255 dev #2');
  });
});

// Which link notifications make the agent check its host network at once.
import { describe, expect, it } from 'vitest';
import type { Link } from '../../dataplane/netlink/link';
import type { MonitorEvent } from '../../dataplane/netlink/monitor';
import { repairReason, type WatchedDevices } from '../../cni-plugin/agent/host/repair-triggers';

const W: WatchedDevices = {
  weft: new Map([['weft.vx1', 10], ['weft.br1', 11]]),
  underlay: { index: 2, name: 'eth0' },
  underlayIp: '172.31.1.11',
};

const link = (action: 'new' | 'del', l: Partial<Link> & { name: string; index: number }): MonitorEvent => ({
  kind: 'link', action, link: { mtu: 1500, flags: l.up === false ? 0 : 1, up: true, operState: 'up', ...l },
});
const addr = (action: 'new' | 'del', linkIndex: number, cidr: string): MonitorEvent => ({ kind: 'addr', action, addr: { linkIndex, cidr, family: 2 } });

describe('repairReason', () => {
  it.each<[string, MonitorEvent, string | undefined]>([
    ['a weft device deleted', link('del', { name: 'weft.vx1', index: 10 }), 'weft.vx1 was deleted'],
    ['a weft device downed', link('new', { name: 'weft.br1', index: 11, up: false }), 'weft.br1 is down'],
    ['a weft device up as last seen', link('new', { name: 'weft.br1', index: 11 }), undefined],
    ['a weft name on another index', link('new', { name: 'weft.vx1', index: 99 }), 'weft.vx1 was replaced by another device of that name'],
    ['a device weft does not own', link('del', { name: 'weft.vx7', index: 70 }), undefined],
    ['a container veth', link('new', { name: 'wv0123456789ab', index: 40, up: false }), undefined],
    ['the underlay up', link('new', { name: 'eth0', index: 2 }), 'underlay eth0 is up'],
    ['the underlay back under a new index', link('new', { name: 'eth0', index: 33 }), 'underlay eth0 is up'],
    ['the underlay down', link('new', { name: 'eth0', index: 2, up: false }), undefined],
    ['the underlay deleted', link('del', { name: 'eth0', index: 2 }), undefined],
    ['the underlay address back', addr('new', 33, '172.31.1.11/24'), 'underlay address 172.31.1.11 is on interface 33'],
    ['another address', addr('new', 2, '172.31.1.12/24'), undefined],
    ['the gateway removed from a bridge', addr('del', 11, '10.244.1.1/24'), 'weft.br1 lost 10.244.1.1/24'],
    ['an address removed elsewhere', addr('del', 2, '172.31.1.11/24'), undefined],
    ['lost notifications', { kind: 'overrun', reason: 'ENOBUFS' }, 'link notifications were lost (ENOBUFS): checking everything'],
  ])('%s', (_what, ev, want) => {
    expect(repairReason(ev, W)).toBe(want);
  });

  it('watches no underlay before the first success', () => {
    expect(repairReason(link('new', { name: 'eth0', index: 2 }), { weft: new Map(), underlayIp: '172.31.1.11' })).toBeUndefined();
  });
});

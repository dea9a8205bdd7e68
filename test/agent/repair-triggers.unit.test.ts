// Which link notifications make the agent check its host network at once.
import { describe, expect, it } from 'vitest';
import type { Link } from '../../dataplane/netlink/link';
import type { MonitorEvent } from '../../dataplane/netlink/monitor';
import { repairReason, trackPorts, type WatchedDevices } from '../../cni-plugin/agent/host/repair-triggers';

const W: WatchedDevices = {
  weft: new Map([['weft.vx1', 10], ['weft.br1', 11]]),
  underlay: { index: 2, name: 'eth0' },
  underlayIp: '172.31.1.11',
};

const link = (action: 'new' | 'del', l: Partial<Link> & { name: string; index: number }): MonitorEvent => ({
  kind: 'link', action, bridgePort: false, link: { mtu: 1500, flags: l.up === false ? 0 : 1, up: true, operState: 'up', ...l },
});
const portEntry = (action: 'new' | 'del', l: Partial<Link> & { name: string; index: number }): MonitorEvent => ({ ...link(action, l), bridgePort: true } as MonitorEvent);
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
    ['a bridge-family delete of a weft bridge\'s entry', portEntry('del', { name: 'weft.br1', index: 11 }), undefined],
    ['lost notifications', { kind: 'overrun', reason: 'ENOBUFS' }, 'link notifications were lost (ENOBUFS): checking everything'],
  ])('%s', (_what, ev, want) => {
    expect(repairReason(ev, W)).toBe(want);
  });

  it('watches no underlay before the first success', () => {
    expect(repairReason(link('new', { name: 'eth0', index: 2 }), { weft: new Map(), underlayIp: '172.31.1.11' })).toBeUndefined();
  });
});

describe('trackPorts', () => {
  it('records ports joining a weft bridge, keeps them when the bridge goes, forgets them when deleted', () => {
    const ports = new Map<string, string>();
    trackPorts(link('new', { name: 'wv1', index: 40, masterIndex: 11 }), W, ports);
    trackPorts(link('new', { name: 'wv2', index: 41, masterIndex: 11 }), W, ports);
    trackPorts(link('new', { name: 'other', index: 42, masterIndex: 99 }), W, ports);
    expect([...ports]).toEqual([['wv1', 'weft.br1'], ['wv2', 'weft.br1']]);
    // the bridge deleted: the kernel says each port left it (bridge family), then reports it without a master
    trackPorts(portEntry('del', { name: 'wv1', index: 40, masterIndex: 11 }), W, ports);
    trackPorts(link('new', { name: 'wv1', index: 40 }), W, ports);
    trackPorts(link('del', { name: 'weft.br1', index: 11 }), W, ports);
    expect([...ports.keys()]).toEqual(['wv1', 'wv2']);
    trackPorts(link('del', { name: 'wv2', index: 41 }), W, ports);
    trackPorts(link('del', { name: 'wv1', index: 40 }), W, ports);
    expect([...ports]).toEqual([]);
    // a VXLAN device is no bridge
    trackPorts(link('new', { name: 'wv3', index: 43, masterIndex: 10 }), W, ports);
    expect([...ports]).toEqual([]);
  });
});

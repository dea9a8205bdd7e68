// ensureHostNetwork / teardownHostNetwork against the kernel, in a test
// namespace whose "underlay" is a veth. Results are read back with `ip`,
// `iptables-save` and `ethtool`, not with the library under test. What the
// spec validation refuses is in host-network.unit.test.ts.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { withNetns } from '../../dataplane/netlink/netns';
import {
  bridgeMacFor, ensureHostNetwork, ensureHostNetworkReport, teardownHostNetwork, type HostNetworkSpec,
} from '../../cni-plugin/agent/host/host-network';
import { ethtoolFeatures, ip, ipAddrs, ipLink, ipLinks, iptablesSave, recordingLog, useUnderlayHost } from './fixtures';
import { caught } from '../helpers/process';
import { MAC, spec } from './host-network-spec';


/** Everything about weft's devices the test can see, for "nothing changed" comparisons. */
function snapshot(ns: string): string {
  const links = ipLinks(ns)
    .filter((l) => l.ifname.startsWith('weft.'))
    .map((l) => ({ i: l.ifindex, n: l.ifname, mtu: l.mtu, mac: l.address, up: l.flags.includes('UP'), data: l.linkinfo?.info_data?.id, addrs: ipAddrs(ns, l.ifname) }));
  return JSON.stringify(links);
}

describe('ensureHostNetwork in a namespace', () => {
  const setup = useUnderlayHost('h');

  it('creates a VTEP and a bridge per network, with addresses, MTU, MAC, forwarding, iptables and checksum offload off', () => {
    const { ns, h, dev } = setup(1500);
    const atts = ensureHostNetwork(h, spec());
    expect(atts).toEqual([
      { network: 'a', vni: 101, networkCidr: '10.244.0.0/16', subnet: '10.244.3.0/24', gateway: '10.244.3.1', vxlanDevice: 'weft.vx101', bridge: 'weft.br101', mtu: 1450 },
      { network: 'b', vni: 102, networkCidr: '10.245.0.0/16', subnet: '10.245.3.0/24', gateway: '10.245.3.1', vxlanDevice: 'weft.vx102', bridge: 'weft.br102', mtu: 1450 },
    ]);
    for (const [vni, vtep, gw] of [[101, '10.244.3.0/32', '10.244.3.1/24'], [102, '10.245.3.0/32', '10.245.3.1/24']] as const) {
      const vx = ipLink(ns, `weft.vx${vni}`)!;
      expect(vx.linkinfo?.info_kind).toBe('vxlan');
      expect(vx.linkinfo?.info_data).toMatchObject({ id: vni, port: 4789, local: '192.168.90.1', link: dev, learning: false });
      expect(vx.mtu).toBe(1450);
      expect(vx.address).toBe(MAC);
      expect(vx.flags).toContain('UP');
      expect(ipAddrs(ns, `weft.vx${vni}`)).toEqual([vtep]);
      const br = ipLink(ns, `weft.br${vni}`)!;
      expect(br.linkinfo?.info_kind).toBe('bridge');
      expect(br.mtu).toBe(1450);
      expect(br.flags).toContain('UP');
      expect(ipAddrs(ns, `weft.br${vni}`)).toEqual([gw]);
      const f = ethtoolFeatures(ns, `weft.vx${vni}`);
      expect(f['tx-checksumming']).toBe('off');
      expect(f['tx-checksum-ip-generic']).toBe('off');
    }
    expect(withNetns(ns, () => readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim())).toBe('1');
    const rules = iptablesSave(ns);
    expect(rules).toContain('-A FORWARD -j WEFT-FORWARD');
    expect(rules).toContain('-A POSTROUTING -j WEFT-POSTROUTING');
    expect(rules).toContain('-A WEFT-FORWARD -i weft.br101 -o weft.br101 -j ACCEPT');
    expect(rules).toContain('-A WEFT-POSTROUTING -s 10.244.3.0/24 -j WEFT-MASQ');
    expect(rules).toContain('-A WEFT-MASQ -d 10.245.0.0/16 -j RETURN');
    expect(rules).toContain('-A WEFT-ISOLATION -s 10.244.0.0/16 -d 10.245.0.0/16 -j DROP');
  });

  it('is idempotent: a second run changes nothing, not even an ifindex or an iptables counter', () => {
    const { ns, h } = setup();
    const first = ensureHostNetwork(h, spec());
    const before = snapshot(ns);
    const rulesBefore = iptablesSave(ns).replace(/^#.*$/gm, '');
    const log = recordingLog();
    expect(ensureHostNetwork(h, spec(), { log })).toEqual(first);
    expect(snapshot(ns)).toBe(before);
    expect(iptablesSave(ns).replace(/^#.*$/gm, '')).toBe(rulesBefore);
    expect(log.lines).toEqual([]);
  });

  it('reports each repair once, with what it touched, and nothing on a host that is right', () => {
    const { ns, h } = setup();
    const first = ensureHostNetworkReport(h, spec());
    expect(first.changes.filter((c) => c.kind === 'device').map((c) => c.what)).toEqual([
      'created vxlan weft.vx101', 'created bridge weft.br101', 'created vxlan weft.vx102', 'created bridge weft.br102',
    ]);
    expect(ensureHostNetworkReport(h, spec()).changes).toEqual([]);
    ip(['-n', ns, 'link', 'del', 'weft.vx101']);
    ip(['-n', ns, 'link', 'set', 'weft.br102', 'down']);
    ip(['netns', 'exec', ns, 'iptables', '-t', 'nat', '-F']);
    ip(['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=0']);
    const log = recordingLog();
    const r = ensureHostNetworkReport(h, spec(), { log });
    expect(r.changes.map((c) => `${c.kind} | ${c.what}`)).toEqual([
      'device | created vxlan weft.vx101',
      'address | adding 10.244.3.0/32 to weft.vx101',
      'offload | turned off TX checksum offload on weft.vx101',
      'device | weft.br102 was down: set it up',
      'sysctl | net.ipv4.ip_forward was 0: set to 1',
      'iptables | iptables: nat WEFT-POSTROUTING: was empty (flushed), 2 rule(s) put back',
      'iptables | iptables: nat WEFT-MASQ: was empty (flushed), 3 rule(s) put back',
      'iptables | iptables: nat POSTROUTING: jump to WEFT-POSTROUTING missing, inserted as rule 1',
    ]);
    // one log line per repair, and the devices as they are now
    expect(log.lines.map((l) => l.msg)).toEqual(r.changes.map((c) => c.what));
    expect(r.devices.get('weft.vx101')).toBe(ipLink(ns, 'weft.vx101')!.ifindex);
    expect(ensureHostNetworkReport(h, spec()).changes).toEqual([]);
  });

  it('derives the MTU from the underlay and honours a configured one that fits', () => {
    const { ns, h } = setup(9000);
    expect(ensureHostNetwork(h, spec())[0].mtu).toBe(8950);
    expect(ipLink(ns, 'weft.vx101')!.mtu).toBe(8950);
    expect(ensureHostNetwork(h, spec({ mtu: 1400 }))[0].mtu).toBe(1400);
    expect(ipLink(ns, 'weft.br102')!.mtu).toBe(1400);
    expect(caught(() => ensureHostNetwork(h, spec({ mtu: 8951 }))).message).toMatch(/^mtu 8951 too large for underlay wth\w+ \(MTU 9000\): at most 8950/);
  });

  it('repairs drift in place: MTU, MAC, a removed address, a downed device, checksum offload turned back on', () => {
    const { ns, h } = setup();
    ensureHostNetwork(h, spec());
    const idx = ipLink(ns, 'weft.vx101')!.ifindex;
    ip(['-n', ns, 'link', 'set', 'weft.vx101', 'mtu', '1300']);
    ip(['-n', ns, 'link', 'set', 'weft.vx102', 'address', '02:77:00:00:00:99']);
    ip(['-n', ns, 'addr', 'del', '10.244.3.1/24', 'dev', 'weft.br101']);
    ip(['-n', ns, 'link', 'set', 'weft.br102', 'down']);
    ip(['netns', 'exec', ns, 'ethtool', '-K', 'weft.vx101', 'tx', 'on']);
    const log = recordingLog();
    ensureHostNetwork(h, spec(), { log });
    expect(ipLink(ns, 'weft.vx101')!.ifindex).toBe(idx);
    expect(ipLink(ns, 'weft.vx101')!.mtu).toBe(1450);
    expect(ipLink(ns, 'weft.vx102')!.address).toBe(MAC);
    expect(ipAddrs(ns, 'weft.br101')).toEqual(['10.244.3.1/24']);
    expect(ipLink(ns, 'weft.br102')!.flags).toContain('UP');
    expect(ethtoolFeatures(ns, 'weft.vx101')['tx-checksumming']).toBe('off');
    expect(log.lines.map((l) => l.msg)).toEqual([
      'setting weft.vx101 mtu 1450 (was 1300)',
      'turned off TX checksum offload on weft.vx101',
      'adding 10.244.3.1/24 to weft.br101',
      `setting weft.vx102 address ${MAC} (was 02:77:00:00:00:99)`,
      'weft.br102 was down: set it up',
    ]);
  });

  it('keeps the gateway MAC when the VTEP MAC changes, so containers keep their ARP entries', () => {
    const { ns, h } = setup();
    const self = { underlayIp: '192.168.90.1', vtepMac: MAC, hostId: 'h1' };
    ensureHostNetwork(h, spec({ self }));
    const gw = ipLink(ns, 'weft.br101')!.address;
    ensureHostNetwork(h, spec({ self: { ...self, vtepMac: '02:77:00:00:00:42' } }));
    expect(ipLink(ns, 'weft.vx101')!.address).toBe('02:77:00:00:00:42');
    expect(ipLink(ns, 'weft.br101')!.address).toBe(gw);
    expect(ipLink(ns, 'weft.br102')!.address).not.toBe(gw);
    // the derivation is part of the contract: a new one would move every gateway on upgrade
    expect(gw).toBe(bridgeMacFor('h1', 101));
    expect([bridgeMacFor('h1', 1), bridgeMacFor('Node-A', 4096), bridgeMacFor('node-a', 4096)]).toEqual(['0e:d2:01:5a:e9:8f', '3e:ee:db:8d:8d:22', '3e:ee:db:8d:8d:22']);
  });

  it('replaces a VXLAN device whose VNI-independent immutable attributes differ, and says so', () => {
    const { ns, h } = setup();
    ensureHostNetwork(h, spec());
    const idx = ipLink(ns, 'weft.vx101')!.ifindex;
    const log = recordingLog();
    ensureHostNetwork(h, spec({ vxlanPort: 8472 }), { log });
    const vx = ipLink(ns, 'weft.vx101')!;
    expect(vx.ifindex).not.toBe(idx);
    expect(vx.linkinfo?.info_data?.port).toBe(8472);
    expect(ipAddrs(ns, 'weft.vx101')).toEqual(['10.244.3.0/32']);
    expect(log.lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([
      'replacing weft.vx101: port 4789, want 8472 cannot be changed in place',
      'replacing weft.vx102: port 4789, want 8472 cannot be changed in place',
    ]);
  });

  it('moves the addresses when the host gets a new subnet', () => {
    const { ns, h } = setup();
    ensureHostNetwork(h, spec());
    const moved = spec();
    moved.attachments[0] = { ...moved.attachments[0], subnet: '10.244.9.0/24' };
    ensureHostNetwork(h, moved);
    expect(ipAddrs(ns, 'weft.vx101')).toEqual(['10.244.9.0/32']);
    expect(ipAddrs(ns, 'weft.br101')).toEqual(['10.244.9.1/24']);
    expect(iptablesSave(ns)).toContain('-A WEFT-POSTROUTING -s 10.244.9.0/24 -j WEFT-MASQ');
    expect(iptablesSave(ns)).not.toContain('10.244.3.0/24');
  });

  it('refuses to touch a device of another kind that holds a weft name', () => {
    const { ns, h } = setup();
    ip(['-n', ns, 'link', 'add', 'weft.vx101', 'type', 'bridge']);
    const idx = ipLink(ns, 'weft.vx101')!.ifindex;
    expect(caught(() => ensureHostNetwork(h, spec())).message).toBe(
      'weft.vx101 already exists but is a bridge, not a vxlan: weft will not remove a device it did not create; delete it or rename it',
    );
    expect(ipLink(ns, 'weft.vx101')!.ifindex).toBe(idx);
  });

  it('finds the underlay from the address, or checks the named device holds it', () => {
    const { h, dev } = setup();
    expect(caught(() => ensureHostNetwork(h, spec({ self: { underlayIp: '192.168.91.1', vtepMac: MAC } }))).message).toBe(
      'underlay address 192.168.91.1 is on no device here: add it to the underlay device or fix self.underlayIp',
    );
    expect(caught(() => ensureHostNetwork(h, spec({ self: { underlayIp: '192.168.90.1', underlayDev: 'lo', vtepMac: MAC } }))).message).toBe(
      'underlay address 192.168.90.1 is not on lo: add it there (ip addr add 192.168.90.1/<prefix> dev lo) or fix self.underlayIp',
    );
    expect(ensureHostNetwork(h, spec({ self: { underlayIp: '192.168.90.1', underlayDev: dev, vtepMac: MAC } }))).toHaveLength(2);
  });

  it("teardown removes weft's devices and chains and nothing else", () => {
    const { ns, h, dev } = setup();
    ensureHostNetwork(h, spec());
    // someone else's device with a weft-like name and someone else's chain stay
    ip(['-n', ns, 'link', 'add', 'weft.other', 'type', 'bridge']);
    ip(['netns', 'exec', ns, 'iptables', '-N', 'OTHER-CHAIN']);
    const removed = teardownHostNetwork(h);
    expect(removed.sort()).toEqual(['weft.br101', 'weft.br102', 'weft.vx101', 'weft.vx102']);
    const names = ipLinks(ns).map((l) => l.ifname);
    expect(names.filter((n) => n.startsWith('weft.'))).toEqual(['weft.other']);
    expect(names).toContain(dev);
    const rules = iptablesSave(ns);
    expect(rules).not.toMatch(/WEFT-/);
    expect(rules).toContain(':OTHER-CHAIN');
    expect(teardownHostNetwork(h)).toEqual([]);
  });
});

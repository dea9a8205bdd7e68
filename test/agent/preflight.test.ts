// preflight in a test namespace: what it reports on a good host, how it
// explains a bad one, and that it leaves nothing behind.
import { describe, expect, it } from 'vitest';
import { txChecksumGet } from '../../dataplane/ethtool';
import { ensureHostNetwork } from '../../cni-plugin/agent/host/host-network';
import { preflight, preflightReport, type PreflightResult } from '../../cni-plugin/agent/host/preflight';
import { nsExec } from '../helpers/netns';
import { ethtoolFeatures, ip, ipLink, ipLinks, useUnderlayHost } from './fixtures';

const byCheck = (rs: PreflightResult[]) => Object.fromEntries(rs.map((r) => [r.check, r]));

describe('preflight in a namespace', () => {
  const setup = useUnderlayHost('h');

  it('passes on a good host, and leaves no probe device and no changed setting behind', () => {
    const { ns, h, dev } = setup();
    // a new namespace inherits IPv4 forwarding from the root one, so start from off explicitly
    nsExec(ns, 'sh', ['-c', 'echo 0 > /proc/sys/net/ipv4/ip_forward']);
    const before = ipLinks(ns).map((l) => l.ifname).sort();
    const rs = preflight(h, { underlayIp: '192.168.90.1', vxlanPort: 4789 });
    expect(rs.map((r) => [r.check, r.ok])).toEqual([
      ['kernel-vxlan', true],
      ['vxlan-tx-checksum', true],
      ['kernel-veth', true],
      ['kernel-bridge', true],
      ['underlay', true],
      ['ip-forward', true],
      ['iptables-restore', true],
      ['iptables-save', true],
    ]);
    expect(rs.every((r) => r.fix === undefined)).toBe(true);
    const c = byCheck(rs);
    expect(c.underlay.message).toBe(`${dev} holds 192.168.90.1, MTU 1500: overlay MTU 1450`);
    // forwarding was off, and preflight must not have turned it on
    expect(c['ip-forward'].message).toBe('IPv4 forwarding is 0; weft will turn it on');
    expect(nsExec(ns, 'cat', ['/proc/sys/net/ipv4/ip_forward']).trim()).toBe('0');
    expect(c['iptables-restore'].message).toMatch(/^iptables-restore v\d/);
    expect(ipLinks(ns).map((l) => l.ifname).sort()).toEqual(before);
    expect(preflightReport(rs).split('\n')[0]).toBe('ok   kernel-vxlan: vxlan devices can be created');
  });

  it('explains an underlay it cannot use, with the fix', () => {
    const { h: h1, dev } = setup(1300);
    let c = byCheck(preflight(h1, { underlayIp: '192.168.90.1' }));
    expect(c.underlay).toEqual({
      check: 'underlay', ok: false,
      message: `${dev} holds 192.168.90.1, MTU 1300: too small for an overlay MTU of at least 1280 (needs 1330)`,
      fix: `raise the MTU of ${dev} to at least 1330`,
    });
    c = byCheck(preflight(h1, { underlayIp: '192.168.90.77' }));
    expect(c.underlay).toMatchObject({ ok: false, message: 'underlay address 192.168.90.77 is on no device here: add it to the underlay device or fix self.underlayIp' });
    expect(c.underlay.fix).toContain('192.168.90.77');
  });

  it('checks a configured MTU against the underlay', () => {
    const { h, dev } = setup(1500);
    const c = byCheck(preflight(h, { underlayIp: '192.168.90.1', mtu: 1460 }));
    expect(c.underlay).toMatchObject({ ok: false, message: `${dev} holds 192.168.90.1, MTU 1500: the configured MTU 1460 does not fit (at most 1450)` });
  });

  it('reports a weft VXLAN device with TX checksum offload on, and passes once the host network is ensured', () => {
    const { ns, h } = setup();
    const spec = { self: { underlayIp: '192.168.90.1', vtepMac: '02:77:00:00:00:01' }, attachments: [{ network: 'a', vni: 7, networkCidr: '10.96.0.0/12', subnet: '10.96.1.0/24' }], vxlanPort: 4789 };
    ensureHostNetwork(h, { ...spec, keepTxChecksumOffload: true });
    expect(txChecksumGet('weft.vx7', { netns: ns })).toBe(true);
    expect(ethtoolFeatures(ns, 'weft.vx7')['tx-checksumming']).toBe('on');
    let c = byCheck(preflight(h, { underlayIp: '192.168.90.1' }));
    expect(c['vxlan-tx-checksum']).toEqual({
      check: 'vxlan-tx-checksum', ok: false,
      message: 'TX checksum offload is on for weft.vx7: packets may leave with a bad outer UDP checksum and be dropped',
      fix: 'restart the agent (it turns the offload off), or by hand: ethtool -K weft.vx7 tx off',
    });
    ensureHostNetwork(h, spec);
    expect(ethtoolFeatures(ns, 'weft.vx7')['tx-checksumming']).toBe('off');
    expect(txChecksumGet('weft.vx7', { netns: ns })).toBe(false);
    c = byCheck(preflight(h, { underlayIp: '192.168.90.1' }));
    expect(c['vxlan-tx-checksum'].ok).toBe(true);
  });

  it('cleans up a probe left by a crash, and refuses to touch a foreign device under the probe name', () => {
    const { ns, h } = setup();
    ip(['-n', ns, 'link', 'add', 'weft.probe', 'type', 'vxlan', 'id', '16777214', 'dstport', '4789']);
    ip(['-n', ns, 'link', 'add', 'weft.probe.br', 'type', 'veth', 'peer', 'name', 'wthforeign']);
    const c = byCheck(preflight(h, { underlayIp: '192.168.90.1' }));
    expect(c['kernel-vxlan'].ok).toBe(true);
    expect(ipLink(ns, 'weft.probe')).toBeUndefined();
    expect(c['kernel-bridge']).toEqual({
      check: 'kernel-bridge', ok: false,
      message: 'cannot probe bridge support: weft.probe.br exists and is a veth, not weft\'s probe',
      fix: 'remove or rename weft.probe.br',
    });
    expect(ipLink(ns, 'weft.probe.br')?.linkinfo?.info_kind).toBe('veth');
  });

  it('does not ask for the offload workaround where the kernel does not need it', () => {
    const { h } = setup();
    const c = byCheck(preflight(h, { underlayIp: '192.168.90.1', vxlanPort: 4789, disableTxChecksum: false }));
    expect(c['vxlan-tx-checksum']).toEqual({ check: 'vxlan-tx-checksum', ok: true, message: 'TX checksum offload stays on for VXLAN devices (this kernel does not need the workaround)' });
  });
});

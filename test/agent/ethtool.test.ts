// The SIOCETHTOOL calls against the kernel, cross-checked with the ethtool
// tool reading the same device.
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureTxChecksumOff, EthtoolError, txChecksumGet, txChecksumSet } from '../../dataplane/ethtool';
import { useTestNetns } from '../helpers/netns';
import { ethtoolFeatures, ip, requireEthtool } from './fixtures';
import { caught } from '../helpers/process';

describe('TX checksum offload through the ethtool ioctl', () => {
  const nss = useTestNetns('h', 2);
  beforeAll(() => requireEthtool());

  it('reads and sets it on a VXLAN device in a namespace, as ethtool -k sees it', () => {
    const [ns] = nss();
    ip(['-n', ns, 'link', 'add', 'wthvx', 'type', 'vxlan', 'id', '9', 'dstport', '4789']);
    // a fresh VXLAN device offloads checksums
    expect(txChecksumGet('wthvx', { netns: ns })).toBe(true);
    expect(ethtoolFeatures(ns, 'wthvx')['tx-checksum-ip-generic']).toBe('on');
    txChecksumSet('wthvx', false, { netns: ns });
    expect(txChecksumGet('wthvx', { netns: ns })).toBe(false);
    expect(ethtoolFeatures(ns, 'wthvx')).toMatchObject({ 'tx-checksumming': 'off', 'tx-checksum-ip-generic': 'off' });
    txChecksumSet('wthvx', true, { netns: ns });
    expect(ethtoolFeatures(ns, 'wthvx')['tx-checksum-ip-generic']).toBe('on');
    expect(ensureTxChecksumOff('wthvx', { netns: ns })).toBe(true);
    expect(ensureTxChecksumOff('wthvx', { netns: ns })).toBe(false);
    expect(ethtoolFeatures(ns, 'wthvx')['tx-checksum-ip-generic']).toBe('off');
  });

  it('acts on the device of the namespace it is given, not a same-named one elsewhere', () => {
    const [ns, other] = nss();
    ip(['-n', ns, 'link', 'add', 'wthvx', 'type', 'vxlan', 'id', '9', 'dstport', '4789']);
    const err = caught(() => txChecksumGet('wthvx', { netns: other }));
    expect(err).toBeInstanceOf(EthtoolError);
    expect(err.message).toBe(`ENODEV: ethtool get tx-checksumming wthvx in ${other}`);
    expect(caught(() => txChecksumGet('wthnone', { netns: ns })).message).toBe(`ENODEV: ethtool get tx-checksumming wthnone in ${ns}`);
    expect(caught(() => txChecksumGet('bad/name')).message).toBe('invalid device name "bad/name" (1 to 15 bytes, without "/", ":" or whitespace)');
  });
});

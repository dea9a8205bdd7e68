// sysctlPath: how a key maps to its /proc/sys file, and which keys are
// refused before any file is touched. Reading and writing them, in a
// namespace, is in sysctl.test.ts.
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../dataplane/netlink/errors';
import { sysctlPath } from '../dataplane/sysctl';

describe('sysctlPath', () => {
  it('maps the dotted form like sysctl(8), slashes standing for dots in names', () => {
    expect(sysctlPath('net.ipv4.ip_forward')).toBe('/proc/sys/net/ipv4/ip_forward');
    expect(sysctlPath('net.ipv4.conf.eth0/100.rp_filter')).toBe('/proc/sys/net/ipv4/conf/eth0.100/rp_filter');
    expect(sysctlPath('net/ipv4/conf/eth0.100/rp_filter')).toBe('/proc/sys/net/ipv4/conf/eth0.100/rp_filter');
    expect(sysctlPath('kernel')).toBe('/proc/sys/kernel');
  });

  it.each(['', '../etc/passwd', 'net/../../etc', 'net.ipv4..ip_forward', 'net ipv4', 'net/ipv4/', '/net/ipv4', 'net.ipv4.ip_forward\n', 'a;b'])(
    'rejects %j',
    (key) => {
      expect(() => sysctlPath(key)).toThrow(InvalidArgumentError);
    },
  );
});

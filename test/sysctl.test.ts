import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../dataplane/netlink/errors';
import { SysctlError, SysctlNotFoundError, enableForwarding, setRpFilter, sysctlGet, sysctlSet } from '../dataplane/sysctl';
import { nsExec, useTestNetns } from './helpers/netns';

const rootForward = () => readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();

describe('sysctl in a namespace', () => {
  const ns = useTestNetns('s', 1);

  it('sets and reads ip_forward in the namespace without touching the root namespace', () => {
    const [n] = ns();
    const before = rootForward();
    const other = before === '1' ? '0' : '1';
    sysctlSet('net.ipv4.ip_forward', other, { netns: n });
    expect(sysctlGet('net.ipv4.ip_forward', { netns: n })).toBe(other);
    expect(nsExec(n, 'cat', ['/proc/sys/net/ipv4/ip_forward']).trim()).toBe(other);
    expect(rootForward()).toBe(before);
    sysctlSet('net/ipv4/ip_forward', Number(before), { netns: n });
    expect(sysctlGet('net/ipv4/ip_forward', { netns: n })).toBe(before);
    expect(rootForward()).toBe(before);
  });

  it('enableForwarding turns on IPv4 and IPv6 forwarding in the namespace only', () => {
    const [n] = ns();
    const before = rootForward();
    const before6 = readFileSync('/proc/sys/net/ipv6/conf/all/forwarding', 'utf8').trim();
    // a new namespace inherits IPv4 forwarding from the root one (devconf_inherit_init_net=0), so start from off explicitly
    sysctlSet('net.ipv4.ip_forward', 0, { netns: n });
    expect(sysctlGet('net.ipv4.ip_forward', { netns: n })).toBe('0');
    enableForwarding({ netns: n, ipv6: true });
    expect(sysctlGet('net.ipv4.ip_forward', { netns: n })).toBe('1');
    expect(sysctlGet('net.ipv6.conf.all.forwarding', { netns: n })).toBe('1');
    expect(rootForward()).toBe(before);
    expect(readFileSync('/proc/sys/net/ipv6/conf/all/forwarding', 'utf8').trim()).toBe(before6);
  });

  it('setRpFilter works on an interface whose name has a dot', () => {
    const [n] = ns();
    execFileSync('ip', ['-n', n, 'link', 'add', 'd0.7', 'type', 'veth', 'peer', 'name', 'd1']);
    setRpFilter('d0.7', 'loose', { netns: n });
    expect(sysctlGet('net.ipv4.conf.d0/7.rp_filter', { netns: n })).toBe('2');
    setRpFilter('d0.7', 'strict', { netns: n });
    expect(nsExec(n, 'cat', ['/proc/sys/net/ipv4/conf/d0.7/rp_filter']).trim()).toBe('1');
    expect(() => setRpFilter('d0/7', 'off', { netns: n })).toThrow(InvalidArgumentError);
    expect(() => setRpFilter('d0.7', 'lax' as never, { netns: n })).toThrow(/off, strict or loose/);
  });

  it('an unknown key is a typed error naming the key; per-device keys exist only where the device does', () => {
    const [n] = ns();
    const err = (() => {
      try {
        sysctlGet('net.ipv4.no_such_thing', { netns: n });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(SysctlNotFoundError);
    expect((err as SysctlNotFoundError).key).toBe('net.ipv4.no_such_thing');
    expect(() => sysctlSet('net.ipv4.conf.nosuchdev.rp_filter', 1, { netns: n })).toThrow(SysctlNotFoundError);
    expect(() => setRpFilter('nosuchdev', 'loose', { netns: n })).toThrow(/nosuchdev/);
  });

  it('a value the kernel refuses is a typed error and leaves the old value', () => {
    const [n] = ns();
    const before = sysctlGet('net.ipv4.conf.all.rp_filter', { netns: n });
    expect(() => sysctlSet('net.ipv4.conf.all.rp_filter', 'bogus', { netns: n })).toThrow(SysctlError);
    expect(() => sysctlSet('net.ipv4.ip_forward', 'a\nb', { netns: n })).toThrow(InvalidArgumentError);
    expect(() => sysctlSet('net.ipv4.ip_forward', 1.5, { netns: n })).toThrow(InvalidArgumentError);
    expect(() => sysctlGet('net.ipv4', { netns: n })).toThrow(/group of keys/);
    expect(sysctlGet('net.ipv4.conf.all.rp_filter', { netns: n })).toBe(before);
  });

  it('refuses to set a host-wide key "in" a namespace', () => {
    const [n] = ns();
    const before = readFileSync('/proc/sys/kernel/printk_ratelimit', 'utf8').trim();
    expect(() => sysctlSet('kernel.printk_ratelimit', 7, { netns: n })).toThrow(/not per network namespace/);
    expect(readFileSync('/proc/sys/kernel/printk_ratelimit', 'utf8').trim()).toBe(before);
  });
});

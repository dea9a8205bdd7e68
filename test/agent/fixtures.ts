// Shared fixtures for the agent dataplane tests: an "underlay" for a host
// namespace made of a veth (the kernel here has no dummy module), and small
// readers of kernel state through `ip -j` so tests check the product with a
// tool other than the one it uses.
import { execFileSync } from 'node:child_process';
import { afterEach, beforeAll } from 'vitest';
import { openHandle, type Handle } from '../../dataplane/netlink/handle';
import type { Logger } from '../../controller/common/log';
import { captureLogger, type LogLine } from '../helpers/log';
import { ipJson, useTestNetns } from '../helpers/netns';
import { uniqueName } from '../helpers/names';
import { requireSystem } from '../helpers/system';

export function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A veth underlay inside `ns` holding `cidr`, its peer also in `ns` (down)
 * unless `peerNs` is given, in which case the peer is moved there with
 * `peerCidr`: two host namespaces joined back to back.
 */
export function underlay(ns: string, cidr: string, o: { peerNs?: string; peerCidr?: string; mtu?: number } = {}): { dev: string; peer: string } {
  const dev = uniqueName('h');
  const peer = uniqueName('h');
  ip(['-n', ns, 'link', 'add', dev, 'mtu', String(o.mtu ?? 1500), 'type', 'veth', 'peer', 'name', peer, ...(o.peerNs ? ['netns', o.peerNs] : [])]);
  ip(['-n', ns, 'addr', 'add', cidr, 'dev', dev]);
  ip(['-n', ns, 'link', 'set', dev, 'up']);
  if (o.peerNs) {
    if (o.peerCidr) ip(['-n', o.peerNs, 'addr', 'add', o.peerCidr, 'dev', peer]);
    ip(['-n', o.peerNs, 'link', 'set', peer, 'up']);
  }
  return { dev, peer };
}

export type IpLink = {
  ifindex: number;
  ifname: string;
  mtu: number;
  address: string;
  flags: string[];
  operstate?: string;
  link?: string;
  linkinfo?: { info_kind: string; info_data?: Record<string, any> };
};

export function ipLinks(ns: string): IpLink[] {
  return ipJson<IpLink[]>(ns, ['-d', 'link', 'show']);
}

export function ipLink(ns: string, name: string): IpLink | undefined {
  return ipLinks(ns).find((l) => l.ifname === name);
}

export function ipAddrs(ns: string, dev: string): string[] {
  const out = ipJson<Array<{ addr_info: Array<{ family: string; local: string; prefixlen: number; scope: string }> }>>(ns, ['addr', 'show', 'dev', dev]);
  return out.flatMap((l) => l.addr_info.filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`)).sort();
}

export function iptablesSave(ns: string): string {
  return execFileSync('ip', ['netns', 'exec', ns, 'iptables-save'], { encoding: 'utf8' });
}

/** The ethtool command, which tests cross-check the ioctl with; missing, the test fails naming the package. */
export function requireEthtool(): void {
  requireSystem([{ pkg: 'ethtool', command: 'ethtool' }]);
}

/** `ethtool -k` of a device, as feature -> 'on' | 'off'. */
export function ethtoolFeatures(ns: string, dev: string): Record<string, string> {
  const out = execFileSync('ip', ['netns', 'exec', ns, 'ethtool', '-k', dev], { encoding: 'utf8' });
  const f: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^\s*([a-z0-9-]+): (on|off)/.exec(line);
    if (m) f[m[1]] = m[2];
  }
  return f;
}

/** A logger keeping what it said (info and above), for tests that check the product explained itself. */
export function recordingLog(): Logger & { lines: LogLine[] } {
  const { logger, lines } = captureLogger('info');
  return Object.assign(logger, { lines });
}

/**
 * A fresh "host" namespace per test whose underlay is a veth holding
 * 192.168.90.1/24, with a handle on it that is closed after the test.
 * Registers vitest hooks: call inside a describe block.
 */
export function useUnderlayHost(tag: string): (mtu?: number) => { ns: string; h: Handle; dev: string } {
  const nss = useTestNetns(tag, 1);
  let h: Handle | undefined;
  beforeAll(() => requireEthtool());
  afterEach(() => {
    h?.close();
    h = undefined;
  });
  return (mtu = 1500) => {
    const [ns] = nss();
    const { dev } = underlay(ns, '192.168.90.1/24', { mtu });
    h = openHandle({ netns: ns });
    return { ns, h, dev };
  };
}

// How hosts reach this controller: the addresses that go into its serving
// certificate and the one address the join command names.
//
// The join command must work when pasted on another machine as printed, so
// it never names the hostname (Debian maps it to 127.0.1.1 in /etc/hosts, and
// other machines may not resolve it at all). The rule, first match wins:
//   1. the first --advertise name (the operator knows best);
//   2. the listen address, when it is a specific one (nothing else answers);
//   3. this machine's preferred address: IPv4 before IPv6 (IPv6 only when the
//      controller listens on ::); within a family, an address on the
//      interface of the default route (lowest metric, read from
//      /proc/net/route and /proc/net/ipv6_route of the controller's network
//      namespace), else the first address on an interface that is not a
//      container bridge or tunnel (docker0, weft.br1, cni0, ...), else the
//      first address at all;
//   4. loopback, when the machine has no other address (only agents on this
//      machine can join then, and the controller says so).
// Loopback (127/8, ::1) and link-local (169.254/16, fe80::/10) addresses are
// never candidates, nor kube-proxy's kube-ipvs0 (it holds service addresses).
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import type { ControllerConfig } from './config';
import { formatHostPort, isLoopback } from '../common/config-sources';

export type MachineAddress = { iface: string; address: string; family: 4 | 6 };

/** The interfaces of the IPv4 and IPv6 default routes, lowest metric first. */
export type DefaultRoutes = { v4: string[]; v6: string[] };

/** What the rule looks at; tests pass their own. */
export type Machine = { interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>; defaultRoutes: DefaultRoutes };

export const WILDCARD_HOSTS = ['0.0.0.0', '::'];

/** Interfaces whose addresses other machines do not reach this one at (bridges for local containers, tunnels, VIP holders). */
const SECONDARY_IFACE = /^(weft\.|docker|br-|cni|virbr|podman|veth|cali|flannel|vxlan|tun|tap|wg|lxc|lxd|kube-bridge)/;
const NEVER_IFACE = new Set(['kube-ipvs0']);

export function isLinkLocal(address: string): boolean {
  if (isIPv4(address)) return address.startsWith('169.254.');
  return isIPv6(address) && /^fe[89ab]/i.test(address);
}

function usable(address: string): boolean {
  return !isLoopback(address) && !isLinkLocal(address) && address !== '0.0.0.0' && address !== '::';
}

/** Every address of this machine that another machine could reach it at, in interface order. */
export function machineAddresses(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): MachineAddress[] {
  const out: MachineAddress[] = [];
  for (const [iface, infos] of Object.entries(interfaces)) {
    if (NEVER_IFACE.has(iface)) continue;
    for (const i of infos ?? []) {
      if (i.internal || !usable(i.address)) continue;
      // Node reports zone-scoped IPv6 with scopeid; a global address has 0.
      const family = isIPv4(i.address) ? 4 : 6;
      if (!out.some((o) => o.address === i.address)) out.push({ iface, address: i.address, family });
    }
  }
  return out;
}

/**
 * Default-route interfaces from the kernel's route tables as procfs shows
 * them to this process (its network namespace). Missing files (not Linux)
 * give no default routes.
 */
export function readDefaultRoutes(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): DefaultRoutes {
  const attempt = (path: string) => {
    try {
      return read(path);
    } catch {
      return '';
    }
  };
  return { v4: parseProcRoute(attempt('/proc/net/route')), v6: parseProcIpv6Route(attempt('/proc/net/ipv6_route')) };
}

const RTF_UP = 0x1;
const RTF_REJECT = 0x200;

/** /proc/net/route: Iface Destination Gateway Flags RefCnt Use Metric Mask ...; a default route has destination and mask 0. */
export function parseProcRoute(text: string): string[] {
  const found: Array<{ iface: string; metric: number }> = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dest, , flags, , , metric, mask] = f;
    const fl = parseInt(flags, 16);
    if (dest !== '00000000' || mask !== '00000000' || !(fl & RTF_UP) || fl & RTF_REJECT) continue;
    found.push({ iface, metric: parseInt(metric, 10) });
  }
  return byMetric(found);
}

/** /proc/net/ipv6_route: dest plen src splen nexthop metric refcnt use flags iface, hex; the kernel's unreachable default sits on lo. */
export function parseProcIpv6Route(text: string): string[] {
  const found: Array<{ iface: string; metric: number }> = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [dest, plen, , , , metric, , , flags, iface] = f;
    const fl = parseInt(flags, 16);
    if (!/^0+$/.test(dest) || plen !== '00' || iface === 'lo' || !(fl & RTF_UP) || fl & RTF_REJECT) continue;
    found.push({ iface, metric: parseInt(metric, 16) });
  }
  return byMetric(found);
}

function byMetric(found: Array<{ iface: string; metric: number }>): string[] {
  const out: string[] = [];
  for (const r of [...found].sort((a, b) => a.metric - b.metric)) if (!out.includes(r.iface)) out.push(r.iface);
  return out;
}

export function currentMachine(): Machine {
  return { interfaces: networkInterfaces(), defaultRoutes: readDefaultRoutes() };
}

/** The address the rule above (step 3) picks, or undefined when the machine has none but loopback. */
export function preferredAddress(machine: Machine, families: Array<4 | 6> = [4, 6]): MachineAddress | undefined {
  const all = machineAddresses(machine.interfaces);
  for (const family of families) {
    const cands = all.filter((a) => a.family === family);
    if (cands.length === 0) continue;
    for (const iface of family === 4 ? machine.defaultRoutes.v4 : machine.defaultRoutes.v6) {
      const hit = cands.find((a) => a.iface === iface);
      if (hit) return hit;
    }
    return cands.find((a) => !SECONDARY_IFACE.test(a.iface)) ?? cands[0];
  }
  return undefined;
}

export type Advertised = {
  /** host:port for `weft agent --server`. */
  server: string;
  host: string;
  /** Which step of the rule chose it, for the log. */
  source: string;
};

/** The address the join command names (see the rule at the top). */
export function advertisedServer(config: Pick<ControllerConfig, 'advertise' | 'listen'>, port: number, machine: Machine = currentMachine()): Advertised {
  const at = (host: string, source: string): Advertised => ({ server: formatHostPort({ host, port }), host, source });
  if (config.advertise.length > 0) return at(config.advertise[0], 'the first --advertise name');
  const listen = config.listen.host;
  if (!WILDCARD_HOSTS.includes(listen)) return at(listen, 'the listen address');
  const pick = preferredAddress(machine, listen === '::' ? [4, 6] : [4]);
  if (pick) {
    const route = (pick.family === 4 ? machine.defaultRoutes.v4 : machine.defaultRoutes.v6).includes(pick.iface);
    return at(pick.address, `the address of ${pick.iface}${route ? ', the interface of the default route' : ''}`);
  }
  return at(listen === '::' ? '::1' : '127.0.0.1', 'loopback: this machine has no other address; give --advertise');
}

/** The machine's reachable addresses that a controller listening on `listenHost` answers on (for its certificate). */
export function servingAddresses(listenHost: string, machine: Pick<Machine, 'interfaces'> = currentMachine()): string[] {
  if (!WILDCARD_HOSTS.includes(listenHost)) return [];
  return machineAddresses(machine.interfaces)
    .filter((a) => listenHost === '::' || a.family === 4)
    .map((a) => a.address);
}

// A plugin that is not first in a chain gets the result so far as
// prevResult and must pass it on with its own additions (CNI spec 1.0,
// "Chained plugins"): everything the earlier plugins reported stays, in
// order, and this plugin's interfaces, addresses and routes follow. An
// address names its interface by index into the result's interfaces, so
// this plugin's indexes move by the number of interfaces before them.
import type { CniResult } from './types';

export function chainResult(prev: CniResult | undefined, own: CniResult): CniResult {
  if (!prev) return own;
  const before = prev.interfaces ?? [];
  const offset = before.length;
  const routes = [...(prev.routes ?? [])];
  for (const r of own.routes ?? []) {
    // a route an earlier plugin already reported is not listed twice
    if (!routes.some((p) => p.dst === r.dst && p.gw === r.gw)) routes.push(r);
  }
  const out: CniResult = {
    cniVersion: own.cniVersion,
    interfaces: [...before, ...(own.interfaces ?? [])],
    ips: [
      ...(prev.ips ?? []),
      ...(own.ips ?? []).map((ip) => (ip.interface === undefined ? ip : { ...ip, interface: ip.interface + offset })),
    ],
    routes,
  };
  const dns = own.dns ?? prev.dns;
  if (dns) out.dns = dns;
  return out;
}

// weft's links against what should exist: every container host end
// (`wv` + 12 hex, hostVethName) must belong to an allocation in the agent
// DB, every network this host holds a subnet in must have its VXLAN device
// and bridge, up, and no weft device may remain for a network the host is
// not in (its bridge keeps the old subnet's connected route, which shadows
// the overlay route once another host leases that subnet).
import { fail, pass, warn, type Finding } from './finding';

export { HOST_VETH_NAME } from '../host/naming';

export type WeftDevice = { name: string; kind: 'vxlan' | 'bridge'; vni: number; up: boolean; ports: number };

export type LinksFacts = {
  /** Host ends in the kernel: veths named like weft's. */
  hostEnds: string[];
  /** Host-end names the agent DB's allocations account for, with the allocation for messages; or why the DB could not be read. */
  allocations: Array<{ hostEnd: string; what: string }> | { error: string };
  devices: WeftDevice[];
  /** The networks this host holds a subnet in, from the controller's topology; undefined when the controller could not be asked. */
  hostNetworks?: Array<{ network: string; vni: number; subnet: string }>;
};

const GC_FIX = "the agent's GC deletes it within --gc-interval (default 60s); now: ip link del";

export function judgeLinks(f: LinksFacts): Finding[] {
  const out: Finding[] = [];
  if ('error' in f.allocations) {
    out.push(warn('links', 'host-ends', `cannot read the agent DB to match ${f.hostEnds.length} container host end(s) with allocations: ${f.allocations.error}`,
      'give --state-dir as the agent has it, and run weft doctor as root'));
  } else {
    const accounted = new Set(f.allocations.map((a) => a.hostEnd));
    const present = new Set(f.hostEnds);
    const stray = f.hostEnds.filter((n) => !accounted.has(n));
    for (const n of stray) {
      out.push(fail('links', n, `veth ${n} is a weft container host end that no allocation in the agent DB accounts for (its container is gone, or it was made by hand)`, `${GC_FIX} ${n}`));
    }
    const orphans = f.allocations.filter((a) => !present.has(a.hostEnd));
    if (orphans.length > 0) {
      out.push(warn('links', 'allocations', `${orphans.length} allocation(s) have no host end, so their containers are gone without a DEL: ${orphans.slice(0, 3).map((a) => a.what).join(', ')}${orphans.length > 3 ? ', ...' : ''}`,
        "the agent's GC releases them within --gc-interval (default 60s); if the agent is down, start it"));
    }
    if (stray.length === 0) out.push(pass('links', 'host-ends', `${f.hostEnds.length} container host end(s), each with its allocation`));
  }

  if (!f.hostNetworks) {
    out.push(warn('links', 'devices', `${f.devices.length} weft device(s); which networks this host is in is unknown without the controller (see the controller checks)`,
      'make the controller reachable, then run weft doctor again'));
    return out;
  }
  const wanted = new Map(f.hostNetworks.map((n) => [n.vni, n]));
  let bad = false;
  for (const n of f.hostNetworks) {
    for (const kind of ['vxlan', 'bridge'] as const) {
      const d = f.devices.find((x) => x.vni === n.vni && x.kind === kind);
      const name = `weft.${kind === 'vxlan' ? 'vx' : 'br'}${n.vni}`;
      if (!d) {
        bad = true;
        out.push(fail('links', name, `network ${n.network} (VNI ${n.vni}, subnet ${n.subnet}) has no ${kind} device ${name}`, 'restart the agent (it makes its devices again within a second of their deletion when it runs)'));
      } else if (!d.up) {
        bad = true;
        out.push(fail('links', name, `${name} of network ${n.network} is down`, `ip link set ${name} up (the running agent does this itself within a second)`));
      }
    }
  }
  for (const d of f.devices) {
    if (wanted.has(d.vni)) continue;
    bad = true;
    if (d.kind === 'bridge' && d.ports > 0) {
      out.push(warn('links', d.name, `${d.name} belongs to no network this host is in (VNI ${d.vni}) but still has ${d.ports} container port(s) draining`,
        `remove those containers, then ip link del ${d.name}`));
    } else {
      out.push(fail('links', d.name, `${d.name} belongs to no network this host is in (VNI ${d.vni}): a leftover whose addresses and routes can shadow another host's subnet`, `ip link del ${d.name}`));
    }
  }
  if (!bad) {
    const names = f.hostNetworks.map((n) => `${n.network} (VNI ${n.vni})`).join(', ') || 'none';
    out.push(pass('links', 'devices', `VXLAN device and bridge up for each network of this host: ${names}; no others`));
  }
  return out;
}

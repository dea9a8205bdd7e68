// The MTU of each path a container's packet takes: container end and host
// end (veth), bridge, VXLAN device, underlay. weft gives every one of its
// devices the overlay MTU: the configured one (--mtu, else the cluster's),
// else the underlay's minus the 50 bytes VXLAN wraps around each packet (and
// in a mesh datacenter the 60 or 80 WireGuard wraps around that). A
// device above it sends packets the underlay must fragment or drop (large
// transfers stall while pings work); below it, containers lose throughput.
import { VXLAN_OVERHEAD } from '../host/host-network';
import { MIN_OVERLAY_MTU } from '../host/preflight';
import { fail, pass, type Finding } from './finding';

export type MtuDevice = { name: string; kind: 'vxlan' | 'bridge' | 'veth'; mtu: number };

export type MtuFacts = {
  /** The device holding the underlay address, or why it was not found. */
  underlay: { name: string; mtu: number } | { error: string };
  /** The overlay MTU asked for, and who asked: "--mtu", "the cluster config". */
  configured?: { mtu: number; source: string };
  /** weft's devices: VXLAN devices, bridges, and containers' host ends. */
  devices: MtuDevice[];
  /** In a mesh datacenter the VXLAN packets go inside WireGuard: its overhead (60 over IPv4, 80 over IPv6). */
  wireGuardOverhead?: number;
};

export function judgeMtu(f: MtuFacts): Finding[] {
  if ('error' in f.underlay) {
    return [fail('mtu', 'underlay', `cannot find the underlay device: ${f.underlay.error}`, 'give --underlay-ip as the agent has it, or fix the address on the underlay device')];
  }
  const u = f.underlay;
  const wg = f.wireGuardOverhead ?? 0;
  const max = u.mtu - VXLAN_OVERHEAD - wg;
  const inside = wg > 0 ? 'inside VXLAN inside WireGuard (mesh datacenter)' : 'inside VXLAN';
  const out: Finding[] = [];
  if (max < MIN_OVERLAY_MTU) {
    out.push(fail('mtu', 'underlay', `${u.name} MTU ${u.mtu} leaves ${max} ${inside}, below the ${MIN_OVERLAY_MTU} IPv6 needs`, `raise the MTU of ${u.name} to at least ${MIN_OVERLAY_MTU + VXLAN_OVERHEAD + wg}`));
  }
  let want = max;
  let why = wg > 0 ? `${u.name} MTU ${u.mtu} − ${VXLAN_OVERHEAD} − ${wg} WireGuard (mesh datacenter)` : `${u.name} MTU ${u.mtu} − ${VXLAN_OVERHEAD}`;
  if (f.configured) {
    if (f.configured.mtu > max) {
      out.push(fail('mtu', 'configured', `${f.configured.source} asks for MTU ${f.configured.mtu}, but ${u.name} (MTU ${u.mtu}) carries at most ${max} ${inside}`,
        `lower ${f.configured.source} to ${max} or less, or raise the MTU of ${u.name} to ${f.configured.mtu + VXLAN_OVERHEAD + wg}`));
    }
    want = f.configured.mtu;
    why = `${f.configured.source} ${f.configured.mtu}`;
  }
  const wrong = f.devices.filter((d) => d.mtu !== want);
  for (const d of wrong) {
    const effect = d.mtu > want
      ? (d.mtu > max ? 'larger than the underlay carries: big packets are dropped or fragmented while small ones pass' : 'larger than the rest of the path')
      : 'smaller than the rest of the path: packets from the other devices do not fit';
    out.push(fail('mtu', d.name, `${d.kind} ${d.name} has MTU ${d.mtu}, expected ${want} (${why}): ${effect}`,
      `ip link set dev ${d.name} mtu ${want} (the agent puts it back at its next resync, or at once on restart)`));
  }
  const right = f.devices.length - wrong.length;
  if (f.devices.length === 0) out.push(pass('mtu', 'devices', `underlay ${u.name} MTU ${u.mtu}; no weft devices yet (overlay MTU will be ${want})`));
  else if (right > 0) {
    const byKind = (k: MtuDevice['kind']) => f.devices.filter((d) => d.kind === k && d.mtu === want).length;
    out.push(pass('mtu', 'devices', `${byKind('vxlan')} VXLAN, ${byKind('bridge')} bridge and ${byKind('veth')} container device(s) at ${want} (${why}), underlay ${u.name} ${u.mtu}`));
  }
  return out;
}

// Which kernel notifications mean this host's network needs repairing now,
// rather than at the next resync: one of weft's devices deleted, downed or
// stripped of an address, the underlay (or its address) coming back, or lost
// notifications. Pure: a notification and what the host network last saw in,
// a reason (for the log line) or nothing out.
import type { MonitorEvent } from '../../../dataplane/netlink/monitor';
import { canonicalIp, parseCidr } from '../../../dataplane/netlink/ip';
import { weftDeviceKind } from './naming';

export type WatchedDevices = {
  /** weft's devices for the current attachments, name -> index when last ensured. */
  weft: ReadonlyMap<string, number>;
  /** The underlay device when last found; undefined before the first success. */
  underlay?: { index: number; name: string };
  underlayIp: string;
};

export function repairReason(ev: MonitorEvent, w: WatchedDevices): string | undefined {
  if (ev.kind === 'overrun') return `link notifications were lost (${ev.reason}): checking everything`;
  if (ev.kind === 'link') {
    // a device's place in a bridge; the device itself is reported apart
    if (ev.bridgePort) return undefined;
    const { name, index, up } = ev.link;
    if (w.weft.has(name)) {
      if (ev.action === 'del') return `${name} was deleted`;
      if (!up) return `${name} is down`;
      if (w.weft.get(name) !== index) return `${name} was replaced by another device of that name`;
      return undefined;
    }
    // the underlay's own deletion is not repairable from here; its return is
    if (ev.action === 'new' && w.underlay && up && (index === w.underlay.index || name === w.underlay.name)) return `underlay ${name} is up`;
    return undefined;
  }
  const { addr } = ev;
  const weftName = [...w.weft].find(([, i]) => i === addr.linkIndex)?.[0];
  if (ev.action === 'del' && weftName) return `${weftName} lost ${addr.cidr}`;
  if (ev.action === 'new' && sameIp(addr.cidr, w.underlayIp)) return `underlay address ${w.underlayIp} is on interface ${addr.linkIndex}`;
  return undefined;
}

function sameIp(cidr: string, ip: string): boolean {
  try {
    return canonicalIp(parseCidr(cidr).ip) === canonicalIp(ip);
  } catch {
    return false;
  }
}

/**
 * Keep `ports` (port name -> weft bridge name) in step with a notification:
 * a link that joins a weft bridge is its port; one deleted is not. A port
 * left without a bridge stays on record: that
 * is what the kernel does to the ports of a bridge being deleted, and the
 * bridge made again takes them back.
 */
export function trackPorts(ev: MonitorEvent, w: WatchedDevices, ports: Map<string, string>): void {
  // the bridge-family 'del' of a port means it left the bridge: exactly the port to keep on record
  if (ev.kind !== 'link' || (ev.bridgePort && ev.action === 'del')) return;
  const { name, masterIndex } = ev.link;
  if (ev.action === 'del') {
    ports.delete(name);
    return;
  }
  if (masterIndex === undefined) return;
  const bridge = [...w.weft].find(([n, i]) => i === masterIndex && weftDeviceKind(n) === 'bridge')?.[0];
  // a port now in someone else's bridge needs no forgetting: only ports in no bridge are ever taken back
  if (bridge) ports.set(name, bridge);
}

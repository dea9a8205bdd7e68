// The one narrow interface the gateway agent drives a WireGuard device
// through, whichever backend is behind it: the kernel's module over generic
// netlink (kernel.ts) or wireguard-go over its UAPI socket (userspace.ts).
import type { DeviceState, DeviceUpdate } from './types';

export type WireGuardBackend = 'kernel' | 'userspace';

export type WireGuardDevice = {
  /** The interface name. */
  readonly name: string;
  readonly backend: WireGuardBackend;
  /** The device as it is now: keys, port, fwmark, every peer with its counters and last handshake. */
  get(): Promise<DeviceState>;
  /** Apply one minimal update (see reconcile.ts); an update that changes nothing sends nothing. */
  apply(update: DeviceUpdate): Promise<void>;
};

/** True when the update would change nothing on any device. */
export function isEmptyUpdate(u: DeviceUpdate): boolean {
  return u.privateKey === undefined && u.listenPort === undefined && u.fwmark === undefined && !u.replacePeers && u.peers.length === 0;
}

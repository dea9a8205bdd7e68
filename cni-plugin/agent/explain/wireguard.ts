// Reading a WireGuard device's peers for `weft explain`, the way the agent
// reads them (dataplane/wireguard/): wireguard-go's UAPI socket when there is
// one, else the kernel's "wireguard" generic netlink family. Read only: unlike
// the agent's openWireGuardDevice, nothing here creates an interface or
// starts wireguard-go when the device is missing; that absence is the fact.
import { existsSync } from 'node:fs';
import { NETLINK_GENERIC } from '../../../dataplane/netlink/codec';
import { openHandle } from '../../../dataplane/netlink/handle';
import { kernelDevice, wireGuardFamilyId } from '../../../dataplane/wireguard/kernel';
import type { DeviceState } from '../../../dataplane/wireguard/types';
import { createUapiClient, uapiSocketPath } from '../../../dataplane/wireguard/uapi';
import type { WireGuardPeerFact } from './facts';

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export type WireGuardRead = { ok: true; backend: 'userspace' | 'kernel'; peers: WireGuardPeerFact[] } | { ok: false; error: string };

function peersOf(st: DeviceState): WireGuardPeerFact[] {
  return st.peers.map((p) => ({
    publicKey: p.publicKey, allowedIps: p.allowedIps, lastHandshakeMs: p.lastHandshakeMs,
    ...(p.endpoint ? { endpoint: p.endpoint } : {}),
  }));
}

/** The device's peers (this process's network and mount namespace); an error naming why they could not be read. */
export async function readWireGuardPeers(name: string): Promise<WireGuardRead> {
  try {
    // wireguard-go first: where the kernel has WireGuard too, its genl family would not know a userspace device
    if (existsSync(uapiSocketPath(name))) {
      return { ok: true, backend: 'userspace', peers: peersOf(await createUapiClient({ name, timeoutMs: 3000 }).get()) };
    }
    const h = openHandle({ protocol: NETLINK_GENERIC });
    try {
      const id = wireGuardFamilyId(h);
      if (id === null) return { ok: false, error: `no UAPI socket ${uapiSocketPath(name)} (wireguard-go) and the kernel has no WireGuard` };
      return { ok: true, backend: 'kernel', peers: peersOf(await kernelDevice(h, id, name).get()) };
    } finally {
      h.close();
    }
  } catch (e) {
    return { ok: false, error: message(e) };
  }
}

// Which WireGuard backend a gateway gets: the kernel's, when the "wireguard"
// generic netlink family resolves in the target namespace, else wireguard-go.
// Both come back behind the same WireGuardDevice; `release` lets the caller
// let go of it without tearing the tunnel down (the kernel interface and the
// wireguard-go process both stay), `destroy` removes it.
import { deleteWireGuardLink } from './kernel-link';
import type { WireGuardDevice } from './device';
import { openKernelDevice } from './kernel';
import { startUserspaceDevice, type UserspaceOptions } from './userspace';

export type OpenOptions = UserspaceOptions & {
  /** "auto" (default): kernel when available; "userspace": wireguard-go even when the kernel has WireGuard. */
  backend?: 'auto' | 'userspace';
};

export type OpenDevice = WireGuardDevice & {
  /** wireguard-go's PID; undefined for the kernel backend or an adopted process that could not be identified. */
  readonly pid: number | undefined;
  /** True when the device (interface or process) was already there. */
  readonly adopted: boolean;
  /** Let go of the device and keep it running (close sockets). */
  release(): void;
  /** Remove the device: delete the kernel interface, or stop wireguard-go. */
  destroy(): Promise<void>;
};

export async function openWireGuardDevice(o: OpenOptions): Promise<OpenDevice> {
  if (o.backend !== 'userspace') {
    const k = openKernelDevice({ name: o.name, netns: o.netns });
    if (k) {
      return {
        name: k.name,
        backend: 'kernel',
        pid: undefined,
        adopted: k.existed,
        get: () => k.get(),
        apply: (u) => k.apply(u),
        release: () => k.close(),
        destroy: async () => {
          k.close();
          deleteWireGuardLink(o.name, o.netns);
        },
      };
    }
  }
  const u = await startUserspaceDevice(o);
  return {
    name: u.name,
    backend: 'userspace',
    pid: u.pid,
    adopted: u.adopted,
    get: () => u.get(),
    apply: (x) => u.apply(x),
    release: () => {},
    destroy: () => u.stop(),
  };
}

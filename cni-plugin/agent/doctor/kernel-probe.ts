// The last resort for a device kind no file tells about (no kernel config,
// no module lists, no such device yet): create one in a namespace made for
// the purpose and deleted straight after, so nothing of the probe is ever
// seen in the host's own namespace. Creating the device may make the kernel
// load its module, which is why the file sources are asked first.
import { isErrno } from '../../../dataplane/netlink/errors';
import { openHandle } from '../../../dataplane/netlink/handle';
import { bridge, linkAdd, veth, vxlan, type LinkSpec } from '../../../dataplane/netlink/link';
import { netnsAdd, netnsDelete } from '../../../dataplane/netlink/netns';

export type ProbeResult = { ok: true } | { ok: false; error: string };

const SPECS: Record<string, LinkSpec> = {
  vxlan: vxlan({ name: 'probe.vx', vni: 0xfffffe, learning: false }),
  bridge: bridge({ name: 'probe.br' }),
  veth: veth({ name: 'probe.v0', peer: { name: 'probe.v1' } }),
};

/** Whether each of `kinds` (vxlan, bridge, veth) can be created; a kind it cannot probe is left out. */
export function probeLinkKinds(kinds: readonly string[]): Map<string, ProbeResult> {
  const out = new Map<string, ProbeResult>();
  const wanted = kinds.filter((k) => SPECS[k]);
  if (wanted.length === 0) return out;
  const ns = `weft-doctor-${process.pid}`;
  netnsAdd(ns);
  try {
    const h = openHandle({ netns: ns });
    try {
      for (const k of wanted) {
        try {
          linkAdd(h, SPECS[k]);
          out.set(k, { ok: true });
        } catch (e) {
          // EPERM says nothing about the kernel: leave the kind unknown
          if (!isErrno(e, 'EPERM')) out.set(k, { ok: false, error: (e as Error).message });
        }
      }
    } finally {
      h.close();
    }
  } finally {
    // the devices go with the namespace
    netnsDelete(ns);
  }
  return out;
}

// The kernel WireGuard interface itself (an rtnetlink link of kind
// "wireguard"): created when missing, removed on request. Only the kernel
// backend has one to manage; wireguard-go makes and removes its own TUN.
import { NLM_F_CREATE, NLM_F_EXCL, RTM_NEWLINK, encodeIfInfoMsg, nla } from '../netlink/codec';
import { withHandle, type Request } from '../netlink/handle';
import { AF_UNSPEC } from '../netlink/libc';
import { linkDel, linkFind } from '../netlink/link';
import { WireGuardDeviceError } from './errors';
import { checkInterfaceName } from './types';

const IFLA_IFNAME = 3;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;

/** The RTM_NEWLINK request that creates a kernel WireGuard interface. */
export function wireGuardLinkAddRequest(name: string): Request {
  checkInterfaceName(name);
  return {
    type: RTM_NEWLINK,
    flags: NLM_F_CREATE | NLM_F_EXCL,
    body: Buffer.concat([encodeIfInfoMsg({ family: AF_UNSPEC }), nla.str(IFLA_IFNAME, name), nla.nested(IFLA_LINKINFO, [nla.str(IFLA_INFO_KIND, 'wireguard')])]),
    op: `link add wireguard ${name}`,
  };
}

/** Create the interface unless it is there; true when it already was. A link of that name of another kind is refused. */
export function ensureWireGuardLink(name: string, netns?: string): boolean {
  return withHandle({ netns }, (h) => {
    const link = linkFind(h, name);
    if (link && link.kind !== 'wireguard') throw new WireGuardDeviceError(name, `a link of that name exists and is ${link.kind ?? 'a plain device'}, not wireguard`);
    if (link) return true;
    h.exec(wireGuardLinkAddRequest(name));
    return false;
  });
}

/** Remove the kernel interface (its peers and sessions go with it); nothing when it is gone already. */
export function deleteWireGuardLink(name: string, netns?: string): void {
  withHandle({ netns }, (h) => {
    const link = linkFind(h, name);
    if (link && link.kind === 'wireguard') linkDel(h, link.index);
  });
}

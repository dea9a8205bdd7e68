// Generic netlink: the family header and the controller ("nlctrl") that maps
// a family name (e.g. "wireguard") to the message type used to reach it.
// Kernel WireGuard is configured through such a family.
import { nla, parseAttrs, parseAttrList, read, type Message } from './codec';
import { InvalidArgumentError } from './errors';
import type { Handle, Request } from './handle';

export const GENL_ID_CTRL = 0x10;
export const GENL_HDRLEN = 4;

export const CTRL_CMD_GETFAMILY = 3;
export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;
export const CTRL_ATTR_VERSION = 3;
export const CTRL_ATTR_HDRSIZE = 4;
export const CTRL_ATTR_MAXATTR = 5;
export const CTRL_ATTR_MCAST_GROUPS = 7;
export const CTRL_ATTR_MCAST_GRP_NAME = 1;
export const CTRL_ATTR_MCAST_GRP_ID = 2;

export type GenlFamily = {
  id: number;
  name: string;
  version: number;
  hdrSize: number;
  maxAttr: number;
  mcastGroups: Record<string, number>;
};

export type GenlHeader = { cmd: number; version: number };

export function encodeGenlHeader(h: GenlHeader): Buffer {
  const b = Buffer.alloc(GENL_HDRLEN);
  b.writeUInt8(h.cmd, 0);
  b.writeUInt8(h.version, 1);
  return b;
}

export function decodeGenlHeader(b: Buffer): GenlHeader {
  return { cmd: b.readUInt8(0), version: b.readUInt8(1) };
}

/** A request to a generic netlink family: its id is the message type. */
export function genlRequest(familyId: number, cmd: number, version: number, attrs: Buffer[], op: string, flags = 0): Request {
  return { type: familyId, flags, body: Buffer.concat([encodeGenlHeader({ cmd, version }), ...attrs]), op };
}

function decodeFamily(m: Message): GenlFamily {
  const attrs = parseAttrs(m.body, GENL_HDRLEN);
  const groups: Record<string, number> = {};
  const grpAttr = attrs.get(CTRL_ATTR_MCAST_GROUPS);
  if (grpAttr) {
    for (const [, g] of parseAttrList(grpAttr)) {
      const ga = parseAttrs(g);
      const name = read.str(ga.get(CTRL_ATTR_MCAST_GRP_NAME));
      const id = read.u32(ga.get(CTRL_ATTR_MCAST_GRP_ID));
      if (name !== undefined && id !== undefined) groups[name] = id;
    }
  }
  return {
    id: read.u16(attrs.get(CTRL_ATTR_FAMILY_ID)) ?? 0,
    name: read.str(attrs.get(CTRL_ATTR_FAMILY_NAME)) ?? '',
    version: read.u32(attrs.get(CTRL_ATTR_VERSION)) ?? 0,
    hdrSize: read.u32(attrs.get(CTRL_ATTR_HDRSIZE)) ?? 0,
    maxAttr: read.u32(attrs.get(CTRL_ATTR_MAXATTR)) ?? 0,
    mcastGroups: groups,
  };
}

/**
 * Resolve a family by name. `h` must be a NETLINK_GENERIC handle
 * (`openHandle({ protocol: NETLINK_GENERIC })`). A family the kernel does not
 * have (e.g. "wireguard" without the module) is a typed ENOENT.
 */
export function genlFamilyGet(h: Handle, name: string): GenlFamily {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) {
    throw new InvalidArgumentError(`invalid generic netlink family name "${name}" (1-15 letters, digits, "_", "." or "-")`);
  }
  const replies = h.exec(genlRequest(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, [nla.str(CTRL_ATTR_FAMILY_NAME, name)], `genl family get ${name}`));
  if (replies.length === 0) throw new InvalidArgumentError(`genl family get ${name}: the kernel sent no family`);
  return decodeFamily(replies[0]);
}

/** Every generic netlink family the kernel has. */
export function genlFamilyList(h: Handle): GenlFamily[] {
  return h.dump(genlRequest(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, [], 'genl family list')).map(decodeFamily);
}

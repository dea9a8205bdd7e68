// Names and addresses every part of the host dataplane derives the same way
// from a network's VNI and a host's subnet, so the device that host-network
// creates is the device the overlay programs, and a remote host's VTEP
// address can be computed from its subnet alone.
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../../../dataplane/netlink/errors';
import { bytesToIp, bytesToMac, ipToBytes, networkOf, parseCidr, type Cidr } from '../../../dataplane/netlink/ip';
import { AF_INET } from '../../../dataplane/netlink/libc';

export const VXLAN_PREFIX = 'weft.vx';
export const BRIDGE_PREFIX = 'weft.br';

export function vxlanDeviceName(vni: number): string {
  return `${VXLAN_PREFIX}${vni}`;
}

export function bridgeName(vni: number): string {
  return `${BRIDGE_PREFIX}${vni}`;
}

const WEFT_DEVICE_RE = /^weft\.(vx|br)(\d{1,8})$/;

/** Which of weft's per-network devices a name is, if any: teardown removes only these. */
export function weftDeviceKind(name: string): 'vxlan' | 'bridge' | undefined {
  const m = WEFT_DEVICE_RE.exec(name);
  if (!m) return undefined;
  return m[1] === 'vx' ? 'vxlan' : 'bridge';
}

/** A subnet given as a CIDR with no host bits set, or an error naming the field. */
export function parseSubnet(field: string, s: unknown): Cidr {
  if (typeof s !== 'string' || !s.includes('/')) throw new InvalidArgumentError(`${field}: ${JSON.stringify(s)} is not a CIDR (like 10.244.3.0/24)`);
  let c: Cidr;
  try {
    c = parseCidr(s);
  } catch (e) {
    throw new InvalidArgumentError(`${field}: ${(e as Error).message}`);
  }
  const net = networkOf(c);
  if (net.ip !== c.ip) throw new InvalidArgumentError(`${field}: ${s} has host bits set (the network is ${net.ip}/${net.prefixLen})`);
  const max = c.family === AF_INET ? 30 : 126;
  if (c.prefixLen > max) throw new InvalidArgumentError(`${field}: ${s} is too small for a gateway and containers (prefix at most /${max})`);
  return c;
}

/** The subnet's network address: the VTEP address other hosts route `via ... onlink` to (as flannel does). */
export function vtepIpOf(subnet: string): string {
  return networkOf(parseCidr(subnet)).ip;
}

/** First usable address of the subnet: the gateway on the bridge. */
export function gatewayOf(subnet: string): string {
  const b = ipToBytes(networkOf(parseCidr(subnet)).ip);
  for (let i = b.length - 1; i >= 0; i--) {
    b[i] = (b[i] + 1) & 0xff;
    if (b[i] !== 0) break;
  }
  return bytesToIp(b);
}

/** Whether `inner` lies inside `outer` (same family, at least as long a prefix, same leading bits). */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && inner.prefixLen >= outer.prefixLen && networkOf({ ...inner, prefixLen: outer.prefixLen }).ip === networkOf(outer).ip;
}

/** A MAC derived from `seed` (SHA-256, first 6 bytes): stable for the seed, locally administered, unicast. */
export function derivedMac(seed: string): string {
  const b = createHash('sha256').update(seed).digest().subarray(0, 6);
  b[0] = (b[0] & 0xfe) | 0x02;
  return bytesToMac(b);
}

const HOST_VETH_PREFIX = 'wv';
/** Exactly the names hostVethName makes, so GC never touches another tool's links. */
export const HOST_VETH_NAME = /^wv[0-9a-f]{12}$/;

/**
 * The host end's name: stable for (network, containerId, ifname), 14 bytes,
 * so DEL needs no state to find it. The network is part of it so that a
 * confused ADD of the same ifname on another network can never take over
 * (and delete) the first network's pair: it fails on the taken ifname instead.
 */
export function hostVethName(network: string, containerId: string, ifname: string): string {
  // 48 bits: a collision between two attachments on one host is ~n²/2^49, nothing at host scale
  return HOST_VETH_PREFIX + createHash('sha256').update(`${network}\0${containerId}\0${ifname}`).digest('hex').slice(0, 12);
}

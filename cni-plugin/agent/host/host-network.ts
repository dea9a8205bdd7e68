// The per-host half of the overlay that does not depend on other hosts: for
// each weft network a VXLAN device (the VTEP) and a bridge holding the
// gateway, forwarding on, weft's iptables chains installed. Every step is an
// idempotent ensure: it tolerates what is already there, checks it against
// what is wanted, fixes what differs, and never removes a device that is not
// weft's. Every change it makes is logged, one line each, and listed in the
// report, so a periodic or event-driven repair says exactly what it put back
// and a run over a host that is already right writes nothing and says nothing.
import { applyRuleSet, removeWeftChains, weftRules } from '../../../dataplane/iptables';
import { ensureTxChecksumOff, EthtoolError } from '../../../dataplane/ethtool';
import { addrDel, addrList, addrReplace, type Addr } from '../../../dataplane/netlink/addr';
import { InvalidArgumentError, isErrno } from '../../../dataplane/netlink/errors';
import type { Handle } from '../../../dataplane/netlink/handle';
import { canonicalIp, formatCidr, ipFamily, parseCidr } from '../../../dataplane/netlink/ip';
import { AF_INET } from '../../../dataplane/netlink/libc';
import {
  bridge, linkAdd, linkByIndex, linkDel, linkList, linkSetMac, linkSetMaster, linkSetMtu, linkSetUp, linkSpecDiff,
  validateMac, validateVni, vxlan, linkFind, type Link, type LinkSpec } from '../../../dataplane/netlink/link';
import { sysctlGet, sysctlSet } from '../../../dataplane/sysctl';
import type { NetworkAttachment } from '../state/types';
import { type Logger, silentLogger } from '../../../controller/common/log';
import { bridgeName, cidrContains, derivedMac, gatewayOf, parseSubnet, vtepIpOf, vxlanDeviceName, weftDeviceKind } from './naming';

/** VXLAN over IPv4 adds 50 bytes: outer IP 20, UDP 8, VXLAN 8, inner Ethernet 14. */
export const VXLAN_OVERHEAD = 50;

export type AttachmentSpec = {
  network: string;
  vni: number;
  networkCidr: string;
  subnet: string;
  /** Traffic to other weft networks is dropped unless both say false. Default true. */
  isolated?: boolean;
};

export type HostNetworkSpec = {
  /**
   * hostId: the stable identity (the host name) the bridges' MACs derive from,
   * so a new VTEP MAC does not move the gateway under the containers' ARP
   * caches; default: the VTEP MAC.
   */
  self: { underlayIp: string; underlayDev?: string; vtepMac: string; hostId?: string };
  attachments: AttachmentSpec[];
  vxlanPort: number;
  /** MTU of the VXLAN devices, bridges and containers; default underlay MTU − 50 (− 110 in a mesh datacenter). */
  mtu?: number;
  /**
   * This host's datacenter encrypts host-to-host traffic: the VXLAN devices
   * send from the host's tunnel address (the VTEP address of its first
   * network by name), so their packets go inside weft.wg0 and the peers'
   * WireGuard accepts them, and leave room for WireGuard's overhead.
   */
  mesh?: boolean;
  /** Addresses never masqueraded between; default: the networks' CIDRs. */
  clusterCidrs?: string[];
  /** Leave TX checksum offload as the kernel set it on the VXLAN devices (default: turn it off). */
  keepTxChecksumOffload?: boolean;
};

export type HostNetworkOptions = {
  netns?: string;
  log?: Logger;
  /**
   * Leave iptables as it is: for a repair prompted by a link notification,
   * which cannot have touched the rules (they name devices, not indexes), and
   * must not wait for iptables-save. The periodic check covers iptables.
   */
  skipIptables?: boolean;
  /**
   * The ports weft's bridges had (port name -> bridge name): a bridge that
   * had to be created again gets those of them back that still exist and are
   * in no bridge, so the containers behind them are reachable again.
   */
  ports?: ReadonlyMap<string, string>;
};

/** What a change touched: the metrics count repairs by it. */
export type ChangeKind = 'device' | 'address' | 'offload' | 'sysctl' | 'iptables';
export type HostNetworkChange = { kind: ChangeKind; device?: string; what: string };

/** The outcome of ensureHostNetworkReport: the attachments, the changes made, and the devices as they are now. */
export type HostNetworkReport = {
  attachments: NetworkAttachment[];
  changes: HostNetworkChange[];
  /** Index of each weft device by name, and the underlay's: what link events are matched against. */
  devices: Map<string, number>;
  underlay: { index: number; name: string };
  /** The ports of weft's bridges now, port name -> bridge name. */
  ports: Map<string, string>;
};

/** Logs a change and records it: the one place every write of this module is announced. */
type Recorder = (c: HostNetworkChange, level?: 'info' | 'warn') => void;

function recorder(log: Logger, into: HostNetworkChange[]): Recorder {
  return (c, level = 'info') => {
    into.push(c);
    log[level]({ change: c.kind, ...(c.device ? { device: c.device } : {}) }, c.what);
  };
}

/** Devices whose change means a new device: the kernel cannot change them in place (or not on every kernel). */
const IMMUTABLE_VXLAN = ['vni', 'port', 'local', 'dev', 'learning'];

/** Everything checked before the kernel is touched; errors name the field. */
export function validateHostNetworkSpec(spec: HostNetworkSpec): void {
  if (!spec || typeof spec !== 'object') throw new InvalidArgumentError('host network spec must be an object');
  const self = spec.self;
  if (!self || typeof self !== 'object') throw new InvalidArgumentError('self: required');
  try {
    ipFamily(self.underlayIp);
  } catch {
    throw new InvalidArgumentError(`self.underlayIp: ${JSON.stringify(self.underlayIp)} is not an IP address`);
  }
  validateMac(self.vtepMac, 'self.vtepMac');
  if (!Number.isInteger(spec.vxlanPort) || spec.vxlanPort < 1 || spec.vxlanPort > 65535) {
    throw new InvalidArgumentError(`invalid vxlanPort ${String(spec.vxlanPort)} (must be between 1 and 65535)`);
  }
  if (spec.mtu !== undefined && (!Number.isInteger(spec.mtu) || spec.mtu < 1280 || spec.mtu > 65485)) {
    throw new InvalidArgumentError(`invalid mtu ${String(spec.mtu)} (must be between 1280 and 65485)`);
  }
  if (!Array.isArray(spec.attachments)) throw new InvalidArgumentError('attachments: expected an array');
  const vnis = new Map<number, string>();
  const names = new Set<string>();
  for (const [i, a] of spec.attachments.entries()) {
    const f = `attachments[${i}]`;
    if (typeof a.network !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(a.network)) {
      throw new InvalidArgumentError(`${f}.network: invalid name ${JSON.stringify(a.network)} (1-64 of [A-Za-z0-9_.-])`);
    }
    if (names.has(a.network)) throw new InvalidArgumentError(`${f}.network: "${a.network}" listed twice`);
    names.add(a.network);
    try {
      validateVni(a.vni);
    } catch (e) {
      throw new InvalidArgumentError(`${f}.vni: ${(e as Error).message}`);
    }
    const other = vnis.get(a.vni);
    if (other !== undefined) throw new InvalidArgumentError(`${f}.vni: ${a.vni} is already network "${other}"'s`);
    vnis.set(a.vni, a.network);
    const net = parseSubnet(`${f}.networkCidr`, a.networkCidr);
    const sub = parseSubnet(`${f}.subnet`, a.subnet);
    if (!cidrContains(net, sub)) throw new InvalidArgumentError(`${f}.subnet: ${a.subnet} is not inside networkCidr ${a.networkCidr}`);
  }
}


/** The device holding the underlay address (or the one named, which must hold it). */
export function findUnderlay(h: Handle, self: HostNetworkSpec['self']): Link {
  const ip = canonicalIp(self.underlayIp);
  const owner = addrList(h).find((a) => a.cidr && canonicalIp(parseCidr(a.cidr).ip) === ip);
  if (self.underlayDev !== undefined) {
    const l = linkFind(h, self.underlayDev);
    if (!l) throw new Error(`underlay device ${self.underlayDev} not found: set self.underlayDev to the device holding ${ip}, or leave it out`);
    if (!owner || owner.linkIndex !== l.index) {
      throw new Error(`underlay address ${ip} is not on ${self.underlayDev}: add it there (ip addr add ${ip}/<prefix> dev ${self.underlayDev}) or fix self.underlayIp`);
    }
    return l;
  }
  if (!owner) throw new Error(`underlay address ${ip} is on no device here: add it to the underlay device or fix self.underlayIp`);
  return linkByIndex(h, owner.linkIndex);
}

/**
 * Make the device `spec` describes exist, up, and as specified. A device of
 * another kind under weft's name is an error, never deleted; a VXLAN device
 * whose immutable attributes differ is replaced (its FDB, neighbours and
 * routes go with it, and the next overlay reconcile puts them back).
 */
export function ensureLink(h: Handle, spec: LinkSpec, log: Logger, changes: HostNetworkChange[] = []): Link & { created: boolean } {
  const note = recorder(log, changes);
  const device = spec.name;
  let l = linkFind(h, spec.name);
  // a device created here is down by nature: only a device found down is news
  let fresh = false;
  if (!l) {
    fresh = true;
    l = linkAdd(h, spec);
    note({ kind: 'device', device, what: `created ${spec.kind} ${spec.name}` });
  } else {
    if (l.kind !== spec.kind) {
      throw new Error(`${spec.name} already exists but is ${l.kind ? `a ${l.kind}` : 'a device of no kind'}, not a ${spec.kind}: weft will not remove a device it did not create; delete it or rename it`);
    }
    const diff = linkSpecDiff(spec, l);
    const fixed = diff.filter((d) => IMMUTABLE_VXLAN.includes(d.split(' ')[0]));
    if (spec.kind === 'vxlan' && fixed.length > 0) {
      note({ kind: 'device', device, what: `replacing ${spec.name}: ${fixed.join('; ')} cannot be changed in place` }, 'warn');
      linkDel(h, l.index);
      fresh = true;
      l = linkAdd(h, spec);
    } else {
      if (spec.mtu !== undefined && l.mtu !== spec.mtu) {
        note({ kind: 'device', device, what: `setting ${spec.name} mtu ${spec.mtu} (was ${l.mtu})` });
        linkSetMtu(h, l.index, spec.mtu);
      }
      if (spec.mac !== undefined && l.mac !== spec.mac) {
        note({ kind: 'device', device, what: `setting ${spec.name} address ${spec.mac} (was ${l.mac})` });
        linkSetMac(h, l.index, spec.mac);
      }
    }
  }
  if (!l.up) {
    if (!fresh) note({ kind: 'device', device, what: `${spec.name} was down: set it up` });
    linkSetUp(h, l.index);
  }
  const now = linkByIndex(h, l.index);
  const left = linkSpecDiff(spec, now);
  if (left.length > 0 || !now.up) {
    throw new Error(`${spec.name} does not match after ensuring it: ${[...left, ...(now.up ? [] : ['down, want up'])].join('; ')}`);
  }
  return { ...now, created: fresh };
}

/** Put a re-created bridge's former ports back into it: those that still exist and joined no other bridge meanwhile. */
function reattachPorts(h: Handle, br: Link, ports: ReadonlyMap<string, string>, note: Recorder): void {
  for (const [port, bridgeName] of ports) {
    if (bridgeName !== br.name) continue;
    const l = linkFind(h, port);
    if (!l || l.masterIndex !== undefined) continue;
    linkSetMaster(h, l.index, br.index);
    note({ kind: 'device', device: port, what: `re-attached ${port} to ${br.name}` });
  }
}

/**
 * Exactly these addresses (of their family) on a weft device: missing ones
 * added, others of the same family removed (an old subnet's gateway after
 * the lease changed). IPv6 link-local addresses are the kernel's and stay.
 */
export function ensureAddrs(h: Handle, link: Link, want: string[], log: Logger, changes: HostNetworkChange[] = []): void {
  const note = recorder(log, changes);
  const wanted = new Map(want.map((c) => [formatCidr(parseCidr(c)), parseCidr(c)]));
  const families = new Set([...wanted.values()].map((c) => c.family));
  const have = addrList(h, { linkIndex: link.index });
  const haveKeys = new Set(have.map((a) => formatCidr(parseCidr(a.cidr))));
  for (const [key, c] of wanted) {
    if (haveKeys.has(key)) continue;
    note({ kind: 'address', device: link.name, what: `adding ${key} to ${link.name}` });
    addrReplace(h, { linkIndex: link.index, cidr: key, ...(c.family === AF_INET && c.prefixLen < 31 ? { broadcast: '+' } : {}) });
  }
  const stale = (a: Addr) => families.has(a.family) && !wanted.has(formatCidr(parseCidr(a.cidr))) && !/^fe[89ab]/i.test(a.cidr);
  for (const a of have.filter(stale)) {
    note({ kind: 'address', device: link.name, what: `removing stale ${a.cidr} from ${link.name}` });
    try {
      addrDel(h, { linkIndex: link.index, cidr: a.cidr });
    } catch (e) {
      // the kernel drops secondaries with their primary
      if (!isErrno(e, 'EADDRNOTAVAIL')) throw e;
    }
  }
}

function attachmentOf(a: AttachmentSpec, mtu: number): NetworkAttachment {
  return {
    network: a.network,
    vni: a.vni,
    networkCidr: formatCidr(parseCidr(a.networkCidr)),
    subnet: formatCidr(parseCidr(a.subnet)),
    gateway: gatewayOf(a.subnet),
    vxlanDevice: vxlanDeviceName(a.vni),
    bridge: bridgeName(a.vni),
    mtu,
  };
}

/**
 * The bridge's own MAC, set explicitly. A bridge whose address was never set
 * takes the lowest MAC of its ports, so a container's ADD or DEL could change
 * the gateway's MAC under every other container's ARP cache (their traffic
 * then goes to the old MAC and is lost until ARP re-resolves, seconds).
 * Derived from the host's stable identity and the VNI: stable across agent
 * restarts and VTEP MAC changes, distinct per network; locally
 * administered, unicast.
 */
export function bridgeMacFor(hostId: string, vni: number): string {
  return derivedMac(`weft-bridge\0${hostId.toLowerCase()}\0${vni}`);
}

/** WireGuard's overhead over an IPv4 (IPv6) underlay: outer IP 20 (40), UDP 8, WireGuard 32. */
const WG_OVERHEAD = { v4: 60, v6: 80 };

/**
 * The MTU weft's devices get: the configured one, which must fit inside the
 * underlay, or underlay − 50; in a mesh datacenter the VXLAN packets go
 * inside WireGuard, so its overhead comes off too.
 */
export function overlayMtu(underlay: Link, configured?: number, mesh?: { underlayIp: string }): number {
  const wg = mesh ? (ipFamily(mesh.underlayIp) === AF_INET ? WG_OVERHEAD.v4 : WG_OVERHEAD.v6) : 0;
  const max = underlay.mtu - VXLAN_OVERHEAD - wg;
  if (configured === undefined) return max;
  if (configured > max) {
    const what = mesh ? `underlay ${underlay.name} (MTU ${underlay.mtu}) with VXLAN inside WireGuard (mesh)` : `underlay ${underlay.name} (MTU ${underlay.mtu})`;
    throw new InvalidArgumentError(`mtu ${configured} too large for ${what}: at most ${max}, or raise the underlay MTU`);
  }
  return configured;
}

/** The VXLAN devices' source: the underlay address, or in a mesh datacenter the VTEP address of the first network by name. */
export function vxlanSource(spec: HostNetworkSpec): string {
  if (!spec.mesh) return spec.self.underlayIp;
  const first = [...spec.attachments].sort((a, b) => (a.network < b.network ? -1 : a.network > b.network ? 1 : 0))[0];
  return first ? vtepIpOf(formatCidr(parseCidr(first.subnet))) : spec.self.underlayIp;
}

/**
 * Create or repair this host's devices, addresses, forwarding and iptables
 * for every attachment; returns the attachments as the CNI side needs them.
 * Networks this host left are not removed here (their containers may still
 * be draining); teardownHostNetwork removes everything.
 */
export function ensureHostNetwork(h: Handle, spec: HostNetworkSpec, opts: HostNetworkOptions = {}): NetworkAttachment[] {
  return ensureHostNetworkReport(h, spec, opts).attachments;
}

/** ensureHostNetwork, also saying what it changed (nothing, on a host that is already right) and which devices it found. */
export function ensureHostNetworkReport(h: Handle, spec: HostNetworkSpec, opts: HostNetworkOptions = {}): HostNetworkReport {
  validateHostNetworkSpec(spec);
  const netns = opts.netns ?? h.netns ?? undefined;
  const log = opts.log ?? silentLogger;
  const changes: HostNetworkChange[] = [];
  const note = recorder(log, changes);
  const devices = new Map<string, number>();
  const underlay = findUnderlay(h, spec.self);
  const mtu = overlayMtu(underlay, spec.mtu, spec.mesh ? spec.self : undefined);
  const mac = spec.self.vtepMac.toLowerCase();
  const local = vxlanSource(spec);
  const out: NetworkAttachment[] = [];
  for (const a of spec.attachments) {
    const att = attachmentOf(a, mtu);
    const vx = ensureLink(
      h,
      vxlan({ name: att.vxlanDevice, vni: a.vni, port: spec.vxlanPort, local, dev: underlay.index, learning: false, mtu, mac }),
      log,
      changes,
    );
    ensureAddrs(h, vx, [`${vtepIpOf(att.subnet)}/${ipFamily(vtepIpOf(att.subnet)) === AF_INET ? 32 : 128}`], log, changes);
    if (!spec.keepTxChecksumOffload) {
      try {
        if (ensureTxChecksumOff(att.vxlanDevice, { netns })) note({ kind: 'offload', device: att.vxlanDevice, what: `turned off TX checksum offload on ${att.vxlanDevice}` });
      } catch (e) {
        // a kernel without the setting cannot have the bug it works around
        if (!(e instanceof EthtoolError && e.code === 'EOPNOTSUPP')) throw e;
        log.warn({ device: att.vxlanDevice }, `cannot change TX checksum offload on ${att.vxlanDevice}: ${(e as Error).message}`);
      }
    }
    const br = ensureLink(h, bridge({ name: att.bridge, mtu, mac: bridgeMacFor(spec.self.hostId ?? mac, a.vni) }), log, changes);
    ensureAddrs(h, br, [`${att.gateway}/${parseCidr(att.subnet).prefixLen}`], log, changes);
    if (br.created && opts.ports) reattachPorts(h, br, opts.ports, note);
    devices.set(vx.name, vx.index);
    devices.set(br.name, br.index);
    out.push(att);
  }
  ensureForwarding(netns, out.some((a) => ipFamily(a.gateway) !== AF_INET), note);
  if (!opts.skipIptables) for (const what of applyWeftRules(spec, out, netns)) note({ kind: 'iptables', what: `iptables: ${what}` });
  const bridges = new Map(out.map((a) => [devices.get(a.bridge)!, a.bridge]));
  const ports = new Map(linkList(h).filter((l) => l.masterIndex !== undefined && bridges.has(l.masterIndex)).map((l) => [l.name, bridges.get(l.masterIndex!)!]));
  return { attachments: out, changes, devices, underlay: { index: underlay.index, name: underlay.name }, ports };
}

/** Forwarding on, written only where it is off: a resync over a host that is right reads and writes nothing. */
function ensureForwarding(netns: string | undefined, ipv6: boolean, note: Recorder): void {
  const keys = ['net/ipv4/ip_forward', ...(ipv6 ? ['net/ipv6/conf/all/forwarding'] : [])];
  for (const key of keys) {
    const was = sysctlGet(key, { netns });
    if (was === '1') continue;
    sysctlSet(key, 1, { netns });
    note({ kind: 'sysctl', what: `${key.replaceAll('/', '.')} was ${was}: set to 1` });
  }
}

/** weft's chains for the attachments; returns what was changed, one line each. */
function applyWeftRules(spec: HostNetworkSpec, atts: NetworkAttachment[], netns: string | undefined): string[] {
  const input = {
    clusterCidrs: spec.clusterCidrs ?? atts.map((a) => a.networkCidr),
    networks: atts.map((a, i) => ({ name: a.network, cidr: a.networkCidr, bridge: a.bridge, isolated: spec.attachments[i].isolated ?? true })),
    hostSubnets: atts.map((a) => a.subnet),
  };
  const changes = applyRuleSet(weftRules(input, { family: 4 }), { netns, family: 4 }).changes;
  // ip6tables is touched only where weft has IPv6 networks: many hosts have none and some lack the tool
  if (atts.some((a) => ipFamily(a.gateway) !== AF_INET)) changes.push(...applyRuleSet(weftRules(input, { family: 6 }), { netns, family: 6 }).changes.map((c) => `(IPv6) ${c}`));
  return changes;
}

/**
 * Remove one network's devices, `weft.vx<vni>` and `weft.br<vni>`, for a
 * network deleted from the cluster: their addresses, and the overlay's
 * routes, neighbours and FDB entries on them, go with them. Only a device of
 * the kind weft creates under the name is removed. Container host ends that
 * were ports of the bridge stay (the caller deletes those it accounts for).
 * Returns the names removed; a host without them is left as it is.
 */
export function removeNetworkDevices(h: Handle, vni: number, log: Logger = silentLogger): string[] {
  const removed: string[] = [];
  for (const [name, kind] of [[vxlanDeviceName(vni), 'vxlan'], [bridgeName(vni), 'bridge']] as const) {
    const l = linkFind(h, name);
    if (!l || l.kind !== kind) continue;
    try {
      linkDel(h, l.index);
      removed.push(name);
      log.info({ change: 'device', device: name }, `removed ${kind} ${name}: its network was deleted`);
    } catch (e) {
      if (!isErrno(e, 'ENODEV')) throw e;
    }
  }
  return removed;
}

/**
 * Remove weft's per-network devices (only names weft gives, and only of the
 * kind weft creates under them) and weft's iptables chains. Forwarding stays
 * on: other software on the host may rely on it. Returns what was removed.
 */
export function teardownHostNetwork(h: Handle, opts: HostNetworkOptions & { ipv6?: boolean } = {}): string[] {
  const netns = opts.netns ?? h.netns ?? undefined;
  const log = opts.log ?? silentLogger;
  const removed: string[] = [];
  for (const l of linkList(h)) {
    const kind = weftDeviceKind(l.name);
    if (!kind || l.kind !== kind) continue;
    try {
      linkDel(h, l.index);
      removed.push(l.name);
      log.info({ device: l.name }, `removed ${l.name}`);
    } catch (e) {
      if (!isErrno(e, 'ENODEV')) throw e;
    }
  }
  removeWeftChains({ netns, family: 4 });
  if (opts.ipv6) removeWeftChains({ netns, family: 6 });
  return removed;
}

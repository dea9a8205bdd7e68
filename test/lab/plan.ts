// From a lab spec to a plan: every namespace, link, address and route the lab
// will create, as plain data, before anything touches the kernel. Keeping the
// addressing here (and nowhere else) makes it one readable table and lets the
// builder and the teardown agree on names without sharing state.
//
// Layout (why): one fabric namespace holds one bridge per rack plus the
// management segment. A rack is pure L2, so it needs no namespace of its own;
// one namespace for all of them keeps a lab fast to build and tear down and
// lets a test inspect every segment in one place. The fabric never routes
// (no addresses in it); all L3 happens in the router namespaces.
//
//   host ns (eth0 172.31.K.x/24, default via .1)
//      └─veth─ fabric: bridge wtbrK ─veth─ dc router (172.31.K.1)
//   dc router ─veth 198.51.100.4d+2/30 ─ WAN router (.4d+1)
//   WAN router (172.31.0.1) ─veth─ fabric: bridge wtbrm ─veth─ controller (172.31.0.10)
//
// The lab ends at the routers: hosts and the controller have a default route
// to their gateway, the routers know only lab prefixes, so a packet for any
// other address dies with "network unreachable" inside the lab. No link of
// the lab has an end in the root namespace.

export interface RackSpec { name: string; hosts: string[] }
export interface DatacenterSpec { name: string; racks: RackSpec[] }
export interface LabSpec {
  name: string;
  datacenters: DatacenterSpec[];
  controller?: boolean;
}

export const UNDERLAY_MTU = 1500;
export const NETNS_PREFIX = 'wt-';
/** All lab ranges: racks take 172.31.K.0/24 (K >= 1), the management segment 172.31.0.0/24. */
export const LAB_UNDERLAY = '172.31.0.0/16';
/** Router-to-router links come from a documentation range: never a real destination. */
const WAN_LINK_BASE = '198.51.100';

export interface PlannedHost {
  name: string;
  netns: string;
  underlayIp: string;
  /** prefix length of the rack subnet */
  prefixLen: number;
  gateway: string;
  rack: string;
  datacenter: string;
  /** the host's veth end in the fabric namespace */
  fabricPort: string;
  bridge: string;
}

export interface PlannedRack {
  name: string;
  datacenter: string;
  subnet: string;
  gateway: string;
  bridge: string;
  /** the router's port: `routerIf` inside the router, `fabricPort` in the fabric */
  routerIf: string;
  fabricPort: string;
}

export interface PlannedRouter {
  datacenter: string;
  netns: string;
  /** inside the router, the link towards the WAN router */
  wanIf: string;
  ip: string;
  /** the WAN router's end, inside the WAN namespace */
  peerIf: string;
  peerIp: string;
  /** /30 link prefix length */
  prefixLen: number;
  racks: PlannedRack[];
}

export interface PlannedController {
  netns: string;
  ip: string;
  prefixLen: number;
  gateway: string;
  subnet: string;
  bridge: string;
  fabricPort: string;
  /** the WAN router's port on the management segment */
  wanIf: string;
  wanFabricPort: string;
}

export interface LabPlan {
  name: string;
  /** every namespace of this lab starts with this (lab names have no dot, so no lab's prefix is another's) */
  prefix: string;
  fabric: string;
  wan: string;
  routers: PlannedRouter[];
  hosts: PlannedHost[];
  controller: PlannedController | null;
}

const LAB_NAME_RE = /^[a-z0-9][a-z0-9-]{0,31}$/;
const HOST_NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
const CONTAINER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export class LabSpecError extends Error {
  override name = 'LabSpecError';
}

export function labPrefix(labName: string): string {
  if (!LAB_NAME_RE.test(labName)) {
    throw new LabSpecError(`invalid lab name "${labName}" (lowercase letters, digits and "-", at most 32, no dot)`);
  }
  return `${NETNS_PREFIX}${labName}.`;
}

/** Infrastructure names start with "_", which a host name cannot, so a host can never collide with them. */
export function containerNetnsName(labName: string, host: string, container: string): string {
  if (!CONTAINER_NAME_RE.test(container)) {
    throw new LabSpecError(`invalid container name "${container}" (letters, digits, "_" and "-", at most 64)`);
  }
  return `${labPrefix(labName)}${host}.${container}`;
}

export function planLab(spec: LabSpec): LabPlan {
  if (!spec || typeof spec !== 'object') throw new LabSpecError('lab spec must be an object');
  const prefix = labPrefix(spec.name);
  if (!Array.isArray(spec.datacenters) || spec.datacenters.length === 0) {
    throw new LabSpecError('a lab needs at least one datacenter');
  }
  if (spec.datacenters.length > 63) throw new LabSpecError('at most 63 datacenters (one /30 of 198.51.100.0/24 each)');

  const seenHosts = new Set<string>();
  const seenDcs = new Set<string>();
  const routers: PlannedRouter[] = [];
  const hosts: PlannedHost[] = [];
  let rackIndex = 0; // global, 1-based: rack K owns 172.31.K.0/24

  spec.datacenters.forEach((dc, d) => {
    if (!HOST_NAME_RE.test(dc?.name ?? '')) throw new LabSpecError(`invalid datacenter name "${dc?.name}"`);
    if (seenDcs.has(dc.name)) throw new LabSpecError(`datacenter "${dc.name}" appears twice`);
    seenDcs.add(dc.name);
    if (!Array.isArray(dc.racks) || dc.racks.length === 0) throw new LabSpecError(`datacenter "${dc.name}" needs at least one rack`);
    const seenRacks = new Set<string>();
    const racks: PlannedRack[] = [];
    for (const rack of dc.racks) {
      if (!HOST_NAME_RE.test(rack?.name ?? '')) throw new LabSpecError(`invalid rack name "${rack?.name}" in datacenter "${dc.name}"`);
      if (seenRacks.has(rack.name)) throw new LabSpecError(`rack "${rack.name}" appears twice in datacenter "${dc.name}"`);
      seenRacks.add(rack.name);
      rackIndex++;
      if (rackIndex > 254) throw new LabSpecError('at most 254 racks (one /24 of 172.31.0.0/16 each)');
      const net = `172.31.${rackIndex}`;
      const planned: PlannedRack = {
        name: rack.name,
        datacenter: dc.name,
        subnet: `${net}.0/24`,
        gateway: `${net}.1`,
        bridge: `wtbr${rackIndex}`,
        routerIf: `wtrack${rackIndex}`,
        fabricPort: `wtg${rackIndex}`,
      };
      racks.push(planned);
      if (!Array.isArray(rack.hosts)) throw new LabSpecError(`rack "${rack.name}" needs a hosts list`);
      if (rack.hosts.length > 240) throw new LabSpecError(`rack "${rack.name}": at most 240 hosts`);
      rack.hosts.forEach((h, i) => {
        if (typeof h !== 'string' || !HOST_NAME_RE.test(h)) {
          throw new LabSpecError(`invalid host name "${h}" (lowercase letters, digits and "-", starting with a letter or digit)`);
        }
        if (seenHosts.has(h)) throw new LabSpecError(`host "${h}" appears twice`);
        seenHosts.add(h);
        hosts.push({
          name: h,
          netns: `${prefix}${h}`,
          underlayIp: `${net}.${11 + i}`,
          prefixLen: 24,
          gateway: planned.gateway,
          rack: rack.name,
          datacenter: dc.name,
          fabricPort: `wth${hosts.length + 1}`,
          bridge: planned.bridge,
        });
      });
    }
    routers.push({
      datacenter: dc.name,
      netns: `${prefix}_r-${dc.name}`,
      wanIf: 'wtwan',
      ip: `${WAN_LINK_BASE}.${4 * d + 2}`,
      peerIf: `wtdc${d + 1}`,
      peerIp: `${WAN_LINK_BASE}.${4 * d + 1}`,
      prefixLen: 30,
      racks,
    });
  });

  const controller: PlannedController | null = spec.controller
    ? {
        netns: `${prefix}_controller`,
        ip: '172.31.0.10',
        prefixLen: 24,
        gateway: '172.31.0.1',
        subnet: '172.31.0.0/24',
        bridge: 'wtbrm',
        fabricPort: 'wtc',
        wanIf: 'wtmgmt',
        wanFabricPort: 'wtgm',
      }
    : null;

  return { name: spec.name, prefix, fabric: `${prefix}_fabric`, wan: `${prefix}_wan`, routers, hosts, controller };
}

/** Every namespace of the plan, in the order the builder creates them (teardown goes in reverse). */
export function planNamespaces(plan: LabPlan): string[] {
  return [
    plan.fabric,
    plan.wan,
    ...plan.routers.map((r) => r.netns),
    ...(plan.controller ? [plan.controller.netns] : []),
    ...plan.hosts.map((h) => h.netns),
  ];
}

/** The example topology `npm run lab -- up` uses without a spec file. */
export const DEFAULT_SPEC: LabSpec = {
  name: 'e2e',
  datacenters: [{ name: 'dc1', racks: [{ name: 'a', hosts: ['h1', 'h2'] }, { name: 'b', hosts: ['h3'] }] }],
  controller: true,
};

/** Every link name the plan creates (inside lab namespaces; a name in the root namespace would be a leak). */
export function planLinkNames(plan: LabPlan): string[] {
  const names = new Set<string>();
  for (const r of plan.routers) {
    names.add(r.wanIf).add(r.peerIf);
    for (const k of r.racks) names.add(k.bridge).add(k.routerIf).add(k.fabricPort);
  }
  for (const h of plan.hosts) names.add(h.fabricPort);
  if (plan.controller) {
    const c = plan.controller;
    names.add(c.bridge).add(c.fabricPort).add(c.wanIf).add(c.wanFabricPort);
  }
  return [...names];
}

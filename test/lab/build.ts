// Builds a planned topology in the kernel with iproute2. Every veth is created
// inside a lab namespace with its peer sent straight into another lab
// namespace, so no lab link ever exists in the root namespace, not even for
// a moment. Each namespace's commands go through one `ip -batch` call.
import { ip, ipBatch, nsRun, ipJson } from './run';
import { UNDERLAY_MTU, LAB_UNDERLAY, type LabPlan } from './plan';

export interface NetnsRegistry {
  /** called before `ip netns add`: the name must be on record before it can exist */
  willCreate(name: string): void;
  /** called after `ip netns add` succeeded */
  created(name: string): void;
  /** called when `ip netns add` failed: the name may be someone else's, so it must not be torn down */
  notCreated(name: string): void;
}

const MTU = String(UNDERLAY_MTU);

export function createNetns(name: string, reg: NetnsRegistry, loopbackUp = true): void {
  reg.willCreate(name);
  try {
    ip(['netns', 'add', name]);
  } catch (e) {
    reg.notCreated(name);
    throw e;
  }
  reg.created(name);
  if (loopbackUp) ip(['-n', name, 'link', 'set', 'lo', 'up']);
}

/** `link add` of a veth whose peer lands in another namespace, both ends at the underlay MTU. */
function vethInto(name: string, peer: string, peerNetns: string): string {
  return `link add name ${name} mtu ${MTU} type veth peer name ${peer} mtu ${MTU} netns ${peerNetns}`;
}

function enableForwarding(netns: string): void {
  nsRun(netns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
}

export function buildLab(plan: LabPlan, reg: NetnsRegistry): void {
  // fabric: one bridge per rack (+ management), no addresses, never routes
  createNetns(plan.fabric, reg);
  const bridges = [...plan.routers.flatMap((r) => r.racks.map((k) => k.bridge)), ...(plan.controller ? [plan.controller.bridge] : [])];
  ipBatch(
    plan.fabric,
    bridges.flatMap((b) => [`link add name ${b} mtu ${MTU} type bridge stp_state 0`, `link set ${b} up`]),
  );

  // WAN router: the core every datacenter router and the management segment hang off
  createNetns(plan.wan, reg);
  enableForwarding(plan.wan);

  for (const r of plan.routers) {
    createNetns(r.netns, reg);
    enableForwarding(r.netns);
    const routerCmds = [
      vethInto(r.wanIf, r.peerIf, plan.wan),
      `addr add ${r.ip}/${r.prefixLen} dev ${r.wanIf}`,
      `link set ${r.wanIf} up`,
    ];
    const fabricCmds: string[] = [];
    for (const k of r.racks) {
      routerCmds.push(vethInto(k.routerIf, k.fabricPort, plan.fabric), `addr add ${k.gateway}/24 dev ${k.routerIf}`, `link set ${k.routerIf} up`);
      fabricCmds.push(`link set ${k.fabricPort} master ${k.bridge} up`);
    }
    // lab prefixes only, no default route: the lab ends here
    routerCmds.push(`route add ${LAB_UNDERLAY} via ${r.peerIp}`);
    ipBatch(r.netns, routerCmds);
    ipBatch(plan.fabric, fabricCmds);
    ipBatch(plan.wan, [
      `addr add ${r.peerIp}/${r.prefixLen} dev ${r.peerIf}`,
      `link set ${r.peerIf} up`,
      ...r.racks.map((k) => `route add ${k.subnet} via ${r.ip}`),
    ]);
  }

  const c = plan.controller;
  if (c) {
    createNetns(c.netns, reg);
    ipBatch(plan.wan, [vethInto(c.wanIf, c.wanFabricPort, plan.fabric), `addr add ${c.gateway}/${c.prefixLen} dev ${c.wanIf}`, `link set ${c.wanIf} up`]);
    ipBatch(plan.fabric, [
      `link set ${c.wanFabricPort} master ${c.bridge} up`,
      vethInto(c.fabricPort, 'eth0', c.netns),
      `link set ${c.fabricPort} master ${c.bridge} up`,
    ]);
    ipBatch(c.netns, [`addr add ${c.ip}/${c.prefixLen} dev eth0`, 'link set eth0 up', `route add default via ${c.gateway}`]);
  }

  for (const h of plan.hosts) {
    createNetns(h.netns, reg);
    ipBatch(plan.fabric, [vethInto(h.fabricPort, 'eth0', h.netns), `link set ${h.fabricPort} master ${h.bridge} up`]);
    ipBatch(h.netns, [`addr add ${h.underlayIp}/${h.prefixLen} dev eth0`, 'link set eth0 up', `route add default via ${h.gateway}`]);
  }
}

/**
 * weft derives its VXLAN MTU from the underlay's (1500 - 50): a link at any
 * other MTU would make every overlay test measure the lab, not weft.
 */
export function assertUnderlayMtu(namespaces: string[]): void {
  const wrong: string[] = [];
  for (const ns of namespaces) {
    for (const l of ipJson<Array<{ ifname: string; mtu: number }>>(ns, ['link', 'show'])) {
      if (l.ifname !== 'lo' && l.mtu !== UNDERLAY_MTU) wrong.push(`${ns}/${l.ifname} mtu ${l.mtu}`);
    }
  }
  if (wrong.length) throw new Error(`lab links not at the underlay MTU ${UNDERLAY_MTU}: ${wrong.join(', ')}`);
}

// startAgent, the tunnels between datacenters, in two steps:
//
//   closeByCache   right after checkHost: the fail-closed table as the state
//                  dir's cached policy says, before the host network or any
//                  route exists, so a cold boot with the controller down is
//                  closed from its first packet;
//   startTunnel    the probe responder and the gateway chooser, and the
//                  hooks the overlay's reconcile loop calls, in this order:
//                  fail-closed adds -> gateway devices and peers -> overlay
//                  -> fail-closed removals. A chooser's change of gateway
//                  asks the same loop for a reconcile.
//
// Nothing here runs before the first topology snapshot except the cached
// policy; a host in a cluster with one datacenter gets an empty table and no
// probes, and its overlay is what it was before datacenters.
import type { Logger } from '../../controller/common/log';
import type { Handle } from '../../dataplane/netlink/handle';
import { parseCidr } from '../../dataplane/netlink/ip';
import { routeList, RTPROT_WEFT } from '../../dataplane/netlink/route';
import { linkFind } from '../../dataplane/netlink/link';
import type { AgentConfig } from './config';
import { cidrContains, vtepIpOf } from './host/naming';
import type { OverlayDatacenters } from './host/overlay';
import type { AgentMetrics, TunnelSource } from './metrics';
import type { Undo } from './start-undo';
import type { NetworkAttachment, Topology } from './state/types';
import { startChooser, type Chooser, type PathSpec } from './tunnel/chooser';
import { openFailClosed, readPolicyCache, RULE, samePolicy, writePolicyCache, type FailClosedTable } from './tunnel/fail-closed';
import { createGateway, type Gateway } from './tunnel/gateway';
import { planTunnel, selfDatacenter, type TunnelPlan } from './tunnel/policy';
import { handshakesSince, remoteGatewaysOf, startKeyRotation } from './tunnel/rotation';
import { isLastActiveGateway, type AgentClient, type HostRegistration } from './sync/controller';
import { startProbeResponder } from './tunnel/probe';
import { XDC_DEVICE, type PeerReport, type TunnelSummary } from './state/tunnel';

/**
 * Probe pace per role, in probe intervals (README "Picking a gateway"). A host
 * moves after 3 misses and judges its new gateway 2 intervals later. A gateway
 * moves after 5 and waits 4 (plus up to 2 at random, for two gateways that
 * judge each other): long enough for the hosts on the far side, whose choice
 * carries its replies, to have moved and settled first.
 */
const LEADER_PACE = { misses: 3, graceIntervals: 2, jitterIntervals: 0 };
const FOLLOWER_PACE = { misses: 5, graceIntervals: 4, jitterIntervals: 2 };

/** The fail-closed table with the cached policy in it; the undo step closes the table's handle only (the table stays). */
export async function closeByCache(config: AgentConfig, log: Logger, undo: Undo): Promise<FailClosedTable> {
  const table = openFailClosed({ log });
  undo.push(() => table.close());
  const cached = await readPolicyCache(config.stateDir, log);
  if (cached) {
    let r;
    try {
      r = table.apply(cached, 'all');
    } catch (err) {
      // a host that has never been in a cluster of several datacenters has nothing to keep closed: it starts open, as before
      if (cached.pools.length > 0 || cached.mesh) throw err;
      log.warn({ err }, 'cannot apply the cached fail-closed policy (it speaks for no address)');
      return table;
    }
    log.info({ changes: r.changes, role: cached.role, pools: cached.pools.length }, `cached fail-closed policy applied before anything else (${r.transactions} transactions)`);
  } else log.info('no cached fail-closed policy: the table is made at the first topology snapshot');
  return table;
}

/** What the overlay's reconcile loop calls around the overlay. */
export type TunnelHooks = {
  /** Plan from the topology, then fail-closed adds and the gateway's dataplane. */
  before(topology: Topology, attachments: NetworkAttachment[]): Promise<void>;
  /** The overlay's view of datacenters for this reconcile; undefined: one datacenter, the overlay as before. */
  overlay(): OverlayDatacenters | undefined;
  /** Fail-closed removals, once the routes that needed them are gone. */
  after(): void;
};

export type TunnelSync = TunnelHooks & {
  summary(): TunnelSummary;
  /** A reconcile that starts after this call, done (key rotation: a new key file is read by it). */
  reconcileNow(): Promise<void>;
  /** Set by the overlay phase once its loop exists. */
  bind(loop: { request(): void; reconcileNow(): Promise<void> }): void;
};

export async function startTunnel(
  config: AgentConfig,
  deps: {
    h: Handle; underlayIp: string; table: FailClosedTable; metrics: AgentMetrics;
    client: Pick<AgentClient, 'setOwnGatewayState' | 'setWireGuardKey'>;
    /** The host network, told when this host's datacenter is (or stops being) a mesh one: its VXLAN devices' source changes. */
    network: { mesh: boolean };
    /** What the heartbeats re-register with: a rotation puts the new public key in it. */
    registration: HostRegistration;
  },
  log: Logger,
  undo: Undo,
): Promise<TunnelSync> {
  const { h, table, metrics, client, registration, network } = deps;
  const tlog = log.child({ part: 'tunnel' });
  let plan: TunnelPlan | undefined;
  let pools: ReturnType<typeof parseCidr>[] = [];
  let loop: { request(): void; reconcileNow(): Promise<void> } | undefined;
  let peers: PeerReport[] = [];
  let mtu = { wg: 0, xdc: 0, source: 'none' as TunnelSummary['mtuSource'] };
  let keySince = 0;
  let known = new Set<string>();
  /** The policy the state dir holds: written again only when it changes. */
  let cachedPolicy = table.policy;

  const allowed = (addr: string): boolean => {
    try {
      const a = parseCidr(addr.includes(':') ? `${addr}/128` : `${addr}/32`);
      return pools.some((p) => cidrContains(p, a));
    } catch {
      return false;
    }
  };
  try {
    // weft's own addresses only: the probes come from bridge addresses
    const responder = await startProbeResponder({ port: config.tunnelProbePort, allowed, log: tlog });
    undo.push(() => responder.close());
  } catch (err) {
    // the agent still carries traffic; other datacenters' probes through this host go unanswered, and say so there
    tlog.error({ err, port: config.tunnelProbePort }, 'cannot answer probes (is the port taken? see --tunnel-probe-port)');
  }
  const chooser: Chooser = startChooser({ port: config.tunnelProbePort, intervalMs: config.tunnelProbeIntervalMs, log: tlog });
  undo.push(() => chooser.close());
  chooser.onChange((reason) => {
    tlog.info({ reason }, 'gateway choice changed: reconciling');
    loop?.request();
  });
  const gateway: Gateway = createGateway({ h, stateDir: config.stateDir, underlayIp: deps.underlayIp, log: tlog });
  undo.push(() => gateway.close());
  // handshake ages and byte counts for metrics and heartbeats, read from the device now and then
  const peerTimer = setInterval(() => {
    if (!plan?.wireguard) return;
    gateway.peers().then((p) => (peers = p), (err) => tlog.debug({ err }, 'cannot read the WireGuard peers'));
  }, 5000);
  peerTimer.unref();
  undo.push(() => clearInterval(peerTimer));

  /** The choice the kernel's routes show for each remote datacenter, so a restart starts where the last run left off. */
  function initialChoices(p: TunnelPlan, topology: Topology, attachments: NetworkAttachment[]): Map<string, string> {
    const out = new Map<string, string>();
    const routes = routeList(h, { protocol: RTPROT_WEFT });
    const byDst = new Map(routes.map((r) => [r.dst, r]));
    const xdc = linkFind(h, XDC_DEVICE);
    for (const path of p.paths) {
      const remoteHosts = topology.hosts.filter((x) => x.datacenter === path.datacenter);
      for (const rh of remoteHosts) {
        for (const a of attachments) {
          const s = rh.subnets[a.network];
          const r = s === undefined ? undefined : byDst.get(s);
          if (!r?.gw) continue;
          const found = path.candidates.find((c) => {
            if (p.role === 'gateway') return xdc !== undefined && r.linkIndex === xdc.index && p.tunnelAddresses.get(c.host) === r.gw;
            const sub = topology.hosts.find((x) => x.name === c.host)?.subnets[a.network];
            return sub !== undefined && vtepIpOf(sub) === r.gw;
          });
          if (found) out.set(path.datacenter, found.host);
        }
        if (out.has(path.datacenter)) break;
      }
    }
    return out;
  }

  let lastTopology: Topology | undefined;
  /** Forwarded-packet count at the last idleness check: a drained gateway is idle once it stands still between two. */
  let lastForwarded = -1;
  const rotation = startKeyRotation({
    now: Date.now,
    stateDir: config.stateDir,
    intervalMs: config.wgKeyRotationMs,
    setOwnGatewayState: (state) => client.setOwnGatewayState(state),
    lastActive: isLastActiveGateway,
    registerPublicKey: async (publicKey) => {
      await client.setWireGuardKey(publicKey);
      registration.wgPublicKey = publicKey;
    },
    tunnelIdle: async () => {
      const now = table.forwarded();
      const idle = now === lastForwarded;
      lastForwarded = now;
      return idle;
    },
    remoteGateways: () => (plan?.role === 'gateway' ? remoteGatewaysOf(lastTopology?.datacenters, plan.datacenter) : []),
    hasOtherGateway: () => (lastTopology?.datacenters ?? [])
      .filter((dc) => dc.name === plan?.datacenter)
      .some((dc) => dc.gateways.some((g) => g.host !== config.hostName)),
    handshakeWith: async (want, since) => handshakesSince(await gateway.peers(), want, since, Date.now()),
    reconcileNow: () => (loop ? loop.reconcileNow() : Promise.resolve()),
    log: tlog.child({ part: 'key-rotation' }),
  });
  undo.push(() => rotation.stop());

  async function before(topology: Topology, attachments: NetworkAttachment[]): Promise<void> {
    lastTopology = topology;
    rotation.requestGeneration(topology.hosts.find((x) => x.name === config.hostName)?.wgKeyRotation ?? 0);
    const datacenter = selfDatacenter(topology, config.hostName, config.datacenter);
    const first = planTunnel({ topology, self: config.hostName, datacenter, attachments });
    pools = topology.networks.flatMap((n) => {
      try {
        return [parseCidr(n.cidr)];
      } catch {
        return [];
      }
    });
    // a datacenter seen for the first time starts from what the kernel shows
    const fresh = first.paths.filter((p) => !known.has(p.datacenter));
    const initial = fresh.length > 0 ? initialChoices(first, topology, attachments) : new Map<string, string>();
    known = new Set(first.paths.map((p) => p.datacenter));
    // Hosts choosing their local gateway judge quickly; gateways choosing another datacenter's gateway wait longer
    // (their replies come back by those hosts' choice), so the two ends of a path never fail over in step.
    const pace = first.role === 'gateway' ? FOLLOWER_PACE : LEADER_PACE;
    const specs: PathSpec[] = first.paths.map((p) => ({ ...p, ...pace, ...(initial.has(p.datacenter) ? { initial: initial.get(p.datacenter) } : {}) }));
    const source = [...attachments].sort((a, b) => (a.network < b.network ? -1 : a.network > b.network ? 1 : 0))[0]?.gateway;
    chooser.update(first.multiDatacenter ? specs : [], first.multiDatacenter ? source : undefined);
    const next = planTunnel({ topology, self: config.hostName, datacenter, attachments, choices: chooser.choices() });
    if (plan?.role !== next.role) tlog.info({ role: next.role, datacenter }, `tunnel role: ${next.role}`);
    plan = next;
    try {
      table.apply(next.policy, 'add');
    } catch (err) {
      tlog.error({ err }, 'cannot add to the fail-closed table; the next reconcile retries');
    }
    if (!samePolicy(cachedPolicy, next.policy)) {
      try {
        await writePolicyCache(config.stateDir, next.policy);
        cachedPolicy = next.policy;
      } catch (err) {
        tlog.warn({ err }, 'cannot save the fail-closed policy for the next start');
      }
    }
    // the WireGuard device before the overlay's VXLAN devices take the tunnel address as their source (and its routes before the FDB uses them)
    try {
      const r = await gateway.reconcile(next.wireguard);
      if (r) {
        mtu = { wg: r.mtu.wg, xdc: r.mtu.xdc, source: r.mtu.source };
        keySince = r.keySince;
        peers = await gateway.peers();
      } else {
        mtu = { wg: 0, xdc: 0, source: 'none' };
        peers = [];
      }
    } catch (err) {
      tlog.error({ err }, 'WireGuard dataplane reconcile failed; the next one retries');
    }
    const mesh = next.mesh !== undefined;
    if (network.mesh !== mesh) {
      tlog.info({ datacenter }, mesh ? 'mesh datacenter: host-to-host traffic goes inside WireGuard' : 'not a mesh datacenter: host-to-host traffic goes over the underlay');
      try {
        network.mesh = mesh;
      } catch (err) {
        tlog.error({ err }, 'cannot rebuild the overlay devices for the mesh; the host network\'s next repair retries');
      }
    }
  }
  function summary(): TunnelSummary {
    return {
      role: plan?.role ?? 'host',
      datacenter: plan?.datacenter ?? config.datacenter,
      paths: chooser.health(),
      peers,
      wgMtu: mtu.wg,
      xdcMtu: mtu.xdc,
      mtuSource: mtu.source,
      keySince,
    };
  }

  const source: TunnelSource = {
    summary,
    dropped: () => {
      const d = table.dropped();
      const sum = (...rules: string[]) => rules.reduce((n, r) => n + (d.get(r) ?? 0), 0);
      return { remote: sum(RULE.remote4, RULE.remote6), vxlan: sum(RULE.vxlan4, RULE.vxlan6, RULE.mesh4, RULE.mesh6) };
    },
  };
  metrics.setTunnel(source);

  return {
    before,
    overlay: () => (plan?.multiDatacenter || plan?.mesh
      ? { datacenter: plan.datacenter, role: plan.role, choices: chooser.choices(), ...(plan.mesh ? { mesh: plan.mesh } : {}) }
      : undefined),
    after() {
      if (!plan) return;
      try {
        table.apply(plan.policy, 'remove');
      } catch (err) {
        tlog.error({ err }, 'cannot remove from the fail-closed table; the next reconcile retries');
      }
    },
    summary,
    reconcileNow: () => (loop ? loop.reconcileNow() : Promise.reject(new Error('the tunnel is not reconciled before the first topology snapshot'))),
    bind(l) {
      loop = l;
    },
  };
}

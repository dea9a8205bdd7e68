// Gathering what the doctor's checks judge: the kernel (links, overlay
// entries, offload, iptables), the agent's state dir (credentials, agent DB),
// the agent's HTTP endpoints and the controller. Every source is read once
// and only read; a source that cannot be read becomes a finding, never an
// exception that hides the other checks.
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { renewalDue } from '../../../controller/api/client/renewal';
import { EthtoolError, txChecksumGet } from '../../../dataplane/ethtool';
import { readState, type Family, type SavedState } from '../../../dataplane/iptables';
import { openHandle, type Handle } from '../../../dataplane/netlink/handle';
import { linkList, type Link } from '../../../dataplane/netlink/link';
import { hostVethName } from '../host/naming';
import { resolveUnderlayIp, type AgentConfig } from '../config';
import { decideTxChecksum } from '../host/checksum-policy';
import { findUnderlay } from '../host/host-network';
import { weftDeviceKind } from '../host/naming';
import { listOverlay } from '../host/overlay';
import { openIpamStore } from '../ipam-store';
import { agentDbPath } from '../state/agent-db';
import { agentBase, httpGet, judgeAgent, metricSum, metricValue, type HttpAnswer } from './agent';
import { judgeCertificate } from './certificate';
import { judgeClock } from './clock';
import { askController, hostNetworksOf, judgeController, readCredentials, type ControllerFacts } from './controller';
import { fail, type Finding } from './finding';
import { judgeIptables, weftHooks } from './iptables';
import { evidenceFor, FEATURES, judgeKernel, readKernelFacts } from './kernel';
import { probeLinkKinds } from './kernel-probe';
import { HOST_VETH_NAME, judgeLinks, type LinksFacts, type WeftDevice } from './links';
import { judgeMtu, type MtuDevice, type MtuFacts } from './mtu';
import { judgeOffload, type OffloadState } from './offload';
import { judgeOverlay, type AgentOverlayReport, type KernelOverlay } from './overlay';
import { readPolicyCache } from '../tunnel/fail-closed';
import { WG_OVERHEAD_V4, WG_OVERHEAD_V6 } from '../state/tunnel';
import { silentLogger } from '../../../controller/common/log';

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** A check whose gathering threw is reported as failed, with the error, and the others still run. */
function guarded(area: string, run: () => Finding[]): Finding[] {
  try {
    return run();
  } catch (e) {
    return [fail(area, 'check', `the check itself failed: ${message(e)}`, 'run weft doctor as root in the host network namespace; report the message if it persists')];
  }
}

function weftDevices(links: Link[]): WeftDevice[] {
  const out: WeftDevice[] = [];
  for (const l of links) {
    const kind = weftDeviceKind(l.name);
    // a device of another kind under weft's name is not weft's
    if (!kind || l.kind !== kind) continue;
    const ports = kind === 'bridge' ? links.filter((p) => p.masterIndex === l.index).length : 0;
    out.push({ name: l.name, kind, vni: Number(l.name.slice('weft.vx'.length)), up: l.up, ports });
  }
  return out;
}

const hostEndsOf = (links: Link[]) => links.filter((l) => l.kind === 'veth' && HOST_VETH_NAME.test(l.name));

async function underlayOf(config: AgentConfig, h: Handle): Promise<MtuFacts['underlay'] & { ip?: string }> {
  try {
    const ip = await resolveUnderlayIp(config, h);
    const l = findUnderlay(h, { underlayIp: ip, vtepMac: '02:00:00:00:00:01' });
    return { name: l.name, mtu: l.mtu, ip };
  } catch (e) {
    return { error: message(e) };
  }
}

function offloadOf(links: Link[]): OffloadState[] {
  return links.filter((l) => l.kind === 'vxlan' && weftDeviceKind(l.name) === 'vxlan').map((l): OffloadState => {
    try {
      return { device: l.name, txChecksum: txChecksumGet(l.name) ? 'on' : 'off' };
    } catch (e) {
      if (e instanceof EthtoolError && e.code === 'EOPNOTSUPP') return { device: l.name, txChecksum: 'unsupported' };
      return { device: l.name, error: message(e) };
    }
  });
}

function kernelOverlayOf(h: Handle, links: Link[]): KernelOverlay | { error: string } {
  try {
    const devices = new Map(links.filter((l) => l.kind === 'vxlan' && weftDeviceKind(l.name) === 'vxlan').map((l) => [l.name, l.index]));
    const o = listOverlay(h, [], devices);
    return { routes: o.routes.length, neighs: o.neighs.length, fdbs: o.fdbs.length };
  } catch (e) {
    return { error: message(e) };
  }
}

function allocationsOf(stateDir: string): LinksFacts['allocations'] {
  const path = agentDbPath(stateDir);
  if (!existsSync(path)) return { error: `no agent DB at ${path}` };
  try {
    const ipam = openIpamStore({ path, busyTimeoutMs: 2000 });
    try {
      return ipam.list().map((a) => ({ hostEnd: hostVethName(a.network, a.containerId, a.ifname), what: `${a.network}/${a.ip} (container ${a.containerId.slice(0, 12)} ${a.ifname})` }));
    } finally {
      ipam.close();
    }
  } catch (e) {
    return { error: message(e) };
  }
}

function agentReportOf(metrics: HttpAnswer): AgentOverlayReport | undefined {
  if ('error' in metrics || metrics.status !== 200) return undefined;
  const t = metrics.body;
  const r: AgentOverlayReport = {};
  const set = (k: keyof AgentOverlayReport, v: number | undefined) => {
    if (v !== undefined) r[k] = v;
  };
  set('desired', metricValue(t, 'weft_agent_overlay_desired_entries'));
  set('programmed', metricValue(t, 'weft_agent_overlay_programmed_entries'));
  set('reconciles', metricSum(t, 'weft_agent_reconciles_total'));
  set('revision', metricValue(t, 'weft_agent_topology_revision'));
  return r;
}

export async function runDoctor(config: AgentConfig, now: () => number = Date.now): Promise<Finding[]> {
  const base = agentBase(config.metricsListen);
  // the slow, remote parts first and together: the agent's endpoints and the controller
  const credsP = readCredentials(config.stateDir);
  const [healthz, readyz, metrics, creds] = await Promise.all([httpGet(`${base}/healthz`), httpGet(`${base}/readyz`), httpGet(`${base}/metrics`), credsP]);
  let ctl: ControllerFacts | undefined;
  if ('credentials' in creds) {
    try {
      ctl = await askController(config.server, creds.credentials, config.stateDir);
    } catch (e) {
      ctl = { server: config.server, error: { code: 'LOCAL', details: message(e) } };
    }
  }
  const selfName = 'credentials' in creds ? creds.credentials.hostName : config.hostName;
  const hostNetworks = ctl?.topology ? hostNetworksOf(ctl.topology, selfName) : undefined;

  const h = openHandle();
  try {
    const links = linkList(h);
    const devices = weftDevices(links);
    const hostEnds = hostEndsOf(links);
    const findings: Finding[] = [];

    findings.push(...guarded('kernel', () => {
      const kinds = new Map<string, string>();
      for (const l of links) if (l.kind && !kinds.has(l.kind)) kinds.set(l.kind, l.name);
      const facts = readKernelFacts(kinds);
      const unknown = FEATURES.filter((f) => f.linkKind && !evidenceFor(f, facts)).map((f) => f.linkKind!);
      if (unknown.length > 0) {
        try {
          facts.probed = probeLinkKinds(unknown);
        } catch {
          /* no namespace to probe in (not root): the kinds stay unknown and are reported so */
        }
      }
      return judgeKernel(facts);
    }));

    const underlay = await underlayOf(config, h);
    // the agent caches whether its datacenter is a mesh with the fail-closed policy
    const meshCached = (await readPolicyCache(config.stateDir, silentLogger).catch(() => undefined))?.mesh === true;
    const wireGuardOverhead = meshCached ? ('ip' in underlay && underlay.ip?.includes(':') ? WG_OVERHEAD_V6 : WG_OVERHEAD_V4) : 0;
    findings.push(...guarded('mtu', () => {
      const configured = config.mtu !== undefined
        ? { mtu: config.mtu, source: '--mtu' }
        : ctl?.clusterMtu ? { mtu: ctl.clusterMtu, source: 'the cluster config mtu' } : undefined;
      const mtuDevices: MtuDevice[] = [
        ...devices.map((d) => ({ name: d.name, kind: d.kind, mtu: links.find((l) => l.name === d.name)!.mtu })),
        ...hostEnds.map((l) => ({ name: l.name, kind: 'veth' as const, mtu: l.mtu })),
      ];
      return judgeMtu({ underlay, ...(configured ? { configured } : {}), devices: mtuDevices, ...(wireGuardOverhead ? { wireGuardOverhead } : {}) });
    }));

    findings.push(...guarded('offload', () => judgeOffload(decideTxChecksum(config.vxlanTxChecksum), offloadOf(links))));

    findings.push(...guarded('iptables', () => {
      const saved = (family: Family): SavedState | { error: string } => {
        try {
          return readState({ family });
        } catch (e) {
          return { error: message(e) };
        }
      };
      const holdsNetworks = (hostNetworks?.length ?? 0) > 0 || devices.some((d) => d.kind === 'bridge');
      const out = judgeIptables(saved(4), holdsNetworks ? weftHooks(4) : [], 4);
      // ip6tables only where the agent uses it: hosts without IPv6 networks may lack the tool
      if (hostNetworks?.some((n) => n.subnet.includes(':'))) out.push(...judgeIptables(saved(6), weftHooks(6), 6));
      return out;
    }));

    findings.push(...guarded('overlay', () => judgeOverlay(kernelOverlayOf(h, links), agentReportOf(metrics))));

    findings.push(...guarded('links', () => judgeLinks({
      hostEnds: hostEnds.map((l) => l.name), allocations: allocationsOf(config.stateDir), devices, ...(hostNetworks ? { hostNetworks } : {}),
    })));

    findings.push(...judgeController(creds, ctl, config.stateDir));
    if ('credentials' in creds) {
      findings.push(...guarded('certificate', () => {
        const c = new X509Certificate(creds.credentials.certPem);
        return judgeCertificate({
          path: `${config.stateDir}/host.crt`, hostName: creds.credentials.hostName,
          validFrom: Date.parse(c.validFrom), validTo: Date.parse(c.validTo), renewAt: renewalDue(creds.credentials.certPem),
        }, now());
      }));
      findings.push(...judgeClock(ctl?.clock, config.server));
    }

    findings.push(...judgeAgent({ base, healthz, readyz }));
    return findings;
  } finally {
    h.close();
  }
}

// Checks run before the agent touches the host, each with what it found and,
// when it failed, what to do about it. Nothing here changes lasting state:
// probe devices are deleted again, and the forwarding sysctl is written back
// with the value it already had.
//
// Kernel features are probed by creating a throwaway device of each kind
// over netlink, not by looking in /sys/module or /proc: a module the kernel
// would load on first use, or code built into the kernel, does not show up
// there as loaded, and creating the device is exactly what weft will do.
import { spawnSync } from 'node:child_process';
import { EthtoolError, txChecksumGet, txChecksumSet } from '../../../dataplane/ethtool';
import { isErrno } from '../../../dataplane/netlink/errors';
import type { Handle } from '../../../dataplane/netlink/handle';
import { bridge, linkAdd, linkDel, linkList, veth, vxlan, linkFind, type Link, type LinkSpec } from '../../../dataplane/netlink/link';
import { sysctlGet, sysctlSet } from '../../../dataplane/sysctl';
import { findUnderlay, VXLAN_OVERHEAD } from './host-network';
import { weftDeviceKind } from './naming';

export type PreflightResult = { check: string; ok: boolean; message: string; fix?: string };

export type PreflightSpec = {
  underlayIp: string;
  underlayDev?: string;
  vxlanPort?: number;
  /** The configured overlay MTU, if any; checked against the underlay. */
  mtu?: number;
  /** Whether weft will turn TX checksum offload off on its VXLAN devices (see checksum-policy.ts); default true. */
  disableTxChecksum?: boolean;
};

export type PreflightOptions = { netns?: string };

/** IPv6 needs 1280 inside the overlay; VXLAN adds its 50 around it. */
export const MIN_OVERLAY_MTU = 1280;

export const PROBE = { vxlan: 'weft.probe', bridge: 'weft.probe.br', veth: 'weft.probe.v0', vethPeer: 'weft.probe.v1' } as const;
// Far from the VNIs clusters use, so the probe never collides with a real VTEP.
const PROBE_VNI = 0xfffffe;

const ENV = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin`, LC_ALL: 'C' };


const MODULES: Record<string, string> = { vxlan: 'vxlan', bridge: 'bridge', veth: 'veth' };

/**
 * Create the probe device, run `during` on it, delete it. A leftover probe of
 * the same kind (a crash between create and delete) is removed first; a
 * device of another kind under the probe's name is someone else's and stays.
 */
function probeKind(h: Handle, spec: LinkSpec, during?: () => PreflightResult): PreflightResult[] {
  const check = `kernel-${spec.kind}`;
  const old = linkFind(h, spec.name);
  if (old) {
    if (old.kind !== spec.kind) {
      return [{ check, ok: false, message: `cannot probe ${spec.kind} support: ${spec.name} exists and is a ${old.kind ?? 'plain device'}, not weft's probe`, fix: `remove or rename ${spec.name}` }];
    }
    linkDel(h, old.index);
  }
  try {
    linkAdd(h, spec);
  } catch (e) {
    const mod = MODULES[spec.kind];
    if (isErrno(e, 'EOPNOTSUPP')) {
      return [{ check, ok: false, message: `the kernel cannot create ${spec.kind} devices (${(e as Error).message})`, fix: `load the module: modprobe ${mod} (on some distributions it is in a linux-modules-extra package), or use a kernel built with CONFIG_${mod.toUpperCase()}` }];
    }
    if (isErrno(e, 'EPERM')) {
      return [{ check, ok: false, message: `not allowed to create ${spec.kind} devices (${(e as Error).message})`, fix: 'run the agent as root or with CAP_NET_ADMIN' }];
    }
    return [{ check, ok: false, message: `creating a ${spec.kind} probe failed: ${(e as Error).message}`, fix: `check \`ip link add ${spec.name} type ${spec.kind}\` by hand` }];
  }
  const out: PreflightResult[] = [{ check, ok: true, message: `${spec.kind} devices can be created` }];
  try {
    if (during) out.push(during());
  } finally {
    try {
      linkDel(h, spec.name);
    } catch (e) {
      if (!isErrno(e, 'ENODEV')) throw e;
    }
  }
  return out;
}

/**
 * The VXLAN checksum problem: some kernel/NIC combinations botch the outer
 * UDP checksum of VXLAN packets when TX checksum offload is on, and the
 * receiving host drops them. Where weft turns the offload off (see
 * checksum-policy.ts), this checks that doing so works here and that
 * existing weft devices have it off.
 */
function checksumCheck(h: Handle, opts: PreflightOptions, disable: boolean): PreflightResult {
  const check = 'vxlan-tx-checksum';
  if (!disable) return { check, ok: true, message: 'TX checksum offload stays on for VXLAN devices (this kernel does not need the workaround)' };
  const on = (dev: string) => txChecksumGet(dev, opts);
  try {
    if (on(PROBE.vxlan)) txChecksumSet(PROBE.vxlan, false, opts);
    if (on(PROBE.vxlan)) {
      return { check, ok: false, message: 'TX checksum offload on VXLAN devices cannot be turned off here', fix: 'use a kernel whose VXLAN checksum offload works, or disable it on the NIC (ethtool -K <underlay> tx off)' };
    }
  } catch (e) {
    if (e instanceof EthtoolError && e.code === 'EOPNOTSUPP') {
      return { check, ok: true, message: 'VXLAN devices here have no TX checksum offload setting, so they cannot have the offload problem' };
    }
    return { check, ok: false, message: `cannot read or change TX checksum offload: ${(e as Error).message}`, fix: 'run the agent with CAP_NET_ADMIN' };
  }
  const stillOn = linkList(h).filter((l) => weftDeviceKind(l.name) === 'vxlan' && l.kind === 'vxlan' && on(l.name)).map((l) => l.name);
  if (stillOn.length > 0) {
    return {
      check, ok: false,
      message: `TX checksum offload is on for ${stillOn.join(', ')}: packets may leave with a bad outer UDP checksum and be dropped`,
      fix: `restart the agent (it turns the offload off), or by hand: ${stillOn.map((d) => `ethtool -K ${d} tx off`).join('; ')}`,
    };
  }
  return { check, ok: true, message: 'TX checksum offload can be turned off on VXLAN devices; weft turns it off on its own' };
}

function underlayCheck(h: Handle, spec: PreflightSpec): PreflightResult {
  const check = 'underlay';
  let l: Link;
  try {
    l = findUnderlay(h, { underlayIp: spec.underlayIp, underlayDev: spec.underlayDev, vtepMac: '02:00:00:00:00:01' });
  } catch (e) {
    return { check, ok: false, message: (e as Error).message, fix: `give the host the address ${spec.underlayIp} on its underlay device, or configure the underlay IP this host really has` };
  }
  const need = MIN_OVERLAY_MTU + VXLAN_OVERHEAD;
  const where = `${l.name} holds ${spec.underlayIp}, MTU ${l.mtu}`;
  if (l.mtu < need) {
    return { check, ok: false, message: `${where}: too small for an overlay MTU of at least ${MIN_OVERLAY_MTU} (needs ${need})`, fix: `raise the MTU of ${l.name} to at least ${need}` };
  }
  if (spec.mtu !== undefined && spec.mtu > l.mtu - VXLAN_OVERHEAD) {
    return { check, ok: false, message: `${where}: the configured MTU ${spec.mtu} does not fit (at most ${l.mtu - VXLAN_OVERHEAD})`, fix: `configure mtu ${l.mtu - VXLAN_OVERHEAD} or less, or raise the MTU of ${l.name}` };
  }
  if (!l.up) return { check, ok: false, message: `${where}, but it is down`, fix: `bring it up: ip link set ${l.name} up` };
  return { check, ok: true, message: `${where}: overlay MTU ${spec.mtu ?? l.mtu - VXLAN_OVERHEAD}` };
}

function forwardingCheck(opts: PreflightOptions): PreflightResult {
  const check = 'ip-forward';
  try {
    const v = sysctlGet('net/ipv4/ip_forward', opts);
    // writing the value back proves the agent may change it without changing anything now
    sysctlSet('net/ipv4/ip_forward', v, opts);
    return { check, ok: true, message: v === '1' ? 'IPv4 forwarding is on' : `IPv4 forwarding is ${v}; weft will turn it on` };
  } catch (e) {
    return { check, ok: false, message: `cannot set net.ipv4.ip_forward: ${(e as Error).message}`, fix: 'run the agent as root in the host network namespace with /proc/sys writable (not in an unprivileged container)' };
  }
}

function toolCheck(tool: string): PreflightResult {
  const check = tool;
  const r = spawnSync(tool, ['--version'], { encoding: 'utf8', env: ENV, timeout: 10_000 });
  if (r.error || r.status !== 0) {
    const why = r.error ? (r.error as NodeJS.ErrnoException).code ?? r.error.message : `exit ${r.status}: ${r.stderr.trim()}`;
    return { check, ok: false, message: `${tool} cannot be run (${why})`, fix: 'install iptables: apt-get install iptables (or dnf install iptables-nft)' };
  }
  return { check, ok: true, message: r.stdout.trim() || `${tool} present` };
}

/** Every check, in the order a person fixing them would go. */
export function preflight(h: Handle, spec: PreflightSpec, opts: PreflightOptions = {}): PreflightResult[] {
  const o = { netns: opts.netns ?? h.netns ?? undefined };
  return [
    ...probeKind(h, vxlan({ name: PROBE.vxlan, vni: PROBE_VNI, port: spec.vxlanPort, learning: false }), () => checksumCheck(h, o, spec.disableTxChecksum ?? true)),
    ...probeKind(h, veth({ name: PROBE.veth, peer: { name: PROBE.vethPeer } })),
    ...probeKind(h, bridge({ name: PROBE.bridge })),
    underlayCheck(h, spec),
    forwardingCheck(o),
    toolCheck('iptables-restore'),
    toolCheck('iptables-save'),
  ];
}

/** One line per check, for logs and `weft agent --preflight`. */
export function preflightReport(results: PreflightResult[]): string {
  return results.map((r) => `${r.ok ? 'ok  ' : 'FAIL'} ${r.check}: ${r.message}${r.fix ? `\n     fix: ${r.fix}` : ''}`).join('\n');
}

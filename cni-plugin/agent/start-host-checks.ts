// startAgent, first phase: can this host run the overlay? Opens the netlink
// handle every later phase uses, finds the underlay address and the VTEP MAC,
// and runs preflight; a check the agent cannot fix by itself stops the start.
import type { Logger } from '../../controller/common/log';
import { openHandle, type Handle } from '../../dataplane/netlink/handle';
import { type AgentConfig, resolveUnderlayIp } from './config';
import { decideTxChecksum } from './host/checksum-policy';
import { derivedMac } from './host/naming';
import { preflight, type PreflightResult } from './host/preflight';
import type { Undo } from './start-undo';

export type CheckedHost = {
  /** Netlink in the host namespace; closed by the undo step this phase pushes. */
  h: Handle;
  underlayIp: string;
  vtepMac: string;
};

/** Without these the agent cannot build a working host network; the others are logged and fixed by the agent itself. */
const FATAL_CHECKS = new Set(['kernel-vxlan', 'kernel-veth', 'kernel-bridge', 'underlay', 'ip-forward', 'iptables-restore']);

/**
 * The VXLAN device's MAC, derived from the host name: stable across
 * restarts and reinstalls (a new MAC would make every other host rewrite its
 * FDB and neighbour entries), locally administered and unicast.
 */
export function vtepMacFor(hostName: string): string {
  return derivedMac(`weft-vtep\0${hostName}`);
}

/** Preflight: throws when the host cannot run the overlay; the handle it opened is on `undo`. */
export async function checkHost(config: AgentConfig, log: Logger, undo: Undo): Promise<CheckedHost> {
  const h: Handle = openHandle();
  undo.push(() => h.close());

  const underlayIp = await resolveUnderlayIp(config, h);
  const vtepMac = config.vtepMac ?? vtepMacFor(config.hostName);
  log.info({ underlayIp, vtepMac, server: config.server, stateDir: config.stateDir }, 'weft agent starting');

  const csum = decideTxChecksum(config.vxlanTxChecksum);
  log.info({ vxlanTxChecksum: config.vxlanTxChecksum, disable: csum.disable }, `VXLAN TX checksum offload: ${csum.reason}`);
  const fatal = logPreflight(log, preflight(h, { underlayIp, mtu: config.mtu, disableTxChecksum: csum.disable }));
  if (fatal.length > 0) throw new Error(`preflight failed: ${fatal.map((r) => `${r.check} (${r.message})`).join('; ')}`);
  return { h, underlayIp, vtepMac };
}

function logPreflight(log: Logger, results: PreflightResult[]): PreflightResult[] {
  const fatal: PreflightResult[] = [];
  for (const r of results) {
    if (r.ok) log.info({ check: r.check }, `preflight ${r.check}: ${r.message}`);
    else if (FATAL_CHECKS.has(r.check)) {
      fatal.push(r);
      log.error({ check: r.check, fix: r.fix }, `preflight ${r.check} FAILED: ${r.message}; fix: ${r.fix ?? 'see the message'}`);
    } else log.warn({ check: r.check, fix: r.fix }, `preflight ${r.check}: ${r.message}; fix: ${r.fix ?? 'see the message'}`);
  }
  return fatal;
}

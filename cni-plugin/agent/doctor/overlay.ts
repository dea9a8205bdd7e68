// Programmed versus desired overlay entries (routes, neighbours, FDB). The
// agent reports what its last reconcile desired and how many of those the
// kernel took (its /metrics, the same numbers `weft hosts` shows from the
// heartbeat); the kernel is listed here as the reconcile lists it. Entries
// missing since that reconcile were deleted by someone else, and extra ones
// belong to hosts the agent no longer wants: both are put right by the
// agent's next resync, which is what the fix says.
import { fail, pass, warn, type Finding } from './finding';

export type KernelOverlay = { routes: number; neighs: number; fdbs: number };

/** From the agent's /metrics; undefined fields: the agent did not say (not reconciled yet, or down). */
export type AgentOverlayReport = { desired?: number; programmed?: number; reconciles?: number; revision?: number };

const RESYNC_FIX = 'the agent restores them at its next resync (--resync-interval, default 60s), or at once on restart (systemctl restart weft-agent)';

export function judgeOverlay(kernel: KernelOverlay | { error: string }, report: AgentOverlayReport | undefined): Finding[] {
  if ('error' in kernel) return [fail('overlay', 'kernel', `cannot list the overlay entries: ${kernel.error}`, 'run weft doctor as root in the host network namespace')];
  const total = kernel.routes + kernel.neighs + kernel.fdbs;
  const held = `${total} weft entries in the kernel (routes proto weft: ${kernel.routes}, neighbours: ${kernel.neighs}, FDB: ${kernel.fdbs})`;
  if (!report || report.desired === undefined) {
    return [warn('overlay', 'entries', `${held}; the agent's report is not available to compare with (see the agent checks)`, 'start the agent, then run weft doctor again')];
  }
  if (!report.reconciles) {
    return [warn('overlay', 'entries', `${held}; the agent has not reconciled the overlay yet (it waits for the controller's first topology)`, 'see the controller checks; the agent reconciles once the topology arrives')];
  }
  const at = report.revision !== undefined ? ` at topology revision ${report.revision}` : '';
  const out: Finding[] = [];
  const programmed = report.programmed ?? report.desired;
  if (programmed < report.desired) {
    out.push(fail('overlay', 'programmed', `the agent's last reconcile${at} programmed ${programmed} of ${report.desired} desired entries: the kernel refused ${report.desired - programmed}`,
      'the agent log names each refused entry (a route of another tool on the same subnet is refused with EEXIST "not weft\'s"); remove the conflict, the next resync retries'));
  }
  if (total < report.desired) {
    out.push(fail('overlay', 'entries', `${held}, but the agent desires ${report.desired}${at}: ${report.desired - total} were deleted since its last reconcile`, RESYNC_FIX));
  } else if (total > report.desired) {
    out.push(fail('overlay', 'entries', `${held}, but the agent desires ${report.desired}${at}: ${total - report.desired} left from hosts or networks it no longer wants`, RESYNC_FIX));
  } else if (programmed === report.desired) {
    out.push(pass('overlay', 'entries', `${held}: all ${report.desired} the agent desires${at}`));
  }
  return out;
}

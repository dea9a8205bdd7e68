// TX checksum offload on weft's VXLAN devices, against what the agent's
// policy wants for this kernel and --vxlan-tx-checksum (checksum-policy.ts):
// off where the kernel's offload can corrupt the outer UDP checksum (a
// receiver then drops every packet), on elsewhere, because turning it off
// also turns off TSO and costs most of the overlay's throughput.
import type { TxChecksumDecision } from '../host/checksum-policy';
import { fail, pass, warn, type Finding } from './finding';

/** One VXLAN device's offload as read with the ethtool ioctl: on, off, or no such setting (EOPNOTSUPP), or unreadable. */
export type OffloadState = { device: string; txChecksum: 'on' | 'off' | 'unsupported' } | { device: string; error: string };

export function judgeOffload(decision: TxChecksumDecision, devices: OffloadState[]): Finding[] {
  if (devices.length === 0) return [pass('offload', 'vxlan', `no weft VXLAN devices to check; policy: ${decision.reason}`)];
  const out: Finding[] = [];
  for (const d of devices) {
    if ('error' in d) {
      out.push(warn('offload', d.device, `cannot read TX checksum offload of ${d.device}: ${d.error}`, `run weft doctor as root (CAP_NET_ADMIN), or look with ethtool -k ${d.device}`));
    } else if (d.txChecksum === 'unsupported') {
      out.push(pass('offload', d.device, `${d.device} has no TX checksum offload setting, so it cannot have the offload problem`));
    } else if (decision.disable && d.txChecksum === 'on') {
      out.push(fail('offload', d.device, `TX checksum offload is on for ${d.device}, but ${decision.reason}: packets may leave with a bad outer UDP checksum and be dropped`,
        `ethtool -K ${d.device} tx off (the agent turns it off again at its next resync, or at once on restart)`));
    } else if (!decision.disable && d.txChecksum === 'off') {
      out.push(warn('offload', d.device, `TX checksum offload is off for ${d.device} although ${decision.reason}: TSO is off with it and overlay throughput drops to a fraction`,
        `ethtool -K ${d.device} tx on, unless someone turned it off on purpose (then say so with --vxlan-tx-checksum off)`));
    } else {
      out.push(pass('offload', d.device, `TX checksum offload is ${d.txChecksum} for ${d.device}, as the policy wants: ${decision.reason}`));
    }
  }
  return out;
}

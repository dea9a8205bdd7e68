// CPU accounting for the tunnel bench, from what the kernel counts:
// - the user + system time of the wireguard-go processes of one method (all
//   of WireGuard's crypto and its TUN and UDP system calls run there);
// - the softirq time of all CPUs (/proc/stat): the kernel's receive path,
//   forwarding, netfilter and VXLAN of every namespace. It is machine-wide,
//   so anything else running at the same time lands in it too;
// - all busy time of all CPUs (user, nice, system, irq, softirq, steal), the
//   whole cost including iperf3 itself, for reference.
// Times are in seconds of one CPU.
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';

const TICK = 100; // USER_HZ: /proc/<pid>/stat and /proc/stat count in 1/100 s on Linux

export type CpuSnapshot = { procs: Map<number, number>; softirq: number; busy: number; at: number };
export type CpuDelta = { wgProcS: number; softirqS: number; busyS: number; wallS: number };

/** user + system seconds of a process, or null when it is gone. */
function procCpu(pid: number): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK; // utime, stime
  } catch {
    return null;
  }
}

function systemTimes(): { softirq: number; busy: number } {
  const line = readFileSync('/proc/stat', 'latin1').split('\n')[0]; // "cpu  user nice system idle iowait irq softirq steal ..."
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return { softirq: softirq / TICK, busy: (user + nice + system + irq + softirq + steal) / TICK };
}

const netnsIno = (path: string) => statSync(path).ino;

/** wireguard-go processes whose network namespace is one of `netnsNames` (a TUN lives in the namespace its process started in). */
export function wireguardGoPids(netnsNames: string[]): number[] {
  const wanted = new Set(netnsNames.map((n) => netnsIno(`/run/netns/${n}`)));
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/comm`, 'latin1').trim() !== 'wireguard-go') continue;
      const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${e}/ns/net`));
      if (m && wanted.has(Number(m[1]))) pids.push(Number(e));
    } catch {
      // gone while we looked
    }
  }
  return pids;
}

export function cpuSnapshot(pids: number[]): CpuSnapshot {
  const procs = new Map<number, number>();
  for (const p of pids) {
    const t = procCpu(p);
    if (t !== null) procs.set(p, t);
  }
  return { procs, ...systemTimes(), at: performance.now() };
}

/** CPU used between two snapshots; a process must live through both (a restart would hide its time). */
export function cpuDelta(a: CpuSnapshot, b: CpuSnapshot): CpuDelta {
  let wg = 0;
  for (const [pid, t] of a.procs) {
    const u = b.procs.get(pid);
    if (u === undefined) throw new Error(`wireguard-go ${pid} exited during the measurement`);
    wg += u - t;
  }
  return { wgProcS: wg, softirqS: b.softirq - a.softirq, busyS: b.busy - a.busy, wallS: (b.at - a.at) / 1000 };
}

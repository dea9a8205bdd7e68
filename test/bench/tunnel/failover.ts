// Gateway failover as traffic sees it. A ping stream (every 10 ms, each reply
// stamped with its arrival time by `ping -D`) runs container → container
// across the datacenters; the gateway carrying it is black-holed while it
// stays up: an nftables table in its namespace drops everything on the
// forward hook, ahead of every other hook. The failover time is the longest
// gap between two consecutive replies around the black-hole: from the last
// reply the old path carried to the first the new one did. It is an upper
// bound on the real outage by at most one ping interval.
//
// "The gateway carrying the stream" is the one of the datacenter whose
// weft.wg0 counted the most packets (in + out) over a short window of the
// stream; with asymmetric paths one gateway may carry only one direction.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '../../helpers/wait';
import type { Lab, LabHost, LabProcess } from '../../lab/lab';

export const BLACKHOLE_TABLE = 'wtbench_blackhole';
const INTERVAL_MS = 10;

export type Reply = { ts: number; seq: number };
export type FailoverTry = { datacenter: string; gateway: string; ms: number; lost: number; dropped: number; timedOut: boolean };

/** The replies in a `ping -D` log: arrival time (ms since the epoch) and sequence number. */
export function parsePingLog(text: string): Reply[] {
  const out: Reply[] = [];
  for (const m of text.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)/gm)) out.push({ ts: Number(m[1]) * 1000, seq: Number(m[2]) });
  return out;
}

export class PingStream {
  readonly log: string;
  private proc: LabProcess;
  constructor(private lab: Lab, ctrNs: string, to: string, dir: string) {
    this.log = join(dir, 'failover-ping.log');
    // stdbuf: ping writes to a file, and each reply must be there when it arrives
    this.proc = lab.spawn(ctrNs, 'stdbuf', ['-oL', 'ping', '-D', '-n', '-i', String(INTERVAL_MS / 1000), to], { logFile: this.log });
  }
  replies(): Reply[] {
    if (this.proc.exited) throw new Error('the failover ping stream exited');
    return parsePingLog(readFileSync(this.log, 'utf8'));
  }
  /** Replies are arriving: at least `n` in the last `withinMs`. */
  flowing(n = 10, withinMs = 200): boolean {
    const now = Date.now();
    return this.replies().filter((r) => r.ts > now - withinMs).length >= n;
  }
  async stop(): Promise<void> {
    await this.proc.stop('SIGINT');
  }
}

const wgPackets = (lab: Lab, g: LabHost, dev: string): number => {
  const r = lab.exec(g.netns, 'ip', ['-j', '-s', 'link', 'show', 'dev', dev], { check: false });
  if (r.status !== 0) return 0;
  const [l] = JSON.parse(r.stdout) as Array<{ stats64: { rx: { packets: number }; tx: { packets: number } } }>;
  return l.stats64.rx.packets + l.stats64.tx.packets;
};

/** The gateway (of `candidates`) whose `dev` counts the most packets over `windowMs` of the stream. */
export async function carrier(lab: Lab, candidates: LabHost[], dev: string, windowMs = 300): Promise<LabHost> {
  const a = candidates.map((g) => wgPackets(lab, g, dev));
  await sleep(windowMs);
  const d = candidates.map((g, i) => wgPackets(lab, g, dev) - a[i]);
  const best = d.indexOf(Math.max(...d));
  // 100 pings/s each way: the carrier sees tens of packets in the window
  if (d[best] < (windowMs / INTERVAL_MS) / 2) throw new Error(`no gateway carries the stream: ${dev} packet deltas ${candidates.map((g, i) => `${g.name}=${d[i]}`).join(' ')}`);
  return candidates[best];
}

function blackhole(lab: Lab, g: LabHost): void {
  lab.exec(g.netns, 'nft', ['-f', '-'], {
    input: `table inet ${BLACKHOLE_TABLE} {\n  chain forward {\n    type filter hook forward priority -400; policy accept;\n    counter drop\n  }\n}\n`,
  });
}

function restore(lab: Lab, g: LabHost): number {
  const out = lab.exec(g.netns, 'nft', ['list', 'table', 'inet', BLACKHOLE_TABLE]).stdout;
  const dropped = Number(/counter packets (\d+)/.exec(out)?.[1] ?? 0);
  lab.exec(g.netns, 'nft', ['delete', 'table', 'inet', BLACKHOLE_TABLE]);
  return dropped;
}

/**
 * One try: black-hole the carrier of `datacenter`, wait until replies flow
 * again (at most `timeoutMs`), lift the black-hole. A try that never
 * recovers counts as `timeoutMs`.
 */
export async function failoverTry(lab: Lab, stream: PingStream, datacenter: string, gateways: LabHost[], dev: string, timeoutMs: number): Promise<FailoverTry> {
  await waitFor('the ping stream to flow before a black-hole', () => stream.flowing(), 20_000, 50);
  const g = await carrier(lab, gateways, dev);
  const t0 = Date.now();
  blackhole(lab, g);
  let timedOut = false;
  try {
    // recovered: 20 replies in a row after the black-hole began, none of them older than 300 ms
    await waitFor(`the stream to flow again after black-holing ${g.name}`, () => {
      const after = stream.replies().filter((r) => r.ts > t0);
      return after.length >= 20 && stream.flowing(20, 300);
    }, timeoutMs, 20);
  } catch {
    timedOut = true;
  }
  const dropped = restore(lab, g);
  const rs = stream.replies().filter((r) => r.ts > t0 - 1000);
  let gap = 0;
  let lost = 0;
  for (let i = 1; i < rs.length; i++) {
    const d = rs[i].ts - rs[i - 1].ts;
    if (d > gap) {
      gap = d;
      lost = rs[i].seq - rs[i - 1].seq - 1;
    }
  }
  if (timedOut) return { datacenter, gateway: g.name, ms: timeoutMs, lost, dropped, timedOut };
  if (dropped === 0) throw new Error(`black-holing ${g.name} dropped nothing: it did not carry the stream`);
  return { datacenter, gateway: g.name, ms: gap, lost, dropped, timedOut };
}

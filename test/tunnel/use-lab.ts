// What every tunnel test file shares: one lab for all its tests (c1 on h1 in
// dc1, c2 on h2 in dc2, answering), the agents' logs printed under a test
// that failed, the lab closed after the last test even when one failed; and
// marked traffic that would be seen on the WAN if it ever left in the clear.
import { afterAll, afterEach, beforeAll } from 'vitest';
import { waitFor } from '../helpers/wait';
import { createTunnelLab, startPingStream, UDP_SPRAY, type PingStream, type TunnelLab } from './lab';

/** Registers the file's hooks; `ready` gets the lab once c1 and c2 answer each other. */
export function useTunnelLab(name: string, ready: (t: TunnelLab) => void): void {
  let t: TunnelLab | undefined;
  beforeAll(async () => {
    const t0 = Date.now();
    t = await createTunnelLab({ name, containers: { c1: 'h1', c2: 'h2' } });
    await reachBothWays(t, 60_000);
    ready(t);
    console.log(`tunnel lab ${name} up, c1 and c2 answering, in ${Date.now() - t0} ms`);
  }, 150_000);
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail' && t) console.log(t.logs());
  });
  afterAll(async () => {
    await t?.close();
  }, 60_000);
}

export async function reachBothWays(t: TunnelLab, ms: number): Promise<void> {
  await t.waitReach('c1', 'c2', ms);
  await t.waitReach('c2', 'c1', ms);
}

export type Marked = { stop(): Promise<void>; sentSince(seq: number): number; stream: PingStream };

/** Marked traffic both ways while a test breaks things: a ping stream each way (payload `hex`) and UDP datagrams from c1 (`udpSecret`). */
export function markedTraffic(t: TunnelLab, hex: string, udpSecret: string): Marked {
  const c = (name: string) => t.containers.get(name)!;
  const there = startPingStream(c('c1').netns, c('c2').ip, { pattern: hex });
  const back = startPingStream(c('c2').netns, c('c1').ip, { pattern: hex });
  // UDP_SPRAY sends every 200 ms until answered or its deadline: keep one running
  const udp = t.lab.spawn(c('c1').netns, process.execPath, ['-e', UDP_SPRAY, c('c2').ip, '5501', udpSecret]);
  return {
    stream: there,
    sentSince: (seq) => there.lastSeq() - seq,
    async stop() {
      await there.stop();
      await back.stop();
      await udp.stop();
    },
  };
}

/** Keep the marked traffic going until c1 has sent `n` more pings (they are what could leak). */
export async function letTrafficRun(m: Marked, n: number, what: string): Promise<void> {
  const seq = m.stream.lastSeq();
  await waitFor(`${n} pings sent ${what}`, () => m.sentSince(seq) >= n, 30_000, 50);
}

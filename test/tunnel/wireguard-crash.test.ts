// wireguard-go dying under running gateway agents: nothing of a container's
// crosses the WAN in the clear meanwhile, and the agents start it again.
// The lab's underlay routes container subnets across the WAN
// (routeLeaksAcrossWan), so an escaped packet would be captured.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait';
import {
  checkWan, createTunnelLab, GATEWAYS, DC1, startPingStream, UDP_SPRAY, type TunnelLab, type PingStream,
} from './lab';

let t: TunnelLab;
const SECRET_HEX = Buffer.from('tun5leak').toString('hex');
const SECRET = 'tun5leaktun5leak';
const UDP_SECRET = 'weft-tun5-udp-cleartext-marker';

const c = (name: string) => t.containers.get(name)!;

beforeAll(async () => {
  const t0 = Date.now();
  t = await createTunnelLab({ name: 'tun5', containers: { c1: 'h1', c2: 'h2' } });
  await waitReach(60_000);
  console.log(`tunnel lab up in ${Date.now() - t0} ms`);
}, 150_000);

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail' && t) console.log(t.logs());
});

afterAll(async () => {
  await t?.close();
}, 60_000);

async function waitReach(ms: number): Promise<void> {
  await t.waitReach('c1', 'c2', ms);
  await t.waitReach('c2', 'c1', ms);
}

/** Marked traffic both ways while a test breaks things: a ping stream each way and UDP datagrams from c1. */
function marked(): { stop(): Promise<void>; sentSince(seq: number): number; stream: PingStream } {
  const there = startPingStream(c('c1').netns, c('c2').ip, { pattern: SECRET_HEX });
  const back = startPingStream(c('c2').netns, c('c1').ip, { pattern: SECRET_HEX });
  // UDP_ASK sends every 200 ms until answered or its deadline: keep one running
  const udp = t.lab.spawn(c('c1').netns, process.execPath, ['-e', UDP_SPRAY, c('c2').ip, '5501', UDP_SECRET]);
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
async function letTrafficRun(m: ReturnType<typeof marked>, n: number, what: string): Promise<void> {
  const seq = m.stream.lastSeq();
  await waitFor(`${n} pings sent ${what}`, () => m.sentSince(seq) >= n, 30_000, 50);
}

describe('wireguard-go crash', () => {
  it('with wireguard-go dying under the running dc1 gateway agents, nothing crosses in the clear, and the agents bring the tunnel back', async () => {
    const cap = await t.capture('wan-wg-killed');
    const m = marked();
    try {
      await letTrafficRun(m, 10, 'before the kill');
      for (const g of GATEWAYS[DC1]) for (const p of t.wireguardPids(g)) process.kill(p, 'SIGKILL');
      await letTrafficRun(m, 60, 'with wireguard-go dead');
      // first the leak verdict, then whether the agents bring their tunnel back
      const { violations } = await checkWan(t, cap, [SECRET, UDP_SECRET]);
      expect(violations).toEqual([]);
      await waitReach(60_000);
    } finally {
      await m.stop();
    }
  }, 150_000);

});

// Key rotation without loss: `weft host rotate-key --all` under a steady ping
// stream between containers of two datacenters. Every host gets a new key
// (the gateways' show in `weft datacenter list`), every gateway ends active
// again, the stream loses no packet, and the WAN sees only WireGuard.
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait';
import {
  checkWan, startPingStream, type TunnelLab,
} from './lab';
import { useTunnelLab } from './use-lab';

let t: TunnelLab;
const SECRET_HEX = Buffer.from('tun6leak').toString('hex');
const SECRET = 'tun6leaktun6leak';

const c = (name: string) => t.containers.get(name)!;

useTunnelLab('tun6', (lab) => {
  t = lab;
});

type Gw = { host: string; state: string; wg_public_key: string };

function gateways(): Gw[] {
  const out = t.admin(['datacenter', 'list', '--json']);
  return (JSON.parse(out) as { datacenters: Array<{ gateways: Gw[] }> }).datacenters.flatMap((d) => d.gateways);
}

const weft = (args: string[]) => t.admin(args);

describe('key rotation', () => {
  it('rotate-key --all gives every gateway a new key and loses no packet of a steady ping stream, nothing in the clear on the WAN', async () => {
    const before = new Map(gateways().map((g) => [g.host, g.wg_public_key]));
    expect(before.size).toBe(4);
    const cap = await t.capture('wan-rotation');
    const s = startPingStream(c('c1').netns, c('c2').ip, { pattern: SECRET_HEX });
    let summary;
    try {
      await waitFor('the ping stream to answer', () => s.replies.size >= 10, 10_000);
      expect(weft(['host', 'rotate-key', '--all'])).toMatch(/key rotation requested/);
      await waitFor('every gateway to have a new key and be active again', () => {
        const now = gateways();
        return now.length === 4 && now.every((g) => g.wg_public_key && g.wg_public_key !== before.get(g.host) && g.state === 'active') && now;
      }, 90_000);
      // still answering with the new keys
      const seq = s.lastSeq();
      await waitFor('40 replies after the rotation', () => [...s.replies.keys()].filter((q) => q > seq).length >= 40, 20_000);
    } finally {
      summary = await s.stop();
    }
    console.log(`rotation: ${summary.transmitted} sent, ${summary.received} received, gaps ${JSON.stringify(summary.gaps)}`);
    expect(summary.gaps, summary.output).toEqual([]);
    expect(summary.lost).toBe(0);
    const { violations } = await checkWan(t, cap, [SECRET]);
    expect(violations).toEqual([]);
  }, 180_000);
});

// Key rotation without loss, under a steady ping stream between containers
// of two datacenters: `weft host rotate-key` of each gateway in turn (each
// drains itself while its datacenter's other gateway carries the traffic),
// then `weft host rotate-key --all` (the gateways of a datacenter take
// turns). Every gateway gets a new key (shown by `weft datacenter list`) and
// is active again; the stream loses no packet, and the WAN sees only WireGuard.
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait';
import { checkWan, startPingStream, type TunnelLab } from './lab';
import { useTunnelLab } from './use-lab';

let t: TunnelLab;
const SECRET_HEX = Buffer.from('tun4leak').toString('hex');
const SECRET = 'tun4leaktun4leak';

const c = (name: string) => t.containers.get(name)!;

useTunnelLab('tun4', (lab) => {
  t = lab;
});

type Gw = { host: string; state: string; wg_public_key: string };

function gateways(): Gw[] {
  const out = t.admin(['datacenter', 'list', '--json']);
  return (JSON.parse(out) as { datacenters: Array<{ gateways: Gw[] }> }).datacenters.flatMap((d) => d.gateways);
}

const weft = (args: string[]) => t.admin(args);

/** `rotate(before)` under a ping stream and a WAN capture: no gap, no loss, nothing marked in the clear. */
async function withoutLoss(what: string, rotate: (before: Map<string, string>) => Promise<void>): Promise<void> {
  const before = new Map(gateways().map((g) => [g.host, g.wg_public_key]));
  expect(before.size).toBe(4);
  const cap = await t.capture(`wan-${what}`);
  const s = startPingStream(c('c1').netns, c('c2').ip, { pattern: SECRET_HEX });
  let summary;
  try {
    await waitFor('the ping stream to answer', () => s.replies.size >= 10, 10_000);
    await rotate(before);
    // still answering with the new keys
    const seq = s.lastSeq();
    await waitFor('40 replies after the rotation', () => [...s.replies.keys()].filter((q) => q > seq).length >= 40, 20_000);
  } finally {
    summary = await s.stop();
  }
  console.log(`${what}: ${summary.transmitted} sent, ${summary.received} received, gaps ${JSON.stringify(summary.gaps)}`);
  expect(summary.gaps, summary.output).toEqual([]);
  expect(summary.lost).toBe(0);
  const { violations } = await checkWan(t, cap, [SECRET]);
  expect(violations).toEqual([]);
}

describe('key rotation', () => {
  it('rotate-key of each gateway in turn gives it a new key and loses no packet of a steady ping stream, nothing in the clear on the WAN', async () => {
    await withoutLoss('rotation', async (before) => {
      for (const gw of before.keys()) {
        expect(weft(['host', 'rotate-key', gw])).toMatch(/key rotation requested/);
        await waitFor(`${gw} to have a new key and be active again`, () => {
          const g = gateways().find((x) => x.host === gw);
          return g && g.wg_public_key && g.wg_public_key !== before.get(gw) && g.state === 'active' && g;
        }, 60_000);
      }
    });
  }, 180_000);

  it('rotate-key --all gives every gateway a new key and loses no packet of a steady ping stream, nothing in the clear on the WAN', async () => {
    await withoutLoss('rotation-all', async (before) => {
      expect(weft(['host', 'rotate-key', '--all'])).toMatch(/key rotation requested/);
      await waitFor('every gateway to have a new key and be active again', () => {
        const now = gateways();
        return now.length === 4 && now.every((g) => g.wg_public_key && g.wg_public_key !== before.get(g.host) && g.state === 'active') && now;
      }, 90_000);
    });
  }, 180_000);
});

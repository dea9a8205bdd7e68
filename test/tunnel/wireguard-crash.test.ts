// wireguard-go dying under running gateway agents: nothing of a container's
// crosses the WAN in the clear meanwhile, and the agents start it again.
// The lab's underlay routes container subnets across the WAN
// (routeLeaksAcrossWan), so an escaped packet would be captured.
import { describe, expect, it } from 'vitest';
import {
  checkWan, GATEWAYS, DC1, type TunnelLab,
} from './lab';
import { useTunnelLab, reachBothWays, markedTraffic, letTrafficRun } from './use-lab';

let t: TunnelLab;
const SECRET_HEX = Buffer.from('tun5leak').toString('hex');
const SECRET = 'tun5leaktun5leak';
const UDP_SECRET = 'weft-tun5-udp-cleartext-marker';

const c = (name: string) => t.containers.get(name)!;

useTunnelLab('tun5', (lab) => {
  t = lab;
});

describe('wireguard-go crash', () => {
  it('with wireguard-go dying under the running dc1 gateway agents, nothing crosses in the clear, and the agents bring the tunnel back', async () => {
    const cap = await t.capture('wan-wg-killed');
    const m = markedTraffic(t, SECRET_HEX, UDP_SECRET);
    try {
      await letTrafficRun(m, 10, 'before the kill');
      for (const g of GATEWAYS[DC1]) for (const p of t.wireguardPids(g)) process.kill(p, 'SIGKILL');
      await letTrafficRun(m, 60, 'with wireguard-go dead');
      // first the leak verdict, then whether the agents bring their tunnel back
      const { violations } = await checkWan(t, cap, [SECRET, UDP_SECRET]);
      expect(violations).toEqual([]);
      await reachBothWays(t, 60_000);
    } finally {
      await m.stop();
    }
  }, 150_000);

});

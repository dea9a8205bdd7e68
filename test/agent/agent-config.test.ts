// The agent's underlay default, taken from the kernel's route to the
// controller (routeGet, in a namespace of our own). The settings that need
// no kernel are in agent-config.unit.test.ts.
import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadAgentConfig, resolveUnderlayIp } from '../../cni-plugin/agent/config';
import { openHandle, type Handle } from '../../dataplane/netlink/handle';
import { NetlinkError } from '../../dataplane/netlink/errors';
import { routeGet } from '../../dataplane/netlink/route';
import { useTestNetns } from '../helpers/netns';

const machine = () => 'node-1';

describe('underlay default from the route to the controller', () => {
  const ns = useTestNetns('acf');
  let h: Handle;
  let n: string;
  beforeEach(() => {
    n = ns()[0];
    const ip = (...a: string[]) => execFileSync('ip', ['-n', n, ...a]);
    // veth pairs stand in for NICs (this kernel has no dummy module)
    ip('link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up0p');
    ip('link', 'add', 'up1', 'type', 'veth', 'peer', 'name', 'up1p');
    ip('link', 'set', 'up0p', 'up');
    ip('link', 'set', 'up1p', 'up');
    ip('addr', 'add', '192.0.2.10/24', 'dev', 'up0');
    ip('addr', 'add', '198.51.100.20/24', 'dev', 'up1');
    ip('link', 'set', 'up0', 'up');
    ip('link', 'set', 'up1', 'up');
    ip('link', 'set', 'lo', 'up');
    ip('route', 'add', '203.0.113.0/24', 'via', '198.51.100.1');
    h = openHandle({ netns: n });
  });
  afterEach(() => h?.close());

  it('routeGet reports the device and source address the kernel picks', () => {
    const up1 = JSON.parse(execFileSync('ip', ['-j', '-n', n, 'link', 'show', 'up1'], { encoding: 'utf8' }))[0].ifindex;
    expect(routeGet(h, '203.0.113.7')).toMatchObject({ dst: '203.0.113.7/32', gw: '198.51.100.1', linkIndex: up1, src: '198.51.100.20' });
    expect(routeGet(h, '192.0.2.99').src).toBe('192.0.2.10');
    expect(() => routeGet(h, '10.9.9.9')).toThrow(NetlinkError);
    expect(() => routeGet(h, 'not-an-ip')).toThrow(/not an IP address/);
  });

  it('takes the source address towards the controller, refuses loopback and no route, keeps an explicit one', async () => {
    const cfg = (server: string, extra: string[] = []) => loadAgentConfig(['--server', server, ...extra], {}, { machineHostname: machine });
    expect(await resolveUnderlayIp(cfg('203.0.113.5:7443'), h)).toBe('198.51.100.20');
    expect(await resolveUnderlayIp(cfg('192.0.2.1:7443'), h)).toBe('192.0.2.10');
    expect(await resolveUnderlayIp(cfg('10.9.9.9:7443', ['--underlay-ip', '192.0.2.10']), h)).toBe('192.0.2.10');
    await expect(resolveUnderlayIp(cfg('10.9.9.9:7443'), h)).rejects.toThrow(/no route to the controller at 10\.9\.9\.9 .*give --underlay-ip/);
    await expect(resolveUnderlayIp(cfg('127.0.0.1:7443'), h)).rejects.toThrow(/loopback.*give --underlay-ip/);
  });
});

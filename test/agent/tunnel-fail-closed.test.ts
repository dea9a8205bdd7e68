// The fail-closed table in a real kernel: traffic to another datacenter's
// pool address by the default route is dropped and counted, through the
// allowed device it passes, VXLAN to another datacenter's host is dropped,
// set changes go in the phase they belong to, and a re-apply with nothing
// changed sends nothing.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../controller/common/log';
import {
  listFailClosed, openFailClosed, readPolicyCache, renderFailClosed, RULE, writePolicyCache, type FailClosedTable,
} from '../../cni-plugin/agent/tunnel/fail-closed';
import type { FailClosedPolicy } from '../../cni-plugin/agent/state/tunnel';
import { openNft } from '../../dataplane/nftables/libnftables';
import { openNftTable } from '../../dataplane/nftables/table';
import { uniqueName } from '../helpers/names';
import { nsExec, useTestNetns } from '../helpers/netns';
import { requireSystem } from '../helpers/system';

requireSystem([{ pkg: 'nftables', command: 'nft' }, { pkg: 'iputils-ping', command: 'ping' }, { pkg: 'libnftables1', file: '/usr/lib/x86_64-linux-gnu/libnftables.so.1' }]);

const ns = useTestNetns('fc', 2);
let table: FailClosedTable | undefined;
let dir: string | undefined;
afterEach(() => {
  table?.close();
  table = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

const ip = (netns: string, ...args: string[]) => execFileSync('ip', ['-n', netns, ...args]);
const ping = (netns: string, addr: string) => spawnSync('ip', ['netns', 'exec', netns, 'ping', '-c', '1', '-W', '1', addr], { encoding: 'utf8' }).status === 0;

/** A: the host under test. B: the rest of the world. `wan` is A's default route, `tun` the device remote traffic may take. */
function build(): { a: string; b: string; tun: string } {
  const [a, b] = ns();
  const wan = uniqueName('fw');
  const tun = uniqueName('ft');
  ip(a, 'link', 'add', wan, 'type', 'veth', 'peer', 'name', 'peer0', 'netns', b);
  ip(a, 'link', 'add', tun, 'type', 'veth', 'peer', 'name', 'peer1', 'netns', b);
  ip(a, 'addr', 'add', '192.0.2.1/24', 'dev', wan);
  ip(a, 'addr', 'add', '198.51.100.1/24', 'dev', tun);
  ip(b, 'addr', 'add', '192.0.2.2/24', 'dev', 'peer0');
  ip(b, 'addr', 'add', '198.51.100.2/24', 'dev', 'peer1');
  for (const [n, d] of [[a, wan], [a, tun], [b, 'peer0'], [b, 'peer1']]) ip(n, 'link', 'set', d, 'up');
  ip(b, 'addr', 'add', '10.250.2.5/32', 'dev', 'lo');
  ip(b, 'addr', 'add', '10.250.1.5/32', 'dev', 'lo');
  ip(b, 'addr', 'add', '10.99.0.5/32', 'dev', 'lo');
  ip(a, 'route', 'add', 'default', 'via', '192.0.2.2');
  return { a, b, tun };
}

function policy(tun: string, o: Partial<FailClosedPolicy> = {}): FailClosedPolicy {
  return { role: 'host', pools: ['10.250.0.0/16'], local: ['10.250.1.0/24'], remoteUnderlays: ['192.0.2.2'], vxlanPort: 4789, overlayDevices: [tun], ...o };
}

describe('fail-closed table', () => {
  it('drops and counts remote-datacenter traffic off the tunnel path, passes it on the path, and re-applies with nothing sent', () => {
    const { a, tun } = build();
    table = openFailClosed({ netns: a, log: silentLogger });
    const p = policy(tun);
    expect(table.apply(p, 'all')).toMatchObject({ transactions: 1, rebuilt: true });
    expect(table.apply(p, 'add')).toEqual({ transactions: 0, changes: 0, rebuilt: false });
    expect(table.apply(p, 'remove')).toEqual({ transactions: 0, changes: 0, rebuilt: false });

    // another datacenter's address by the default route: dropped, counted
    expect(ping(a, '10.250.2.5')).toBe(false);
    expect(table.dropped().get(RULE.remote4)).toBeGreaterThanOrEqual(1);
    // this datacenter's, and an address outside every pool, pass by any route
    expect(ping(a, '10.250.1.5')).toBe(true);
    expect(ping(a, '10.99.0.5')).toBe(true);
    // through the allowed device: passes
    ip(a, 'route', 'add', '10.250.2.0/24', 'via', '198.51.100.2', 'dev', tun);
    expect(ping(a, '10.250.2.5')).toBe(true);

    // VXLAN to another datacenter's host: dropped, counted
    const before = table.dropped().get(RULE.vxlan4) ?? 0;
    const r = spawnSync('ip', ['netns', 'exec', a, 'bash', '-c', 'echo x > /dev/udp/192.0.2.2/4789'], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(table.dropped().get(RULE.vxlan4)).toBe(before + 1);

    // nothing changed: nothing sent (the ruleset generation does not move)
    const t = openNftTable({ name: 'weft_xdc', family: 1, netns: a });
    try {
      const g0 = t.gen();
      expect(table.apply(p, 'all').transactions).toBe(0);
      expect(table.apply(p, 'add').transactions).toBe(0);
      expect(t.gen()).toBe(g0);
    } finally {
      t.close();
    }
  });

  it('adds in the add phase (taking along an element an add overlaps), removes in the remove phase', () => {
    const { a, tun } = build();
    table = openFailClosed({ netns: a, log: silentLogger });
    const nft = openNft(a);
    const els = () => listFailClosed(nft).elements;
    try {
      table.apply(policy(tun, { local: ['10.250.1.0/24', '10.250.3.0/24'] }), 'all');
      // a removal only: the add phase leaves it, the remove phase takes it
      const fewer = policy(tun, { local: ['10.250.1.0/24'] });
      expect(table.apply(fewer, 'add').transactions).toBe(0);
      expect(els().get('local4')).toEqual(['10.250.1.0/24', '10.250.3.0/24']);
      expect(table.apply(fewer, 'remove').transactions).toBe(1);
      expect(els().get('local4')).toEqual(['10.250.1.0/24']);
      // an add that covers an element: both in one transaction of the add phase
      const wider = policy(tun, { local: ['10.250.0.0/17'], overlayDevices: [tun, 'weft.vx9'] });
      expect(table.apply(wider, 'add').transactions).toBe(1);
      expect(els().get('local4')).toEqual(['10.250.0.0/17']);
      expect(els().get('tunnel_ifs')).toEqual([tun, 'weft.vx9'].sort());
      expect(table.apply(wider, 'remove').transactions).toBe(0);
      // a gateway: the tunnel devices instead of the overlay's
      const gw = policy(tun, { role: 'gateway', local: ['10.250.0.0/17'] });
      table.apply(gw, 'add');
      table.apply(gw, 'remove');
      expect(els().get('tunnel_ifs')).toEqual(['weft.wg0', 'weft.xdc']);
      expect(renderFailClosed(gw).get('tunnel_ifs')).toEqual(['weft.wg0', 'weft.xdc']);
      // a rule deleted by hand: the table is made again, elements and all
      nsExec(a, 'nft', ['flush', 'chain', 'inet', 'weft_xdc', 'forward']);
      expect(table.apply(gw, 'add')).toMatchObject({ transactions: 1, rebuilt: true });
      expect(els().get('local4')).toEqual(['10.250.0.0/17']);
      expect(table.apply(gw, 'all').transactions).toBe(0);
    } finally {
      nft.close();
    }
  });

  it('caches the policy atomically and reads it back', async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-fc-'));
    expect(await readPolicyCache(dir, silentLogger)).toBeUndefined();
    const p = policy('weft.vx1');
    await writePolicyCache(dir, p);
    expect(await readPolicyCache(dir, silentLogger)).toEqual(p);
  });
});

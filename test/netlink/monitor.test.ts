// The link monitor against the kernel: link and address notifications from a
// test namespace, ENOBUFS turned into one overrun, strict parsing, a close
// that does not wait for the kernel, and no CPU spent while idle.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { encodeIfInfoMsg, encodeMessage, nla, RTM_DELLINK, RTM_NEWLINK, RTM_NEWADDR, encodeIfAddrMsg, NLM_F_MULTI } from '../../dataplane/netlink/codec';
import { openMonitor, parseNotifications, MonitorParseError, type MonitorEvent, type Monitor } from '../../dataplane/netlink/monitor';
import { useTestNetns } from '../helpers/netns';
import { uniqueName } from '../helpers/names';
import { waitFor } from '../helpers/wait';

const ip = (ns: string, ...args: string[]) => execFileSync('ip', ['-n', ns, ...args]);
const openFds = () => readdirSync('/proc/self/fd').length;

function collect(netns: string, opts: { receiveBuffer?: number; groups?: Array<'link' | 'ipv4-addr' | 'ipv6-addr'> } = {}) {
  const events: MonitorEvent[] = [];
  const errors: Error[] = [];
  const m: Monitor = openMonitor({
    groups: opts.groups ?? ['link', 'ipv4-addr'], netns, receiveBuffer: opts.receiveBuffer,
    onEvents: (evs) => events.push(...evs), onError: (e) => errors.push(e),
  });
  return { m, events, errors };
}

describe('link monitor: parsing', () => {
  const link = (type: number, body: Buffer) => encodeMessage({ type, flags: 0, seq: 0, pid: 0, body });

  it('decodes RTM_NEWLINK and RTM_DELLINK with their name, index and flags', () => {
    const body = Buffer.concat([encodeIfInfoMsg({ index: 7, flags: 1 }), nla.str(3, 'weft.vx1'), nla.u32(4, 1450)]);
    const evs = parseNotifications(Buffer.concat([link(RTM_NEWLINK, body), link(RTM_DELLINK, body)]));
    expect(evs).toMatchObject([
      { kind: 'link', action: 'new', link: { index: 7, name: 'weft.vx1', up: true, mtu: 1450 }, bridgePort: false },
      { kind: 'link', action: 'del', link: { index: 7, name: 'weft.vx1' }, bridgePort: false },
    ]);
    // AF_BRIDGE: the device's place in a bridge, not the device
    const port = Buffer.concat([encodeIfInfoMsg({ family: 7, index: 8 }), nla.str(3, 'wv1'), nla.u32(10, 7)]);
    expect(parseNotifications(link(RTM_DELLINK, port))).toMatchObject([{ kind: 'link', action: 'del', link: { name: 'wv1', masterIndex: 7 }, bridgePort: true }]);
  });

  it.each([
    ['a body shorter than ifinfomsg', link(RTM_NEWLINK, Buffer.alloc(8)), 'less than struct ifinfomsg'],
    ['no name', link(RTM_NEWLINK, encodeIfInfoMsg({ index: 3 })), 'without a name'],
    ['index 0', link(RTM_DELLINK, Buffer.concat([encodeIfInfoMsg({ index: 0 }), nla.str(3, 'x')])), 'interface index 0'],
    ['an attribute running past the end', link(RTM_NEWLINK, Buffer.concat([encodeIfInfoMsg({ index: 3 }), Buffer.from([40, 0, 3, 0, 0x61, 0, 0, 0])])), 'claims 40 bytes'],
    ['stray bytes after the attributes', link(RTM_NEWLINK, Buffer.concat([encodeIfInfoMsg({ index: 3 }), nla.str(3, 'x'), Buffer.from([1, 0])])), 'stray bytes'],
    ['an address message without an address', link(RTM_NEWADDR, encodeIfAddrMsg({ family: 2, prefixLen: 24, index: 3 })), 'without an address'],
  ])('refuses %s', (_what, buf, msg) => {
    const err = (() => {
      try {
        parseNotifications(buf);
      } catch (e) {
        return e as Error;
      }
      throw new Error('parsed');
    })();
    expect(err).toBeInstanceOf(MonitorParseError);
    expect(err.message).toContain(msg);
  });

  it('refuses a datagram whose header claims more than it holds', () => {
    const buf = link(RTM_NEWLINK, Buffer.concat([encodeIfInfoMsg({ index: 3 }), nla.str(3, 'x')]));
    buf.writeUInt32LE(buf.length + 8, 0);
    expect(() => parseNotifications(buf)).toThrow(/malformed reply/);
  });

  it('skips message types it was not asked about', () => {
    expect(parseNotifications(encodeMessage({ type: 24 /* RTM_NEWROUTE */, flags: NLM_F_MULTI, seq: 0, pid: 0, body: Buffer.alloc(12) }))).toEqual([]);
  });

  it('refuses unknown and empty group lists', () => {
    expect(() => openMonitor({ groups: [], onEvents: () => {} })).toThrow(/no groups/);
    expect(() => openMonitor({ groups: ['route' as never], onEvents: () => {} })).toThrow(/unknown group "route"/);
  });
});

describe('link monitor: against the kernel', () => {
  const ns = useTestNetns('mon');

  it('reports links added, downed and deleted, and addresses, in the namespace it watches', async () => {
    const [n] = ns();
    const { m, events, errors } = collect(n);
    try {
      const a = uniqueName('ma');
      ip(n, 'link', 'add', a, 'type', 'veth', 'peer', 'name', `${a}p`);
      ip(n, 'link', 'set', a, 'up');
      ip(n, 'addr', 'add', '192.0.2.1/24', 'dev', a);
      ip(n, 'link', 'set', a, 'down');
      ip(n, 'link', 'del', a);
      await waitFor('the delete', () => events.some((e) => e.kind === 'link' && e.action === 'del' && e.link.name === a));
      const mine = events.filter((e) => (e.kind === 'link' && e.link.name === a) || (e.kind === 'addr' && e.addr.cidr === '192.0.2.1/24'));
      expect(mine.some((e) => e.kind === 'link' && e.action === 'new' && e.link.up)).toBe(true);
      expect(mine.some((e) => e.kind === 'addr' && e.action === 'new')).toBe(true);
      const downIdx = mine.findIndex((e) => e.kind === 'link' && e.action === 'new' && !e.link.up && e.link.flags !== 0);
      const delIdx = mine.findIndex((e) => e.kind === 'link' && e.action === 'del');
      expect(downIdx).toBeGreaterThan(-1);
      expect(delIdx).toBeGreaterThan(downIdx);
      expect(errors).toEqual([]);
      expect(events.some((e) => e.kind === 'overrun')).toBe(false);
    } finally {
      await m.close();
    }
  });

  it('turns a receive buffer overrun (ENOBUFS) into one overrun event and keeps reporting after it', async () => {
    const [n] = ns();
    // the smallest buffer the kernel allows; the main thread is kept busy by the synchronous ip calls, so nothing drains meanwhile
    const { m, events } = collect(n, { receiveBuffer: 256 });
    try {
      const names = Array.from({ length: 40 }, (_, i) => `wtovr${i}`);
      const batch = names.map((x) => `link add ${x} type veth peer name ${x}p`).join('\n');
      execFileSync('ip', ['-n', n, '-batch', '-'], { input: batch });
      await waitFor('an overrun', () => events.some((e) => e.kind === 'overrun'));
      const overruns = events.filter((e) => e.kind === 'overrun');
      expect(overruns[0]).toMatchObject({ reason: expect.stringContaining('ENOBUFS') });
      expect(m.stats().overruns).toBeGreaterThanOrEqual(1);
      // the socket still works after the loss (with a buffer this small only one of the pair's notifications fits)
      const after = uniqueName('mb');
      ip(n, 'link', 'add', after, 'type', 'veth', 'peer', 'name', `${after}p`);
      await waitFor('an event after the overrun', () => events.some((e) => e.kind === 'link' && e.link.name.startsWith(after)));
    } finally {
      await m.close();
    }
  });

  it('ignores other namespaces, closes promptly without leaking descriptors, and never wakes while idle', async () => {
    const [n] = ns();
    const fds = openFds();
    const { m, events } = collect(n);
    // another namespace's changes are not this monitor's business
    const other = uniqueName('mo');
    execFileSync('ip', ['netns', 'add', other]);
    try {
      execFileSync('ip', ['-n', other, 'link', 'add', 'wtx0', 'type', 'veth', 'peer', 'name', 'wtx1']);
    } finally {
      execFileSync('ip', ['netns', 'del', other]);
    }
    // idle: the worker thread sits in poll() with no timeout, so over a quiet window it never
    // wakes (a timeout or a busy loop would show as wake-ups; CPU time is the benchmark's to judge)
    await new Promise((r) => setTimeout(r, 2000));
    expect(m.stats().wakeups).toBe(0);
    expect(events).toEqual([]);
    const c0 = performance.now();
    await m.close();
    expect(performance.now() - c0).toBeLessThan(500);
    expect(openFds()).toBe(fds);
    // closing twice is fine
    await m.close();
  });
});

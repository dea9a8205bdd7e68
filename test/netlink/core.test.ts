import { describe, expect, it } from 'vitest';
import { openHandle, withHandle, throwIfAny } from '../../dataplane/netlink/handle';
import {
  encodeIfInfoMsg, decodeIfInfoMsg, parseAttrs, read, nla, attr, parseAttrList, encodeMessage, parseMessages,
  RTM_GETLINK, RTM_NEWLINK, RTM_SETLINK, NLM_F_CREATE, NLM_F_EXCL,
} from '../../dataplane/netlink/codec';
import { NetlinkError } from '../../dataplane/netlink/errors';
import { netnsAdd, netnsDelete, netnsExists, withNetns, netnsList } from '../../dataplane/netlink/netns';
import { parseCidr, ipToBytes, bytesToIp, macToBytes, bytesToMac, networkOf, canonicalIp } from '../../dataplane/netlink/ip';
import { useTestNetns, ipJson } from '../helpers/netns';
import { uniqueName } from '../helpers/names';
import { readlinkSync } from 'node:fs';

const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;

function bridgeReq(name: string) {
  return {
    type: RTM_NEWLINK,
    flags: NLM_F_CREATE | NLM_F_EXCL,
    body: Buffer.concat([encodeIfInfoMsg({}), nla.str(IFLA_IFNAME, name), nla.nested(IFLA_LINKINFO, [nla.str(IFLA_INFO_KIND, 'bridge')])]),
    op: `link add ${name}`,
  };
}

describe('codec', () => {
  it('round-trips messages and attributes with padding', () => {
    const body = Buffer.concat([nla.str(1, 'abc'), nla.u32(2, 0xdeadbeef), nla.nested(3, [nla.u8(1, 7)])]);
    const wire = Buffer.concat([encodeMessage({ type: 16, flags: 5, seq: 9, pid: 0, body }), encodeMessage({ type: 3, flags: 0, seq: 10, pid: 0, body: Buffer.alloc(0) })]);
    const msgs = parseMessages(wire);
    expect(msgs.map((m) => [m.type, m.seq])).toEqual([[16, 9], [3, 10]]);
    const attrs = parseAttrs(msgs[0].body);
    expect(read.str(attrs.get(1))).toBe('abc');
    expect(read.u32(attrs.get(2))).toBe(0xdeadbeef);
    expect(read.u8(parseAttrs(attrs.get(3)!).get(1))).toBe(7);
    expect(attr(1, Buffer.from([1, 2, 3])).length).toBe(8);
  });

  it('stops at a truncated attribute instead of reading past the buffer', () => {
    const good = nla.u32(1, 5);
    const bad = Buffer.from([0xff, 0x00, 0x02, 0x00]);
    expect(parseAttrList(Buffer.concat([good, bad]))).toHaveLength(1);
  });
});

describe('ip helpers', () => {
  it('parses and formats addresses and CIDRs', () => {
    expect(parseCidr('10.1.2.3/24')).toEqual({ ip: '10.1.2.3', prefixLen: 24, family: 2 });
    expect(parseCidr('fd00:0::1/64').ip).toBe('fd00::1');
    expect(bytesToIp(ipToBytes('fd00::1'))).toBe('fd00::1');
    expect(bytesToIp(ipToBytes('::1'))).toBe('::1');
    expect(ipToBytes('192.168.0.1')).toEqual(Buffer.from([192, 168, 0, 1]));
    expect(networkOf(parseCidr('10.1.2.3/20')).ip).toBe('10.1.0.0');
    expect(bytesToMac(macToBytes('0A:bc:00:11:22:33'))).toBe('0a:bc:00:11:22:33');
    expect(canonicalIp('FD00:0:0::1')).toBe('fd00::1');
    expect(canonicalIp('10.1.2.3')).toBe('10.1.2.3');
    expect(() => canonicalIp('10.1.2')).toThrow(/invalid IP address/);
  });

  it.each(['10.0.0.0/33', '10.0.0/24', 'x/1', '10.0.0.0/', '::1/129', '10.0.0.0/-1'])('rejects %s', (s) => {
    expect(() => parseCidr(s)).toThrow(/invalid CIDR/);
  });

  it('rejects a bad MAC', () => {
    expect(() => macToBytes('00:11:22:33:44')).toThrow(/invalid MAC/);
  });
});

describe('handle', () => {
  const ns = useTestNetns('core');

  it('dumps links of its own namespace only', () => {
    withHandle({ netns: ns()[0] }, (h) => {
      const links = h.dump({ type: RTM_GETLINK, body: encodeIfInfoMsg({}), op: 'link list' });
      const names = links.map((m) => read.str(parseAttrs(m.body, 16).get(IFLA_IFNAME)));
      expect(names).toEqual(['lo']);
    });
  });

  it('turns kernel errors into typed errors naming the operation', () => {
    const h = openHandle({ netns: ns()[0] });
    try {
      h.exec(bridgeReq('wtbr0'));
      let err: unknown;
      try {
        h.exec(bridgeReq('wtbr0'));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NetlinkError);
      expect((err as NetlinkError).code).toBe('EEXIST');
      expect((err as NetlinkError).message).toMatch(/^EEXIST: link add wtbr0/);
    } finally {
      h.close();
    }
  });

  it('batches requests and reports each one\'s result', () => {
    const h = openHandle({ netns: ns()[0] });
    try {
      const reqs = [bridgeReq('wtb1'), bridgeReq('wtb1'), bridgeReq('wtb2')];
      const errs = h.batch(reqs);
      expect(errs[0]).toBeUndefined();
      expect(errs[1]?.code).toBe('EEXIST');
      expect(errs[2]).toBeUndefined();
      expect(() => throwIfAny(errs)).toThrow(/EEXIST: link add wtb1/);
      const names = ipJson<{ ifname: string }[]>(ns()[0], ['link', 'show']).map((l) => l.ifname).sort();
      expect(names).toEqual(['lo', 'wtb1', 'wtb2']);
    } finally {
      h.close();
    }
  });

  it('splits a large batch across sends and still collects every ack', () => {
    const h = openHandle({ netns: ns()[0] });
    try {
      const reqs = Array.from({ length: 3000 }, () => ({ type: RTM_GETLINK, body: encodeIfInfoMsg({ index: 1 }), op: 'link get lo' }));
      // a GET in a batch is answered with the link itself, which the batch skips: only errors count
      const errs = h.batch(reqs);
      expect(errs.filter(Boolean)).toHaveLength(0);
    } finally {
      h.close();
    }
  });

  it('attributes each failure to its own request when the batch takes more than one send', () => {
    const h = openHandle({ netns: ns()[0] });
    try {
      // 10,000 messages of 40 bytes are 400 KB: more than one send (256 KB) holds
      const setMtu = (index: number) => ({ type: RTM_SETLINK, body: Buffer.concat([encodeIfInfoMsg({ index }), nla.u32(IFLA_MTU, 65536)]), op: `link set ${index} mtu` });
      const bad = new Set([0, 100, 7000, 9999]);
      const reqs = Array.from({ length: 10_000 }, (_, i) => setMtu(bad.has(i) ? 99999 : 1));
      expect(reqs.reduce((n, r) => n + 16 + r.body.length, 0)).toBeGreaterThan(256 << 10);
      const errs = h.batch(reqs);
      expect(errs.flatMap((e, i) => (e ? [[i, e.code]] : []))).toEqual([...bad].map((i) => [i, 'ENODEV']));
    } finally {
      h.close();
    }
  });

  it('refuses to use a closed handle', () => {
    const h = openHandle({ netns: ns()[0] });
    h.close();
    expect(() => h.dump({ type: RTM_GETLINK, body: encodeIfInfoMsg({}), op: 'link list' })).toThrow(/EBADF/);
  });
});

describe('netns', () => {
  it('creates, enters and deletes a named namespace, visible to ip netns', () => {
    const name = uniqueName('nsx');
    const before = readlinkSync('/proc/thread-self/ns/net');
    netnsAdd(name);
    try {
      expect(netnsList()).toContain(name);
      const inside = withNetns(name, () => readlinkSync('/proc/thread-self/ns/net'));
      expect(inside).not.toBe(before);
      expect(readlinkSync('/proc/thread-self/ns/net')).toBe(before);
      expect(() => netnsAdd(name)).toThrow(/EEXIST: netns add/);
    } finally {
      netnsDelete(name);
    }
    expect(netnsExists(name)).toBe(false);
    expect(() => netnsDelete(name)).toThrow(/ENOENT: netns delete/);
  });

  it('returns to the original namespace when the block throws', () => {
    const name = uniqueName('nsy');
    const before = readlinkSync('/proc/thread-self/ns/net');
    netnsAdd(name);
    try {
      expect(() => withNetns(name, () => { throw new Error('boom'); })).toThrow('boom');
      expect(readlinkSync('/proc/thread-self/ns/net')).toBe(before);
      expect(() => withNetns(name, () => Promise.resolve(1))).toThrow(/synchronous/);
      expect(readlinkSync('/proc/thread-self/ns/net')).toBe(before);
    } finally {
      netnsDelete(name);
    }
  });

  it('gives clear errors for missing namespaces and bad names', () => {
    expect(() => openHandle({ netns: 'wt-does-not-exist' })).toThrow(/ENOENT: netlink open in wt-does-not-exist|ENOENT: netns enter/);
    expect(() => netnsAdd('../etc')).toThrow(/invalid netns name/);
    expect(() => withNetns('/proc/999999999/ns/net', () => 1)).toThrow(/ENOENT/);
  });
});

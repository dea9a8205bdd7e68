// nf_tables through libnftables and weft's own batches, in a test namespace.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { useTestNetns, nsExec } from '../../helpers/netns';
import { openNftTable } from '../../../dataplane/nftables/table';
import { NFPROTO_IPV4, setElemMessages } from '../../../dataplane/nftables/wire';
import { NftError } from '../../../dataplane/nftables/libnftables';
import { NetlinkError } from '../../../dataplane/netlink/errors';
import { IPPROTO_UDP, flushConntrackByReplySource, listConntrack, NETLINK_NETFILTER } from '../../../dataplane/netlink/conntrack';
import { withHandle } from '../../../dataplane/netlink/handle';

const nsOf = useTestNetns('nft');

describe('nftables table', () => {
  it('lists what it made, commits element batches all or nothing, and moves the generation once per transaction', () => {
    const [ns] = nsOf();
    const t = openNftTable({ name: 'wtt', family: NFPROTO_IPV4, netns: ns });
    try {
      expect(t.list(() => true).exists).toBe(false);
      t.run('add table ip wtt\nadd map ip wtt m { typeof numgen inc mod 2 : ip daddr . tcp dport; }\nadd chain ip wtt c\nadd rule ip wtt c meta l4proto tcp dnat ip to jhash ip saddr mod 2 map @m comment "w:1"', 'setup');
      const g = t.gen();
      t.commit(setElemMessages('add', NFPROTO_IPV4, 'wtt', 'm', [['00000000', 'v:0a0000011f900000'], ['01000000', 'v:0a0000021f900000']]), 'add');
      expect(t.gen()).toBe(g + 1);
      // the second message fails (no such set): the first must not be applied either
      const bad = [...setElemMessages('delete', NFPROTO_IPV4, 'wtt', 'm', [['00000000']]), ...setElemMessages('add', NFPROTO_IPV4, 'wtt', 'nope', [['00000000', 'v:0a0000031f900000']])];
      expect(() => t.commit(bad, 'bad')).toThrow(NetlinkError);
      expect(t.gen()).toBe(g + 1);
      const v = t.list(() => true);
      expect(v.exists).toBe(true);
      expect(v.chains.get('c')).toEqual(['w:1']);
      expect([...v.elements.get('m')!].sort()).toEqual([['00000000', 'v:0a0000011f900000'], ['01000000', 'v:0a0000021f900000']]);
      // the same elements one at a time, without a Map; a set that is not there has none
      const each: Array<[string, string]> = [];
      expect(t.eachElement('m', (k, d) => each.push([k, d]))).toBe(2);
      expect(each.sort()).toEqual([...v.elements.get('m')!].sort());
      expect(t.eachElement('nope', () => undefined)).toBe(0);
      expect(nsExec(ns, 'nft', ['list', 'map', 'ip', 'wtt', 'm'])).toContain('0 : 10.0.0.1 . 8080');
      // handles: what a listing reports is what a single get reports, and a set made again under its name has a new one
      const h = t.handles(['m', 'nope']);
      expect(h.table).toBe(v.handle);
      expect([...h.sets]).toEqual([['m', v.sets.get('m')!.handle]]);
      t.run('flush chain ip wtt c\ndelete map ip wtt m\nadd map ip wtt m { typeof numgen inc mod 2 : ip daddr . tcp dport; }', 'make m again');
      expect(t.handles(['m']).sets.get('m')).not.toBe(v.sets.get('m')!.handle);
      expect(t.handles(['m']).table).toBe(v.handle);
      expect(() => t.run('add rule ip wtt c bogus', 'bad rule')).toThrow(NftError);
      expect(t.drop()).toBe(true);
      expect(t.drop()).toBe(false);
      expect(nsExec(ns, 'nft', ['list', 'tables'])).not.toContain('wtt');
    } finally {
      t.close();
    }
  });
});

describe('nftables table listings', () => {
  it('a read is taken again while someone else commits during it, and given up on with a clear error when that never stops', () => {
    const [ns] = nsOf();
    const t = openNftTable({ name: 'wtc', family: NFPROTO_IPV4, netns: ns });
    try {
      t.run('add table ip wtc\nadd set ip wtc s { type ipv4_addr; }', 'setup');
      let reads = 0;
      // the first read races with a transaction: its generation is not the one after it, so it is read again
      const r = t.consistent((g) => {
        reads++;
        if (reads === 1) nsExec(ns, 'nft', ['add', 'element', 'ip', 'wtc', 's', '{ 10.0.0.1 }']);
        return { g, sets: [...t.structure().sets.keys()] };
      }, 'list wtc');
      expect(reads).toBe(2);
      expect(r.sets).toEqual(['s']);
      expect(r.g).toBe(t.gen());
      // a ruleset that changes under every read: a bounded number of attempts, then an error naming the listing
      let attempts = 0;
      expect(() => t.consistent(() => {
        attempts++;
        nsExec(ns, 'nft', ['add', 'element', 'ip', 'wtc', 's', `{ 10.0.1.${attempts} }`]);
      }, 'list wtc')).toThrow(/list wtc: the ruleset changed during each of 6 listings/);
      expect(attempts).toBe(6);
    } finally {
      t.drop();
      t.close();
    }
  });
});

describe('conntrack', () => {
  it('lists entries by reply source and deletes exactly those', () => {
    const [ns] = nsOf();
    // entries made by hand (no traffic needed): two from one "backend", one from another
    const add = (src: string, sport: number) => execFileSync('ip', ['netns', 'exec', ns, 'conntrack', '-I', '-p', 'udp', '-s', '10.9.0.1', '-d', '10.9.0.9', '--sport', String(sport), '--dport', '53',
      '--reply-src', src, '--reply-dst', '10.9.0.1', '--reply-port-src', '53', '--reply-port-dst', String(sport), '--timeout', '100'], { stdio: 'ignore' });
    add('10.9.1.2', 1000);
    add('10.9.1.2', 1001);
    add('10.9.2.2', 1002);
    const list = (src: string) => withHandle({ netns: ns, protocol: NETLINK_NETFILTER }, (h) => listConntrack(h, { reply: { proto: IPPROTO_UDP, src, sport: 53 } }));
    expect(list('10.9.1.2').map((e) => e.orig.sport).sort()).toEqual([1000, 1001]);
    expect(flushConntrackByReplySource({ netns: ns, proto: IPPROTO_UDP, ip: '10.9.1.2', port: 53 })).toBe(2);
    expect(list('10.9.1.2')).toEqual([]);
    expect(list('10.9.2.2').map((e) => e.orig.sport)).toEqual([1002]);
  });
});

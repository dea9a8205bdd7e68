// The kernel backend's messages, byte for byte against the layout that
// include/uapi/linux/wireguard.h documents (the constants are spelled out here
// from the header, not imported, so a wrong constant in the product fails).
// No kernel WireGuard is needed: requests are decoded by hand, dumps built by
// hand.
import { describe, expect, it } from 'vitest';
import { NLA_F_NESTED, nla, parseAttrList, parseAttrs, type Message } from '../../../dataplane/netlink/codec';
import { GENL_HDRLEN } from '../../../dataplane/netlink/genl';
import { WireGuardProtocolError } from '../../../dataplane/wireguard/errors';
import { decodeDevice, decodeSockaddr, encodeGetDevice, encodeSetDevice, encodeSockaddr } from '../../../dataplane/wireguard/kernel';
import { wireGuardLinkAddRequest } from '../../../dataplane/wireguard/kernel-link';
import { generateKeyPair, keyFingerprint } from '../../../dataplane/wireguard/types';

// from include/uapi/linux/wireguard.h
const H = {
  WG_CMD_GET_DEVICE: 0, WG_CMD_SET_DEVICE: 1, WG_GENL_VERSION: 1,
  WGDEVICE_F_REPLACE_PEERS: 1,
  WGDEVICE_A_IFINDEX: 1, WGDEVICE_A_IFNAME: 2, WGDEVICE_A_PRIVATE_KEY: 3, WGDEVICE_A_PUBLIC_KEY: 4, WGDEVICE_A_FLAGS: 5, WGDEVICE_A_LISTEN_PORT: 6, WGDEVICE_A_FWMARK: 7, WGDEVICE_A_PEERS: 8,
  WGPEER_F_REMOVE_ME: 1, WGPEER_F_REPLACE_ALLOWEDIPS: 2, WGPEER_F_UPDATE_ONLY: 4,
  WGPEER_A_PUBLIC_KEY: 1, WGPEER_A_PRESHARED_KEY: 2, WGPEER_A_FLAGS: 3, WGPEER_A_ENDPOINT: 4, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL: 5,
  WGPEER_A_LAST_HANDSHAKE_TIME: 6, WGPEER_A_RX_BYTES: 7, WGPEER_A_TX_BYTES: 8, WGPEER_A_ALLOWEDIPS: 9, WGPEER_A_PROTOCOL_VERSION: 10,
  WGALLOWEDIP_A_FAMILY: 1, WGALLOWEDIP_A_IPADDR: 2, WGALLOWEDIP_A_CIDR_MASK: 3,
};
const FAMILY_ID = 0x1234;
const dev = generateKeyPair();
const p1 = generateKeyPair();
const p2 = generateKeyPair();
const psk = generateKeyPair().privateKey;
const raw = (k: string) => Buffer.from(k, 'base64');

/** Attribute types with their NLA_F_NESTED bit, in order. */
function rawTypes(buf: Buffer): number[] {
  const out: number[] = [];
  for (let off = 0; off + 4 <= buf.length; ) {
    const len = buf.readUInt16LE(off);
    out.push(buf.readUInt16LE(off + 2));
    off += (len + 3) & ~3;
  }
  return out;
}

describe('WG_CMD_SET_DEVICE encoding', () => {
  it('lays out device attributes, then a nested array of peers with flags and nested allowed IPs', () => {
    const [req, ...more] = encodeSetDevice(FAMILY_ID, 'wg0', {
      privateKey: dev.privateKey,
      listenPort: 51820,
      fwmark: 0x42,
      peers: [
        { publicKey: p1.publicKey, presharedKey: psk, endpoint: '192.0.2.7:51821', persistentKeepalive: 25, allowedIps: ['10.1.0.0/16', 'fd00::/64'] },
        { publicKey: p2.publicKey, updateOnly: true, presharedKey: null, allowedIps: ['10.2.0.0/16'] },
        { publicKey: generateKeyPair().publicKey, remove: true },
      ],
    });
    expect(more).toEqual([]);
    expect(req.type).toBe(FAMILY_ID);
    expect(req.body.readUInt8(0)).toBe(H.WG_CMD_SET_DEVICE);
    expect(req.body.readUInt8(1)).toBe(H.WG_GENL_VERSION);
    const attrs = req.body.subarray(GENL_HDRLEN);
    expect(rawTypes(attrs)).toEqual([H.WGDEVICE_A_IFNAME, H.WGDEVICE_A_PRIVATE_KEY, H.WGDEVICE_A_LISTEN_PORT, H.WGDEVICE_A_FWMARK, H.WGDEVICE_A_PEERS | NLA_F_NESTED]);
    const a = parseAttrs(attrs);
    expect(a.get(H.WGDEVICE_A_IFNAME)).toEqual(Buffer.from('wg0\0'));
    expect(a.get(H.WGDEVICE_A_PRIVATE_KEY)).toEqual(raw(dev.privateKey));
    expect(a.get(H.WGDEVICE_A_LISTEN_PORT)!.readUInt16LE(0)).toBe(51820); // NLA_U16, host order
    expect(a.get(H.WGDEVICE_A_FWMARK)!.readUInt32LE(0)).toBe(0x42);
    const peers = parseAttrList(a.get(H.WGDEVICE_A_PEERS)!);
    expect(rawTypes(a.get(H.WGDEVICE_A_PEERS)!)).toEqual([NLA_F_NESTED, NLA_F_NESTED, NLA_F_NESTED]); // entries "0: NLA_NESTED"
    expect(peers).toHaveLength(3);

    const first = parseAttrs(peers[0][1]);
    expect(rawTypes(peers[0][1])).toEqual([
      H.WGPEER_A_PUBLIC_KEY, H.WGPEER_A_FLAGS, H.WGPEER_A_PRESHARED_KEY, H.WGPEER_A_ENDPOINT, H.WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, H.WGPEER_A_ALLOWEDIPS | NLA_F_NESTED,
    ]);
    expect(first.get(H.WGPEER_A_PUBLIC_KEY)).toEqual(raw(p1.publicKey));
    expect(first.get(H.WGPEER_A_FLAGS)!.readUInt32LE(0)).toBe(H.WGPEER_F_REPLACE_ALLOWEDIPS);
    expect(first.get(H.WGPEER_A_PRESHARED_KEY)).toEqual(raw(psk));
    // struct sockaddr_in: family (host order), port (network order), address, zero padding
    expect(first.get(H.WGPEER_A_ENDPOINT)).toEqual(Buffer.from([2, 0, 0xca, 0x6d, 192, 0, 2, 7, 0, 0, 0, 0, 0, 0, 0, 0]));
    expect(first.get(H.WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL)!.readUInt16LE(0)).toBe(25);
    const ips = parseAttrList(first.get(H.WGPEER_A_ALLOWEDIPS)!).map(([, b]) => parseAttrs(b));
    expect(ips.map((ip) => [ip.get(H.WGALLOWEDIP_A_FAMILY)!.readUInt16LE(0), [...ip.get(H.WGALLOWEDIP_A_IPADDR)!], ip.get(H.WGALLOWEDIP_A_CIDR_MASK)!.readUInt8(0)])).toEqual([
      [2, [10, 1, 0, 0], 16],
      [10, [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 64],
    ]);

    const second = parseAttrs(peers[1][1]);
    expect(second.get(H.WGPEER_A_FLAGS)!.readUInt32LE(0)).toBe(H.WGPEER_F_UPDATE_ONLY | H.WGPEER_F_REPLACE_ALLOWEDIPS);
    expect(second.get(H.WGPEER_A_PRESHARED_KEY)).toEqual(Buffer.alloc(32)); // all zeros: remove the preshared key

    const third = parseAttrs(peers[2][1]);
    expect(rawTypes(peers[2][1])).toEqual([H.WGPEER_A_PUBLIC_KEY, H.WGPEER_A_FLAGS]);
    expect(third.get(H.WGPEER_A_FLAGS)!.readUInt32LE(0)).toBe(H.WGPEER_F_REMOVE_ME);
  });

  it('an in-place update without allowed IPs carries no REPLACE_ALLOWEDIPS; replace_peers only when asked', () => {
    const [req] = encodeSetDevice(FAMILY_ID, 'wg0', { replacePeers: true, peers: [{ publicKey: p1.publicKey, updateOnly: true, endpoint: '[2001:db8::1]:443' }] });
    const a = parseAttrs(req.body, GENL_HDRLEN);
    expect(a.get(H.WGDEVICE_A_FLAGS)!.readUInt32LE(0)).toBe(H.WGDEVICE_F_REPLACE_PEERS);
    const peer = parseAttrs(parseAttrList(a.get(H.WGDEVICE_A_PEERS)!)[0][1]);
    expect(peer.get(H.WGPEER_A_FLAGS)!.readUInt32LE(0)).toBe(H.WGPEER_F_UPDATE_ONLY);
    const ep = peer.get(H.WGPEER_A_ENDPOINT)!;
    expect(ep.length).toBe(28); // struct sockaddr_in6
    expect([ep.readUInt16LE(0), ep.readUInt16BE(2)]).toEqual([10, 443]);
    expect(decodeSockaddr(ep)).toBe('[2001:db8::1]:443');
    expect(encodeSetDevice(FAMILY_ID, 'wg0', { peers: [] })).toEqual([]);
    const [noPeers] = encodeSetDevice(FAMILY_ID, 'wg0', { listenPort: 1, peers: [] });
    expect(parseAttrs(noPeers.body, GENL_HDRLEN).has(H.WGDEVICE_A_PEERS)).toBe(false);
  });

  it('cuts a large update into messages under the budget: a peer continues under its public key, REPLACE_ALLOWEDIPS on its first part only', () => {
    const many = Array.from({ length: 3000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`);
    const reqs = encodeSetDevice(FAMILY_ID, 'wg0', { privateKey: dev.privateKey, peers: [{ publicKey: p1.publicKey, updateOnly: true, allowedIps: many }, { publicKey: p2.publicKey, allowedIps: ['10.255.0.0/16'] }] }, 8192);
    expect(reqs.length).toBeGreaterThan(5);
    const seen: string[] = [];
    reqs.forEach((r, i) => {
      expect(r.body.length).toBeLessThanOrEqual(8192 + 200);
      const a = parseAttrs(r.body, GENL_HDRLEN);
      expect(a.get(H.WGDEVICE_A_IFNAME)).toEqual(Buffer.from('wg0\0'));
      expect(a.has(H.WGDEVICE_A_PRIVATE_KEY)).toBe(i === 0);
      for (const [, pb] of parseAttrList(a.get(H.WGDEVICE_A_PEERS)!)) {
        const p = parseAttrs(pb);
        const key = p.get(H.WGPEER_A_PUBLIC_KEY)!.toString('base64');
        const flags = p.get(H.WGPEER_A_FLAGS)?.readUInt32LE(0);
        if (key === p1.publicKey) {
          expect(flags).toBe(seen.includes(key) ? undefined : H.WGPEER_F_UPDATE_ONLY | H.WGPEER_F_REPLACE_ALLOWEDIPS);
        }
        seen.push(key);
        for (const [, ip] of parseAttrList(p.get(H.WGPEER_A_ALLOWEDIPS)!)) {
          const x = parseAttrs(ip);
          seen.push(`${key}:${[...x.get(H.WGALLOWEDIP_A_IPADDR)!].join('.')}/${x.get(H.WGALLOWEDIP_A_CIDR_MASK)![0]}`);
        }
      }
    });
    // every allowed IP exactly once, in order
    const ips = seen.filter((s) => s.startsWith(`${p1.publicKey}:`)).map((s) => s.slice(p1.publicKey.length + 1));
    expect(ips).toEqual(many);
    expect(seen).toContain(`${p2.publicKey}:10.255.0.0/16`);
  });

  it('checks input before encoding anything, naming the field and never the key', () => {
    expect(() => encodeSetDevice(FAMILY_ID, 'wg0', { privateKey: 'x'.repeat(44), peers: [] })).toThrow(/invalid privateKey/);
    expect(() => encodeSetDevice(FAMILY_ID, 'wg0', { peers: [{ publicKey: p1.publicKey, allowedIps: ['10.0.0.0/33'] }] })).toThrow(/peers\[0\]\.allowedIps\[0\]/);
    expect(() => encodeSetDevice(FAMILY_ID, 'bad name', { peers: [] })).toThrow(/invalid WireGuard interface name/);
    expect(() => encodeSetDevice(FAMILY_ID, 'wg0', { listenPort: 65536, peers: [] })).toThrow(/listenPort/);
  });

  it('the get request is a dump by WGDEVICE_A_IFNAME; the link request creates kind "wireguard"', () => {
    const g = encodeGetDevice(FAMILY_ID, 'wg0');
    expect([g.type, g.body.readUInt8(0), g.body.readUInt8(1)]).toEqual([FAMILY_ID, H.WG_CMD_GET_DEVICE, 1]);
    expect(parseAttrs(g.body, GENL_HDRLEN).get(H.WGDEVICE_A_IFNAME)).toEqual(Buffer.from('wg0\0'));
    const l = wireGuardLinkAddRequest('wg0');
    const linkinfo = parseAttrs(parseAttrs(l.body, 16).get(18)!);
    expect(linkinfo.get(1)).toEqual(Buffer.from('wireguard\0'));
  });
});

// ---- a dump as the kernel sends it ----

function allowed(family: number, addr: number[], mask: number): Buffer {
  return nla.nested(0, [nla.u16(H.WGALLOWEDIP_A_FAMILY, family), nla.bytes(H.WGALLOWEDIP_A_IPADDR, Buffer.from(addr)), nla.u8(H.WGALLOWEDIP_A_CIDR_MASK, mask)]);
}

function fullPeer(key: string, ips: Buffer[], extra: Buffer[] = []): Buffer {
  const ts = Buffer.alloc(16);
  ts.writeBigInt64LE(1700000000n, 0);
  ts.writeBigInt64LE(5_000_000n, 8);
  return nla.nested(0, [
    nla.bytes(H.WGPEER_A_PUBLIC_KEY, raw(key)),
    nla.bytes(H.WGPEER_A_PRESHARED_KEY, Buffer.alloc(32)),
    nla.bytes(H.WGPEER_A_LAST_HANDSHAKE_TIME, ts),
    nla.u64(H.WGPEER_A_RX_BYTES, 10n),
    nla.u64(H.WGPEER_A_TX_BYTES, 20n),
    nla.u16(H.WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 0),
    nla.u32(H.WGPEER_A_PROTOCOL_VERSION, 1),
    ...extra,
    nla.nested(H.WGPEER_A_ALLOWEDIPS, ips),
  ]);
}

function dumpMessage(peers: Buffer[], device: Buffer[] = []): Message {
  const body = Buffer.concat([
    Buffer.from([H.WG_CMD_GET_DEVICE, 1, 0, 0]),
    nla.u32(H.WGDEVICE_A_IFINDEX, 7),
    nla.str(H.WGDEVICE_A_IFNAME, 'wg0'),
    ...device,
    nla.nested(H.WGDEVICE_A_PEERS, peers),
  ]);
  return { type: FAMILY_ID, flags: 2, seq: 1, pid: 1, body };
}

describe('WG_CMD_GET_DEVICE decoding', () => {
  const device = [
    nla.bytes(H.WGDEVICE_A_PRIVATE_KEY, raw(dev.privateKey)),
    nla.bytes(H.WGDEVICE_A_PUBLIC_KEY, raw(dev.publicKey)),
    nla.u16(H.WGDEVICE_A_LISTEN_PORT, 51820),
    nla.u32(H.WGDEVICE_A_FWMARK, 9),
  ];

  it('merges a multi-part dump: a peer cut between messages continues by its public key', () => {
    const ep = Buffer.alloc(16);
    ep.writeUInt16LE(2, 0);
    ep.writeUInt16BE(51821, 2);
    Buffer.from([198, 51, 100, 1]).copy(ep, 4);
    const msgs = [
      dumpMessage([fullPeer(p1.publicKey, [allowed(2, [10, 1, 0, 0], 16)], [nla.bytes(H.WGPEER_A_ENDPOINT, ep), nla.bytes(H.WGPEER_A_PRESHARED_KEY, raw(psk))])], device),
      dumpMessage([nla.nested(0, [nla.bytes(H.WGPEER_A_PUBLIC_KEY, raw(p1.publicKey)), nla.nested(H.WGPEER_A_ALLOWEDIPS, [allowed(10, [0xfd, ...Array(15).fill(0)], 64)])]), fullPeer(p2.publicKey, [])], device),
    ];
    const s = decodeDevice(msgs, 'wg0');
    expect(s).toEqual({
      publicKey: dev.publicKey,
      listenPort: 51820,
      fwmark: 9,
      peers: [
        { publicKey: p1.publicKey, endpoint: '198.51.100.1:51821', allowedIps: ['10.1.0.0/16', 'fd00::/64'], lastHandshakeMs: 1700000000005, rxBytes: 10n, txBytes: 20n, presharedKeyFingerprint: expect.any(String) },
        { publicKey: p2.publicKey, allowedIps: [], lastHandshakeMs: 1700000000005, rxBytes: 10n, txBytes: 20n },
      ],
    });
    // the PRESHARED_KEY given last wins in a repeated attribute; what matters: a fingerprint, never the key
    expect(JSON.stringify(s, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).not.toContain(dev.privateKey);
    expect(s.peers[0].presharedKeyFingerprint).toBe(keyFingerprint(psk));
  });

  it('refuses malformed attributes with a protocol error', () => {
    const cases: Array<[Message[], RegExp]> = [
      [[], /sent no device/],
      [[dumpMessage([nla.nested(0, [nla.bytes(H.WGPEER_A_PUBLIC_KEY, Buffer.alloc(31))])])], /peer public key has 31 bytes, not 32/],
      [[dumpMessage([nla.nested(0, [nla.u32(H.WGPEER_A_FLAGS, 0)])])], /peer without a public key/],
      [[dumpMessage([fullPeer(p1.publicKey, [allowed(2, [10, 0, 0, 0], 33)])])], /allowed IP mask 33 for family 2/],
      [[dumpMessage([fullPeer(p1.publicKey, [allowed(7, [10, 0, 0, 0], 8)])])], /allowed IP of family 7/],
      [[dumpMessage([fullPeer(p1.publicKey, [allowed(10, [10, 0, 0, 0], 8)])])], /allowed IP address of 4 bytes for family 10/],
      [[dumpMessage([fullPeer(p1.publicKey, [], [nla.bytes(H.WGPEER_A_ENDPOINT, Buffer.from([2, 0, 1]))])])], /peer endpoint/],
      [[dumpMessage([fullPeer(p1.publicKey, []), fullPeer(p1.publicKey, [])])], /appears twice/],
      [[dumpMessage([], [nla.bytes(H.WGDEVICE_A_LISTEN_PORT, Buffer.alloc(4))])], /listen port has 4 bytes, not 2/],
      [[{ type: FAMILY_ID, flags: 0, seq: 1, pid: 1, body: Buffer.from([0, 1]) }], /shorter than the generic netlink header/],
      [[dumpMessage([fullPeer(p1.publicKey, [])]), dumpMessage([fullPeer(p1.publicKey, [])])], /repeated in full/],
    ];
    for (const [msgs, re] of cases) {
      let err: unknown;
      try {
        decodeDevice(msgs, 'wg0');
      } catch (e) {
        err = e;
      }
      expect(err, String(re)).toBeInstanceOf(WireGuardProtocolError);
      expect((err as Error).message).toMatch(re);
    }
  });

  it('sockaddr round trip for both families, AF_UNSPEC as no endpoint', () => {
    for (const e of ['192.0.2.1:1', '[fd00::1]:65535']) expect(decodeSockaddr(encodeSockaddr(e))).toBe(e);
    expect(decodeSockaddr(Buffer.alloc(16))).toBeNull();
  });
});

// The kernel backend end to end without a kernel module: a model of the
// kernel's WireGuard family, written from include/uapi/linux/wireguard.h,
// behind a stand-in netlink socket. It answers WG_CMD_GET_DEVICE dumps cut
// into many messages (at most two peers and two allowed IPs each, a peer
// continued by its public key, as the kernel does when a dump fills its
// buffer) and applies WG_CMD_SET_DEVICE by its flags.
import { describe, expect, it } from 'vitest';
import {
  NLM_F_DUMP, NLM_F_MULTI, NLMSG_DONE, encodeMessage, nla, parseAttrList, parseAttrs, type Message,
} from '../../../dataplane/netlink/codec';
import { handleOnSocket } from '../../../dataplane/netlink/handle';
import { kernelDevice } from '../../../dataplane/wireguard/kernel';
import { reconcileDevice } from '../../../dataplane/wireguard/reconcile';
import { generateKeyPair, publicKeyOf, type DeviceConfig } from '../../../dataplane/wireguard/types';
import { ack, fakeSocket, PORT } from '../../netlink/handle-fake-socket';

const FAMILY = 0x2a;
type Peer = { psk: Buffer; endpoint?: Buffer; keepalive: number; ips: Buffer[]; rx: bigint; handshake: bigint };
type Model = { privateKey?: Buffer; port: number; fwmark: number; peers: Map<string, Peer>; sets: number; dumps: number; lastDumpMessages: number };

function fakeKernel(m: Model) {
  const reply = (req: Message, attrs: Buffer[], flags = NLM_F_MULTI) =>
    encodeMessage({ type: FAMILY, flags, seq: req.seq, pid: PORT, body: Buffer.concat([Buffer.from([0, 1, 0, 0]), ...attrs]) });

  function dump(req: Message): Buffer[] {
    m.dumps++;
    const device = [nla.u32(1, 3), nla.str(2, 'wg0'), nla.u16(6, m.port), nla.u32(7, m.fwmark)];
    if (m.privateKey) device.push(nla.bytes(3, m.privateKey), nla.bytes(4, Buffer.from(publicKeyOf(m.privateKey.toString('base64')), 'base64')));
    // messages of at most two peer parts; a peer with more than two allowed IPs
    // fills its message and goes on in the next under its public key
    const messages: Buffer[][] = [[]];
    for (const [key, p] of m.peers) {
      const ts = Buffer.alloc(16);
      ts.writeBigInt64LE(p.handshake, 0);
      const full = [
        nla.bytes(1, Buffer.from(key, 'base64')), nla.bytes(2, p.psk), nla.u16(5, p.keepalive), nla.bytes(6, ts), nla.u64(7, p.rx), nla.u64(8, 0n), nla.u32(10, 1),
        ...(p.endpoint ? [nla.bytes(4, p.endpoint)] : []),
      ];
      for (let i = 0; i === 0 || i < p.ips.length; i += 2) {
        if (messages[messages.length - 1].length === 2) messages.push([]);
        const head = i === 0 ? full : [nla.bytes(1, Buffer.from(key, 'base64'))];
        messages[messages.length - 1].push(nla.nested(0, [...head, nla.nested(9, p.ips.slice(i, i + 2))]));
        if (i + 2 < p.ips.length) messages.push([]);
      }
    }
    const out = messages.map((parts) => reply(req, [...device, nla.nested(8, parts)]));
    m.lastDumpMessages = messages.length;
    out.push(encodeMessage({ type: NLMSG_DONE, flags: NLM_F_MULTI, seq: req.seq, pid: PORT, body: Buffer.alloc(4) }));
    return out;
  }

  function set(req: Message): void {
    m.sets++;
    const a = parseAttrs(req.body, 4);
    expect(a.get(2)).toEqual(Buffer.from('wg0\0'));
    if (a.has(3)) m.privateKey = a.get(3);
    if (a.has(6)) m.port = a.get(6)!.readUInt16LE(0);
    if (a.has(7)) m.fwmark = a.get(7)!.readUInt32LE(0);
    if (a.has(5) && a.get(5)!.readUInt32LE(0) & 1) m.peers.clear();
    for (const [, pb] of parseAttrList(a.get(8) ?? Buffer.alloc(0))) {
      const p = parseAttrs(pb);
      const key = p.get(1)!.toString('base64');
      const flags = p.get(3)?.readUInt32LE(0) ?? 0;
      if (flags & 1) {
        m.peers.delete(key);
        continue;
      }
      let peer = m.peers.get(key);
      if (!peer) {
        if (flags & 4) continue; // UPDATE_ONLY: never create
        peer = { psk: Buffer.alloc(32), keepalive: 0, ips: [], rx: 0n, handshake: 0n };
        m.peers.set(key, peer);
      }
      if (p.has(2)) peer.psk = p.get(2)!;
      if (p.has(4)) peer.endpoint = p.get(4)!;
      if (p.has(5)) peer.keepalive = p.get(5)!.readUInt16LE(0);
      if (flags & 2) peer.ips = [];
      for (const [, ip] of parseAttrList(p.get(9) ?? Buffer.alloc(0))) peer.ips.push(nla.nested(0, parseAttrList(ip).map(([t, v]) => nla.bytes(t, v))));
    }
  }

  return fakeSocket((req) => {
    if (req.flags & NLM_F_DUMP) {
      expect(req.body[0]).toBe(0); // WG_CMD_GET_DEVICE
      return dump(req).map((data) => ({ data }));
    }
    expect(req.body[0]).toBe(1); // WG_CMD_SET_DEVICE
    set(req);
    return [{ data: ack(req) }];
  });
}

describe('the kernel backend against a model of the kernel family', () => {
  it('configures, reads back across a multi-part dump, and a second reconcile sends nothing; peers change in place', async () => {
    const model: Model = { port: 0, fwmark: 0, peers: new Map(), sets: 0, dumps: 0, lastDumpMessages: 0 };
    const dev = kernelDevice(handleOnSocket(fakeKernel(model)), FAMILY, 'wg0');
    const keys = Array.from({ length: 4 }, () => generateKeyPair());
    const cfg: DeviceConfig = {
      privateKey: keys[0].privateKey,
      listenPort: 51820,
      fwmark: 5,
      peers: [
        { publicKey: keys[1].publicKey, endpoint: '192.0.2.1:51820', allowedIps: ['10.1.0.0/16', '10.2.0.0/16', '10.3.0.0/16', 'fd00::/64', 'fd01::/64'], persistentKeepalive: 25 },
        { publicKey: keys[2].publicKey, presharedKey: keys[3].privateKey, endpoint: '[2001:db8::2]:51820', allowedIps: ['10.9.0.0/16'] },
        { publicKey: keys[3].publicKey, allowedIps: [] },
      ],
    };
    expect(await reconcileDevice(dev, cfg)).toMatchObject({ deviceFields: 3, peersAdded: 3, writes: 1 });
    expect(model.sets).toBe(1);

    const state = await dev.get();
    expect(model.lastDumpMessages).toBe(4); // peer 1's five allowed IPs span three messages
    expect(state.publicKey).toBe(keys[0].publicKey);
    expect(state.peers.map((p) => [p.publicKey, p.allowedIps.length])).toEqual([[keys[1].publicKey, 5], [keys[2].publicKey, 1], [keys[3].publicKey, 0]]);
    expect(JSON.stringify(state, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).not.toContain(keys[0].privateKey);

    expect(await reconcileDevice(dev, cfg)).toEqual({ deviceFields: 0, peersAdded: 0, peersUpdated: 0, peersRemoved: 0, peersUnchanged: 3, writes: 0 });
    expect(model.sets).toBe(1);

    // traffic happened on peer 1; a change to peer 2 leaves it alone
    model.peers.get(keys[1].publicKey)!.rx = 999n;
    model.peers.get(keys[1].publicKey)!.handshake = 1700000000n;
    const next = structuredClone(cfg);
    next.peers[1].allowedIps = ['10.9.0.0/16', '10.10.0.0/16'];
    next.peers.pop();
    expect(await reconcileDevice(dev, next)).toMatchObject({ peersUpdated: 1, peersRemoved: 1, peersUnchanged: 1, writes: 1 });
    const after = await dev.get();
    expect(after.peers.find((p) => p.publicKey === keys[1].publicKey)).toMatchObject({ rxBytes: 999n, lastHandshakeMs: 1700000000000 });
    expect(after.peers.find((p) => p.publicKey === keys[2].publicKey)!.allowedIps.sort()).toEqual(['10.10.0.0/16', '10.9.0.0/16']);
    expect(await reconcileDevice(dev, next)).toMatchObject({ writes: 0 });
  });
});

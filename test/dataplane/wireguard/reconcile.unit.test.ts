// The reconciler's plan, pure: the smallest update from a device's state to
// the wanted config, nothing when they agree, peers changed in place.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { WireGuardDevice } from '../../../dataplane/wireguard/device';
import { planDevice, reconcileDevice } from '../../../dataplane/wireguard/reconcile';
import {
  generateKeyPair, keyFingerprint, publicKeyOf, type DeviceConfig, type DeviceState, type DeviceUpdate, type PeerState,
} from '../../../dataplane/wireguard/types';
import { captureLogger } from '../../helpers/log';

const keys = Array.from({ length: 8 }, () => generateKeyPair());
const me = keys[0];

/** What a device would report after being configured with `c` from scratch. */
function stateOf(c: DeviceConfig, extra: Partial<PeerState> = {}): DeviceState {
  return {
    publicKey: publicKeyOf(c.privateKey),
    listenPort: c.listenPort ?? 40000,
    fwmark: c.fwmark ?? 0,
    peers: c.peers.map((p) => ({
      publicKey: p.publicKey,
      ...(p.presharedKey ? { presharedKeyFingerprint: keyFingerprint(p.presharedKey) } : {}),
      ...(p.endpoint ? { endpoint: p.endpoint } : {}),
      ...(p.persistentKeepalive ? { persistentKeepalive: p.persistentKeepalive } : {}),
      allowedIps: [...p.allowedIps].reverse(), // devices list in their own order
      lastHandshakeMs: 1,
      rxBytes: 5n,
      txBytes: 6n,
      ...extra,
    })),
  };
}

/** A model device: applies an update the way the UAPI and the kernel define it. */
function applyModel(s: DeviceState, u: DeviceUpdate): DeviceState {
  const out: DeviceState = structuredClone(s);
  if (u.privateKey) out.publicKey = publicKeyOf(u.privateKey);
  if (u.listenPort !== undefined) out.listenPort = u.listenPort;
  if (u.fwmark !== undefined) out.fwmark = u.fwmark;
  if (u.replacePeers) out.peers = [];
  for (const p of u.peers) {
    const i = out.peers.findIndex((x) => x.publicKey === p.publicKey);
    if (p.remove) {
      if (i >= 0) out.peers.splice(i, 1);
      continue;
    }
    if (i < 0 && p.updateOnly) continue;
    const peer = i >= 0 ? out.peers[i] : { publicKey: p.publicKey, allowedIps: [], lastHandshakeMs: 0, rxBytes: 0n, txBytes: 0n };
    if (i < 0) out.peers.push(peer);
    if (p.presharedKey !== undefined) {
      if (p.presharedKey === null) delete peer.presharedKeyFingerprint;
      else peer.presharedKeyFingerprint = keyFingerprint(p.presharedKey);
    }
    if (p.endpoint !== undefined) peer.endpoint = p.endpoint;
    if (p.persistentKeepalive !== undefined) {
      if (p.persistentKeepalive === 0) delete peer.persistentKeepalive;
      else peer.persistentKeepalive = p.persistentKeepalive;
    }
    if (p.allowedIps !== undefined) peer.allowedIps = [...p.allowedIps];
  }
  return out;
}

const base: DeviceConfig = {
  privateKey: me.privateKey,
  listenPort: 51820,
  peers: [
    { publicKey: keys[1].publicKey, endpoint: '192.0.2.1:51820', allowedIps: ['10.1.0.0/16', 'fd01::/64'], persistentKeepalive: 25 },
    { publicKey: keys[2].publicKey, presharedKey: keys[7].privateKey, allowedIps: ['10.2.0.0/16'] },
  ],
};

describe('planDevice', () => {
  it('plans nothing when the device matches, whatever order it lists allowed IPs in and whatever its counters', () => {
    const { update, counts } = planDevice(base, stateOf(base));
    expect(update).toEqual({ peers: [] });
    expect(counts).toEqual({ deviceFields: 0, peersAdded: 0, peersUpdated: 0, peersRemoved: 0, peersUnchanged: 2, writes: 0 });
  });

  it('configures a fresh device: key, port, every peer created (no update_only, no replace_peers)', () => {
    const { update, counts } = planDevice(base, { listenPort: 39000, fwmark: 0, peers: [] });
    expect(update.privateKey).toBe(me.privateKey);
    expect(update.listenPort).toBe(51820);
    expect(update.replacePeers).toBeUndefined();
    expect(update.peers.map((p) => [p.publicKey, p.updateOnly, p.allowedIps])).toEqual([
      [keys[1].publicKey, undefined, ['10.1.0.0/16', 'fd01::/64']],
      [keys[2].publicKey, undefined, ['10.2.0.0/16']],
    ]);
    expect(counts).toMatchObject({ deviceFields: 2, peersAdded: 2 });
  });

  it('changes one peer in place: only what differs, update_only, allowed IPs only when they changed', () => {
    const want: DeviceConfig = { ...base, peers: [{ ...base.peers[0], endpoint: '192.0.2.9:51820' }, { ...base.peers[1], allowedIps: ['10.2.0.0/16', '10.3.0.0/16'] }] };
    const { update, counts } = planDevice(want, stateOf(base));
    expect(update).toEqual({
      peers: [
        { publicKey: keys[1].publicKey, updateOnly: true, endpoint: '192.0.2.9:51820' },
        { publicKey: keys[2].publicKey, updateOnly: true, allowedIps: ['10.2.0.0/16', '10.3.0.0/16'] },
      ],
    });
    expect(counts).toMatchObject({ peersUpdated: 2, peersUnchanged: 0 });
  });

  it('removes peers that are no longer wanted, clears a dropped preshared key and keepalive', () => {
    const want: DeviceConfig = { ...base, peers: [{ publicKey: keys[2].publicKey, allowedIps: ['10.2.0.0/16'] }] };
    const { update, counts } = planDevice(want, stateOf(base));
    expect(update.peers).toEqual([
      { publicKey: keys[1].publicKey, remove: true },
      { publicKey: keys[2].publicKey, updateOnly: true, presharedKey: null },
    ]);
    expect(counts).toMatchObject({ peersRemoved: 1, peersUpdated: 1 });
  });

  it('leaves a learned endpoint alone when the config names none, and a port the config leaves open', () => {
    const want: DeviceConfig = { privateKey: me.privateKey, peers: [{ publicKey: keys[1].publicKey, allowedIps: [] }] };
    const actual = stateOf({ ...want, peers: [{ ...want.peers[0], endpoint: '203.0.113.5:1234' }] });
    expect(planDevice(want, actual).update).toEqual({ peers: [] });
  });

  it('a new private key is one device field, and compares through the public key', () => {
    const want = { ...base, privateKey: keys[6].privateKey };
    const { update, counts } = planDevice(want, stateOf(base));
    expect(update.privateKey).toBe(keys[6].privateKey);
    expect(counts.deviceFields).toBe(1);
  });

  it('refuses a bad config naming the field and never the key', () => {
    const bad = [
      [{ ...base, privateKey: me.privateKey.slice(0, 43) }, /invalid privateKey/],
      [{ ...base, peers: [base.peers[0], base.peers[0]] }, /peers\[1\]\.publicKey .* is listed twice/],
      [{ ...base, peers: [{ ...base.peers[0], publicKey: me.publicKey }] }, /device's own public key/],
      [{ ...base, peers: [{ ...base.peers[0], endpoint: 'gw.example.com:51820' }] }, /invalid peers\[0\]\.endpoint/],
      [{ ...base, peers: [{ ...base.peers[0], allowedIps: ['10.0.0.0/40'] }] }, /peers\[0\]\.allowedIps\[0\]|prefix length/],
      [{ ...base, peers: [base.peers[0], { ...base.peers[1], presharedKey: keys[7].privateKey.slice(0, 43) }] }, /invalid peers\[1\]\.presharedKey/],
      [{ ...base, listenPort: 70000 }, /listenPort/],
    ] as const;
    for (const [cfg, re] of bad) {
      let err: Error | undefined;
      try {
        planDevice(cfg as DeviceConfig, stateOf(base));
      } catch (e) {
        err = e as Error;
      }
      expect(err?.message, String(re)).toMatch(re);
      expect((err as { code?: string }).code).toBe('WEFT_INVALID_ARGUMENT');
      for (const k of keys) expect(err!.message).not.toContain(k.privateKey.slice(0, 43));
    }
  });

  const arbConfig = fc.record({
    key: fc.integer({ min: 0, max: 7 }),
    port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
    peers: fc.uniqueArray(
      fc.record({
        key: fc.integer({ min: 1, max: 7 }),
        psk: fc.option(fc.integer({ min: 0, max: 7 }), { nil: undefined }),
        ep: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
        ka: fc.option(fc.integer({ min: 0, max: 600 }), { nil: undefined }),
        ips: fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { maxLength: 4 }),
      }),
      { selector: (p) => p.key, maxLength: 6 },
    ),
  }).map(({ key, port, peers }): DeviceConfig => ({
    privateKey: keys[key].privateKey,
    listenPort: port,
    peers: peers
      .filter((p) => p.key !== key)
      .map((p) => ({
        publicKey: keys[p.key].publicKey,
        presharedKey: p.psk === undefined ? undefined : keys[p.psk].privateKey,
        endpoint: p.ep === undefined ? undefined : `192.0.2.${p.key}:${p.ep}`,
        persistentKeepalive: p.ka,
        allowedIps: p.ips.map((n) => `10.${n}.0.0/16`),
      })),
  }));

  it('property: from any device state, one planned update reaches the config, and a second plan is empty', () => {
    fc.assert(
      fc.property(arbConfig, arbConfig, (from, to) => {
        const after = applyModel(stateOf(from), planDevice(to, stateOf(from)).update);
        const again = planDevice(to, after);
        expect(again.update).toEqual({ peers: [] });
        // peers kept across the change keep their counters and handshake: changed in place, not recreated
        for (const p of after.peers) if (from.peers.some((f) => f.publicKey === p.publicKey)) expect(p.rxBytes).toBe(5n);
      }),
      { numRuns: 150 },
    );
  });
});

describe('reconcileDevice', () => {
  function fakeDevice(state: DeviceState): WireGuardDevice & { writes: DeviceUpdate[] } {
    const writes: DeviceUpdate[] = [];
    return {
      name: 'wtfake',
      backend: 'userspace',
      writes,
      get: async () => structuredClone(state),
      apply: async (u) => {
        writes.push(u);
        state = applyModel(state, u);
      },
    };
  }

  it('applies once, then writes nothing; logs what changed without a secret', async () => {
    const { logger, lines } = captureLogger();
    const d = fakeDevice({ listenPort: 0, fwmark: 0, peers: [] });
    expect((await reconcileDevice(d, base, { log: logger })).writes).toBe(1);
    expect(await reconcileDevice(d, base, { log: logger })).toEqual({ deviceFields: 0, peersAdded: 0, peersUpdated: 0, peersRemoved: 0, peersUnchanged: 2, writes: 0 });
    expect(d.writes).toHaveLength(1);
    expect(lines).toHaveLength(1);
    const text = JSON.stringify(lines);
    expect(text).toContain(keys[1].publicKey);
    for (const k of keys) expect(text).not.toContain(k.privateKey);
  });

  it('a bad config reads and writes nothing', async () => {
    let reads = 0;
    const d: WireGuardDevice = { name: 'x', backend: 'userspace', get: async () => (reads++, { listenPort: 0, fwmark: 0, peers: [] }), apply: async () => {} };
    await expect(reconcileDevice(d, { ...base, listenPort: -1 })).rejects.toThrow(/listenPort/);
    expect(reads).toBe(0);
  });
});

// Reconcile a WireGuard device like the overlay: render the desired config
// (the caller's DeviceConfig, checked and made canonical), list the device's
// state, diff the two into the smallest update, apply it. Nothing is sent
// when they agree, so a restart of the controlling process re-keys nothing
// and recreates no peer; a changed peer is changed in place (update_only,
// never remove + add), so its session and handshake survive; allowed IPs are
// replaced only for the peer whose list changed.
//
// What is compared: the private key (through its public key; never logged), the
// listen port and fwmark when the config sets them, and per peer the
// preshared key, keepalive, allowed IPs and the endpoint when the config
// sets one. A peer without a configured endpoint keeps whatever the device
// learned from its packets (roaming); one with an endpoint is pinned to it.
import type { Logger } from 'pino';
import { isEmptyUpdate, type WireGuardDevice } from './device';
import {
  keyFingerprint, normalizeConfig, publicKeyOf, redactUpdate, sortAllowedIps, type DeviceConfig, type DeviceState, type DeviceUpdate, type PeerConfig,
  type PeerState, type PeerUpdate,
} from './types';

/** What a reconcile did; all zero (and writes 0) when the device already matched. */
export type ReconcileCounts = {
  /** Device fields changed: private key, listen port, fwmark. */
  deviceFields: number;
  peersAdded: number;
  peersUpdated: number;
  peersRemoved: number;
  peersUnchanged: number;
  /** Update operations sent to the device: 0 or 1. */
  writes: number;
};

export type DevicePlan = { update: DeviceUpdate; counts: ReconcileCounts };

function peerChange(want: PeerConfig, have: PeerState): PeerUpdate | null {
  const u: PeerUpdate = { publicKey: want.publicKey, updateOnly: true };
  let changed = false;
  if ((want.presharedKey === undefined ? undefined : keyFingerprint(want.presharedKey)) !== have.presharedKeyFingerprint) {
    u.presharedKey = want.presharedKey ?? null;
    changed = true;
  }
  if (want.endpoint !== undefined && want.endpoint !== have.endpoint) {
    u.endpoint = want.endpoint;
    changed = true;
  }
  if ((want.persistentKeepalive ?? 0) !== (have.persistentKeepalive ?? 0)) {
    u.persistentKeepalive = want.persistentKeepalive ?? 0;
    changed = true;
  }
  const haveIps = sortAllowedIps(have.allowedIps);
  if (want.allowedIps.length !== haveIps.length || want.allowedIps.some((a, i) => a !== haveIps[i])) {
    u.allowedIps = want.allowedIps;
    changed = true;
  }
  return changed ? u : null;
}

function newPeer(p: PeerConfig): PeerUpdate {
  const u: PeerUpdate = { publicKey: p.publicKey, allowedIps: p.allowedIps };
  if (p.presharedKey !== undefined) u.presharedKey = p.presharedKey;
  if (p.endpoint !== undefined) u.endpoint = p.endpoint;
  if (p.persistentKeepalive !== undefined) u.persistentKeepalive = p.persistentKeepalive;
  return u;
}

/**
 * The smallest update from `actual` to `desired` (pure). `desired` is checked
 * and made canonical first; a bad config throws InvalidArgumentError before
 * anything is compared.
 */
export function planDevice(desired: DeviceConfig, actual: DeviceState): DevicePlan {
  const want = normalizeConfig(desired);
  const update: DeviceUpdate = { peers: [] };
  const counts: ReconcileCounts = { deviceFields: 0, peersAdded: 0, peersUpdated: 0, peersRemoved: 0, peersUnchanged: 0, writes: 0 };
  // the device reports the public key of its private key; comparing those compares the private keys
  if (publicKeyOf(want.privateKey) !== actual.publicKey) {
    update.privateKey = want.privateKey;
    counts.deviceFields++;
  }
  if (want.listenPort !== undefined && want.listenPort !== actual.listenPort) {
    update.listenPort = want.listenPort;
    counts.deviceFields++;
  }
  if (want.fwmark !== undefined && want.fwmark !== actual.fwmark) {
    update.fwmark = want.fwmark;
    counts.deviceFields++;
  }
  const have = new Map(actual.peers.map((p) => [p.publicKey, p]));
  const wanted = new Set(want.peers.map((p) => p.publicKey));
  for (const p of actual.peers) {
    if (!wanted.has(p.publicKey)) {
      update.peers.push({ publicKey: p.publicKey, remove: true });
      counts.peersRemoved++;
    }
  }
  for (const p of want.peers) {
    const h = have.get(p.publicKey);
    if (!h) {
      update.peers.push(newPeer(p));
      counts.peersAdded++;
      continue;
    }
    const change = peerChange(p, h);
    if (change) {
      update.peers.push(change);
      counts.peersUpdated++;
    } else {
      counts.peersUnchanged++;
    }
  }
  return { update, counts };
}

export type ReconcileOptions = { log?: Logger };

/**
 * Read the device, plan, apply. Returns what was done; a device that already
 * matches gets no write at all. Logs what changed at info (never a key but
 * public ones) and nothing when nothing changed.
 */
export async function reconcileDevice(device: WireGuardDevice, desired: DeviceConfig, o: ReconcileOptions = {}): Promise<ReconcileCounts> {
  // check the config before touching the device: bad input reads nothing and writes nothing
  normalizeConfig(desired);
  const actual = await device.get();
  const { update, counts } = planDevice(desired, actual);
  if (isEmptyUpdate(update)) return counts;
  await device.apply(update);
  counts.writes = 1;
  o.log?.info({ device: device.name, backend: device.backend, counts, update: redactUpdate(update) }, 'wireguard device reconciled');
  return counts;
}

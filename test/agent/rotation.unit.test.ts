// Key rotation on the host with every dependency a fake: the order of the
// steps (new key made, drain, idle, key file swapped, reconcile, register,
// handshakes, undrain), the last active gateway rotating in place, a host
// that is no gateway, the bounded waits, retries once the key changed, a
// refused drain leaving the old key in use, crash safety of the key files,
// and the schedule (interval with jitter, off at 0, operator generations
// acted on once, across restarts). Runs as any user: a temp state dir only.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_ROTATION_INTERVAL_MS, type RotationDeps, handshakesSince, keyName, remoteGatewaysOf, rotateKey, startKeyRotation,
} from '../../cni-plugin/agent/tunnel/rotation';
import {
  WG_KEY_FILE, WG_NEXT_KEY_FILE, commitNextWireGuardKeys, ensureWireGuardKeys, prepareNextWireGuardKeys, readRotationGeneration,
  wireGuardPublicKey,
} from '../../cni-plugin/agent/state/wireguard-keys';
import { parseDurationMs } from '../../controller/common/config-sources';
import { captureLogger, type LogLine } from '../helpers/log';
import { waitFor } from '../helpers/wait';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'weft-rotation-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const keyFile = () => readFileSync(join(dir, WG_KEY_FILE), 'utf8').trim();

class LastActive extends Error {
  weftCode = 'WEFT_GATEWAY_LAST_ACTIVE';
}

type Fake = {
  deps: RotationDeps;
  steps: string[];
  lines: LogLine[];
  clock: { now: number };
  /** Everything sent to the controller, as it would be stored. */
  sent: unknown[];
  set: Partial<{
    drain: () => Promise<{ datacenters: string[] }>;
    undrain: () => Promise<{ datacenters: string[] }>;
    idleAfterMs: number;
    handshakeAfterMs: number;
    registerFailures: number;
    gateways: string[];
  }>;
};

/** A gateway of dc1 with two remote gateways; the fake clock moves only when the rotation sleeps. */
function fake(): Fake {
  const { logger, lines } = captureLogger('debug');
  const steps: string[] = [];
  const sent: unknown[] = [];
  const clock = { now: 1_000_000 };
  const f: Fake = { steps, lines, clock, sent, set: {}, deps: undefined as never };
  let drainedAt = 0;
  let swappedAt = 0;
  f.deps = {
    now: () => clock.now,
    stateDir: dir,
    async setOwnGatewayState(state) {
      steps.push(state === 'draining' ? 'drain' : 'undrain');
      sent.push({ state });
      if (state === 'draining') {
        drainedAt = clock.now;
        return (f.set.drain ?? (async () => ({ datacenters: ['dc1'] })))();
      }
      return (f.set.undrain ?? (async () => ({ datacenters: ['dc1'] })))();
    },
    lastActive: (err) => (err as { weftCode?: string }).weftCode === 'WEFT_GATEWAY_LAST_ACTIVE',
    async registerPublicKey(pub) {
      steps.push(`register ${keyName(pub)}`);
      sent.push({ wg_public_key: pub });
      if ((f.set.registerFailures ?? 0) > 0) {
        f.set.registerFailures!--;
        throw Object.assign(new Error('SetWireGuardKey: UNAVAILABLE: controller away'), { code: 14 });
      }
    },
    async tunnelIdle() {
      const idle = clock.now - drainedAt >= (f.set.idleAfterMs ?? 0);
      if (idle && !steps.includes('idle')) steps.push('idle');
      return idle;
    },
    remoteGateways: () => f.set.gateways ?? ['h7', 'h8'],
    handshakeWith(peers, since) {
      expect(since).toBe(swappedAt);
      const ok = clock.now - since >= (f.set.handshakeAfterMs ?? 0);
      if (ok && !steps.includes('handshakes')) steps.push(`handshakes ${peers.join(',')}`);
      return ok;
    },
    async reconcileNow() {
      swappedAt = clock.now;
      // the device reads the key file here: it must hold the new key already
      steps.push(`reconcile ${keyName(wireGuardPublicKey(keyFile()))}`);
    },
    log: logger,
    async sleep(ms) {
      clock.now += ms;
      // a turn of the event loop, so a scheduler sleeping on this clock never starves the test's own timers
      await new Promise((r) => setImmediate(r));
    },
  };
  return f;
}

/** Every form a private key could leak in: base64 (as stored), base64url, hex, and the raw bytes. */
function leaks(privateKey: string, haystack: string): string[] {
  const raw = Buffer.from(privateKey, 'base64');
  const forms = { base64: privateKey, base64url: raw.toString('base64url'), hex: raw.toString('hex'), raw: raw.toString('latin1') };
  return Object.entries(forms).filter(([, v]) => haystack.includes(v)).map(([k]) => k);
}

describe('rotateKey', () => {
  it('drains, waits for idle, swaps the key file, reconciles, registers, waits for handshakes and undrains, in that order', async () => {
    const old = await ensureWireGuardKeys(dir);
    const f = fake();
    f.set.idleAfterMs = 750;
    f.set.handshakeAfterMs = 1000;
    const out = await rotateKey(f.deps, 'test');
    const now = await ensureWireGuardKeys(dir);
    expect(now.publicKey).not.toBe(old.publicKey);
    expect(out).toEqual({ publicKey: now.publicKey, drained: true, lastActive: false, idle: true, handshakes: true });
    const k = keyName(now.publicKey);
    expect(f.steps).toEqual(['drain', 'idle', `reconcile ${k}`, `register ${k}`, 'handshakes h7,h8', 'undrain']);
    // the pending file is gone; the key file is private and stamped with the time it took over
    expect(existsSync(join(dir, WG_NEXT_KEY_FILE))).toBe(false);
    expect(statSync(join(dir, WG_KEY_FILE)).mode & 0o777).toBe(0o600);
    // neither key's private half is in the log or in what went to the controller
    const logged = f.lines.map((l) => JSON.stringify(l)).join('\n');
    const wire = JSON.stringify(f.sent);
    for (const priv of [old.privateKey, now.privateKey]) {
      expect(leaks(priv, logged)).toEqual([]);
      expect(leaks(priv, wire)).toEqual([]);
    }
    expect(f.lines.map((l) => l.msg)).toContain('key rotation: done');
  });

  it('rotates in place when the controller says this is the last active gateway, and does not undrain', async () => {
    await ensureWireGuardKeys(dir);
    const f = fake();
    f.set.drain = async () => {
      throw new LastActive('SetOwnGatewayState: FAILED_PRECONDITION: state: datacenter "dc1" would have no active gateway');
    };
    const out = await rotateKey(f.deps, 'test');
    expect(out).toMatchObject({ drained: false, lastActive: true });
    expect(f.steps.filter((s) => s === 'undrain' || s === 'idle')).toEqual([]);
    expect(f.steps[0]).toBe('drain');
    expect(f.lines.find((l) => l.level === 'warn' && /last active gateway/.test(l.msg))).toBeDefined();
  });

  it('waits for another draining gateway of its datacenter to come back, then drains (rotate-key --all takes turns)', async () => {
    await ensureWireGuardKeys(dir);
    const f = fake();
    let refusals = 3;
    f.set.drain = async () => {
      if (refusals-- > 0) throw new LastActive('SetOwnGatewayState: FAILED_PRECONDITION: state: datacenter "dc1" would have no active gateway');
      return { datacenters: ['dc1'] };
    };
    f.deps.hasOtherGateway = () => true;
    const out = await rotateKey(f.deps, 'test');
    expect(out).toMatchObject({ drained: true, lastActive: false });
    expect(f.steps.filter((s) => s === 'drain')).toHaveLength(4);
    expect(f.steps).toContain('undrain');
    expect(f.lines.find((l) => l.level === 'warn' && /last active gateway/.test(l.msg))).toBeUndefined();
  });

  it('rotates in place when the other draining gateway does not come back within the bound', async () => {
    await ensureWireGuardKeys(dir);
    const f = fake();
    f.set.drain = async () => {
      throw new LastActive('SetOwnGatewayState: FAILED_PRECONDITION: state: datacenter "dc1" would have no active gateway');
    };
    f.deps.hasOtherGateway = () => true;
    f.deps.limits = { peerDrainMs: 5_000 };
    const out = await rotateKey(f.deps, 'test');
    expect(out).toMatchObject({ drained: false, lastActive: true });
    expect(f.steps.filter((s) => s === 'undrain')).toEqual([]);
    expect(f.lines.find((l) => l.level === 'warn' && /last active gateway/.test(l.msg))).toBeDefined();
  });

  it('on a host that is no gateway: no idle wait and no undrain', async () => {
    await ensureWireGuardKeys(dir);
    const f = fake();
    f.set.drain = async () => ({ datacenters: [] });
    f.set.gateways = [];
    f.set.idleAfterMs = 1e9;
    const out = await rotateKey(f.deps, 'test');
    expect(out).toMatchObject({ drained: false, lastActive: false, idle: true, handshakes: true });
    expect(f.steps.map((s) => s.split(' ')[0])).toEqual(['drain', 'reconcile', 'register', 'handshakes']);
  });

  it('bounds both waits, and still undrains', async () => {
    await ensureWireGuardKeys(dir);
    const f = fake();
    f.set.idleAfterMs = 1e9;
    f.set.handshakeAfterMs = 1e9;
    f.deps.limits = { idleMs: 10_000, handshakeMs: 30_000, pollMs: 250 };
    const start = f.clock.now;
    const out = await rotateKey(f.deps, 'test');
    expect(out).toMatchObject({ drained: true, idle: false, handshakes: false });
    expect(f.clock.now - start).toBe(40_000);
    expect(f.steps.at(-1)).toBe('undrain');
    expect(f.lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([
      'key rotation: traffic still passes this gateway after draining; rotating anyway',
      'key rotation: not every remote gateway has shaken hands under the new key yet',
    ]);
  });

  it('retries the registration until the controller takes it, with the new key already in the file', async () => {
    await ensureWireGuardKeys(dir);
    const f = fake();
    f.set.registerFailures = 3;
    const out = await rotateKey(f.deps, 'test');
    expect(f.steps.filter((s) => s.startsWith('register'))).toHaveLength(4);
    expect(keyFile()).toBe((await ensureWireGuardKeys(dir)).privateKey);
    expect(out.publicKey).toBe((await ensureWireGuardKeys(dir)).publicKey);
    expect(f.steps.at(-1)).toBe('undrain');
  });

  it('a refused drain leaves the old key in use and the pending key for the next attempt', async () => {
    const old = await ensureWireGuardKeys(dir);
    const f = fake();
    f.set.drain = async () => {
      throw Object.assign(new Error('SetOwnGatewayState: UNAVAILABLE: no controller'), { code: 14 });
    };
    await expect(rotateKey(f.deps, 'test')).rejects.toThrow(/UNAVAILABLE/);
    expect(keyFile()).toBe(old.privateKey);
    const pending = readFileSync(join(dir, WG_NEXT_KEY_FILE), 'utf8').trim();
    expect(pending).not.toBe(old.privateKey);
    // the next attempt moves to that same pending key
    const g = fake();
    const out = await rotateKey(g.deps, 'again');
    expect(out.publicKey).toBe(wireGuardPublicKey(pending));
  });
});

describe('key files', () => {
  it('a crash before the rename keeps the old key; one after it leaves the new key; a broken pending file is replaced', async () => {
    const old = await ensureWireGuardKeys(dir);
    const next = await prepareNextWireGuardKeys(dir);
    // "crash": the agent starts again and reads its key
    expect(await ensureWireGuardKeys(dir)).toEqual(old);
    expect(await prepareNextWireGuardKeys(dir)).toEqual(next);
    await commitNextWireGuardKeys(dir);
    expect(await ensureWireGuardKeys(dir)).toEqual(next);
    await expect(commitNextWireGuardKeys(dir)).rejects.toThrow(/no rotation is pending/);
    writeFileSync(join(dir, WG_NEXT_KEY_FILE), 'not a key\n', { mode: 0o600 });
    const fresh = await prepareNextWireGuardKeys(dir);
    expect(fresh.publicKey).not.toBe(next.publicKey);
    // a pending key readable by others is not trusted
    chmodSync(join(dir, WG_NEXT_KEY_FILE), 0o644);
    expect((await prepareNextWireGuardKeys(dir)).publicKey).not.toBe(fresh.publicKey);
    expect(statSync(join(dir, WG_NEXT_KEY_FILE)).mode & 0o777).toBe(0o600);
  });
});

describe('startKeyRotation', () => {
  it('defaults to 720h, as --wg-key-rotation (parsed like every agent duration) says', () => {
    expect(DEFAULT_ROTATION_INTERVAL_MS).toBe(parseDurationMs('720h'));
  });

  it('rotates once the key is older than the interval less its jitter, and not before', async () => {
    await ensureWireGuardKeys(dir);
    const f = fake();
    const since = Math.round(statSync(join(dir, WG_KEY_FILE)).mtimeMs);
    f.clock.now = since;
    const drainsAt: number[] = [];
    f.set.drain = async () => {
      drainsAt.push(f.clock.now);
      return { datacenters: ['dc1'] };
    };
    const s = startKeyRotation({ ...f.deps, intervalMs: 1_000_000, random: () => 0.5, maxSleepMs: 100_000 });
    await waitFor('a scheduled rotation', () => f.steps.includes('undrain'));
    // jitter 0.5 of 10%: due at 950,000 ms, found within one sleep of at most 100,000 ms
    expect(drainsAt[0] - since).toBeGreaterThanOrEqual(950_000);
    expect(drainsAt[0] - since).toBeLessThan(1_050_000);
    expect(f.lines.find((l) => /^key rotation: new WireGuard key pair made/.test(l.msg))?.reason).toMatch(/^scheduled/);
    // the next one is due an interval after the latest key took over
    await s.stop();
    expect(s.nextDue()).toBe(Math.round(statSync(join(dir, WG_KEY_FILE)).mtimeMs) + 950_000);
  });

  it('interval 0 rotates only on request; a generation is acted on once, also across a restart', async () => {
    await ensureWireGuardKeys(dir);
    const f = fake();
    const s = startKeyRotation({ ...f.deps, intervalMs: 0, maxSleepMs: 1_000 });
    expect(s.nextDue()).toBe(Infinity);
    await waitFor('the scheduler to sleep a while', () => f.clock.now > 1_010_000);
    expect(f.steps).toEqual([]);
    s.requestGeneration(1);
    await waitFor('the requested rotation', () => f.steps.includes('undrain'));
    await waitFor('the generation recorded', async () => (await readRotationGeneration(dir)) === 1);
    const rotations = () => f.steps.filter((x) => x === 'drain').length;
    s.requestGeneration(1);
    await waitFor('the scheduler to sleep again', () => f.clock.now > 1_050_000);
    expect(rotations()).toBe(1);
    await s.stop();
    // a restarted agent sees generation 1 in the topology again: nothing to do; 2 rotates
    const again = startKeyRotation({ ...f.deps, intervalMs: 0, maxSleepMs: 1_000 });
    again.requestGeneration(1);
    await waitFor('the scheduler to sleep', () => f.clock.now > 1_100_000);
    expect(rotations()).toBe(1);
    again.requestGeneration(2);
    await waitFor('the second rotation', () => rotations() === 2 && f.steps.at(-1) === 'undrain');
    await waitFor('generation 2 recorded', async () => (await readRotationGeneration(dir)) === 2);
    await again.stop();
  });

  it('a failed rotation is retried later, not at once', async () => {
    await ensureWireGuardKeys(dir);
    const f = fake();
    let refusals = 1;
    const drainsAt: number[] = [];
    f.set.drain = async () => {
      drainsAt.push(f.clock.now);
      if (refusals-- > 0) throw Object.assign(new Error('SetOwnGatewayState: UNAVAILABLE'), { code: 14 });
      return { datacenters: ['dc1'] };
    };
    const s = startKeyRotation({ ...f.deps, intervalMs: 0, random: () => 0, maxSleepMs: 10_000 });
    s.requestGeneration(3);
    await waitFor('the retry', () => f.steps.includes('undrain'));
    expect(f.lines.filter((l) => l.msg === 'key rotation failed; the old key stays in use')).toHaveLength(1);
    // retried after half the first delay (random 0): 30 s, in sleeps of at most maxSleepMs
    expect(drainsAt).toHaveLength(2);
    expect(drainsAt[1] - drainsAt[0]).toBeGreaterThanOrEqual(30_000);
    expect(drainsAt[1] - drainsAt[0]).toBeLessThan(40_000);
    await s.stop();
  });
});

describe('helpers for the wiring', () => {
  const gw = (host: string, key = 'k') => ({ host, wanEndpoint: '203.0.113.1:51820', state: 'active' as const, wgPublicKey: key });
  const dc = (name: string, gateways: ReturnType<typeof gw>[]) => ({ name, gateways, listenPort: 51820, mtu: 0, mesh: false, subnets: [], pools: {} });

  it('names the other datacenters\' gateways that hold a key', () => {
    expect(remoteGatewaysOf([dc('dc1', [gw('g1')]), dc('dc2', [gw('h8'), gw('h7'), gw('gone', '')]), dc('dc3', [gw('h5')])], 'dc1')).toEqual(['h5', 'h7', 'h8']);
    expect(remoteGatewaysOf(undefined, 'dc1')).toEqual([]);
  });

  it('tells whether every peer shook hands since the key changed', () => {
    const peer = (host: string, age: number) => ({ host, datacenter: 'dc2', endpoint: '', handshakeAgeSeconds: age, rxBytes: 0, txBytes: 0 });
    const now = 100_000;
    expect(handshakesSince([peer('h7', 5), peer('h8', 9)], ['h7', 'h8'], 90_000, now)).toBe(true);
    // h8's last handshake was before the swap, h9 never, h6 is not a peer of the device at all
    expect(handshakesSince([peer('h7', 5), peer('h8', 11)], ['h7', 'h8'], 90_000, now)).toBe(false);
    expect(handshakesSince([peer('h9', -1)], ['h9'], 0, now)).toBe(false);
    expect(handshakesSince([], ['h6'], 0, now)).toBe(false);
    expect(handshakesSince([], [], 0, now)).toBe(true);
  });
});

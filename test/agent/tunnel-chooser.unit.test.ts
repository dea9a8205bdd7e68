// The gateway chooser's state machine, on a simulated network and a fake
// clock: which gateway it picks, when it gives one up, and which replies it
// believes. The kernel test (tunnel-probe.test.ts) runs it on real sockets.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../controller/common/log';
import { startChooser, type Chooser, type OpenProbeSocket, type PathSpec } from '../../cni-plugin/agent/tunnel/chooser';
import { decodeProbe, encodeProbe, KIND_REPLY, replyTo } from '../../cni-plugin/agent/tunnel/probe-wire';

const PORT = 7472;
const INTERVAL = 250;

/**
 * A network in which the probe for datacenter dc goes through the gateway
 * `route.get(dc)` (what the kernel route would say) and is answered unless
 * that gateway is dead. Replies arrive after `delayMs` (0: at once).
 */
class FakeNet {
  route = new Map<string, string>();
  dead = new Set<string>();
  delayMs = 0;
  /** Every datagram sent, with the source socket it left from. */
  sent: { source: string; to: string; port: number; msg: Buffer }[] = [];
  opened: string[] = [];
  closed: string[] = [];
  /** Called with each reply before delivery; return false to drop it, or a buffer to deliver instead. */
  tamper?: (reply: Buffer) => Buffer | false;
  /** target address -> datacenter */
  constructor(private readonly dcOf: (target: string) => string) {}

  open: OpenProbeSocket = async (source, onMessage) => {
    this.opened.push(source);
    let open = true;
    return {
      send: (msg, port, to, done) => {
        this.sent.push({ source, to, port, msg });
        done(null);
        const gw = this.route.get(this.dcOf(to));
        if (!gw || this.dead.has(gw)) return;
        let reply: Buffer | false | undefined = replyTo(msg);
        if (!reply) return;
        if (this.tamper) reply = this.tamper(reply);
        if (!reply) return;
        const r = reply;
        const deliver = (): void => {
          if (open) onMessage(r, { address: to, port });
        };
        if (this.delayMs > 0) setTimeout(deliver, this.delayMs);
        else queueMicrotask(deliver);
      },
      close: () => {
        open = false;
        this.closed.push(source);
      },
    };
  };
}

const gws = (...hosts: string[]) => hosts.map((h) => ({ host: h.replace('!', ''), draining: h.endsWith('!') }));

function setup(o: { misses?: number; graceIntervals?: number; intervalMs?: number } = {}) {
  const net = new FakeNet((t) => (t.startsWith('10.2.') ? 'dc2' : 'dc3'));
  const chooser = startChooser({ port: PORT, log: silentLogger, openSocket: net.open, clock: { wall: Date.now, mono: Date.now }, jitterIntervals: 0, ...o });
  const reasons: string[] = [];
  // The dataplane's part: the route follows the choice.
  const follow = () => {
    for (const [dc, gw] of chooser.choices()) net.route.set(dc, gw);
  };
  chooser.onChange((r) => {
    reasons.push(r);
    follow();
  });
  // An explicit undefined source means none, so no default parameter here.
  const update = (paths: PathSpec[], ...source: [string | undefined] | []) => {
    chooser.update(paths, source.length ? source[0] : '10.1.0.1');
    follow();
  };
  return { net, chooser, reasons, update };
}

const dc2 = (candidates: ReturnType<typeof gws>, initial?: string): PathSpec => ({ datacenter: 'dc2', candidates, targets: ['10.2.0.1', '10.2.1.1'], initial });
const chosen = (c: Chooser, dc = 'dc2') => c.choices().get(dc);
const health = (c: Chooser, dc = 'dc2') => c.health().find((h) => h.datacenter === dc)!;
const intervals = (n: number) => vi.advanceTimersByTimeAsync(n * INTERVAL);

let open: Chooser[] = [];
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'Date'] });
  vi.setSystemTime(1_000_000);
});
afterEach(async () => {
  for (const c of open) await c.close();
  open = [];
  vi.useRealTimers();
});
function started(o?: Parameters<typeof setup>[0]) {
  const s = setup(o);
  open.push(s.chooser);
  return s;
}

describe('initial choice', () => {
  it('is the first non-draining candidate when none is given', () => {
    const { chooser, update } = started();
    update([dc2(gws('g1!', 'g2', 'g3'))]);
    expect(chosen(chooser)).toBe('g2');
  });
  it('is `initial` when it is a candidate (a restart keeps the kernel route)', () => {
    const { chooser, update } = started();
    update([dc2(gws('g1', 'g2', 'g3'), 'g3')]);
    expect(chosen(chooser)).toBe('g3');
  });
  it('ignores an `initial` that is no candidate, or draining while another is not', () => {
    const { chooser, update } = started();
    update([dc2(gws('g1', 'g2'), 'gone'), { ...dc2(gws('g1', 'g2!'), 'g2'), datacenter: 'dc3' }]);
    expect(chosen(chooser)).toBe('g1');
    expect(chosen(chooser, 'dc3')).toBe('g1');
  });
  it('takes a draining candidate when all are draining', () => {
    const { chooser, update } = started();
    update([dc2(gws('g1!', 'g2!'), 'g2')]);
    expect(chosen(chooser)).toBe('g2');
  });
});

describe('failover', () => {
  it(`moves on after exactly 3 unanswered intervals, once, and counts it`, async () => {
    const { chooser, update, net, reasons } = started();
    update([dc2(gws('g1', 'g2'))]);
    await intervals(8);
    expect(health(chooser)).toMatchObject({ chosen: 'g1', consecutiveMisses: 0, failovers: 0 });
    expect(health(chooser).lastOkAt).toBeGreaterThan(0);
    net.dead.add('g1');
    // The probe of the interval that just started is lost; it is judged at the next tick.
    await intervals(1);
    expect(health(chooser).consecutiveMisses).toBe(0);
    await intervals(1);
    expect(health(chooser).consecutiveMisses).toBe(1);
    await intervals(1);
    expect(health(chooser).consecutiveMisses).toBe(2);
    expect(chosen(chooser)).toBe('g1');
    await intervals(1);
    expect(health(chooser)).toMatchObject({ chosen: 'g2', consecutiveMisses: 0, failovers: 1 });
    expect(reasons).toEqual(['gateway for dc2: g1 -> g2 (failover)']);
    await intervals(20);
    expect(health(chooser)).toMatchObject({ chosen: 'g2', consecutiveMisses: 0, failovers: 1 });
  });

  it('probes every target every interval from the source address, to the responder port', async () => {
    const { update, net } = started();
    update([dc2(gws('g1', 'g2')), { datacenter: 'dc3', candidates: gws('h1', 'h2'), targets: ['10.3.0.1'] }]);
    await intervals(4);
    expect(net.sent.length).toBe(4 * 3);
    expect(new Set(net.sent.map((s) => s.to))).toEqual(new Set(['10.2.0.1', '10.2.1.1', '10.3.0.1']));
    expect(net.sent.every((s) => s.source === '10.1.0.1' && s.port === PORT && s.msg.length === 28)).toBe(true);
    const seqs = net.sent.map((s) => decodeProbe(s.msg)!.sequence);
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it('judges a new candidate only after the grace, then moves on again', async () => {
    const { chooser, update, net } = started({ graceIntervals: 2 });
    update([dc2(gws('g1', 'g2', 'g3'))]);
    await intervals(6);
    net.dead.add('g1');
    net.dead.add('g2');
    await intervals(4);
    expect(chosen(chooser)).toBe('g2');
    // grace: two intervals not counted
    await intervals(2);
    expect(health(chooser)).toMatchObject({ chosen: 'g2', consecutiveMisses: 0 });
    await intervals(2);
    expect(health(chooser)).toMatchObject({ chosen: 'g2', consecutiveMisses: 2 });
    await intervals(1);
    expect(health(chooser)).toMatchObject({ chosen: 'g3', consecutiveMisses: 0, failovers: 2 });
  });

  it('with no grace, judges the new candidate from its first interval', async () => {
    const { chooser, update, net } = started({ graceIntervals: 0 });
    update([dc2(gws('g1', 'g2'))]);
    net.dead.add('g1');
    net.dead.add('g2');
    await intervals(4);
    expect(health(chooser)).toMatchObject({ chosen: 'g2', failovers: 1 });
    await intervals(3);
    expect(health(chooser)).toMatchObject({ chosen: 'g1', failovers: 2 });
  });

  it('wraps around the rank order, draining candidates last', async () => {
    const { chooser, update, net, reasons } = started({ graceIntervals: 0, misses: 1 });
    update([dc2(gws('g1', 'g2!', 'g3'))]);
    for (const g of ['g1', 'g2', 'g3']) net.dead.add(g);
    const seen: string[] = [chosen(chooser)!];
    for (let i = 0; i < 4; i++) {
      await intervals(1 + (i === 0 ? 1 : 0));
      seen.push(chosen(chooser)!);
    }
    expect(seen).toEqual(['g1', 'g3', 'g2', 'g1', 'g3']);
    expect(reasons.length).toBe(4);
    expect(health(chooser).failovers).toBe(4);
  });

  it('keeps a lone candidate that does not answer, counting misses but no failover', async () => {
    const { chooser, update, net, reasons } = started();
    update([dc2(gws('g1'))]);
    net.dead.add('g1');
    await intervals(12);
    expect(health(chooser)).toMatchObject({ chosen: 'g1', failovers: 0 });
    expect(health(chooser).consecutiveMisses).toBeGreaterThan(3);
    expect(reasons).toEqual([]);
  });

  it('is sticky: no fail-back while the current choice answers', async () => {
    const { chooser, update, net } = started();
    update([dc2(gws('g1', 'g2'))]);
    net.dead.add('g1');
    await intervals(8);
    expect(chosen(chooser)).toBe('g2');
    net.dead.delete('g1');
    await intervals(40);
    expect(health(chooser)).toMatchObject({ chosen: 'g2', failovers: 1, consecutiveMisses: 0 });
  });

  it('decides each datacenter on its own', async () => {
    const { chooser, update, net } = started();
    update([dc2(gws('g1', 'g2')), { datacenter: 'dc3', candidates: gws('g1', 'g2'), targets: ['10.3.0.1'] }]);
    await intervals(4);
    net.route.set('dc3', 'bad');
    net.dead.add('bad');
    await intervals(4);
    expect(chooser.choices()).toEqual(new Map([['dc2', 'g1'], ['dc3', 'g2']]));
  });
});

describe('draining and updates', () => {
  it('leaves a chosen candidate at once when it becomes draining: a planned switch, not a failover', async () => {
    const { chooser, update, reasons } = started();
    update([dc2(gws('g1', 'g2', 'g3'))]);
    await intervals(6);
    update([dc2(gws('g1!', 'g2', 'g3'))]);
    expect(chosen(chooser)).toBe('g2');
    await Promise.resolve();
    expect(reasons).toEqual(['gateway for dc2: g1 -> g2 (draining)']);
    expect(health(chooser).failovers).toBe(0);
  });

  it('stays on a draining candidate when no other is active, and on one it failed over to', async () => {
    const { chooser, update, net } = started({ graceIntervals: 0 });
    update([dc2(gws('g1', 'g2'))]);
    update([dc2(gws('g1!', 'g2!'))]);
    expect(chosen(chooser)).toBe('g1');
    // failing over onto a draining candidate is kept by later updates that change nothing for it
    update([dc2(gws('g1', 'g2!'))]);
    net.dead.add('g1');
    await intervals(4);
    expect(chosen(chooser)).toBe('g2');
    update([dc2(gws('g1', 'g2!'))]);
    expect(chosen(chooser)).toBe('g2');
  });

  it('keeps the current choice across updates while it is a candidate; `initial` applies only to a new datacenter', async () => {
    const { chooser, update, net } = started();
    update([dc2(gws('g1', 'g2'))]);
    net.dead.add('g1');
    await intervals(8);
    expect(chosen(chooser)).toBe('g2');
    update([dc2(gws('g0', 'g1', 'g2', 'g3'), 'g1')]);
    expect(health(chooser)).toMatchObject({ chosen: 'g2', failovers: 1 });
  });

  it('moves off a removed choice, and forgets a removed datacenter', async () => {
    const { chooser, update, reasons } = started();
    update([dc2(gws('g1', 'g2', 'g3')), { datacenter: 'dc3', candidates: gws('h1'), targets: ['10.3.0.1'] }]);
    update([dc2(gws('g2!', 'g3'))]);
    expect(chooser.choices()).toEqual(new Map([['dc2', 'g3']]));
    await Promise.resolve();
    expect(reasons).toEqual(['gateway for dc2: g1 -> g3 (removed)']);
  });

  it('does not probe while there is no source address, and rebinds when it changes', async () => {
    const { chooser, update, net } = started();
    update([dc2(gws('g1', 'g2'))], undefined);
    net.dead.add('g1');
    await intervals(10);
    expect(net.opened).toEqual([]);
    expect(net.sent).toEqual([]);
    expect(health(chooser)).toMatchObject({ chosen: 'g1', consecutiveMisses: 0 });
    update([dc2(gws('g1', 'g2'))], '10.1.0.1');
    await intervals(3);
    expect(net.opened).toEqual(['10.1.0.1']);
    update([dc2(gws('g1', 'g2'))], '10.1.0.9');
    expect(net.closed).toEqual(['10.1.0.1']);
    await intervals(2);
    expect(net.opened).toEqual(['10.1.0.1', '10.1.0.9']);
    // the new source starts afresh, grace included
    expect(health(chooser).consecutiveMisses).toBe(0);
    expect(net.sent.slice(-2).every((s) => s.source === '10.1.0.9')).toBe(true);
    update([dc2(gws('g1', 'g2'))], undefined);
    expect(net.closed).toEqual(['10.1.0.1', '10.1.0.9']);
  });

  it('retries a bind that fails at the next interval', async () => {
    const net = new FakeNet(() => 'dc2');
    let fails = 2;
    const c = startChooser({
      port: PORT, log: silentLogger, clock: { wall: Date.now, mono: Date.now },
      openSocket: (s, m) => (fails-- > 0 ? Promise.reject(Object.assign(new Error('no address'), { code: 'EADDRNOTAVAIL' })) : net.open(s, m)),
    });
    open.push(c);
    c.update([dc2(gws('g1', 'g2'))], '10.1.0.1');
    net.route.set('dc2', 'g1');
    await intervals(4);
    expect(net.opened).toEqual(['10.1.0.1']);
    expect(net.sent.length).toBeGreaterThan(0);
  });
});

it('a bind that finishes after the source changed again is closed, and only the newest socket probes', async () => {
  const net = new FakeNet(() => 'dc2');
  const pending: (() => void)[] = [];
  const c = startChooser({
    port: PORT, log: silentLogger, clock: { wall: Date.now, mono: Date.now },
    openSocket: (s, m) => new Promise((resolve) => pending.push(() => resolve(net.open(s, m)))),
  });
  open.push(c);
  c.update([dc2(gws('g1', 'g2'))], '10.1.0.1');
  c.update([dc2(gws('g1', 'g2'))], '10.1.0.2');
  // the stale bind finishes first: it is closed, and no third bind starts while the current one is pending
  pending[0]!();
  await intervals(3);
  expect(pending.length).toBe(2);
  expect(net.sent).toEqual([]);
  pending[1]!();
  await intervals(2);
  expect(net.opened.sort()).toEqual(['10.1.0.1', '10.1.0.2']);
  expect(net.closed).toEqual(['10.1.0.1']);
  expect(new Set(net.sent.map((s) => s.source))).toEqual(new Set(['10.1.0.2']));
});

describe('which replies count', () => {
  it('a reply within two intervals counts; a later one does not', async () => {
    const { chooser, update, net } = started();
    update([dc2(gws('g1', 'g2'))]);
    net.delayMs = INTERVAL + 100;
    await intervals(20);
    expect(health(chooser)).toMatchObject({ chosen: 'g1', failovers: 0, consecutiveMisses: 0 });
    expect(health(chooser).rttMs).toBe(INTERVAL + 100);
    net.delayMs = 2 * INTERVAL + 10;
    await intervals(6);
    expect(health(chooser).failovers).toBe(1);
  });

  it('forged, duplicated or mangled replies are ignored', async () => {
    const { chooser, update, net } = started();
    update([dc2(gws('g1', 'g2'))]);
    const forge: ((r: Buffer) => Buffer | false)[] = [
      (r) => (r.fill(0xaa, 12, 20), r), // another nonce
      (r) => (r.writeUInt32BE((r.readUInt32BE(8) + 1000) >>> 0, 8), r), // another sequence
      (r) => (r.writeBigUInt64BE(r.readBigUInt64BE(20) + 1n, 20), r), // another send time
      (r) => ((r[5] = 1), r), // a request, not a reply
      (r) => Buffer.concat([r, Buffer.alloc(1)]), // too long
    ];
    await intervals(2);
    for (const f of forge) {
      const okBefore = health(chooser).lastOkAt;
      expect(okBefore).toBeGreaterThan(0);
      net.tamper = f;
      await intervals(4);
      expect(health(chooser).lastOkAt, f.toString()).toBe(okBefore);
      net.tamper = undefined;
      await intervals(1);
      expect(health(chooser).lastOkAt).toBe(Date.now());
    }
  });

  it('a reply from another port, or to a probe sent through the previous choice, is ignored', async () => {
    const net = new FakeNet(() => 'dc2');
    let deliver: ((m: Buffer, f: { address: string; port: number }) => void) | undefined;
    const c = startChooser({
      port: PORT, log: silentLogger, clock: { wall: Date.now, mono: Date.now }, graceIntervals: 0,
      openSocket: (s, m) => ((deliver = m), net.open(s, m)),
    });
    open.push(c);
    c.update([dc2(gws('g1', 'g2'))], '10.1.0.1');
    // no route at all: nothing answers by itself
    await intervals(1);
    const probe = decodeProbe(net.sent.at(-1)!.msg)!;
    deliver!(encodeProbe({ ...probe, kind: KIND_REPLY }), { address: '10.2.0.1', port: PORT + 1 });
    await intervals(1);
    expect(health(c).lastOkAt).toBe(0);
    await intervals(2);
    expect(chosen(c)).toBe('g2');
    // the last probe through g1, answered now: late
    const old = decodeProbe(net.sent.at(-3)!.msg)!;
    deliver!(encodeProbe({ ...old, kind: KIND_REPLY }), { address: '10.2.0.1', port: PORT });
    expect(health(c).lastOkAt).toBe(0);
    // a genuine answer to the probe through g2 counts
    await intervals(1);
    const cur = decodeProbe(net.sent.at(-1)!.msg)!;
    deliver!(encodeProbe({ ...cur, kind: KIND_REPLY }), { address: '10.2.1.1', port: PORT });
    expect(health(c).lastOkAt).toBe(Date.now());
  });
});

describe('lifecycle', () => {
  it('rejects nonsense options', () => {
    expect(() => startChooser({ port: PORT, log: silentLogger, misses: 0 })).toThrow(/misses/);
    expect(() => startChooser({ port: PORT, log: silentLogger, intervalMs: 0 })).toThrow(/intervalMs/);
    expect(() => startChooser({ port: PORT, log: silentLogger, graceIntervals: -1 })).toThrow(/graceIntervals/);
  });

  it('close() stops the timer, closes the socket and silences listeners', async () => {
    const { chooser, update, net, reasons } = started();
    update([dc2(gws('g1', 'g2'))]);
    await intervals(2);
    const timers = vi.getTimerCount();
    await chooser.close();
    expect(vi.getTimerCount()).toBe(timers - 1);
    expect(net.closed).toEqual(['10.1.0.1']);
    const n = net.sent.length;
    net.dead.add('g1');
    await intervals(10);
    expect(net.sent.length).toBe(n);
    update([dc2(gws('g1!', 'g2'))]);
    expect(reasons).toEqual([]);
  });

  it('a listener that throws does not stop the others', async () => {
    const { chooser, update } = started();
    const got: string[] = [];
    chooser.onChange(() => {
      throw new Error('listener bug');
    });
    chooser.onChange((r) => got.push(r));
    update([dc2(gws('g1', 'g2'))]);
    update([dc2(gws('g1!', 'g2'))]);
    await Promise.resolve();
    expect(got).toEqual(['gateway for dc2: g1 -> g2 (draining)']);
  });
});

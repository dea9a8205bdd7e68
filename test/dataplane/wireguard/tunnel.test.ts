// wireguard-go for real: two namespaces joined by a veth, a wireguard-go in
// each started by the userspace module inside its namespace, configured only
// through the UAPI client by the reconciler. The test sets the tunnel
// addresses with `ip` (the gateway agent's job, not this layer's) and checks
// with ping, iperf3 and `wg show` what the product did.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { WireGuardDeviceError } from '../../../dataplane/wireguard/errors';
import { reconcileDevice } from '../../../dataplane/wireguard/reconcile';
import { openWireGuardDevice } from '../../../dataplane/wireguard/select';
import { generateKeyPair, keyToHex, type DeviceConfig, type DeviceState } from '../../../dataplane/wireguard/types';
import { DEFAULT_LOG_DIR, startUserspaceDevice, type UserspaceDevice } from '../../../dataplane/wireguard/userspace';
import { uapiSocketPath } from '../../../dataplane/wireguard/uapi';
import { captureLogger, type LogLine } from '../../helpers/log';
import { uniqueName } from '../../helpers/names';
import { ipJson, nsExec, useTestNetns } from '../../helpers/netns';
import { processAlive } from '../../helpers/process';
import { requireSystem } from '../../helpers/system';
import { waitFor } from '../../helpers/wait';

requireSystem([
  { pkg: 'wireguard-go', command: 'wireguard-go' },
  { pkg: 'wireguard-tools', command: 'wg' },
  { pkg: 'iperf3', command: 'iperf3' },
  { pkg: 'iputils-ping', command: 'ping' },
]);

type Side = { ns: string; ifname: string; keys: { privateKey: string; publicKey: string }; under: string; tunnel: string };

const namespaces = useTestNetns('wg', 2);
/** wireguard-go processes and helpers this test started, stopped by PID in teardown. */
let pids: number[] = [];
let children: ChildProcess[] = [];
let logs: LogLine[] = [];
let sides: Side[] = [];

afterEach(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const pid of pids) {
    if (!processAlive(pid)) continue;
    process.kill(pid, 'SIGTERM');
    await waitFor(`wireguard-go ${pid} to exit`, () => !processAlive(pid) || readFileSync(`/proc/${pid}/stat`, 'latin1').includes(') Z'), 5000).catch(() => process.kill(pid, 'SIGKILL'));
  }
  // nothing logged, kept in wireguard-go's log or left in an error may hold a private key
  const text = JSON.stringify(logs) + sides.map((s) => readIfExists(`${DEFAULT_LOG_DIR}/${s.ifname}.log`)).join('');
  for (const s of sides) {
    expect(text).not.toContain(s.keys.privateKey);
    expect(text).not.toContain(keyToHex(s.keys.privateKey, 'k'));
  }
  for (const s of sides) rmSync(`${DEFAULT_LOG_DIR}/${s.ifname}.log`, { force: true });
  pids = [];
  children = [];
  logs = [];
  sides = [];
});

function readIfExists(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

function makeSides(): [Side, Side] {
  const [nsA, nsB] = namespaces();
  const a: Side = { ns: nsA, ifname: uniqueName('wg'), keys: generateKeyPair(), under: '192.168.77.1', tunnel: '10.77.0.1' };
  const b: Side = { ns: nsB, ifname: uniqueName('wg'), keys: generateKeyPair(), under: '192.168.77.2', tunnel: '10.77.0.2' };
  const va = uniqueName('wv');
  const vb = uniqueName('wv');
  execFileSync('ip', ['-n', a.ns, 'link', 'add', va, 'type', 'veth', 'peer', 'name', vb, 'netns', b.ns]);
  for (const [s, v] of [[a, va], [b, vb]] as const) {
    execFileSync('ip', ['-n', s.ns, 'addr', 'add', `${s.under}/24`, 'dev', v]);
    execFileSync('ip', ['-n', s.ns, 'link', 'set', v, 'up']);
  }
  sides.push(a, b);
  return [a, b];
}

function configFor(me: Side, other: Side, extraPeers: DeviceConfig['peers'] = []): DeviceConfig {
  return {
    privateKey: me.keys.privateKey,
    listenPort: 51820,
    peers: [{ publicKey: other.keys.publicKey, endpoint: `${other.under}:51820`, allowedIps: [`${other.tunnel}/32`] }, ...extraPeers],
  };
}

async function start(s: Side): Promise<UserspaceDevice> {
  const { logger, lines } = captureLogger();
  const dev = await startUserspaceDevice({ name: s.ifname, netns: s.ns, log: logger });
  logs = lines === logs ? logs : [...logs, ...lines];
  if (dev.pid !== undefined) pids.push(dev.pid);
  return dev;
}

/** The tunnel address and link state: set by the test, as the gateway agent will. */
function tunnelUp(s: Side): void {
  execFileSync('ip', ['-n', s.ns, 'addr', 'add', `${s.tunnel}/24`, 'dev', s.ifname]);
  execFileSync('ip', ['-n', s.ns, 'link', 'set', s.ifname, 'up']);
}

async function pingThrough(from: Side, to: Side): Promise<void> {
  await waitFor(`ping ${from.ns} -> ${to.tunnel} through the tunnel`, () => {
    nsExec(from.ns, 'ping', ['-c', '1', '-W', '1', to.tunnel]);
    return true;
  }, 15_000);
}

function peerOf(s: DeviceState, key: string) {
  const p = s.peers.find((x) => x.publicKey === key);
  if (!p) throw new Error(`no peer ${key}`);
  return p;
}

/** A controlling process of its own (controller-worker.ts): its one line of output, parsed. */
async function runWorker(input: object): Promise<any> {
  const worker = spawn(process.execPath, ['--import', 'tsx', 'test/dataplane/wireguard/controller-worker.ts'], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(worker);
  let out = '';
  let err = '';
  worker.stdout.on('data', (d) => (out += d));
  worker.stderr.on('data', (d) => (err += d));
  worker.stdin.end(JSON.stringify(input));
  const code = await new Promise((r) => worker.on('exit', r));
  expect(code, err).toBe(0);
  const result = JSON.parse(out);
  pids.push(result.pid);
  return result;
}

/** Two wireguard-go devices, configured, addressed and up, a handshake done. */
async function tunnel(extraA: DeviceConfig['peers'] = []) {
  const [a, b] = makeSides();
  const devA = await start(a);
  const devB = await start(b);
  const { logger, lines } = captureLogger();
  logs = lines;
  const first = [await reconcileDevice(devA, configFor(a, b, extraA), { log: logger }), await reconcileDevice(devB, configFor(b, a), { log: logger })];
  tunnelUp(a);
  tunnelUp(b);
  await pingThrough(a, b);
  return { a, b, devA, devB, first, logger };
}

describe('WireGuard through wireguard-go', () => {
  it('starts wireguard-go inside the namespace, carries ping and TCP, and a second reconcile sends nothing', async () => {
    const { a, b, devA, devB, first, logger } = await tunnel();
    // the TUN is in the namespace, not on the host
    expect(ipJson(a.ns, ['link', 'show', a.ifname])[0].ifname).toBe(a.ifname);
    expect(() => execFileSync('ip', ['link', 'show', a.ifname], { stdio: 'ignore' })).toThrow();
    expect(first.map((c) => [c.deviceFields, c.peersAdded, c.writes])).toEqual([[2, 1, 1], [2, 1, 1]]);

    // TCP, measured: iperf3 from A to B over the tunnel
    const server = spawn('ip', ['netns', 'exec', b.ns, 'iperf3', '-s', '-1', '-B', b.tunnel, '-p', '5201'], { stdio: 'ignore' });
    children.push(server);
    await waitFor('iperf3 to listen in B', () => nsExec(b.ns, 'ss', ['-Htln', 'sport = :5201']).trim(), 10_000);
    const report = JSON.parse(nsExec(a.ns, 'iperf3', ['-c', b.tunnel, '-p', '5201', '-t', '2', '-J']));
    const bits = report.end.sum_received.bits_per_second as number;
    expect(bits).toBeGreaterThan(1e6);
    console.log(`wireguard-go tunnel, iperf3 single TCP stream A -> B for 2 s: ${(bits / 1e6).toFixed(0)} Mbit/s`);

    // what the UAPI client reads is what `wg show` reads
    const stateA = await devA.get();
    const peerB = peerOf(stateA, b.keys.publicKey);
    expect(peerB.lastHandshakeMs).toBeGreaterThan(Date.now() - 60_000);
    expect(peerB.rxBytes).toBeGreaterThan(0n);
    const dump = nsExec(a.ns, 'wg', ['show', a.ifname, 'dump']).trim().split('\n');
    const [, pub, port] = dump[0].split('\t');
    expect([pub, Number(port)]).toEqual([a.keys.publicKey, stateA.listenPort]);
    const fields = dump[1].split('\t');
    expect([fields[0], fields[2], fields[3]]).toEqual([b.keys.publicKey, `${b.under}:51820`, `${b.tunnel}/32`]);

    const again = [await reconcileDevice(devA, configFor(a, b), { log: logger }), await reconcileDevice(devB, configFor(b, a), { log: logger })];
    for (const c of again) expect(c).toEqual({ deviceFields: 0, peersAdded: 0, peersUpdated: 0, peersRemoved: 0, peersUnchanged: 1, writes: 0 });
    expect(peerOf(await devA.get(), b.keys.publicKey).lastHandshakeMs).toBe(peerB.lastHandshakeMs);
  });

  it('a peer change updates only that peer, in place: the other peers keep their handshake and counters', async () => {
    const far = generateKeyPair();
    const extra = [{ publicKey: far.publicKey, endpoint: '192.168.77.99:51820', allowedIps: ['10.99.0.0/24'] }];
    const { a, b, devA } = await tunnel(extra);
    const before = peerOf(await devA.get(), b.keys.publicKey);
    expect(before.lastHandshakeMs).toBeGreaterThan(0);

    const changed = [{ ...extra[0], allowedIps: ['10.99.0.0/24', '10.98.0.0/24'], endpoint: '192.168.77.98:51820' }];
    expect(await reconcileDevice(devA, configFor(a, b, changed))).toEqual({ deviceFields: 0, peersAdded: 0, peersUpdated: 1, peersRemoved: 0, peersUnchanged: 1, writes: 1 });
    let after = await devA.get();
    expect(peerOf(after, far.publicKey)).toMatchObject({ endpoint: '192.168.77.98:51820', allowedIps: ['10.99.0.0/24', '10.98.0.0/24'].sort() });
    expect(peerOf(after, b.keys.publicKey)).toMatchObject({ lastHandshakeMs: before.lastHandshakeMs, rxBytes: before.rxBytes, txBytes: before.txBytes });

    // the tunnel peer itself changed in place (keepalive on): same session, counters not reset
    const withKeepalive = configFor(a, b, changed);
    withKeepalive.peers[0].persistentKeepalive = 25;
    expect(await reconcileDevice(devA, withKeepalive)).toMatchObject({ peersUpdated: 1, peersUnchanged: 1, writes: 1 });
    after = await devA.get();
    expect(peerOf(after, b.keys.publicKey)).toMatchObject({ lastHandshakeMs: before.lastHandshakeMs, persistentKeepalive: 25 });
    expect(peerOf(after, b.keys.publicKey).txBytes).toBeGreaterThanOrEqual(before.txBytes);
    await pingThrough(a, b);

    // the other peer removed: only it goes
    const only = configFor(a, b);
    only.peers[0].persistentKeepalive = 25;
    expect(await reconcileDevice(devA, only)).toMatchObject({ peersRemoved: 1, peersUnchanged: 1, writes: 1 });
    after = await devA.get();
    expect(after.peers.map((p) => p.publicKey)).toEqual([b.keys.publicKey]);
    expect(peerOf(after, b.keys.publicKey).lastHandshakeMs).toBe(before.lastHandshakeMs);
  });

  it('a restart of the controlling process adopts the running wireguard-go: same PID, zero writes, the handshake kept', async () => {
    const [a, b] = makeSides();
    // the first controller: another process, which exits once A is configured
    const first = await runWorker({ mode: 'configure', name: a.ifname, netns: a.ns, config: configFor(a, b) });
    expect(first).toMatchObject({ adopted: false, counts: { writes: 1, peersAdded: 1 } });
    expect(processAlive(first.pid)).toBe(true); // it outlived the process that started it

    const devB = await start(b);
    await reconcileDevice(devB, configFor(b, a));
    tunnelUp(a);
    tunnelUp(b);
    await pingThrough(a, b);

    // the new controller: adopt, reconcile, nothing sent, nothing restarted
    const { logger, lines } = captureLogger();
    const devA = await startUserspaceDevice({ name: a.ifname, netns: a.ns, log: logger });
    logs = [...logs, ...lines];
    expect([devA.adopted, devA.pid]).toEqual([true, first.pid]);
    const handshake = peerOf(await devA.get(), b.keys.publicKey).lastHandshakeMs;
    expect(handshake).toBeGreaterThan(0);
    expect(await reconcileDevice(devA, configFor(a, b), { log: logger })).toMatchObject({ writes: 0, peersUnchanged: 1 });
    const devB2 = await startUserspaceDevice({ name: b.ifname, netns: b.ns });
    expect([devB2.adopted, devB2.pid]).toEqual([true, devB.pid]);
    expect((await reconcileDevice(devB2, configFor(b, a))).writes).toBe(0);
    await pingThrough(a, b);
    expect(peerOf(await devA.get(), b.keys.publicKey).lastHandshakeMs).toBe(handshake);
    expect(lines.map((l) => l.msg)).toEqual(['wireguard-go already running: adopted']);
  });

  it('replaces a wireguard-go that died and left its socket behind; stop() takes the device away', async () => {
    const [a] = makeSides();
    const dev = await start(a);
    process.kill(dev.pid!, 'SIGKILL');
    await waitFor('the killed wireguard-go to be gone', () => !processAlive(dev.pid!), 5000);
    expect(existsSync(uapiSocketPath(a.ifname))).toBe(true); // stale: SIGKILL leaves it
    const again = await start(a);
    expect(again.adopted).toBe(false);
    expect(again.pid).not.toBe(dev.pid);
    expect(await again.get()).toMatchObject({ peers: [] });
    expect(ipJson(a.ns, ['link', 'show', a.ifname])).toHaveLength(1);
    await again.stop();
    expect(processAlive(again.pid!)).toBe(false);
    expect(existsSync(uapiSocketPath(a.ifname))).toBe(false);
    expect(ipJson(a.ns, ['link', 'show']).map((l: { ifname: string }) => l.ifname)).not.toContain(a.ifname);
  });

  it('stop() finishes in a process with nothing else to keep it running, and wireguard-go is gone', async () => {
    const [a] = makeSides();
    const res = await runWorker({ mode: 'start-stop', name: a.ifname, netns: a.ns });
    expect(res.stopped).toBe(true);
    expect(processAlive(res.pid)).toBe(false);
    expect(existsSync(uapiSocketPath(a.ifname))).toBe(false);
  });

  it('refuses a name whose socket answers from another namespace, and reports a wireguard-go that cannot start with its log', async () => {
    const [a, b] = makeSides();
    await start(a);
    const clash = await startUserspaceDevice({ name: a.ifname, netns: b.ns }).catch((e) => e);
    expect(clash).toBeInstanceOf(WireGuardDeviceError);
    expect(clash.message).toMatch(/in another network namespace/);
    expect(ipJson(b.ns, ['link', 'show']).map((l: { ifname: string }) => l.ifname)).not.toContain(a.ifname);

    // a veth already holds the name in B: wireguard-go cannot make its TUN and exits
    const taken = uniqueName('wg');
    execFileSync('ip', ['-n', b.ns, 'link', 'add', taken, 'type', 'veth', 'peer', 'name', uniqueName('wv')]);
    const failed = await startUserspaceDevice({ name: taken, netns: b.ns }).catch((e) => e);
    rmSync(`${DEFAULT_LOG_DIR}/${taken}.log`, { force: true });
    expect(failed).toBeInstanceOf(WireGuardDeviceError);
    expect(failed.code).toBe('WEFT_WIREGUARD_DEVICE');
    expect(failed.message).toMatch(/exited with status \d+ before its socket answered: .*(TUN|tun)/s);
    expect(existsSync(uapiSocketPath(taken))).toBe(false);
  });

  it('the selector falls back to wireguard-go where the kernel has no WireGuard', async () => {
    const [a] = makeSides();
    const dev = await openWireGuardDevice({ name: a.ifname, netns: a.ns });
    if (dev.pid !== undefined) pids.push(dev.pid);
    expect([dev.backend, dev.adopted]).toEqual(['userspace', false]);
    expect(await dev.get()).toMatchObject({ peers: [] });
    await dev.destroy();
    expect(processAlive(dev.pid!)).toBe(false);
  });
});

// wireguard-go as a WireGuard device: started for one interface name in a
// chosen network namespace, adopted again after the controlling process
// restarts, stopped by its PID.
//
// wireguard-go creates its TUN in the network namespace it runs in, so it is
// spawned while this thread is inside the target namespace (withNetns: the
// fork happens inside spawn(), synchronously). It runs in the foreground as a
// detached child with its output in a log file, not a pipe: it must outlive
// the process that started it (a write to a closed pipe would kill it), so
// that a restart of the agent keeps the tunnels, the sessions and the
// handshakes. Its UAPI socket is /var/run/wireguard/<ifname>.sock, a path in
// the mount namespace (not the network one), so interface names are unique
// per host.
//
// Start is adopt-or-spawn:
//   - the socket answers a get, and the process serving it runs in the target
//     namespace: adopt it, nothing restarted, nothing re-keyed;
//   - it answers, but from another namespace: refuse (two devices, one name);
//   - no socket, or a stale one (ECONNREFUSED: the process that made it died,
//     and its TUN went with it): remove the stale file, spawn, and wait until
//     the socket answers (a condition, polled), failing at once if
//     wireguard-go exits first, with the tail of its log;
//   - the socket exists but does not answer in time: refuse (a hung process
//     is not replaced behind its back; its PID is in the error).
// Deleting a live socket file makes wireguard-go exit, so a socket is removed
// only after it refused a connection.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, statSync, unlinkSync, lstatSync } from 'node:fs';
import { basename } from 'node:path';
import type { Logger } from 'pino';
import { withNetns, netnsId } from '../netlink/netns';
import type { WireGuardDevice } from './device';
import { WireGuardDeviceError, WireGuardUapiError } from './errors';
import { checkInterfaceName } from './types';
import { createUapiClient, uapiSocketPath, type UapiClient } from './uapi';

export const WIREGUARD_GO = 'wireguard-go';
export const DEFAULT_LOG_DIR = '/run/weft/wireguard';
const DEFAULT_START_TIMEOUT_MS = 10_000;
const DEFAULT_STOP_TIMEOUT_MS = 5_000;

export type UserspaceOptions = {
  /** Interface name (names the TUN and the UAPI socket). */
  name: string;
  /** Network namespace (name under /run/netns, or a path) for the TUN; default: this process's. */
  netns?: string;
  /** The wireguard-go executable; default "wireguard-go" on PATH. */
  binary?: string;
  /** Directory for <name>.log, wireguard-go's output; default /run/weft/wireguard. */
  logDir?: string;
  /** wireguard-go's LOG_LEVEL: "error" (default), "verbose" or "silent". It logs public keys at verbose, never private ones. */
  logLevel?: 'error' | 'verbose' | 'silent';
  /** How long wireguard-go may take to answer on its socket after being spawned; default 10 s. */
  startTimeoutMs?: number;
  /** Deadline of each UAPI exchange; default 5 s. */
  uapiTimeoutMs?: number;
  log?: Logger;
};

export type UserspaceDevice = WireGuardDevice & {
  readonly backend: 'userspace';
  readonly socketPath: string;
  /** The wireguard-go process; undefined when an adopted socket's process could not be identified. */
  readonly pid: number | undefined;
  /** True when an already-running wireguard-go was taken over rather than started. */
  readonly adopted: boolean;
  /** SIGTERM to the process (SIGKILL if it does not exit in time); its TUN and socket go with it. */
  stop(): Promise<void>;
};

function deviceOn(uapi: UapiClient, pid: number | undefined, adopted: boolean, stopTimeoutMs: number, binary: string): UserspaceDevice {
  return {
    name: uapi.name,
    backend: 'userspace',
    socketPath: uapi.socketPath,
    pid,
    adopted,
    get: () => uapi.get(),
    apply: (u) => uapi.set(u),
    stop: async () => {
      if (pid === undefined) throw new WireGuardDeviceError(uapi.name, 'cannot stop: the process serving the socket is unknown');
      await stopProcess(uapi.name, pid, binary, stopTimeoutMs);
    },
  };
}

// ---- finding the process behind a socket ----

function readArgv(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
  } catch {
    return null;
  }
}

/** Whether /proc/PID is a live (not zombie) wireguard-go serving `name`. */
function isWireGuardGoFor(pid: number, name: string, binary: string): boolean {
  const argv = readArgv(pid);
  if (!argv || argv.length < 2) return false;
  const exe = basename(argv[0]);
  if (exe !== basename(binary) && exe !== WIREGUARD_GO) return false;
  if (argv[argv.length - 1] !== name) return false;
  return processState(pid) !== 'Z';
}

function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

function nsOfPid(pid: number): { dev: bigint; ino: bigint } | null {
  try {
    const st = statSync(`/proc/${pid}/ns/net`, { bigint: true });
    return { dev: st.dev, ino: st.ino };
  } catch {
    return null;
  }
}

/** Whether the process sees the same mounts as this one (so the same /var/run/wireguard); unknown counts as the same. */
function sameMountNs(pid: number): boolean {
  try {
    const a = statSync(`/proc/${pid}/ns/mnt`, { bigint: true });
    const b = statSync('/proc/thread-self/ns/mnt', { bigint: true });
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return true;
  }
}

/** The wireguard-go processes for an interface name, each with whether it runs in the target namespace. */
export function findWireGuardGo(name: string, netns?: string, binary = WIREGUARD_GO): Array<{ pid: number; inTarget: boolean }> {
  checkInterfaceName(name);
  const target = netnsId(netns ?? '/proc/thread-self/ns/net');
  const out: Array<{ pid: number; inTarget: boolean }> = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    if (!isWireGuardGoFor(pid, name, binary)) continue;
    const ns = nsOfPid(pid);
    out.push({ pid, inTarget: ns !== null && ns.dev === target.dev && ns.ino === target.ino });
  }
  return out;
}

// ---- start, adopt, stop ----

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** wireguard-go processes this process spawned and Node has not reaped yet. */
const ownChildren = new Set<number>();

/**
 * The running wireguard-go for this interface, if its socket answers; null
 * when there is no socket or only a stale one. Throws when the socket answers
 * from another namespace or does not answer at all.
 */
export async function adoptUserspaceDevice(o: UserspaceOptions): Promise<UserspaceDevice | null> {
  checkInterfaceName(o.name);
  const binary = o.binary ?? WIREGUARD_GO;
  const uapi = createUapiClient({ name: o.name, timeoutMs: o.uapiTimeoutMs });
  try {
    await uapi.get();
  } catch (e) {
    if (e instanceof WireGuardUapiError && (e.code === 'ENOENT' || e.code === 'ECONNREFUSED')) return null;
    const pids = safeFind(o.name, o.netns, binary).map((p) => p.pid);
    throw new WireGuardDeviceError(o.name, `the UAPI socket exists but the device behind it does not answer (wireguard-go PIDs: ${pids.join(', ') || 'none found'})`, { cause: e });
  }
  const procs = findWireGuardGo(o.name, o.netns, binary);
  const mine = procs.find((p) => p.inTarget);
  if (!mine && procs.length > 0) {
    throw new WireGuardDeviceError(o.name, `the UAPI socket belongs to wireguard-go PID ${procs.map((p) => p.pid).join(', ')} in another network namespace than ${o.netns ?? "this process's"}`);
  }
  if (!mine) o.log?.warn({ device: o.name }, 'wireguard device adopted, but the process serving its socket was not found: it cannot be stopped by PID');
  else o.log?.info({ device: o.name, pid: mine.pid }, 'wireguard-go already running: adopted');
  return deviceOn(uapi, mine?.pid, true, DEFAULT_STOP_TIMEOUT_MS, binary);
}

function safeFind(name: string, netns: string | undefined, binary: string): Array<{ pid: number; inTarget: boolean }> {
  try {
    return findWireGuardGo(name, netns, binary);
  } catch {
    return [];
  }
}

function logTail(path: string): string {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return text.slice(-1000);
  } catch {
    return '';
  }
}

/** Adopt the running device, or start wireguard-go for it. */
export async function startUserspaceDevice(o: UserspaceOptions): Promise<UserspaceDevice> {
  const adopted = await adoptUserspaceDevice(o);
  if (adopted) return adopted;
  const binary = o.binary ?? WIREGUARD_GO;
  const socketPath = uapiSocketPath(o.name);
  // one in another network namespace counts only when it shares this mount namespace, and so the socket path:
  // hosts of a test lab (or containers) each with their own /var/run/wireguard run one each under the same name
  const running = findWireGuardGo(o.name, o.netns, binary).filter((p) => p.inTarget || sameMountNs(p.pid));
  if (running.length > 0) {
    // its socket refused or is gone, yet it runs: removing the socket would make it exit, starting another would clash
    throw new WireGuardDeviceError(o.name, `wireguard-go PID ${running.map((p) => p.pid).join(', ')} runs for this interface but does not answer on ${socketPath}`);
  }
  removeStaleSocket(o.name, socketPath);
  const logDir = o.logDir ?? DEFAULT_LOG_DIR;
  mkdirSync(logDir, { recursive: true, mode: 0o700 });
  const logPath = `${logDir}/${o.name}.log`;
  const out = openSync(logPath, 'a', 0o600);
  let exited: string | null = null;
  let pid: number;
  try {
    const run = () =>
      spawn(binary, ['-f', o.name], {
        detached: true,
        stdio: ['ignore', out, out],
        // only what it needs: none of this process's variables (a join token) goes with it
        env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LOG_LEVEL: o.logLevel ?? 'error', WG_PROCESS_FOREGROUND: '1' },
      });
    const child = o.netns ? withNetns(o.netns, run) : run();
    const spawnError = await new Promise<Error | null>((resolve) => {
      child.once('spawn', () => resolve(null));
      child.once('error', resolve);
    });
    if (spawnError) throw new WireGuardDeviceError(o.name, `cannot run ${binary}: ${spawnError.message}`, { cause: spawnError });
    child.on('error', () => {}); // a later failure (a signal that cannot be sent) shows as the process exiting or not answering
    pid = child.pid!;
    ownChildren.add(pid);
    child.once('exit', () => ownChildren.delete(pid));
    child.once('exit', (code, signal) => (exited = signal ? `killed by ${signal}` : `exited with status ${code}`));
    child.unref();
  } finally {
    closeSync(out);
  }
  const uapi = createUapiClient({ name: o.name, timeoutMs: o.uapiTimeoutMs });
  const deadline = Date.now() + (o.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
  let pause = 5;
  let last: unknown;
  for (;;) {
    if (exited !== null) {
      const tail = logTail(logPath);
      throw new WireGuardDeviceError(o.name, `wireguard-go (PID ${pid}) ${exited} before its socket answered${tail ? `: ${tail}` : ''} (log: ${logPath})`);
    }
    if (existsSync(socketPath)) {
      try {
        await uapi.get();
        break;
      } catch (e) {
        last = e;
      }
    }
    if (Date.now() > deadline) {
      await stopProcess(o.name, pid, binary, DEFAULT_STOP_TIMEOUT_MS).catch(() => {});
      throw new WireGuardDeviceError(o.name, `wireguard-go (PID ${pid}) did not answer on ${socketPath} within ${o.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS} ms; stopped it (log: ${logPath})`, { cause: last });
    }
    await delay(pause);
    pause = Math.min(pause * 2, 100);
  }
  o.log?.info({ device: o.name, pid, netns: o.netns }, 'wireguard-go started');
  return deviceOn(uapi, pid, false, DEFAULT_STOP_TIMEOUT_MS, binary);
}

/** A socket file left by a process that is gone: connect was refused (checked by the caller), and no wireguard-go for the name runs. */
function removeStaleSocket(name: string, socketPath: string): void {
  try {
    if (!lstatSync(socketPath).isSocket()) throw new WireGuardDeviceError(name, `${socketPath} exists and is not a socket`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  unlinkSync(socketPath);
}

/** SIGTERM, wait for the process to be gone (or a zombie), SIGKILL after the timeout. Refuses a PID that is no longer wireguard-go for the name. */
async function stopProcess(name: string, pid: number, binary: string, timeoutMs: number): Promise<void> {
  if (!isWireGuardGoFor(pid, name, binary)) return; // already gone (or the PID now belongs to something else)
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  let pause = 5;
  let killed = false;
  while (isWireGuardGoFor(pid, name, binary)) {
    if (Date.now() > deadline) {
      if (killed) throw new WireGuardDeviceError(name, `wireguard-go PID ${pid} survived SIGTERM and SIGKILL`);
      process.kill(pid, 'SIGKILL');
      killed = true;
    }
    await delay(pause);
    pause = Math.min(pause * 2, 100);
  }
  // A child of this process is gone only once Node has reaped it (an adopted
  // one is its parent's to reap). Polled, not awaited: the child is unref'd,
  // so its exit alone would not keep the event loop running until then.
  while (ownChildren.has(pid) && Date.now() < deadline + timeoutMs) await delay(5);
}

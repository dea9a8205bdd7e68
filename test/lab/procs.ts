// Processes the lab starts inside its namespaces. Each runs as the leader of
// its own process group, so stopping it also stops whatever it forked; only
// groups the lab started are ever signalled, and a group member is touched
// only while it still sits in one of the lab's namespaces (a pid reused by an
// unrelated process elsewhere is left alone).
import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { TimedOut, waitFor } from '../helpers/wait';
import type { ProcessRecord } from './state';

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** stdout and stderr are appended here; without it the last 64 KiB are kept in memory (see output()) */
  logFile?: string;
  cwd?: string;
  /** the child gets SIGKILL if the spawning process dies first (default true; false for labs meant to outlive it) */
  dieWithParent?: boolean;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LabProcess {
  pid: number;
  netns: string;
  cmd: string;
  /** resolves when the leader has exited */
  wait(): Promise<ExitStatus>;
  /** signal the whole group, SIGKILL after graceMs, resolve once the leader is gone */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<ExitStatus>;
  /** captured output when no logFile was given */
  output(): string;
  /** what the lab's record keeps so another process can stop the group */
  record: ProcessRecord;
  readonly exited: boolean;
}

const OUTPUT_TAIL = 64 * 1024;

/** Field 22 of /proc/<pid>/stat (clock ticks since boot), or null if the process is gone. */
export function processStartTime(pid: number): number | null {
  const st = procStat(pid);
  return st ? st.startTime : null;
}

interface ProcStat {
  pid: number;
  pgrp: number;
  startTime: number;
}

function procStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm may contain spaces and parentheses: the fields start after the last ')'
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, pgrp: Number(rest[2]), startTime: Number(rest[19]) };
}

export function netnsInode(path: string): number | null {
  try {
    return statSync(path).ino;
  } catch {
    return null;
  }
}

function processNetnsInode(pid: number): number | null {
  try {
    const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/net`));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Live pids in one of the recorded groups that are inside one of the given namespaces. */
export function groupMembers(groups: ProcessRecord[], nsInodes: Set<number>): number[] {
  if (groups.length === 0) return [];
  const byPgid = new Map(groups.map((g) => [g.pgid, g.startTime]));
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const st = procStat(Number(entry));
    if (!st) continue;
    const leaderStart = byPgid.get(st.pgrp);
    if (leaderStart === undefined || st.startTime < leaderStart) continue;
    const ino = processNetnsInode(st.pid);
    if (ino !== null && nsInodes.has(ino)) out.push(st.pid);
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals | number): void {
  try {
    process.kill(pid, sig);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

/**
 * Stop every member of the recorded groups still inside the lab: SIGTERM,
 * then SIGKILL after graceMs. Used by `lab down` from another process and for
 * children a stopped leader left behind.
 */
export async function killGroups(groups: ProcessRecord[], nsInodes: Set<number>, graceMs = 2000): Promise<void> {
  const pids = groupMembers(groups, nsInodes);
  if (pids.length === 0) return;
  for (const p of pids) signal(p, 'SIGTERM');
  try {
    await waitFor('the lab processes to exit on SIGTERM', () => pids.every(isZombie), graceMs, 25);
    return;
  } catch (e) {
    if (!(e instanceof TimedOut)) throw e;
  }
  for (const p of groupMembers(groups, nsInodes)) signal(p, 'SIGKILL');
}

function isZombie(pid: number): boolean {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

// A test that throws past its teardown, or a process.exit(), must not leave
// servers running in namespaces about to be swept.
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of live) if (c.pid) signal(-c.pid, 'SIGKILL');
  });
}

export function startProcess(netns: string, cmd: string, args: string[], opts: SpawnOptions = {}): LabProcess {
  const dieWithParent = opts.dieWithParent !== false;
  // ip netns exec and setpriv both exec in place: the pid we get is the command's own
  const argv = ['netns', 'exec', netns, ...(dieWithParent ? ['setpriv', '--pdeathsig', 'KILL', '--'] : []), cmd, ...args];
  const logFd = opts.logFile ? openSync(opts.logFile, 'a') : null;
  let child: ChildProcess;
  try {
    child = spawnChild('ip', argv, {
      detached: true, // own process group, so stop() reaches its children too
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
      cwd: opts.cwd,
      stdio: ['ignore', logFd ?? 'pipe', logFd ?? 'pipe'],
    });
  } finally {
    if (logFd !== null) closeSync(logFd);
  }
  if (child.pid === undefined) {
    throw new Error(`cannot start ${cmd} in ${netns}`);
  }
  const pid = child.pid;
  const record: ProcessRecord = { pgid: pid, startTime: processStartTime(pid) ?? 0, cmd: [cmd, ...args].join(' ') };
  const nsIno = netnsInode(netns.includes('/') ? netns : `/run/netns/${netns}`);
  if (dieWithParent) {
    installExitHook();
    live.add(child);
  }

  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  let done = false;
  let status: ExitStatus | null = null;
  const exitPromise = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, sig) => {
      done = true;
      status = { code, signal: sig };
      live.delete(child);
      resolve(status);
    });
    child.once('error', () => {
      done = true;
      live.delete(child);
      resolve({ code: null, signal: null });
    });
  });

  const proc: LabProcess = {
    pid,
    netns,
    cmd,
    record,
    wait: () => exitPromise,
    output: () => tail,
    get exited() {
      return done;
    },
    async stop(sig: NodeJS.Signals = 'SIGTERM', graceMs = 3000) {
      // until 'exit' the leader is unreaped, so its pid (= the group id) cannot have been reused
      if (!done) signal(-pid, sig);
      const timer = sleep(graceMs).then(() => 'timeout' as const);
      if ((await Promise.race([exitPromise, timer])) === 'timeout' && !done) signal(-pid, 'SIGKILL');
      const st = await exitPromise;
      // children the leader left behind: only those still in its namespace
      if (nsIno !== null) await killGroups([record], new Set([nsIno]), graceMs);
      return st;
    },
  };
  return proc;
}

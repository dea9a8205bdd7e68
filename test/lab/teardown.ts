// Removing a lab: its processes first (a process inside a namespace keeps the
// namespace alive after its name is gone), then its namespaces in reverse
// creation order. Deleting a namespace destroys its links, and a veth's
// destruction takes its peer with it, so no link needs deleting by hand.
// Every step tolerates what is already gone: teardown runs after partial
// creation, after a crash, and twice.
import { readlinkSync, readFileSync } from 'node:fs';
import { ip, listNetns, netnsExists } from './run';
import { killGroups, netnsInode } from './procs';
import { labPrefix } from './plan';
import { readState, removeState, type ProcessRecord } from './state';

export interface TeardownReport {
  removed: string[];
  /** pids still inside a lab namespace that the lab did not start: reported, never killed */
  strangers: Array<{ pid: number; netns: string; cmdline: string }>;
  errors: string[];
}

function pidsIn(netns: string): number[] {
  const r = ip(['netns', 'pids', netns], { check: false });
  return r.status === 0 ? r.stdout.split('\n').filter(Boolean).map(Number) : [];
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    try {
      return readlinkSync(`/proc/${pid}/exe`);
    } catch {
      return '?';
    }
  }
}

export async function destroyNamespaces(namespaces: string[], processes: ProcessRecord[]): Promise<TeardownReport> {
  const report: TeardownReport = { removed: [], strangers: [], errors: [] };
  const existing = namespaces.filter(netnsExists);
  const inodes = new Set(existing.map((n) => netnsInode(`/run/netns/${n}`)).filter((i): i is number => i !== null));
  try {
    await killGroups(processes, inodes);
  } catch (e) {
    report.errors.push(`stopping lab processes: ${(e as Error).message}`);
  }
  for (const ns of [...existing].reverse()) {
    for (const pid of pidsIn(ns)) report.strangers.push({ pid, netns: ns, cmdline: cmdline(pid) });
    const r = ip(['netns', 'del', ns], { check: false });
    if (r.status === 0 || !netnsExists(ns)) report.removed.push(ns);
    else report.errors.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
  }
  return report;
}

/**
 * What `lab down <name>` does: everything the record names, plus any
 * namespace carrying the lab's prefix (a record lost with a crash between
 * writes must not leave a lab that can never be removed).
 */
export async function destroyLabByName(name: string): Promise<TeardownReport> {
  const prefix = labPrefix(name);
  const state = readState(name);
  const recorded = state?.namespaces ?? [];
  const byPrefix = listNetns().filter((n) => n.startsWith(prefix) && !recorded.includes(n));
  const report = await destroyNamespaces([...recorded, ...byPrefix], state?.processes ?? []);
  if (report.errors.length === 0) removeState(name);
  return report;
}

export function warnAboutLeftovers(lab: string, report: TeardownReport): void {
  for (const s of report.strangers) {
    process.stderr.write(`lab ${lab}: process ${s.pid} (${s.cmdline}) was still inside ${s.netns}; not started by the lab, left running\n`);
  }
  for (const e of report.errors) process.stderr.write(`lab ${lab}: ${e}\n`);
}

// A lab's record on disk: /run/weft-lab/<name>.json. Whatever the lab creates
// is written here before (namespaces) or right after (processes) it exists,
// so `lab down <name>` from another process, or after a crash, finds all of
// it. /run is a tmpfs: a reboot, which removes every namespace, removes the
// records with them.
import { mkdirSync, openSync, closeSync, writeFileSync, renameSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import type { LabSpec } from './plan';

export const STATE_DIR = '/run/weft-lab';

export interface ProcessRecord {
  /** process group id = pid of the leader the lab started */
  pgid: number;
  /** /proc/<pid>/stat start time of the leader: a reused pid has a later one */
  startTime: number;
  cmd: string;
}

export interface LabState {
  name: string;
  spec: LabSpec;
  createdAt: string;
  ownerPid: number;
  /** created by `lab up`: outlives the creating process on purpose */
  persistent: boolean;
  /** in creation order */
  namespaces: string[];
  processes: ProcessRecord[];
  ready: boolean;
}

export function statePath(name: string): string {
  return `${STATE_DIR}/${name}.json`;
}

export class LabExistsError extends Error {
  override name = 'LabExistsError';
}

/** Claims the lab's name: O_EXCL on the record, so two processes cannot build the same lab at once. */
export function claimState(state: LabState): void {
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o755 });
  let fd: number;
  try {
    fd = openSync(statePath(state.name), 'wx', 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new LabExistsError(`lab "${state.name}" exists (${statePath(state.name)}); remove it with: npm run lab -- down ${state.name}`);
    }
    throw e;
  }
  try {
    writeFileSync(fd, JSON.stringify(state, null, 2) + '\n');
  } finally {
    closeSync(fd);
  }
}

/** Atomic replace: a reader (or a crash) never sees half a record. */
export function writeState(state: LabState): void {
  const tmp = `${statePath(state.name)}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o644 });
  renameSync(tmp, statePath(state.name));
}

export function readState(name: string): LabState | null {
  try {
    return JSON.parse(readFileSync(statePath(name), 'utf8')) as LabState;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

export function removeState(name: string): void {
  rmSync(statePath(name), { force: true });
}

export function listStates(): LabState[] {
  let files: string[];
  try {
    files = readdirSync(STATE_DIR);
  } catch {
    return [];
  }
  const out: LabState[] = [];
  for (const f of files.filter((f) => f.endsWith('.json')).sort()) {
    const s = readState(f.slice(0, -'.json'.length));
    if (s) out.push(s);
  }
  return out;
}

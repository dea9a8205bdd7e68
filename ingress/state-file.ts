// The last service state the ingress had, kept in its state dir so a cold
// start while the controller is down serves what it served before instead
// of nothing. Plain JSON with the revision (an operator can read it), written
// atomically (a crash leaves the old file or the new one, never half of
// one). A file that cannot be read or does not have the expected shape is
// refused with a logged error and the ingress starts empty: a bad file must
// never keep it from starting.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceAtomic } from '../controller/common/files';
import type { Logger } from '../controller/common/log';
import { latestOnly } from './latest-only';
import type { IngressService } from './model';
import type { IngressState } from './sync';

export const STATE_FILE = 'services.json';
const FORMAT = 1;

type FileShape = { format: number; revision: number; savedAt: string; services: IngressService[] };

export function stateFilePath(stateDir: string): string {
  return join(stateDir, STATE_FILE);
}

export function encodeState(state: IngressState, now = new Date()): string {
  const services = [...state.services.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const body: FileShape = { format: FORMAT, revision: state.revision, savedAt: now.toISOString(), services };
  return JSON.stringify(body, null, 1) + '\n';
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isPort = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65535;

/** Why `s` is not an IngressService, or undefined when it is one. */
function serviceProblem(s: unknown, i: number): string | undefined {
  const at = `services[${i}]`;
  if (typeof s !== 'object' || s === null) return `${at} is not an object`;
  const v = s as Record<string, unknown>;
  if (!isStr(v.name) || v.name === '') return `${at}.name is not a name`;
  if (!isStr(v.network)) return `${at}.network is not a string`;
  if (!Array.isArray(v.ports)) return `${at}.ports is not a list`;
  for (const p of v.ports as unknown[]) {
    const q = p as Record<string, unknown>;
    if (typeof p !== 'object' || p === null || !isStr(q.name) || !isPort(q.port) || !isPort(q.targetPort) || !['http', 'tcp', 'udp'].includes(q.protocol as string)) {
      return `${at}.ports holds ${JSON.stringify(p)}, not { name, port, targetPort, protocol }`;
    }
  }
  if (!Array.isArray(v.hostnames) || !v.hostnames.every(isStr)) return `${at}.hostnames is not a list of names`;
  if (!isStr(v.pathPrefix) || !isStr(v.healthPath)) return `${at}.pathPrefix or healthPath is not a string`;
  if (v.rackPolicy !== 'prefer-local' && v.rackPolicy !== 'any') return `${at}.rackPolicy is not prefer-local or any`;
  if (v.affinity !== 'none' && v.affinity !== 'client-ip') return `${at}.affinity is not none or client-ip`;
  if (typeof v.proxyProtocol !== 'boolean') return `${at}.proxyProtocol is not true or false`;
  if (!Array.isArray(v.backends)) return `${at}.backends is not a list`;
  for (const b of v.backends as unknown[]) {
    const q = b as Record<string, unknown>;
    if (typeof b !== 'object' || b === null || !['ip', 'host', 'rack', 'datacenter', 'containerId'].every((k) => isStr(q[k]))) {
      return `${at}.backends holds ${JSON.stringify(b)}, not { ip, host, rack, datacenter, containerId }`;
    }
  }
  return undefined;
}

/** The state in `text`, or a description of what is wrong with it. */
export function decodeState(text: string): { state: IngressState } | { problem: string } {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return { problem: `not valid JSON (${(e as Error).message})` };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return { problem: 'not a JSON object' };
  const d = data as Partial<FileShape>;
  if (d.format !== FORMAT) return { problem: `format ${JSON.stringify(d.format)} is not ${FORMAT}` };
  if (!Number.isSafeInteger(d.revision) || (d.revision as number) < 0) return { problem: `revision ${JSON.stringify(d.revision)} is not a whole number` };
  if (!Array.isArray(d.services)) return { problem: 'services is not a list' };
  const services = new Map<string, IngressService>();
  for (const [i, s] of d.services.entries()) {
    const problem = serviceProblem(s, i);
    if (problem) return { problem };
    if (services.has(s.name)) return { problem: `service ${JSON.stringify(s.name)} appears twice` };
    services.set(s.name, s);
  }
  return { state: { revision: d.revision as number, services } };
}

/** The saved state, or undefined when there is none or it is unusable (logged as an error, never thrown). */
export async function readStateFile(stateDir: string, log: Logger): Promise<IngressState | undefined> {
  const path = stateFilePath(stateDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    log.error({ err, path }, 'cannot read the saved service state; starting without it');
    return undefined;
  }
  const r = decodeState(text);
  if ('problem' in r) {
    log.error({ path, problem: r.problem }, `the saved service state is unusable (${r.problem}); ignoring it until the controller sends a new one`);
    return undefined;
  }
  return r.state;
}

/** Saves the state (0600: it maps the cluster's services). */
export async function writeStateFile(stateDir: string, state: IngressState): Promise<void> {
  await replaceAtomic(stateFilePath(stateDir), encodeState(state), 0o600);
}

/**
 * Saves states as they come, one write at a time; a state that arrives
 * during a write replaces any still waiting (only the newest matters).
 * A failed write is logged and the next state tries again.
 */
export function stateSaver(stateDir: string, log: Logger): { save(s: IngressState): void; flush(): Promise<void> } {
  const writes = latestOnly((s: IngressState) =>
    writeStateFile(stateDir, s).catch((err: unknown) => log.error({ err, path: stateFilePath(stateDir) }, 'cannot save the service state')));
  return { save: (s) => writes.push(s), flush: () => writes.settled() };
}

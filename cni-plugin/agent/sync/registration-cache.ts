// The last registration the controller answered (this host's subnets and the
// cluster config), kept in the state dir. An agent restarted while the
// controller is away starts from it: the host network is ensured as it was
// (no change), the CNI socket serves containers again, and the overlay is
// left alone until a snapshot arrives. Without it the agent could only wait.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClusterConfigMsg } from '../../../controller/api/proto';
import { replaceAtomic } from '../../../controller/common/files';
import type { Subnet } from './controller';

export const REGISTRATION_FILE = 'registration.json';

export type CachedRegistration = { subnets: Subnet[]; config: ClusterConfigMsg; savedAt: string };

export async function saveRegistration(stateDir: string, r: { subnets: Subnet[]; config: ClusterConfigMsg }): Promise<void> {
  const data: CachedRegistration = { subnets: r.subnets, config: r.config, savedAt: new Date().toISOString() };
  await replaceAtomic(join(stateDir, REGISTRATION_FILE), JSON.stringify(data, null, 2) + '\n', 0o600);
}

/** The cached registration; undefined when there is none or it is unreadable (the caller then waits for the controller). */
export async function loadRegistration(stateDir: string): Promise<{ value?: CachedRegistration; problem?: string }> {
  const path = join(stateDir, REGISTRATION_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    return { problem: `cannot read ${path}: ${(e as Error).message}` };
  }
  try {
    const v = JSON.parse(text) as CachedRegistration;
    const ok =
      Array.isArray(v.subnets) && v.subnets.every((s) => typeof s?.network === 'string' && typeof s?.subnet === 'string') &&
      typeof v.config === 'object' && v.config !== null && Array.isArray(v.config.networks) && Number.isInteger(v.config.vxlan_port);
    return ok ? { value: v } : { problem: `${path} does not hold a registration; ignoring it` };
  } catch (e) {
    return { problem: `${path} is not valid JSON (${(e as Error).message}); ignoring it` };
  }
}

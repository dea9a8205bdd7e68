// What a host needs to join this controller, recorded in the data dir at
// every start (join.json, replaced atomically) so `weft token create` can
// print a complete join command without guessing: the address the join
// command names, the CA pin, and the names in the serving certificate.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceAtomic } from '../common/files';

export const JOIN_FILE = 'join.json';

export type JoinInfo = {
  /** host:port for `weft agent --server`. */
  server: string;
  /** Which rule chose the address (advertise.ts). */
  serverSource: string;
  /** sha256:<hex> of the CA's public key, for `--ca-cert-hash`. */
  caCertHash: string;
  /** DNS names and IP addresses in the serving certificate: what --server may name. */
  certNames: string[];
  /** False under --insecure: agents cannot join such a controller. */
  tls: boolean;
  writtenAt: string;
};

export async function writeJoinInfo(dataDir: string, info: JoinInfo): Promise<string> {
  const path = join(dataDir, JOIN_FILE);
  await replaceAtomic(path, JSON.stringify(info, null, 2) + '\n', 0o644);
  return path;
}

/** What token create needs of the recorded join info, or null when no controller has started with this data dir (or the file is not ours). */
export async function readJoinInfo(dataDir: string): Promise<Pick<JoinInfo, 'server' | 'caCertHash' | 'tls'> | null> {
  let text: string;
  try {
    text = await readFile(join(dataDir, JOIN_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const v = JSON.parse(text) as Partial<JoinInfo>;
    if (typeof v.server !== 'string' || typeof v.caCertHash !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(v.caCertHash)) return null;
    return { server: v.server, caCertHash: v.caCertHash, tls: v.tls !== false };
  } catch {
    return null;
  }
}

/** The one line to run on a host. */
export function joinCommand(server: string, token: string, caCertHash: string): string {
  return `weft agent --server ${server} --token ${token} --ca-cert-hash ${caCertHash}`;
}

// Invoking weft's CNI binary exactly as a container runtime does (libcni's
// invoke.ExecPluginWithResult): the conflist loaded from the conf dir, the
// plugin executable found by its type in CNI_PATH and exec'd in the host's
// network namespace, the CNI_* variables in its environment, one plugin's
// network configuration (the conflist's name and cniVersion merged in) on
// stdin, the result or a CNI error object read from stdout, failure told by
// the exit status.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './cluster';

export const SHIM = join(ROOT, 'dist', 'weft-cni');

export type CniVerb = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION';

export type CniCall = {
  /** host namespace name the runtime (and so the plugin) runs in */
  hostNetns: string;
  /** CNI_PATH: the runtime runs <dir>/<config.type> from it; default dist/ with the shim itself */
  cniPath?: string;
  command: CniVerb;
  containerId?: string;
  /** path of the container's namespace (/run/netns/...) */
  netns?: string;
  ifname?: string;
  args?: string;
  /** the plugin's network configuration, as libcni hands it over */
  config: Record<string, unknown>;
  timeoutMs?: number;
  /** argv run before the plugin inside the host namespace, e.g. nsenter into a machine's mount namespace */
  wrap?: string[];
};

export type CniOutcome = {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it is JSON */
  json: any;
  ms: number;
};

export type Conflist = { cniVersion: string; name: string; plugins: Array<Record<string, unknown>> };

/** A conflist file as a runtime loads it from its conf dir. */
export function loadConflist(path: string): Conflist {
  return JSON.parse(readFileSync(path, 'utf8')) as Conflist;
}

/** libcni: each plugin of a list gets its own object with the list's name and cniVersion (and prevResult when chained). */
export function pluginConfig(list: Conflist, i = 0): Record<string, unknown> {
  return { ...list.plugins[i], name: list.name, cniVersion: list.cniVersion };
}

export function execCni(c: CniCall): Promise<CniOutcome> {
  const env: Record<string, string> = {
    // what a runtime's own environment typically holds, plus CNI_*
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: c.command,
    CNI_PATH: c.cniPath ?? join(ROOT, 'dist'),
  };
  const exe = c.cniPath ? join(c.cniPath, String(c.config.type)) : SHIM;
  if (c.containerId !== undefined) env.CNI_CONTAINERID = c.containerId;
  if (c.netns !== undefined) env.CNI_NETNS = c.netns;
  if (c.ifname !== undefined) env.CNI_IFNAME = c.ifname;
  if (c.args !== undefined) env.CNI_ARGS = c.args;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', c.hostNetns, ...(c.wrap ?? []), exe], { env, stdio: 'pipe' });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), c.timeoutMs ?? 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      let json: any;
      try {
        json = stdout.trim() ? JSON.parse(stdout) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr: Buffer.concat(err).toString('utf8'), json, ms: Date.now() - started });
    });
    child.stdin.end(JSON.stringify(c.config));
  });
}

/** ADD that must succeed: returns the CNI result, or throws with the plugin's error object. */
export async function cniAdd(c: Omit<CniCall, 'command'>): Promise<any> {
  const r = await execCni({ ...c, command: 'ADD' });
  if (r.code !== 0 || !r.json?.ips) throw new Error(`CNI ADD ${c.containerId} exited ${r.code}: ${r.stdout.trim()} ${r.stderr.trim()}`);
  return r.json;
}

export async function cniDel(c: Omit<CniCall, 'command'>): Promise<void> {
  const r = await execCni({ ...c, command: 'DEL' });
  if (r.code !== 0) throw new Error(`CNI DEL ${c.containerId} exited ${r.code}: ${r.stdout.trim()} ${r.stderr.trim()}`);
}

// Points a runtime at recording copies of the real CNI plugins and reads back
// what the runtime sent: the records are the evidence behind the runtime
// behaviours weft's plugin has to handle (see ../README.md).
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./cni-recorder.sh', import.meta.url));

export interface CniCall {
  plugin: string;
  command: string;
  rc: number;
  start: bigint;
  env: Record<string, string>;
  /** Parsed stdin; undefined when stdin was not JSON (or empty, as for some VERSION calls). */
  config: Record<string, unknown> | undefined;
  rawStdin: string;
  cniVersion: string | undefined;
  hasPrevResult: boolean;
  stdout: string;
}

export interface Recorder {
  /** The plugin dir to hand to the runtime. */
  pluginDir: string;
  logDir: string;
  calls(): CniCall[];
}

/** Makes `dir` a plugin dir whose `plugins` record into `dir`/log and run the same names from `realDir`. */
export function makeRecorder(dir: string, realDir: string, plugins: string[]): Recorder {
  const pluginDir = join(dir, 'bin');
  const logDir = join(dir, 'log');
  mkdirSync(pluginDir, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  // Single-quoted for sh: temp paths never hold a quote.
  writeFileSync(join(pluginDir, 'recorder.env'), `REAL_DIR='${realDir}'\nLOG_DIR='${logDir}'\n`);
  for (const p of plugins) {
    if (!existsSync(join(realDir, p))) throw new Error(`no plugin ${p} in ${realDir}`);
    symlinkSync(SCRIPT, join(pluginDir, p));
  }
  return { pluginDir, logDir, calls: () => readCalls(logDir) };
}

export function readCalls(logDir: string): CniCall[] {
  return readdirSync(logDir)
    .filter((f) => !f.endsWith('.tmp'))
    .map((f) => parseRecord(readFileSync(join(logDir, f), 'utf8')))
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
}

export function parseRecord(text: string): CniCall {
  const lines = text.split('\n');
  const at = (marker: string): number => {
    const i = lines.indexOf(marker);
    if (i < 0) throw new Error(`record without ${marker}`);
    return i;
  };
  const iEnv = at('--env--');
  const iIn = at('--stdin--');
  const iOut = at('--stdout--');
  const head = Object.fromEntries(lines.slice(0, iEnv).map((l) => splitKv(l)));
  const env = Object.fromEntries(lines.slice(iEnv + 1, iIn).filter(Boolean).map((l) => splitKv(l)));
  const rawStdin = lines.slice(iIn + 1, iOut).join('\n');
  let config: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(rawStdin);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) config = parsed as Record<string, unknown>;
  } catch {
    config = undefined;
  }
  return {
    plugin: head.plugin ?? '',
    command: env.CNI_COMMAND ?? '',
    rc: Number(head.rc),
    start: BigInt(head.start ?? '0'),
    env,
    config,
    rawStdin,
    cniVersion: typeof config?.cniVersion === 'string' ? config.cniVersion : undefined,
    hasPrevResult: config !== undefined && 'prevResult' in config,
    stdout: lines.slice(iOut + 1).join('\n').trim(),
  };
}

function splitKv(line: string): [string, string] {
  const i = line.indexOf('=');
  return i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 1)];
}

/** One line per call, for failure messages and the README. */
export function describeCalls(calls: CniCall[]): string {
  return calls
    .map(
      (c) =>
        `${c.command.padEnd(7)} ${c.plugin.padEnd(10)} rc=${c.rc} v=${c.cniVersion ?? '-'} prev=${c.hasPrevResult ? 'y' : 'n'} ` +
        `netns=${JSON.stringify(c.env.CNI_NETNS ?? null)} ifname=${c.env.CNI_IFNAME ?? '-'} id=${(c.env.CNI_CONTAINERID ?? '-').slice(0, 12)}`,
    )
    .join('\n');
}

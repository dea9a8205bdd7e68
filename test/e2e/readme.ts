// Reading the README's shell blocks and running their commands on lab
// machines (machine.ts) with `weft` on PATH, as `npm link` leaves it: what
// the README tests share so each of them runs the README as written.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ROOT, WEFT, cleanEnv } from './cluster';
import { expect } from 'vitest';
import type { Machine } from './machine';

/** The shell blocks of one README section, as commands (comments and blank lines dropped). */
export function readmeCommands(section: string, readme = readFileSync(join(ROOT, 'README.md'), 'utf8')): string[][] {
  const start = readme.indexOf(`\n## ${section}\n`);
  if (start < 0) throw new Error(`README has no "## ${section}" section`);
  const end = readme.indexOf('\n## ', start + 1);
  const body = readme.slice(start, end < 0 ? undefined : end);
  const blocks: string[][] = [];
  for (const m of body.matchAll(/```sh\n([\s\S]*?)```/g)) {
    blocks.push(m[1].split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l && !l.startsWith('#')));
  }
  return blocks;
}

/** Words of a command line; the README's commands use no quoting. */
export const words = (line: string) => line.split(/\s+/);

/**
 * The join line the README writes for a host is the line `weft token create`
 * printed (the same flags, in the same order) followed by the host's place,
 * `--rack r1 --datacenter dc1`. Checks that of the README's `argv` and
 * returns what the host runs: the printed line with its own rack and
 * datacenter.
 */
export function printedLineWithPlace(argv: string[], printedLine: string, place: { rack: string; datacenter: string }): string[] {
  const printed = words(printedLine);
  const flags = (ws: string[]) => ws.filter((w) => w.startsWith('--'));
  expect(flags(argv.slice(0, printed.length)), 'the README names the printed line\'s flags, in its order').toEqual(flags(printed));
  expect(argv.slice(printed.length), 'what the README adds to the printed line').toEqual(['--rack', 'r1', '--datacenter', 'dc1']);
  return [...printed, '--rack', place.rack, '--datacenter', place.datacenter];
}

/** A bin dir under `dir` holding `weft` (the build), and an environment whose PATH starts there and has no WEFT_* settings. */
export function weftOnPath(dir: string): NodeJS.ProcessEnv {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  symlinkSync(WEFT, join(dir, 'bin', 'weft'));
  return cleanEnv({ PATH: `${join(dir, 'bin')}:${dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` });
}

export type RunResult = { status: number; stdout: string; stderr: string };

/** A command on a machine (its netns, mount and UTS namespaces), without blocking the event loop. */
export function runOnAsync(m: Machine, argv: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', m.netns, ...m.enter(), ...argv], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ status: code ?? 128 + (signal ? 9 : 0), stdout, stderr });
    });
  });
}

/** Like runOnAsync for a command that must succeed: its stdout, or an error with both streams. */
export async function runOn(m: Machine, argv: string[], env: NodeJS.ProcessEnv, timeoutMs?: number): Promise<string> {
  const r = await runOnAsync(m, argv, env, timeoutMs);
  if (r.status !== 0) throw new Error(`on ${m.name}: ${argv.join(' ')} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

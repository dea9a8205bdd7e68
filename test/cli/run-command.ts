// A weft subcommand run in-process with its stdout and stderr captured, for
// the CLI tests that drive commands against a real controller.
import { vi } from 'vitest';

export type CommandRun = { code: number; out: string; err: string };

/** Runs a command with stdout and stderr captured. */
export async function runCommand(cmd: (argv: string[]) => Promise<number>, argv: string[]): Promise<CommandRun> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    return { code: await cmd(argv), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

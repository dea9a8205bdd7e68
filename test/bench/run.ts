// Runs benchmarks by name: `npm run bench -- netlink` runs test/bench/netlink.ts.
// Each runs in its own process, so one bench's namespaces, sockets or heap
// cannot colour the next one's numbers, and each keeps its JSON summary as
// the last line of its own output.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

function benchNames(): string[] {
  return readdirSync(here)
    .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.endsWith('.test.ts'))
    .map((f) => f.slice(0, -'.ts'.length))
    .sort();
}

function main(argv: string[]): number {
  const valid = benchNames();
  const usage = `usage: npm run bench -- <name> [<name>...]\nbenchmarks: ${valid.join(', ') || '(none)'}`;
  if (argv.length === 0) {
    console.error(usage);
    return 2;
  }
  const unknown = argv.filter((n) => !valid.includes(n));
  if (unknown.length > 0) {
    console.error(`unknown benchmark${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}\n${usage}`);
    return 2;
  }
  for (const name of argv) {
    // --expose-gc lets a bench start each timed section from a collected heap
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, `${name}.ts`)], { stdio: 'inherit' });
    if (r.status !== 0) {
      console.error(`benchmark ${name} failed (${r.signal ?? `exit ${r.status}`})`);
      return r.status || 1;
    }
  }
  return 0;
}

process.exitCode = main(process.argv.slice(2));

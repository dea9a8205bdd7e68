// Runs benchmarks by name: `npm run bench -- netlink` runs test/bench/netlink.ts.
// Each runs in its own process, so one bench's namespaces, sockets or heap
// cannot colour the next one's numbers, and each keeps its JSON summary as
// the last line of its own output.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
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

async function main(argv: string[]): Promise<number> {
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
  let stopping = false;
  for (const name of argv) {
    // --expose-gc lets a bench start each timed section from a collected heap
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, `${name}.ts`)], { stdio: 'inherit' });
    // A signal sent to this runner alone (kill PID, a CI timeout) goes on to the bench, which stops what it
    // started; without this the bench and its namespaces and daemons would outlive the runner.
    const forward = (sig: NodeJS.Signals) => { stopping = true; child.kill(sig); };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    if (code !== 0) {
      console.error(`benchmark ${name} failed (${signal ?? `exit ${code}`})`);
      return code || 1;
    }
    if (stopping) return 130;
  }
  return 0;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err) => { console.error(err); process.exitCode = 1; });

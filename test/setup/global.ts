// Runs once around the whole test run. Every test removes what it made in its
// own teardown; this is the net under that: a test process killed mid-run
// (timeout, crash) cannot run its teardown, so whatever carries the tests'
// prefix is removed here, before and after the run.
import { execFileSync } from 'node:child_process';
import { TEST_PREFIX } from '../helpers/names';

function sweep(): void {
  let names: string[] = [];
  try {
    names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter((n) => n.startsWith(TEST_PREFIX));
  } catch {
    return;
  }
  for (const n of names) {
    try {
      execFileSync('ip', ['netns', 'delete', n], { stdio: 'ignore' });
    } catch {
      /* raced with the test's own teardown */
    }
  }
}

export default function setup(): () => void {
  if (process.getuid?.() !== 0) throw new Error('weft tests drive the kernel: run them as root');
  sweep();
  return sweep;
}

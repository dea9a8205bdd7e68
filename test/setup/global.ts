// Runs once around the whole test run. Every test removes what it made in its
// own teardown; this is the net under that: a test process killed mid-run
// (timeout, crash) cannot run its teardown, so the namespaces it recorded are
// removed here, before and after the run. Only dead owners are swept, so two
// test runs on one machine never remove each other's namespaces.
import { readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { netnsDelete } from '../../dataplane/netlink/netns';
import { OWNERS_DIR } from '../helpers/names';
import { processAlive } from '../helpers/process';


function sweep(): void {
  let owners: string[] = [];
  try {
    owners = readdirSync(OWNERS_DIR);
  } catch {
    return;
  }
  for (const owner of owners) {
    const pid = Number(owner);
    if (!Number.isInteger(pid) || processAlive(pid)) continue;
    const file = `${OWNERS_DIR}/${owner}`;
    let names: string[];
    try {
      names = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    } catch {
      continue; // another run's sweep took it first
    }
    for (const name of names) {
      if (existsSync(`/run/netns/${name}`)) {
        try {
          netnsDelete(name);
        } catch {
          /* raced with another sweep */
        }
      }
    }
    rmSync(file, { force: true });
  }
}

export default function setup(): () => void {
  if (process.getuid?.() !== 0) throw new Error('weft tests drive the kernel: run them as root');
  sweep();
  return sweep;
}

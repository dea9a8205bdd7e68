// Every kernel object a test creates carries this prefix, and every test
// namespace is recorded in a file named after the creating process, so a
// sweep can remove exactly the leftovers of processes that died before their
// teardown ran, and never a namespace of a test run still going on.
import { appendFileSync, mkdirSync } from 'node:fs';

export const TEST_PREFIX = 'wt';
export const OWNERS_DIR = '/run/weft-test-owners';

let counter = 0;

/** A name unique to this test process: wt<tag><pid><n>, short enough for a link name (15 chars). */
export function uniqueName(tag: string): string {
  const id = `${process.pid.toString(36)}${(counter++).toString(36)}`;
  const name = `${TEST_PREFIX}${tag}${id}`;
  if (name.length > 15) throw new Error(`test name "${name}" too long for a link: shorten the tag "${tag}"`);
  return name;
}

/** Note that this process owns the namespace, for the sweep after a crash. */
export function recordOwnedNetns(name: string): void {
  mkdirSync(OWNERS_DIR, { recursive: true });
  appendFileSync(`${OWNERS_DIR}/${process.pid}`, `${name}\n`);
}

// Every kernel object a test creates carries this prefix, so a sweep can
// find (only) the tests' leftovers.
export const TEST_PREFIX = 'wt';

let counter = 0;

/** A name unique to this test process: wt<tag><pid><n>, short enough for a link name (15 chars). */
export function uniqueName(tag: string): string {
  const id = `${process.pid.toString(36)}${(counter++).toString(36)}`;
  const name = `${TEST_PREFIX}${tag}${id}`;
  if (name.length > 15) throw new Error(`test name "${name}" too long for a link: shorten the tag "${tag}"`);
  return name;
}

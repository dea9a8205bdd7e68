// Namespaces for tests: created fresh for each test and removed in teardown
// whether the test passed or not.
import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach } from 'vitest';
import { netnsAdd, netnsDelete, netnsExists } from '../../dataplane/netlink/netns';
import { recordOwnedNetns, uniqueName } from './names';

export function createTestNetns(tag: string): string {
  const name = uniqueName(tag);
  netnsAdd(name);
  recordOwnedNetns(name);
  // a fresh namespace has lo down; most tests want loopback to work
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

export function removeTestNetns(name: string): void {
  if (netnsExists(name)) netnsDelete(name);
}

/** Registers hooks that give each test its own namespace(s); call the returned function inside a test. */
export function useTestNetns(tag: string, count = 1): () => string[] {
  let current: string[] = [];
  beforeEach(() => {
    current = Array.from({ length: count }, () => createTestNetns(tag));
  });
  afterEach(() => {
    for (const n of current) removeTestNetns(n);
    current = [];
  });
  return () => current;
}

export { ipJson, nsExec } from './ip';

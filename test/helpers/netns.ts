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

/** `ip -j` output inside a namespace, parsed: how tests check what the product did. */
export function ipJson<T = any>(netns: string, args: string[]): T {
  const out = execFileSync('ip', ['-n', netns, '-j', ...args], { encoding: 'utf8' });
  return (out.trim() ? JSON.parse(out) : []) as T;
}

/** Run a command inside a namespace (tests only). */
export function nsExec(netns: string, cmd: string, args: string[], input?: string): string {
  return execFileSync('ip', ['netns', 'exec', netns, cmd, ...args], { encoding: 'utf8', input });
}

// `ip` as tests and lab tools use it to check what the product did. Free of
// vitest so that command-line tools (npm run lab, benches) can import it too.
import { execFileSync } from 'node:child_process';

/** `ip -j` output inside a namespace, parsed. */
export function ipJson<T = any>(netns: string, args: string[]): T {
  const out = execFileSync('ip', ['-n', netns, '-j', ...args], { encoding: 'utf8' });
  return (out.trim() ? JSON.parse(out) : []) as T;
}

/** Run a command inside a namespace (tests only). */
export function nsExec(netns: string, cmd: string, args: string[], input?: string): string {
  return execFileSync('ip', ['netns', 'exec', netns, cmd, ...args], { encoding: 'utf8', input });
}

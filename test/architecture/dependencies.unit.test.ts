// The rooms and the directions between them (ARCHITECTURE.md), checked on
// every run: dependency-cruiser's rules from .dependency-cruiser.cjs, and no
// two folders that import each other, directly or round a longer loop.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ROOMS = ['controller', 'cni-plugin', 'dataplane', 'ingress'];

type Cruise = {
  modules: Array<{ source: string; dependencies: Array<{ resolved: string; coreModule: boolean; couldNotResolve: boolean }> }>;
  summary: { violations: Array<{ rule: { name: string }; from: string; to: string }> };
};

function cruise(): Cruise {
  const out = execFileSync(join(ROOT, 'node_modules', '.bin', 'depcruise'), ['--config', '.dependency-cruiser.cjs', '--output-type', 'json', ...ROOMS], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(out) as Cruise;
}

/** Folder-level strongly connected components with more than one folder: each is a cycle between folders. */
function folderCycles(edges: Map<string, Set<string>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of edges.keys()) if (!idx.has(v)) visit(v);
  return out;
}

describe('architecture', () => {
  const result = cruise();

  it('follows every rule in .dependency-cruiser.cjs', () => {
    const violations = result.summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`);
    expect(violations).toEqual([]);
  });

  it('has no cycle between folders', () => {
    const edges = new Map<string, Set<string>>();
    for (const m of result.modules) {
      if (!ROOMS.some((r) => m.source.startsWith(`${r}/`))) continue;
      const from = dirname(m.source);
      if (!edges.has(from)) edges.set(from, new Set());
      for (const d of m.dependencies) {
        if (d.coreModule || d.couldNotResolve || !ROOMS.some((r) => d.resolved.startsWith(`${r}/`))) continue;
        const to = dirname(d.resolved);
        if (to !== from) edges.get(from)!.add(to);
      }
    }
    expect(folderCycles(edges)).toEqual([]);
  });

  it('finds a cycle between folders when there is one', () => {
    const g = new Map([
      ['a', new Set(['b'])],
      ['b', new Set(['c'])],
      ['c', new Set(['a'])],
      ['d', new Set(['a'])],
    ]);
    expect(folderCycles(g)).toEqual([['a', 'b', 'c']]);
  });
});

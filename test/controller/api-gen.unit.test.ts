// The wire types in controller/api/gen are generated from weft.proto and
// committed; this fails when someone changed the proto (or the loader's
// options) without running `npm run gen:api`.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GEN_DIR, REPO_ROOT, generateTypes, generatorFlags } from '../../controller/api/gen-types';

function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p, 'utf8'));
    }
  };
  walk(dir);
  return out;
}

const tmp = mkdtempSync(join(tmpdir(), 'weft-gen-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('generated wire types', () => {
  it('are generated with the options the loader uses', () => {
    expect(generatorFlags()).toEqual(expect.arrayContaining(['--keepCase', '--longs=Number', '--enums=String', '--defaults', '--oneofs']));
    expect(() => generatorFlags({ longs: BigInt })).toThrow(/longs=.* has no proto-loader-gen-types flag/);
  });

  it('match weft.proto (run `npm run gen:api` after changing it)', () => {
    generateTypes(join(tmp, 'gen'));
    const want = files(join(tmp, 'gen'));
    const have = files(join(REPO_ROOT, GEN_DIR));
    expect([...have.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [path, text] of want) expect(have.get(path), `${GEN_DIR}/${path} is stale: run npm run gen:api`).toBe(text);
  });
});

// The README's flag reference is the code's: generated from the option
// tables, explained for every flag and for no flag that is gone.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BEGIN, END, flagReferenceIn, nameOf, REFERENCE, renderFlagReference, SHIM_VARIABLES, withFlagReference } from './flag-reference';

const README = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'README.md');

describe('flag reference', () => {
  it("README.md's section between the flags markers is the generated one", () => {
    const readme = readFileSync(README, 'utf8');
    const section = flagReferenceIn(readme);
    expect(section, `README.md has no ${BEGIN} ... ${END} section (before "## Layout"); add the markers and run npm run gen:flags`).toBeDefined();
    if (section !== renderFlagReference()) {
      expect.fail("README.md's flag reference differs from the code's option tables: run npm run gen:flags");
    }
  });

  it.each(REFERENCE.map((c) => [c.title, c] as const))('every flag of %s is explained, and nothing else is', (_, c) => {
    const flags = c.options.map(nameOf);
    expect(flags.filter((f) => !c.docs[f]?.meaning), 'flags without a meaning in test/docs/flag-reference.ts').toEqual([]);
    expect(Object.keys(c.docs).filter((f) => !flags.includes(f)), 'meanings of flags the command no longer has').toEqual([]);
    expect(new Set(flags).size).toBe(flags.length);
    const vars = c.options.map((o) => o.env).filter((e) => e !== '');
    expect(new Set(vars).size).toBe(vars.length);
    for (const v of vars) expect(v).toMatch(/^WEFT_[A-Z0-9_]+$/);
  });

  it('shows a value the code defaults to, and a table cell never breaks its row', () => {
    const text = renderFlagReference();
    expect(text).toContain('| `--gc-interval` | `WEFT_GC_INTERVAL` | `60s` |');
    expect(text).toContain('`--default` (file: `makeDefault`)');
    // the C plugin's variables come from its getenv calls
    expect(SHIM_VARIABLES).toContain('WEFT_CNI_TIMEOUT_MS');
    expect(text).toMatch(/\| `WEFT_CNI_TIMEOUT_MS` \| `\d+` \|/);
    for (const line of text.split('\n').filter((l) => l.startsWith('| `--'))) {
      const header = line.split(/(?<!\\)\|/).length;
      expect([6, 7], line).toContain(header);
    }
  });

  it('gen:flags replaces only the marked section and is idempotent', () => {
    const readme = `# weft\n\nintro\n\n${BEGIN}\nold text\n${END}\n\n## Layout\n`;
    const once = withFlagReference(readme, 'new\n');
    expect(once).toBe(`# weft\n\nintro\n\n${BEGIN}\nnew\n${END}\n\n## Layout\n`);
    expect(withFlagReference(once, 'new\n')).toBe(once);
    expect(flagReferenceIn(once)).toBe('new\n');
    expect(() => withFlagReference('# weft\n', 'x')).toThrow(/flags:begin/);
  });
});

// The README's flag reference is the code's: generated from the option
// tables, explained for every flag and for no flag that is gone, with a
// section for every subcommand's flag table and every WEFT_* variable the
// product reads.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CODES } from '../../controller/common/errors';
import { AGENT_OPTIONS } from '../../cni-plugin/agent/config';
import { CNI_ERR } from '../../cni-plugin/cni/types';
import { DOCTOR_FLAGS, splitDoctorArgs } from '../../cni-plugin/agent/doctor/command';
import { EXPLAIN_FLAGS, splitExplainArgs } from '../../cni-plugin/agent/explain/command';
import { BEGIN, END, flagReferenceIn, nameOf, REFERENCE, renderFlagReference, SHIM_VARIABLES, withFlagReference } from './flag-reference';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const README = join(ROOT, 'README.md');
const CLI = join(ROOT, 'controller', 'cli');
/** The entry point runs on import; every other CLI module only declares. */
const CLI_MODULES = readdirSync(CLI).filter((f) => f.endsWith('.ts') && f !== 'weft.ts');
const PRODUCT = ['controller', 'cni-plugin', 'dataplane', 'ingress'];

/**
 * The WEFT_* variables a source reads: `process.env.WEFT_X`, `env.WEFT_X`, and
 * every WEFT_* string literal (option tables, `getenv("WEFT_X")`, `env['WEFT_X']`,
 * constants) except the error codes, which share the prefix.
 */
function variablesIn(source: string): string[] {
  const codes = new Set([...Object.keys(CODES), ...Object.keys(CNI_ERR).map((k) => `WEFT_CNI_${k}`)]);
  const found = new Set<string>();
  for (const m of source.matchAll(/\benv\.(WEFT_[A-Z0-9_]+)/g)) found.add(m[1]);
  for (const m of source.matchAll(/(['"`])(WEFT_[A-Z0-9_]+)\1/g)) if (!codes.has(m[2])) found.add(m[2]);
  return [...found];
}

function productSources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.(ts|c|h|js|mjs|cjs|sh)$/.test(f))
    .map((f) => join(ROOT, dir, f));
}

/** The flags a function compares against: its quoted --name literals. */
const flagLiterals = (f: (...a: never[]) => unknown) => [...f.toString().matchAll(/(['"`])(--[a-z][a-z0-9-]*)\1/g)].map((m) => m[2]);

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
    // a subcommand's own flags: default, form and meaning from its table
    expect(text).toContain('### `weft token create`');
    expect(text).toMatch(/\| `--ttl` \| `1h` \| a duration [^|]+ \| how long/);
    expect(text).toContain('| `--wan` | the host\'s underlay address and --listen-port | HOST=IP:PORT |');
    expect(text).toMatch(/### `weft service delete`\n\n[^\n]+\n\nNo flags of its own\./);
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

  it("every subcommand's flag table has a section, and every parse() call reads a named table", async () => {
    const sections = new Set(REFERENCE.flatMap((c) => (c.table ? [c.table] : [])));
    const tables: Array<[string, unknown]> = [['DOCTOR_FLAGS', DOCTOR_FLAGS], ['EXPLAIN_FLAGS', EXPLAIN_FLAGS]];
    for (const file of CLI_MODULES) {
      const mod = (await import(pathToFileURL(join(CLI, file)).href)) as Record<string, unknown>;
      for (const [name, v] of Object.entries(mod)) if (name.endsWith('_FLAGS')) tables.push([`${file}: ${name}`, v]);
    }
    expect(tables.length).toBeGreaterThan(20);
    expect(tables.filter(([, t]) => !sections.has(t as never)).map(([n]) => n), 'flag tables without a section in test/docs/flag-reference.ts').toEqual([]);
    expect(new Set(tables.map(([, t]) => t)).size, 'two commands share one table object: give each its own').toBe(tables.length);

    const calls: string[] = [];
    for (const file of CLI_MODULES) {
      const source = readFileSync(join(CLI, file), 'utf8');
      for (const m of source.matchAll(/\bparse\(\s*[\w.]+\s*,\s*(\{[^}]*\}|[\w.]+)/g)) calls.push(`${file}: ${m[1]}`);
    }
    expect(calls.length).toBeGreaterThan(15);
    // the shared connection flags may be spread in; the command's own come from its exported table
    const inline = calls.filter((c) => /['"`]--/.test(c) || !/\b[A-Z][A-Z0-9_]*_FLAGS\b/.test(c));
    expect(inline, 'parse() calls whose flags are not an exported *_FLAGS table').toEqual([]);
  });

  it("doctor and explain take exactly their table's flags and leave the rest to the agent's loader", () => {
    const agentFlags = AGENT_OPTIONS.map((o) => o.flag);
    for (const [table, split, args] of [
      [DOCTOR_FLAGS, splitDoctorArgs, []],
      [EXPLAIN_FLAGS, splitExplainArgs, ['10.0.0.1', '10.0.0.2']],
    ] as const) {
      for (const [flag, form] of Object.entries(table)) {
        const taken = (split as (a: string[]) => { agentArgv: string[] })([...args, flag, ...(form === 'bool' ? [] : ['1500'])]);
        expect(taken.agentArgv, `${flag} reached the agent's flags`).not.toContain(flag);
      }
      // what the split function compares against is its table's, or the agent flag it hands a value to
      expect(flagLiterals(split).filter((f) => !(f in table) && !agentFlags.includes(f)), `${split.name} takes flags its table does not list`).toEqual([]);
    }
    expect(splitDoctorArgs(['--json', '--mtu', '1400']).agentArgv).toEqual(['--mtu', '1400']);
  });

  it('lists every WEFT_* variable the product reads', () => {
    expect(variablesIn("x = process.env.WEFT_FOO; y = env['WEFT_BAR']; getenv(\"WEFT_BAZ\"); super('WEFT_USAGE', m)").sort()).toEqual(['WEFT_BAR', 'WEFT_BAZ', 'WEFT_FOO']);
    const read = new Map<string, string>();
    for (const dir of PRODUCT) {
      for (const file of productSources(dir)) for (const v of variablesIn(readFileSync(file, 'utf8'))) read.set(v, file.slice(ROOT.length + 1));
    }
    // the scan sees the option tables, the config file's variable and the C plugin's getenv
    for (const v of ['WEFT_LISTEN', 'WEFT_CONFIG', 'WEFT_CNI_TIMEOUT_MS', 'WEFT_TOKEN_FILE']) expect(read.has(v), v).toBe(true);
    const text = renderFlagReference();
    const missing = [...read].filter(([v]) => !text.includes(`\`${v}\``)).map(([v, file]) => `${v} (${file})`);
    expect(missing, 'WEFT_* variables the product reads but the flag reference does not list').toEqual([]);
  });
});

// Regenerates the TypeScript wire types in gen/ from weft.proto
// (`npm run gen:api`). The generator's options are derived from the loader's
// (LOADER_OPTIONS), so the types describe exactly what the loader hands over:
// snake_case fields, int64 as number, enums by name, absent fields as their
// proto3 defaults. gen/ is committed, so type checking and the build need no
// generation step; test/controller/api-gen.unit.test.ts fails when it is stale.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOADER_OPTIONS } from './proto';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root: the generator writes the proto's path relative to it into every file. */
export const REPO_ROOT = join(here, '..', '..');
export const PROTO_FILE = relative(REPO_ROOT, join(here, 'weft.proto'));
export const GEN_DIR = relative(REPO_ROOT, join(here, 'gen'));

/** The output types proto-loader-gen-types knows for each option that takes a type. */
const GENERATOR_TYPES: Record<string, string[]> = { longs: ['String', 'Number'], enums: ['String'], bytes: ['String', 'Array'] };

/** proto-loader-gen-types flags for LOADER_OPTIONS; an option the generator cannot express is an error, not a silent mismatch. */
export function generatorFlags(options: object = LOADER_OPTIONS): string[] {
  const flags: string[] = [];
  for (const [key, value] of Object.entries(options)) {
    if (value === true) flags.push(`--${key}`);
    else if (value === false || value === undefined) continue;
    else if (typeof value === 'function' && GENERATOR_TYPES[key]?.includes(value.name)) flags.push(`--${key}=${value.name}`);
    else throw new Error(`loader option ${key}=${String(value)} has no proto-loader-gen-types flag`);
  }
  return [...flags, '--includeComments', '--grpcLib=@grpc/grpc-js'];
}

/** Writes the types for weft.proto into outDir (relative to the repository root, or absolute), replacing what was there. */
export function generateTypes(outDir: string = GEN_DIR): void {
  rmSync(resolve(REPO_ROOT, outDir), { recursive: true, force: true });
  const bin = join(REPO_ROOT, 'node_modules', '.bin', 'proto-loader-gen-types');
  execFileSync(bin, [...generatorFlags(), '-O', outDir, PROTO_FILE], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  generateTypes();
  process.stdout.write(`wrote ${GEN_DIR} from ${PROTO_FILE}\n`);
}

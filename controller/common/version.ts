// The weft version, from the package.json of the checkout or install: the
// nearest one named "weft" above this file, which is controller/common/ in the
// source tree and dist/ in the bundle. Kept apart from the command modules so
// `weft version` and the agent read it without loading the controller.
import { readFileSync } from 'node:fs';

let cached: string | undefined;

export function weftVersion(): string {
  return (cached ??= readVersion());
}

function readVersion(): string {
  for (let up = '../'; up.length <= 4 * 3; up += '../') {
    try {
      const pkg = JSON.parse(readFileSync(new URL(`${up}package.json`, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'weft' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not here: one level up
    }
  }
  return 'unknown';
}

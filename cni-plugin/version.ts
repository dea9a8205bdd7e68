// The weft version, from the package.json of the checkout or install: one
// directory up from this file in the source tree (cni-plugin/) and from the
// bundle's files (dist/). Kept apart from the command modules so `weft
// version` and the agent read it without loading the controller.
import { readFileSync } from 'node:fs';

export function weftVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

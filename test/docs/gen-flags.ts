// npm run gen:flags: writes the flag reference (flag-reference.ts) into
// README.md between its markers.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderFlagReference, withFlagReference } from './flag-reference';

const readme = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'README.md');
const before = readFileSync(readme, 'utf8');
const after = withFlagReference(before, renderFlagReference());
if (after === before) console.log('README.md: flag reference unchanged');
else {
  writeFileSync(readme, after);
  console.log('README.md: flag reference written');
}

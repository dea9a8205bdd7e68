// The controller refuses a CA key file owned by another user. Making such a
// file takes root (chown), so this runs with npm test only; the rest of the
// PKI tests are pki.unit.test.ts.
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCa } from '../../controller/pki';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'weft-pki-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('ensureCa', () => {
  it('refuses a key file owned by another user', async () => {
    const dir = join(root, 'ca');
    await ensureCa(dir);
    await chown(join(dir, 'ca.key'), 65534, 65534);
    await expect(ensureCa(dir)).rejects.toThrow(/ca\.key is owned by uid 65534, but the controller runs as uid 0/);
  });
});

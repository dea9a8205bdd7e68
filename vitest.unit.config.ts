import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// `npm run test:unit`: the tests named *.unit.test.ts. They need neither
// root, network namespaces, kernel objects, external daemons (etcd, podman,
// containerd), system packages nor the built dist/, so any user runs them in
// seconds. No global setup: the namespace sweep and require-system.sh belong
// to `npm test`, which runs these too. A test that needs any of those is
// named *.test.ts; a new test that needs none of them is named *.unit.test.ts.
export default defineConfig({
  // vitest's results cache would go under node_modules/.vite, which only the
  // user who ran npm ci can write.
  cacheDir: join(tmpdir(), `weft-vitest-${process.getuid?.() ?? 'user'}`),
  test: {
    include: ['test/**/*.unit.test.ts'],
    exclude: ['test/bench/**', 'node_modules/**'],
    pool: 'forks',
    // One process per worker for all its files, not one per file: it halves
    // the run, and a test that needs a process of its own is not a unit test.
    // `npm test` still runs each of these files in its own process.
    isolate: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
